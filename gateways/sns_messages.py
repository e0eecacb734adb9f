"""Amazon SNS HTTP(S) subscription messages: signature verification and confirmation.

SNS signs every message it posts to an HTTP(S) endpoint with the private key of a
certificate it publishes at ``SigningCertURL``. Verification follows AWS's "Verifying
the signatures of Amazon SNS messages": the certificate URL must be HTTPS on an SNS
host (``sns.<region>.amazonaws.com``, checked by a strict pattern, never merely
"ends with amazonaws.com"); the signed string is ``name\\nvalue\\n`` for a fixed list of
keys per ``Type``, in byte order; ``SignatureVersion`` 1 is RSA PKCS#1 v1.5 over SHA-1,
2 over SHA-256. The certificate is trusted because it came over TLS from that host, so
nothing else may ever choose where it is fetched from (no redirects are followed).

Certificates are cached per URL in the process (SNS rotates them rarely) until they
expire. Tests serve a locally generated certificate at a real SNS URL through respx,
the same way any HTTP peer is stood in for: there is no switch that skips a check.

A valid SNS signature proves only that *some* SNS topic sent the message; the caller
still checks the ``TopicArn`` is the one it subscribed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .base import ReceiptInvalid, ReceiptRejected

# sns.us-east-1.amazonaws.com, sns.us-gov-west-1.amazonaws.com, sns.ap-southeast-4…
SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}\.amazonaws\.com")
CERTIFICATE_PATH = re.compile(r"/[A-Za-z0-9._-]{1,200}\.pem")

# The keys each message type signs, in the (byte) order the string to sign takes them.
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
FETCH_TIMEOUT_S = 5.0
CACHE_SIZE = 16


@dataclasses.dataclass(frozen=True, slots=True)
class SnsMessage:
    """A message whose SNS signature checked out."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    subscribe_url: str = ""


def is_sns_url(url: str) -> bool:
    """HTTPS on an SNS host, default port, no user info: the only place we fetch from."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port is None
        and parts.username is None
        and parts.password is None
        and SNS_HOST.fullmatch(parts.hostname or "") is not None
        # urlsplit lower-cases the host: the URL must have spelled it that way too.
        and parts.netloc == parts.hostname
    )


def is_signing_certificate_url(url: str) -> bool:
    parts = urlsplit(url)
    return (
        is_sns_url(url)
        and not parts.query
        and not parts.fragment
        and CERTIFICATE_PATH.fullmatch(parts.path) is not None
    )


def is_subscribe_url(url: str) -> bool:
    """An SNS ``ConfirmSubscription`` link, the one GET a confirmation may cause."""
    if not is_sns_url(url):
        return False
    parts = urlsplit(url)
    action = parse_qs(parts.query).get("Action", [])
    return parts.path == "/" and action == ["ConfirmSubscription"]


def string_to_sign(data: Mapping[str, object]) -> bytes:
    """``name\\nvalue\\n`` for each signed key the message carries (``Subject`` is
    optional), per its ``Type``."""
    keys = SIGNED_KEYS[str(data["Type"])]
    return "".join(f"{key}\n{data[key]}\n" for key in keys if key in data).encode()


class _CertificateCache:
    """Fetched signing certificates by URL, bounded, until each one expires."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, now: dt.datetime) -> x509.Certificate:
        with self._lock:
            cached = self._items.get(url)
        if cached is not None and cached.not_valid_after_utc > now:
            return cached
        certificate = _fetch_certificate(url)
        with self._lock:
            self._items[url] = certificate
            self._items.move_to_end(url)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return certificate

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


certificates = _CertificateCache()


def _fetch_certificate(url: str) -> x509.Certificate:
    try:
        answer = httpx.get(url, timeout=FETCH_TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise ReceiptRejected(f"SNS signing certificate unavailable: {exc}") from None
    if answer.status_code != 200:
        raise ReceiptRejected(f"SNS signing certificate unavailable: HTTP {answer.status_code}")
    try:
        return x509.load_pem_x509_certificate(answer.content)
    except ValueError:
        raise ReceiptRejected("SNS signing certificate is not a PEM certificate") from None


def sns_message_verify(body: bytes, *, now: dt.datetime) -> SnsMessage:
    """The message in ``body`` once its SNS signature verifies; ``ReceiptRejected`` for
    a wrong or unverifiable signature, ``ReceiptInvalid`` for a body that is no SNS
    message at all."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ReceiptInvalid("SNS message is not JSON") from None
    if not isinstance(data, dict) or data.get("Type") not in SIGNED_KEYS:
        raise ReceiptInvalid("not an SNS Notification or (Un)SubscriptionConfirmation")
    needed = [k for k in SIGNED_KEYS[data["Type"]] if k != "Subject"]
    needed += ["Signature", "SigningCertURL"]
    wrong = [k for k in (*needed, "Subject") if k in data and not isinstance(data[k], str)]
    missing = [k for k in needed if k not in data]
    if missing or wrong:
        raise ReceiptRejected(f"SNS message lacks string {', '.join(missing + wrong)}")
    algorithm = SIGNATURE_HASHES.get(str(data.get("SignatureVersion")))
    if algorithm is None:
        raise ReceiptRejected(f"unknown SNS SignatureVersion {data.get('SignatureVersion')!r}")
    if not is_signing_certificate_url(data["SigningCertURL"]):
        raise ReceiptRejected(
            f"SigningCertURL {data['SigningCertURL'][:200]!r} is not an SNS certificate URL"
        )
    try:
        signature = base64.b64decode(data["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptRejected("SNS Signature is not base64") from None
    certificate = certificates.get(data["SigningCertURL"], now)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise ReceiptRejected("SNS signing certificate is not valid now")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ReceiptRejected("SNS signing certificate has no RSA key")
    try:
        public_key.verify(signature, string_to_sign(data), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise ReceiptRejected("SNS signature does not match") from None
    return SnsMessage(
        type=data["Type"],
        message_id=data["MessageId"],
        topic_arn=data["TopicArn"],
        message=data["Message"],
        timestamp=data["Timestamp"],
        subscribe_url=data.get("SubscribeURL", ""),
    )


def sns_subscription_confirm(message: SnsMessage) -> None:
    """Visit the ``SubscribeURL`` of a verified ``SubscriptionConfirmation``, only if
    it is an SNS ``ConfirmSubscription`` link; ``ReceiptInvalid`` if SNS refuses."""
    if not is_subscribe_url(message.subscribe_url):
        raise ReceiptRejected(
            f"SubscribeURL {message.subscribe_url[:200]!r} is not an SNS ConfirmSubscription link"
        )
    try:
        answer = httpx.get(message.subscribe_url, timeout=FETCH_TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise ReceiptInvalid(f"SNS subscription not confirmed: {exc}") from None
    if answer.status_code != 200:
        raise ReceiptInvalid(f"SNS subscription not confirmed: HTTP {answer.status_code}")
