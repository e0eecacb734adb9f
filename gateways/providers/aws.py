"""What ``sns`` and ``ses`` share: credentials, SigV4 signing with botocore, AWS errors.

Requests are signed by botocore's own ``SigV4Auth`` and sent on the shared httpx client,
so an AWS call is one more concurrent request of the batch (no thread per call, no
second HTTP stack). Credentials come from the connection's ``access_key_id`` /
``secret_access_key`` (opt. ``session_token``) secrets, or, when it names none, from
botocore's default chain (environment, profile, container or instance role).
"""

from __future__ import annotations

import asyncio
import re

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.session import Session

from ..allowlist import check_url_allowed
from ..base import GatewayResult, Outcome
from .common import HttpAnswer, ProviderBase, ProviderConfigError, result

# Error codes AWS uses for credentials it refuses (on top of HTTP 401/403).
AUTH_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "ExpiredToken",
        "ExpiredTokenException",
        "IncompleteSignature",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidSecurity",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
THROTTLING_CODES = frozenset(
    {
        "Throttled",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "RequestLimitExceeded",
    }
)
XML_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
XML_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")


class AwsProvider(ProviderBase):
    """Base of the AWS providers; subclasses set ``service`` and ``endpoint_prefix``."""

    service = ""
    endpoint_prefix = ""

    def region(self) -> str:
        return str(self.required_setting("region"))

    def base_url(self) -> str:
        # The regional public endpoint unless the connection names one (a test or a VPC one).
        if self.setting("endpoint_url") or self.setting("base_url"):
            return super().base_url()
        url = f"https://{self.endpoint_prefix}.{self.region()}.amazonaws.com"
        check_url_allowed(url)
        return url

    async def credentials(self) -> ReadOnlyCredentials:
        if self.has_secret("access_key_id") or self.has_secret("secret_access_key"):
            token = self.secret("session_token") if self.has_secret("session_token") else None
            return Credentials(
                self.secret("access_key_id"), self.secret("secret_access_key"), token
            ).get_frozen_credentials()
        # botocore's chain may read files or ask an instance-metadata endpoint: off the loop.
        found = await asyncio.to_thread(Session().get_credentials)
        if found is None:
            raise ProviderConfigError(
                f"connection {self.config.key!r} ({self.name}) has no AWS credentials: set "
                "access_key_id/secret_access_key or provide them to the default chain"
            )
        frozen = await asyncio.to_thread(found.get_frozen_credentials)
        for value in (frozen.secret_key, frozen.token):
            if value:
                self._used_secret_values.add(value)
        return frozen

    async def signed_request(
        self, method: str, url: str, *, body: bytes, content_type: str
    ) -> HttpAnswer:
        """``body`` sent to ``url`` with a SigV4 signature for this service and region."""
        frozen = await self.credentials()
        request = AWSRequest(
            method=method, url=url, data=body, headers={"Content-Type": content_type}
        )
        SigV4Auth(
            Credentials(frozen.access_key, frozen.secret_key, frozen.token),
            self.service,
            self.region(),
        ).add_auth(request)
        return await self.request(method, url, content=body, headers=dict(request.headers.items()))


def aws_error(answer: HttpAnswer) -> tuple[str, str]:
    """The error code and message of an AWS answer: query APIs answer XML, REST-JSON
    APIs set ``x-amzn-ErrorType`` and a JSON body."""
    header = answer.headers.get("x-amzn-ErrorType", "")
    data = answer.json_object()
    code = header.split(":", 1)[0] or str(data.get("__type") or data.get("code") or "")
    code = code.rpartition("#")[2]
    message = str(data.get("message") or data.get("Message") or "")
    if not code:
        text = answer.raw.decode("utf-8", errors="replace")
        found = XML_CODE.search(text)
        code = found.group(1) if found else ""
        found_message = XML_MESSAGE.search(text)
        message = message or (found_message.group(1) if found_message else "")
    return code, message or answer.text_snippet()


def classify_aws_error(
    answer: HttpAnswer,
    *,
    permanent: frozenset[str] = frozenset(),
    transient: frozenset[str] = frozenset(),
    suppress: bool = False,
) -> GatewayResult:
    """Credentials refused → transient with ``auth_failed``; throttling and the listed
    ``transient`` codes → transient; the listed ``permanent`` codes → permanent (and
    ``suppress`` as the caller decided); anything else by its HTTP status."""
    code, message = aws_error(answer)
    error = (
        f"HTTP {answer.status}: {code}: {message}" if code else f"HTTP {answer.status}: {message}"
    )
    if code in AUTH_ERROR_CODES or answer.status in (401, 403):
        return result(
            Outcome.REJECTED_TRANSIENT,
            status_code=answer.status,
            error=error,
            auth_failed=True,
            provider_code=code,
        )
    if code in THROTTLING_CODES or code in transient:
        return result(
            Outcome.REJECTED_TRANSIENT,
            status_code=answer.status,
            retry_after_s=answer.retry_after(),
            error=error,
            provider_code=code,
        )
    if code in permanent:
        return result(
            Outcome.REJECTED_PERMANENT,
            status_code=answer.status,
            error=error,
            suppress=suppress,
            provider_code=code,
        )
    return answer.status_result(
        provider_code=code, detail=f"{code}: {message}" if code else message
    )
