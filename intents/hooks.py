"""``POST /hooks/receipts/{connection}``: a provider's delivery receipts come in here.

Thin on purpose: the connection's provider verifies the signature and parses the body
(``gateways.receipts.parse_receipt``), ``receipt_apply`` stores and applies each
receipt. A bad signature is answered 401 with a security log line, and nothing is
stored; an unknown message id 202 like any other (a provider retries what we refuse).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from gateways.base import ReceiptInvalid, ReceiptRejected, ReceiptRequest
from gateways.connections import connection_specs
from gateways.receipts import parse_receipt, provider_parses_receipts
from gateways.secrets import SecretUnavailable
from gateways.secrets import resolver as secret_resolver
from portal.observability.logging import get_logger

from .receipts import ReceiptResult, receipt_apply

security_log = get_logger("portal.security")


def _problem(status: int, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


@csrf_exempt
@require_POST
def receipts_hook(request: HttpRequest, connection: str) -> HttpResponse:
    spec = connection_specs([connection]).get(connection)
    if spec is None or not provider_parses_receipts(spec.config):
        return _problem(404, "Not Found", "No connection here takes delivery receipts.")
    form = {key: request.POST.get(key, "") for key in request.POST} if _is_form(request) else {}
    incoming = ReceiptRequest(
        url=request.build_absolute_uri(),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=request.body,
        form=form,
    )
    try:
        receipts = parse_receipt(spec.config, incoming, secret_resolver)
    except (ReceiptRejected, SecretUnavailable) as exc:
        security_log.warning(
            "receipt.signature_rejected",
            connection=connection,
            provider=spec.config.provider,
            reason=str(exc),
            remote_addr=request.META.get("REMOTE_ADDR", ""),
        )
        return _problem(401, "Unauthorized", "The receipt's signature does not verify.")
    except ReceiptInvalid as exc:
        return _problem(400, "Bad Request", str(exc))
    results = [receipt_apply(connection=connection, receipt=r) for r in receipts]
    counts = {result.value: results.count(result) for result in ReceiptResult}
    return JsonResponse({"received": len(results), **counts}, status=202)


def _is_form(request: HttpRequest) -> bool:
    return request.content_type == "application/x-www-form-urlencoded"
