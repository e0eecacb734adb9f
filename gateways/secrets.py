"""The one secret resolver: ``env:NAME``, ``file:/absolute/path``,
``aws-secretsmanager:<secret id>[#<json key>]``.

Values are read at use, cached for ``SECRETS_TTL_S`` seconds, and dropped at once when a
provider reports that they were refused (401/403): the next use reads them afresh. They
never reach the database, a log line or an error message: every error here names the
reference, never what it resolved to.

Reading from AWS Secrets Manager is a blocking call made on a cache miss only (once per
reference per TTL); region and endpoint come from ``SECRETS_AWS_REGION`` and
``SECRETS_AWS_ENDPOINT_URL``, credentials from the default AWS chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

SCHEMES = ("env:", "file:", "aws-secretsmanager:")
# Not for files: the reference of a secret the service generated and keeps itself (a
# client webhook endpoint's signing secret), encrypted with ``WEBHOOK_SECRETS_KEY``.
# Several space-separated tokens resolve to their values, space-separated.
SEALED = "sealed:"
REDACTED = "[redacted]"
MAX_REMEMBERED_VALUES = 1000


class SecretUnavailable(LookupError):
    """A reference that cannot be resolved now; the message names the reference only."""


def check_reference(reference: str) -> None:
    """Raise ValueError unless ``reference`` is well-formed (without resolving it)."""
    if reference.startswith("env:"):
        if not reference[4:]:
            raise ValueError("env: reference names no variable")
    elif reference.startswith("file:"):
        if not reference[5:].startswith("/"):
            raise ValueError("file: reference must be an absolute path (file:/…)")
    elif reference.startswith("aws-secretsmanager:"):
        secret_id = reference[len("aws-secretsmanager:") :].split("#", 1)[0]
        if not secret_id:
            raise ValueError("aws-secretsmanager: reference names no secret id")
    else:
        # Never echo the text: it may be a value pasted where a reference belongs.
        raise ValueError(
            "not a secret reference (env:NAME, file:/path or aws-secretsmanager:<id>); "
            "a secret's value never goes into a connection file"
        )


class SecretResolver:
    """Implements ``gateways.base.SecretSource``; thread-safe, one per process."""

    def __init__(
        self,
        *,
        ttl_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, float]] = {}  # reference -> (value, read at)
        # Every value served lately, invalidated or not: a provider may echo a refused
        # credential into its error after the cache dropped it. Oldest first, bounded.
        self._served: dict[str, None] = {}
        self._aws_client: Any = None

    @property
    def ttl_s(self) -> float:
        return float(self._ttl_s if self._ttl_s is not None else settings.SECRETS_TTL_S)

    def get(self, reference: str) -> str:
        now = self._monotonic()
        with self._lock:
            cached = self._cache.get(reference)
            if cached is not None and now - cached[1] < self.ttl_s:
                return cached[0]
        value = self._read(reference)
        with self._lock:
            self._cache[reference] = (value, now)
            self._served.pop(value, None)
            self._served[value] = None
            while len(self._served) > MAX_REMEMBERED_VALUES:
                self._served.pop(next(iter(self._served)))
        return value

    def invalidate(self, reference: str) -> None:
        with self._lock:
            self._cache.pop(reference, None)

    def scrub(self, text: str) -> str:
        """``text`` with every value this resolver holds blanked: the engine's last line
        of defence before an error reaches an attempt row or a log line."""
        with self._lock:
            values = sorted(self._served, key=len, reverse=True)
        for value in values:
            if len(value) >= 4 and value in text:  # a 1 to 3 character value would blank noise
                text = text.replace(value, REDACTED)
        return text

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._served.clear()

    def _read(self, reference: str) -> str:
        if reference.startswith(SEALED):
            return unseal(reference)
        try:
            check_reference(reference)
        except ValueError as exc:
            raise SecretUnavailable(str(exc)) from None
        if reference.startswith("env:"):
            return self._read_env(reference[4:])
        if reference.startswith("file:"):
            return self._read_file(reference, Path(reference[5:]))
        return self._read_aws(reference)

    @staticmethod
    def _read_env(name: str) -> str:
        value = os.environ.get(name)
        if not value:
            raise SecretUnavailable(f"env:{name}: the variable is not set")
        return value

    @staticmethod
    def _read_file(reference: str, path: Path) -> str:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretUnavailable(f"{reference}: cannot read ({type(exc).__name__})") from None
        if not value:
            raise SecretUnavailable(f"{reference}: the file is empty")
        return value

    def _read_aws(self, reference: str) -> str:
        import botocore.exceptions

        secret_id, _, json_key = reference[len("aws-secretsmanager:") :].partition("#")
        try:
            answer = self._aws().get_secret_value(SecretId=secret_id)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            raise SecretUnavailable(f"{reference}: AWS Secrets Manager said {code}") from None
        value = answer.get("SecretString")
        if value is None:
            raise SecretUnavailable(f"{reference}: the secret holds binary, not a string")
        if not json_key:
            return str(value)
        try:
            document = json.loads(value)
        except ValueError:
            raise SecretUnavailable(f"{reference}: the secret is not a JSON object") from None
        if not isinstance(document, dict) or json_key not in document:
            raise SecretUnavailable(f"{reference}: the secret has no key {json_key!r}")
        return str(document[json_key])

    def _aws(self) -> Any:
        with self._lock:
            if self._aws_client is None:
                import botocore.session

                self._aws_client = botocore.session.get_session().create_client(
                    "secretsmanager",
                    region_name=settings.SECRETS_AWS_REGION,
                    endpoint_url=settings.SECRETS_AWS_ENDPOINT_URL or None,
                )
            return self._aws_client


def _fernet() -> Fernet:
    from cryptography.fernet import Fernet

    key = str(settings.WEBHOOK_SECRETS_KEY or settings.SECRET_KEY).encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest()))


def seal(value: str) -> str:
    """A ``sealed:`` token of ``value``: safe to store, resolvable by ``SecretResolver``."""
    return SEALED + _fernet().encrypt(value.encode()).decode()


def sealed_reference(tokens: list[str]) -> str:
    """One reference resolving to the values of several ``seal`` tokens, in order."""
    return SEALED + " ".join(token.removeprefix(SEALED) for token in tokens)


def unseal(reference: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        fernet = _fernet()
        return " ".join(
            fernet.decrypt(token.encode()).decode()
            for token in reference.removeprefix(SEALED).split()
        )
    except (InvalidToken, ValueError):
        raise SecretUnavailable(
            "sealed secret cannot be decrypted (WEBHOOK_SECRETS_KEY changed?)"
        ) from None


# The process's resolver: its cache outlives a batch, which is what the TTL is for.
resolver = SecretResolver()
