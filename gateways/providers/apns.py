"""Apple Push Notification service, token-based: ``POST /3/device/{token}`` over HTTP/2.

The provider token is an ES256 JWT (``iss`` team id, ``kid`` key id) signed with the
``signing_key`` secret (the .p8 key) by PyJWT; it is cached per process and renewed
every 50 minutes (Apple refuses one older than an hour and throttles renewals more
often than every 20 minutes), or at once after ``ExpiredProviderToken``. APNs speaks
HTTP/2 only, so this provider keeps its own HTTP/2 client beside the batch's shared one.

``apns-id`` is derived from the idempotency key (the same on every retry) and
``apns-collapse-id`` is the key itself, so a resend after a timeout replaces the shown
notification instead of adding a second one. ``Unregistered`` (410),
``BadDeviceToken`` and ``ExpiredToken`` suppress the device token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import jwt

from ..adapters.base_http import BACKSTOP_TIMEOUT, USER_AGENT, GatewayPayloadError, _tls_context
from ..allowlist import check_url_allowed
from ..base import (
    ConnectionConfig,
    GatewayMessage,
    GatewayResult,
    Outcome,
    ProbeResult,
    SecretSource,
)
from .common import HttpAnswer, ProviderBase, ProviderConfigError, require_fields, result

ENDPOINTS = {
    "production": "https://api.push.apple.com",
    "development": "https://api.sandbox.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}
TOKEN_MAX_AGE_S = 50 * 60
COLLAPSE_ID_MAX = 64  # bytes, per Apple
APNS_ID_NAMESPACE = uuid.UUID("6f1c2a4e-7d0b-4f3e-9a57-2b8c1d0e5f43")

# APNs reason -> (outcome, suppress, provider token refused).
# https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
APNS_REASONS: dict[str, tuple[Outcome, bool, bool]] = {
    "BadDeviceToken": (Outcome.REJECTED_PERMANENT, True, False),
    "Unregistered": (Outcome.REJECTED_PERMANENT, True, False),
    "ExpiredToken": (Outcome.REJECTED_PERMANENT, True, False),
    "DeviceTokenNotForTopic": (Outcome.REJECTED_PERMANENT, False, False),
    "BadCollapseId": (Outcome.REJECTED_PERMANENT, False, False),
    "BadExpirationDate": (Outcome.REJECTED_PERMANENT, False, False),
    "BadMessageId": (Outcome.REJECTED_PERMANENT, False, False),
    "BadPriority": (Outcome.REJECTED_PERMANENT, False, False),
    "BadTopic": (Outcome.REJECTED_PERMANENT, False, False),
    "DuplicateHeaders": (Outcome.REJECTED_PERMANENT, False, False),
    "InvalidPushType": (Outcome.REJECTED_PERMANENT, False, False),
    "MissingDeviceToken": (Outcome.REJECTED_PERMANENT, False, False),
    "MissingTopic": (Outcome.REJECTED_PERMANENT, False, False),
    "PayloadEmpty": (Outcome.REJECTED_PERMANENT, False, False),
    "PayloadTooLarge": (Outcome.REJECTED_PERMANENT, False, False),
    "TopicDisallowed": (Outcome.REJECTED_PERMANENT, False, False),
    "BadPath": (Outcome.EXECUTOR_ERROR, False, False),
    "MethodNotAllowed": (Outcome.EXECUTOR_ERROR, False, False),
    "ExpiredProviderToken": (Outcome.REJECTED_TRANSIENT, False, True),
    "InvalidProviderToken": (Outcome.REJECTED_TRANSIENT, False, True),
    "MissingProviderToken": (Outcome.REJECTED_TRANSIENT, False, True),
    "BadCertificate": (Outcome.REJECTED_TRANSIENT, False, True),
    "BadCertificateEnvironment": (Outcome.REJECTED_TRANSIENT, False, True),
    "Forbidden": (Outcome.REJECTED_TRANSIENT, False, True),
    "IdleTimeout": (Outcome.REJECTED_TRANSIENT, False, False),
    "TooManyProviderTokenUpdates": (Outcome.REJECTED_TRANSIENT, False, False),
    "TooManyRequests": (Outcome.REJECTED_TRANSIENT, False, False),
    "InternalServerError": (Outcome.REJECTED_TRANSIENT, False, False),
    "ServiceUnavailable": (Outcome.REJECTED_TRANSIENT, False, False),
    "Shutdown": (Outcome.REJECTED_TRANSIENT, False, False),
}

# (team id, key id) -> (provider token, time.time() it was made)
_tokens: dict[tuple[str, str], tuple[str, float]] = {}


def clear_token_cache() -> None:
    _tokens.clear()


def new_http2_client() -> httpx.AsyncClient:
    """Like the shared client (no proxies from the environment, no redirects), on HTTP/2."""
    return httpx.AsyncClient(
        http2=True,
        timeout=BACKSTOP_TIMEOUT,
        trust_env=False,
        verify=_tls_context(),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


class ApnsProvider(ProviderBase):
    name = "apns"

    @staticmethod
    def needs_http_client(config: ConnectionConfig) -> bool:
        return False  # APNs needs HTTP/2: this provider keeps its own client

    def __init__(
        self,
        *,
        config: ConnectionConfig,
        client: httpx.AsyncClient | None,
        secrets: SecretSource,
        http2_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(config=config, client=client, secrets=secrets)
        self._http2_client = http2_client
        self._owns_http2_client = http2_client is None

    def _h2(self) -> httpx.AsyncClient:
        if self._http2_client is None:
            self._http2_client = new_http2_client()
        return self._http2_client

    async def aclose(self) -> None:
        if self._owns_http2_client and self._http2_client is not None:
            await self._http2_client.aclose()
            self._http2_client = None

    def base_url(self) -> str:
        if self.setting("endpoint_url") or self.setting("base_url"):
            return super().base_url()
        environment = str(self.setting("environment", "production")).lower()
        if environment not in ENDPOINTS:
            raise ProviderConfigError(
                f"connection {self.config.key!r} (apns): environment {environment!r} is not "
                "production or development"
            )
        check_url_allowed(ENDPOINTS[environment])
        return ENDPOINTS[environment]

    def provider_token(self) -> str:
        team_id = str(self.required_setting("team_id"))
        key_id = str(self.required_setting("key_id"))
        cached = _tokens.get((team_id, key_id))
        now = time.time()
        if cached and now - cached[1] < TOKEN_MAX_AGE_S:
            self._used_secret_values.add(cached[0])
            return cached[0]
        try:
            token = jwt.encode(
                {"iss": team_id, "iat": int(now)},
                self.secret("signing_key"),
                algorithm="ES256",
                headers={"kid": key_id},
            )
        except (ValueError, TypeError, jwt.PyJWTError):
            # Never the exception text: it may quote the key material.
            raise ProviderConfigError("signing_key is not an ES256 (.p8) private key") from None
        _tokens[(team_id, key_id)] = (token, now)
        self._used_secret_values.add(token)
        return token

    def _forget_token(self) -> None:
        _tokens.pop((str(self.setting("team_id")), str(self.setting("key_id"))), None)

    def request_parts(self, message: GatewayMessage) -> tuple[dict[str, str], dict[str, Any]]:
        """The headers (without authorization) and JSON body for one canonical payload."""
        payload: Mapping[str, Any] = message.payload
        require_fields(payload, "push", "token")
        alert = {k: str(payload[k]) for k in ("title", "body") if payload.get(k)}
        aps: dict[str, Any] = {}
        if alert:
            aps["alert"] = alert
        if payload.get("badge") is not None:
            aps["badge"] = int(payload["badge"])
        if payload.get("sound"):
            aps["sound"] = str(payload["sound"])
        push_type = "alert" if alert or "sound" in aps else "background"
        if push_type == "background":
            aps["content-available"] = 1
        data = payload.get("data") or {}
        if not isinstance(data, Mapping):
            raise GatewayPayloadError("push data must be an object")
        body = {**{str(k): v for k, v in data.items() if k != "aps"}, "aps": aps}
        headers = {
            "apns-topic": str(self.required_setting("topic")),
            "apns-push-type": push_type,
            "apns-priority": "10" if push_type == "alert" else "5",
            "apns-id": str(uuid.uuid5(APNS_ID_NAMESPACE, message.idempotency_key)),
            "apns-collapse-id": message.idempotency_key.encode()[:COLLAPSE_ID_MAX].decode(
                errors="ignore"
            ),
        }
        if payload.get("ttl_s") is not None:
            headers["apns-expiration"] = str(int(time.time() + float(payload["ttl_s"])))
        return headers, body

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        headers, body = self.request_parts(message)
        device = str(message.payload["token"])
        url = f"{self.base_url()}/3/device/{device}"
        headers["authorization"] = f"bearer {self.provider_token()}"
        answer = await self.request("POST", url, client=self._h2(), json=body, headers=headers)
        if answer.status == 200:
            return result(
                Outcome.ACCEPTED,
                status_code=200,
                message_id=answer.headers.get("apns-id", headers["apns-id"]),
            )
        return self._refusal(answer)

    def _refusal(self, answer: HttpAnswer) -> GatewayResult:
        reason = str(answer.json_object().get("reason") or "")
        known = APNS_REASONS.get(reason)
        if known is None:
            return answer.status_result(provider_code=reason, detail=reason)
        outcome, suppress, token_refused = known
        if token_refused:
            self._forget_token()
        return result(
            outcome,
            status_code=answer.status,
            retry_after_s=answer.retry_after(),
            error=f"HTTP {answer.status}: {reason}",
            suppress=suppress,
            auth_failed=token_refused,
            provider_code=reason,
        )

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """APNs has no call that sends nothing: sign a provider token (proves the key,
        team and key id fit together) and check the endpoint is allowed."""
        self.base_url()
        self.required_setting("topic")
        self.provider_token()
        return ProbeResult(True, "provider token signed (APNs has no dry run)")
