"""``POST /api/v1/intents`` without DRF's dispatch, for the requests it answers as DRF would.

The intake is the API's hot path. DRF's request wrapping, content negotiation, parser,
input serializer and response rendering cost a submit about as much CPU as storing it
(docs/performance.md). ``submit_without_drf`` takes a request only when none of that
machinery has anything to decide:

- no query string; ``Content-Type: application/json``; no ``Accept`` or one of
  ``*/*`` and ``application/json`` (so DRF would pick the one JSON renderer);
- a body within ``API_MAX_BODY_BYTES`` that parses as DRF's strict JSON parser parses
  it, and passes ``StrictJSONParser``'s checks;
- a Bearer key that ``ApiKeyAuthentication`` accepts, with the ``intents:write`` scope;
- a valid ``Idempotency-Key``, and a body ``IntentCreateInputSerializer`` accepts
  unchanged (``plain_submission``; tests/api/test_intake_without_drf.py holds the two to
  the same verdicts).

Any other request returns None and goes through ``IntentCreateApi`` untouched, so every
refusal DRF words itself (401, 403 ``scope_missing``, 406, 413, 415, a malformed body
or field) keeps its exact answer. Once taken, the request is answered here: the service
decides (201, 200 replay, 409, 422, 429, 403 ``target_not_allowed``) and the responses
carry the bodies and headers DRF gives them (``Allow``, the JSONRenderer's bytes, the
problem handler's documents).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.json import strict_constant

from portal.accounts.authentication import ApiClient, ApiKeyAuthentication
from portal.accounts.models import ApiKeyScope
from portal.api.problems import problem_response
from portal.api.views import json_problem
from portal.errors import DomainError

from .models import Intent
from .registry import KEY_PATTERN, VERSION_PATTERN
from .serializers import intent_representation
from .services import (
    MAX_DEADLINE_SECONDS,
    MIN_DEADLINE_SECONDS,
    SubmitResult,
    intent_submit,
    json_holds_nul,
    validate_idempotency_key,
)

JSON = "application/json"
# DRF's answer to "Accept: */*" or "application/json": its JSONRenderer, no Vary.
_PLAIN_ACCEPT = frozenset({"", "*/*", JSON})
_FIELDS = frozenset({"target", "contract_version", "payload", "deadline_seconds", "metadata"})
_RENDERER = JSONRenderer()
_AUTHENTICATION = ApiKeyAuthentication()


def submit_without_drf(request: HttpRequest, *, allow: str) -> HttpResponse | None:
    """The response to a submit that needs nothing of DRF's, or None to let DRF answer.

    ``allow``: the ``Allow`` header DRF's view sets on every response it gives.
    """
    meta = request.META
    if (
        meta.get("QUERY_STRING")
        or meta.get("CONTENT_TYPE") != JSON
        or meta.get("HTTP_ACCEPT", "").strip() not in _PLAIN_ACCEPT
    ):
        return None
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    limit = settings.API_MAX_BODY_BYTES
    if declared > limit:
        return None
    try:
        authenticated = _AUTHENTICATION.authenticate(request)
    except Exception:
        return None
    if authenticated is None or not authenticated[1].has_scope(ApiKeyScope.INTENTS_WRITE):
        return None
    try:
        idempotency_key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
    except DomainError:
        return None
    body = request.body
    if len(body) > limit:
        return None
    submission = plain_submission(body)
    if submission is None:
        return None

    client: ApiClient = authenticated[0]
    request.user = client  # type: ignore[assignment]  # as DRF leaves the Django request
    try:
        result = intent_submit(
            tenant=client.tenant,
            idempotency_key=idempotency_key,
            target_key=submission["target"],
            contract_version=submission.get("contract_version"),
            payload=submission["payload"],
            deadline_seconds=submission.get("deadline_seconds"),
            metadata=submission.get("metadata") or {},
            correlation_id=getattr(request, "request_id", ""),
        )
    except Exception as exc:
        return problem_response(exc, request, headers={"Allow": allow})
    return _submitted_response(request, result, allow=allow)


def _submitted_response(request: HttpRequest, result: SubmitResult, *, allow: str) -> HttpResponse:
    """201 with the new intent's ``Location``, or 200 marked as a replay, as DRF renders them."""
    response = HttpResponse(
        _RENDERER.render(intent_representation(result.intent)),
        status=201 if result.created else 200,
        content_type=JSON,
    )
    response["Allow"] = allow
    if result.created:
        response["Location"] = intent_url(request, result.intent)
    else:
        response["Idempotent-Replayed"] = "true"
    return response


def intent_url(request: HttpRequest, intent: Intent) -> str:
    """The absolute URL of ``intent`` (the ``Location`` of a created one)."""
    return request.build_absolute_uri(
        reverse("api-intent-detail", kwargs={"public_id": intent.public_id})
    )


def plain_submission(body: bytes) -> dict[str, Any] | None:
    """The body as ``IntentCreateInputSerializer`` would validate it, when it would accept
    it and ``StrictJSONParser`` parse it; else None (the serializer then says why).

    The serializer's rules, field by field: only its five fields; ``target`` a string
    of at most 100 characters matching a registry key; ``contract_version`` absent,
    null or a "MAJOR.MINOR" string; ``payload`` present (any JSON); ``deadline_seconds``
    absent, null or a number (not a boolean) within the bounds, as a float;
    ``metadata`` absent or an object with no U+0000 in it; and, as DRF's JSONField
    checks, no number out of JSON's range (``1e999`` parses to infinity) in either.
    """
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=strict_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or json_problem(data) is not None:
        return None
    if not data.keys() <= _FIELDS or "payload" not in data:
        return None
    if not _plain_target_and_version(data):
        return None
    deadline = data.get("deadline_seconds")
    if deadline is not None:
        if not _plain_deadline(deadline):
            return None
        data["deadline_seconds"] = float(deadline)
    if "metadata" in data and not _plain_metadata(data["metadata"]):
        return None
    try:
        json.dumps([data["payload"], data.get("metadata")], allow_nan=False)
    except ValueError:
        return None
    return data


def _plain_target_and_version(data: dict[str, Any]) -> bool:
    """``target`` a registry key of at most 100 characters; ``contract_version`` absent,
    null or a "MAJOR.MINOR" string of at most 16."""
    target = data.get("target")
    if not isinstance(target, str) or len(target) > 100 or not _full(KEY_PATTERN, target):
        return False
    version = data.get("contract_version")
    return version is None or (
        isinstance(version, str) and len(version) <= 16 and _full(VERSION_PATTERN, version)
    )


def _plain_deadline(deadline: Any) -> bool:
    """A number (not a boolean) within the deadline bounds."""
    if isinstance(deadline, bool) or not isinstance(deadline, int | float):
        return False
    return MIN_DEADLINE_SECONDS <= deadline <= MAX_DEADLINE_SECONDS


def _plain_metadata(metadata: Any) -> bool:
    """An object with no U+0000 in it."""
    return isinstance(metadata, dict) and not json_holds_nul(metadata)


def _full(pattern: re.Pattern[str], value: str) -> bool:
    return pattern.fullmatch(value) is not None
