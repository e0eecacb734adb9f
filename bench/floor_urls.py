"""The API floor: ``POST /api/v1/intents`` as one raw INSERT, no auth and no validation.

What is left is what every intake must pay: Django's request/response cycle under
gunicorn, reading a JSON body, and one INSERT of a complete intent row with its
commit. The product's figure divided by this one is its efficiency.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

TENANT_ID = int(os.environ.get("BENCH_TENANT_ID", "1"))

INSERT_ONE = """
INSERT INTO intents_intent (
    public_id, idempotency_key, target_key, requested_version, contract_version,
    contract, payload, payload_sha256, metadata, status, attempts_count, max_attempts,
    attempt_timeout_s, next_attempt_at, lease_owner, lease_expires_at, deadline_at,
    cancel_requested, reason_code, gateway_message_id, correlation_id, generation,
    connection, connection_cursor, traceparent, internal, created_at, updated_at, finished_at, tenant_id, target_id, target_revision_id
)
SELECT
    %(public_id)s, %(key)s, t.key, '', r.version,
    r.contract, %(payload)s, %(sha)s, '{}'::jsonb, 'pending', 0,
    (r.contract -> 'retry' ->> 'max_attempts')::int,
    (r.contract ->> 'attempt_timeout_s')::float,
    now(), '', NULL, now() + interval '10 minutes',
    false, '', '', '', 1, '', 0, '', false,
    now(), now(), NULL, %(tenant_id)s, t.id, r.id
FROM intents_target AS t
JOIN intents_targetrevision AS r ON r.id = t.current_revision_id
WHERE t.key = %(target)s
"""


@csrf_exempt
def create_intent(request: HttpRequest) -> HttpResponse:
    body = json.loads(request.body)
    payload = json.dumps(body["payload"], sort_keys=True, separators=(",", ":")).encode()
    public_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_ONE,
            {
                "public_id": public_id,
                "key": request.headers["Idempotency-Key"],
                "payload": payload,
                "sha": hashlib.sha256(payload).hexdigest(),
                "tenant_id": TENANT_ID,
                "target": body["target"],
            },
        )
    return JsonResponse({"id": str(public_id), "status": "pending"}, status=201)


urlpatterns = [path("api/v1/intents", create_intent)]
