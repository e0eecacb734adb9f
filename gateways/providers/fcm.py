"""Firebase Cloud Messaging HTTP v1: ``POST /v1/projects/{project}/messages:send``.

Authentication is the service-account OAuth flow: google-auth signs a JWT assertion
with the account's private key (the ``service_account`` secret, its JSON key), which is
exchanged at the account's ``token_uri`` for an access token over the shared client
(allow-listed and bounded like any call). The token is cached per process until shortly
before it expires, and dropped when FCM answers 401/403.

FCM's documented ``FcmError`` code decides the outcome: ``UNREGISTERED`` (and an
``INVALID_ARGUMENT`` about the registration token) suppresses the token. FCM takes no
idempotency key: a resend after a timeout can show the notification twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
from google.auth import crypt
from google.auth import jwt as google_jwt

from ..adapters.base_http import GatewayPayloadError
from ..base import (
    ConnectionConfig,
    GatewayMessage,
    GatewayResult,
    Outcome,
    ProbeResult,
    SecretSource,
)
from .common import HttpAnswer, ProviderBase, ProviderConfigError, require_fields, result

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600
TOKEN_REFRESH_MARGIN_S = 300  # never send a token that might expire on the way
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

# FcmError code -> (outcome, suppress). https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
FCM_ERRORS: dict[str, tuple[Outcome, bool]] = {
    "UNREGISTERED": (Outcome.REJECTED_PERMANENT, True),
    "INVALID_ARGUMENT": (Outcome.REJECTED_PERMANENT, False),
    "SENDER_ID_MISMATCH": (Outcome.REJECTED_PERMANENT, False),
    "THIRD_PARTY_AUTH_ERROR": (Outcome.REJECTED_PERMANENT, False),
    "QUOTA_EXCEEDED": (Outcome.REJECTED_TRANSIENT, False),
    "UNAVAILABLE": (Outcome.REJECTED_TRANSIENT, False),
    "INTERNAL": (Outcome.REJECTED_TRANSIENT, False),
}

# (client_email, private_key_id, token_uri) -> (access token, monotonic expiry)
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}


def clear_token_cache() -> None:
    _tokens.clear()


class FcmProvider(ProviderBase):
    name = "fcm"
    default_base_url = "https://fcm.googleapis.com"

    def __init__(
        self, *, config: ConnectionConfig, client: httpx.AsyncClient, secrets: SecretSource
    ) -> None:
        super().__init__(config=config, client=client, secrets=secrets)
        self._token_lock = asyncio.Lock()  # one exchange per batch, not one per message

    def _service_account(self) -> Mapping[str, Any]:
        try:
            info = json.loads(self.secret("service_account"))
        except ValueError:
            raise ProviderConfigError("service_account is not a JSON key") from None
        if not isinstance(info, dict) or not all(
            info.get(k) for k in ("client_email", "private_key", "token_uri")
        ):
            raise ProviderConfigError(
                "service_account lacks client_email, private_key or token_uri"
            )
        self._used_secret_values.add(str(info["private_key"]))
        return info

    def assertion(self, info: Mapping[str, Any]) -> str:
        """The signed JWT that google-auth's service-account credentials would send."""
        now = int(time.time())
        payload = {
            "iss": info["client_email"],
            "scope": SCOPE,
            "aud": info["token_uri"],
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        # google-auth leaves both functions unannotated
        signer = crypt.RSASigner.from_service_account_info(info)  # type: ignore[no-untyped-call]
        token: bytes = google_jwt.encode(signer, payload)  # type: ignore[no-untyped-call]
        return token.decode()

    async def access_token(self) -> str:
        info = self._service_account()
        cache_key = (
            str(info["client_email"]),
            str(info.get("private_key_id", "")),
            str(info["token_uri"]),
        )
        async with self._token_lock:
            cached = _tokens.get(cache_key)
            if cached and cached[1] > time.monotonic():
                self._used_secret_values.add(cached[0])
                return cached[0]
            answer = await self.request(
                "POST",
                str(info["token_uri"]),
                data={"grant_type": JWT_BEARER, "assertion": self.assertion(info)},
            )
            data = answer.json_object()
            token = str(data.get("access_token") or "")
            if answer.status != 200 or not token:
                raise TokenExchangeFailed(answer)
            self._used_secret_values.add(token)
            lifetime = float(data.get("expires_in") or 3600)
            _tokens[cache_key] = (token, time.monotonic() + lifetime - TOKEN_REFRESH_MARGIN_S)
            return token

    def _forget_token(self) -> None:
        for key, (token, _) in list(_tokens.items()):
            if token in self._used_secret_values:
                del _tokens[key]
        self.invalidate_secrets()

    def fcm_message(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The v1 ``message`` object of one canonical push payload."""
        require_fields(payload, "push", "token")
        message: dict[str, Any] = {"token": str(payload["token"])}
        notification = {k: str(payload[k]) for k in ("title", "body") if payload.get(k)}
        if notification:
            message["notification"] = notification
        data = payload.get("data")
        if data:
            if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
                raise GatewayPayloadError("push data must be an object of string values")
            message["data"] = dict(data)
        android: dict[str, Any] = {}
        aps: dict[str, Any] = {}
        if payload.get("ttl_s") is not None:
            android["ttl"] = f"{int(payload['ttl_s'])}s"
        if payload.get("sound"):
            android["notification"] = {"sound": str(payload["sound"])}
            aps["sound"] = str(payload["sound"])
        if payload.get("badge") is not None:
            aps["badge"] = int(payload["badge"])
        if android:
            message["android"] = android
        if aps:
            message["apns"] = {"payload": {"aps": aps}}
        return message

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        body = {"message": self.fcm_message(message.payload)}
        project = str(self.required_setting("project_id"))
        try:
            token = await self.access_token()
        except TokenExchangeFailed as exc:
            return exc.result()
        answer = await self.request(
            "POST",
            f"{self.base_url()}/v1/projects/{project}/messages:send",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if 200 <= answer.status < 300:
            return answer.status_result(message_id=str(answer.json_object().get("name") or ""))
        return self._refusal(answer)

    def _refusal(self, answer: HttpAnswer) -> GatewayResult:
        error = answer.json_object().get("error")
        error = error if isinstance(error, dict) else {}
        code = ""
        for detail in error.get("details") or []:
            if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
                code = str(detail.get("errorCode") or "")
        code = code or str(error.get("status") or "")
        text = str(error.get("message") or "") or answer.text_snippet()
        if answer.status in (401, 403):
            self._forget_token()
            return answer.status_result(provider_code=code, detail=f"{code}: {text}")
        if code in FCM_ERRORS:
            outcome, suppress = FCM_ERRORS[code]
            if code == "INVALID_ARGUMENT" and "registration token" in text.lower():
                suppress = True  # the token itself is malformed: it can never be reached
            return result(
                outcome,
                status_code=answer.status,
                retry_after_s=answer.retry_after(),
                error=f"HTTP {answer.status}: {code}: {text}",
                suppress=suppress,
                provider_code=code,
            )
        return answer.status_result(provider_code=code, detail=f"{code}: {text}")

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """The OAuth token exchange alone: credentials good, no message sent."""
        self.required_setting("project_id")
        try:
            await self.access_token()
        except TokenExchangeFailed as exc:
            refused = exc.result()
            if refused.auth_failed:
                self.invalidate_secrets()
            return ProbeResult(False, refused.error)
        return ProbeResult(True, "service-account token exchange ok")


class TokenExchangeFailed(Exception):
    """The token endpoint refused the assertion (a revoked or wrong key, a bad clock)."""

    def __init__(self, answer: HttpAnswer) -> None:
        super().__init__(f"token exchange answered HTTP {answer.status}")
        self.answer = answer

    def result(self) -> GatewayResult:
        data = self.answer.json_object()
        code = str(data.get("error") or "")
        text = str(data.get("error_description") or "") or self.answer.text_snippet()
        # The key is ours, not the recipient's: transient, secrets re-read, failover.
        return result(
            Outcome.REJECTED_TRANSIENT,
            status_code=self.answer.status,
            error=f"OAuth token exchange HTTP {self.answer.status}: {code}: {text}",
            auth_failed=self.answer.status in (400, 401, 403),
            provider_code=code,
        )
