"""Input and output shapes of the intents API (CONTRACT.md "Intent representation").

Input fields are strict about JSON types: ``"600"`` is not a number and ``17`` is not
a string, so what the OpenAPI document calls invalid is refused, never coerced.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor
from portal.api.schema import ClosedSerializer

from .models import (
    AttemptOutcome,
    DeliveryStatus,
    Intent,
    IntentStatus,
    ReasonCode,
    ReceiptStatus,
    Target,
)
from .registry import KEY_PATTERN, VERSION_PATTERN
from .services import MAX_DEADLINE_SECONDS, MIN_DEADLINE_SECONDS, json_holds_nul


class FullMatchValidator(RegexValidator):
    """RegexValidator over the whole value: Django's uses ``search``, and ``$`` matches
    before a trailing newline, so ``"1.0\n"`` passed and was stored with it."""

    def __call__(self, value: Any) -> None:
        if not re.fullmatch(self.regex, str(value)):
            raise ValidationError(self.message, code=self.code, params={"value": value})


# What can never be a registry key is a malformed field (400); a well-formed key the
# registry does not hold is 422 target_unknown.
TARGET_KEY_VALIDATOR = FullMatchValidator(
    KEY_PATTERN, "Must be a target key: lowercase letters, digits, '.', '_' and '-'."
)


class StrictCharField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JsonObjectField(serializers.JSONField):
    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_object")
        return cast(dict[str, Any], super().to_internal_value(data))


@extend_schema_field(OpenApiTypes.ANY)
class AnyJsonField(serializers.JSONField):
    """Any JSON value; the target's JSON Schema decides (422 payload_invalid)."""


class BlankAsNullCharField(serializers.CharField):
    """Stored as "" when absent; shown as null."""

    # DRF renders None as null; its stubs type CharField's representation as str only.
    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return value or None


class IntentCreateInputSerializer(ClosedSerializer):
    """Body of ``POST /intents``. Unknown fields are refused."""

    target = StrictCharField(
        max_length=100,
        validators=[TARGET_KEY_VALIDATOR],
        help_text="Target key, e.g. `sms.otp` (see `GET /targets`).",
    )
    contract_version = StrictCharField(
        required=False,
        allow_null=True,
        max_length=16,
        validators=[FullMatchValidator(VERSION_PATTERN, 'Must be "MAJOR.MINOR", e.g. "1.2".')],
        help_text=(
            "MAJOR.MINOR the client was built against; the latest when absent. Accepted "
            "when the registry has the same MAJOR and a MINOR at least this one."
        ),
    )
    payload = AnyJsonField(
        allow_null=True, help_text="Validated against the target's JSON Schema (422 if not)."
    )
    deadline_seconds = StrictFloatField(
        required=False,
        allow_null=True,
        min_value=MIN_DEADLINE_SECONDS,
        max_value=MAX_DEADLINE_SECONDS,
        help_text="Shortens the target's acceptance deadline (never lengthens it).",
    )
    metadata = JsonObjectField(
        required=False,
        help_text=(
            "Free-form JSON object, returned as given. No key or string in it may hold "
            "U+0000 (400 `invalid_request`)."
        ),
    )

    class Meta:
        ref_name = "IntentCreate"

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # DRF deep-copies every declared field for each new serializer, running each
        # field's __init__ again: the larger part of validating a body. A shallow copy is
        # enough: validation sets no state on a field but what ``bind`` sets on the copy
        # (its name and parent); the validators and messages it shares are never changed.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def validate_metadata(self, value: dict[str, Any]) -> dict[str, Any]:
        # The service refuses it too (``intent_submit``); here it gets a field pointer.
        if json_holds_nul(value):
            raise serializers.ValidationError("May not contain the character U+0000.")
        return value


class IntentOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(source="public_id")
    idempotency_key = serializers.CharField()
    target = serializers.CharField(source="target_key")
    contract_version = serializers.CharField(help_text="The registry version that was used.")
    status = serializers.ChoiceField(choices=IntentStatus.choices)
    attempts = serializers.IntegerField(source="attempts_count")
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    deadline_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    reason_code = serializers.ChoiceField(choices=ReasonCode.choices, allow_null=True)
    gateway_message_id = BlankAsNullCharField(allow_null=True)
    cancel_requested = serializers.BooleanField()
    generation = serializers.IntegerField()
    payload_sha256 = serializers.CharField()
    metadata = JsonObjectField()
    connection = BlankAsNullCharField(
        allow_null=True, help_text="The connection of the latest attempt (null before one)."
    )
    delivery_status = serializers.ChoiceField(
        choices=DeliveryStatus.choices,
        allow_null=True,
        help_text="null until accepted, then sent; finally delivered or undelivered (never "
        "changing again); unknown where the connection sends no receipts.",
    )
    delivered_at = serializers.DateTimeField(
        allow_null=True, help_text="When the delivered receipt reached us (our clock)."
    )

    class Meta:
        ref_name = "Intent"

    def to_representation(self, instance: Intent) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["reason_code"] = data["reason_code"] or None
        return data


def intent_representation(intent: Intent) -> dict[str, Any]:
    """The contract's intent representation: exactly ``IntentOutputSerializer(intent).data``
    (the serializer stays its schema; tests/api/test_intent_representation.py holds the
    two equal), written out because DRF's per-field dispatch cost more than the rest of
    answering a submit."""
    return {
        "id": str(intent.public_id),
        "idempotency_key": intent.idempotency_key,
        "target": intent.target_key,
        "contract_version": intent.contract_version,
        "status": str(intent.status),
        "attempts": int(intent.attempts_count),
        "next_attempt_at": _datetime(intent.next_attempt_at),
        "deadline_at": _datetime(intent.deadline_at),
        "created_at": _datetime(intent.created_at),
        "updated_at": _datetime(intent.updated_at),
        "finished_at": _datetime(intent.finished_at),
        "reason_code": str(intent.reason_code) or None,
        "gateway_message_id": intent.gateway_message_id or None,
        "cancel_requested": bool(intent.cancel_requested),
        "generation": int(intent.generation),
        "payload_sha256": intent.payload_sha256,
        "metadata": intent.metadata,
        "connection": intent.connection or None,
        "delivery_status": None if intent.delivery_status is None else str(intent.delivery_status),
        "delivered_at": _datetime(intent.delivered_at),
    }


def _datetime(value: dt.datetime | None) -> str | None:
    """DRF's DateTimeField rendering: ISO 8601 in the current time zone, UTC as ``Z``."""
    if not value:
        return None
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class IntentPageSerializer(serializers.Serializer[Any]):
    """Schema only: one page of ``GET /intents``."""

    results = IntentOutputSerializer(many=True)
    next = serializers.URLField(
        allow_null=True, help_text="The next (older) page, or null on the last one."
    )

    class Meta:
        ref_name = "IntentPage"


class AttemptOutputSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=AttemptOutcome.choices)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    gateway_status = serializers.IntegerField(allow_null=True)
    error = BlankAsNullCharField(allow_null=True, help_text="Redacted, truncated detail.")

    class Meta:
        ref_name = "Attempt"


class ReceiptOutputSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=ReceiptStatus.choices)
    provider_status = BlankAsNullCharField(
        allow_null=True, help_text="The provider's own word, e.g. Twilio's MessageStatus."
    )
    error_code = BlankAsNullCharField(allow_null=True)
    occurred_at = serializers.DateTimeField(
        allow_null=True, help_text="The provider's clock: when it says the status happened."
    )
    received_at = serializers.DateTimeField(help_text="Our clock: when the receipt reached us.")

    class Meta:
        ref_name = "Receipt"


class RetryPolicySerializer(serializers.Serializer[Any]):
    strategy = serializers.CharField()
    initial_delay_s = serializers.FloatField()
    multiplier = serializers.FloatField()
    max_delay_s = serializers.FloatField()
    max_attempts = serializers.IntegerField()

    class Meta:
        ref_name = "RetryPolicy"


class TargetOutputSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    version = serializers.CharField()
    gateway = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    attempt_timeout_s = serializers.FloatField()
    acceptance_deadline_s = serializers.FloatField()
    retry = RetryPolicySerializer()
    payload_schema = JsonObjectField(help_text="JSON Schema the payload must match.")

    class Meta:
        ref_name = "Target"

    def to_representation(self, instance: Target) -> dict[str, Any]:
        contract = instance.revision.contract
        return super().to_representation(
            {
                "key": instance.key,
                "version": contract["version"],
                "gateway": contract["gateway"],
                "description": contract.get("description", ""),
                "attempt_timeout_s": contract["attempt_timeout_s"],
                "acceptance_deadline_s": contract["acceptance_deadline_s"],
                "retry": contract["retry"],
                "payload_schema": contract["schema"],
            }
        )


class IntentListFilterSerializer(serializers.Serializer[Any]):
    """Query parameters of ``GET /intents``; a bad value is 400 ``invalid_request``."""

    status = serializers.ChoiceField(choices=IntentStatus.choices, required=False)
    target = serializers.CharField(
        required=False, max_length=100, validators=[TARGET_KEY_VALIDATOR]
    )
    created_after = serializers.CharField(required=False)
    created_before = serializers.CharField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = serializers.CharField(required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # DRF reads `?created_before=` as "not given"; a client that sent it meant
        # something, so a blank value is an error rather than a silently dropped filter.
        # .keys(): DRF's stubs type iterating the fields as yielding Field objects.
        blank = [name for name in self.fields.keys() if data.get(name) == ""]  # noqa: SIM118
        problems = {name: ["May not be blank."] for name in blank}
        # Like Stripe: an unknown parameter is a typo that would silently widen the list.
        problems.update({name: ["Unknown parameter."] for name in data if name not in self.fields})
        if problems:
            raise serializers.ValidationError(problems)
        return cast(dict[str, Any], super().to_internal_value(data))

    def validate_cursor(self, value: str) -> Cursor:
        try:
            return Cursor.decode(value)
        except ValueError:
            raise serializers.ValidationError("Not a cursor returned by this API.") from None

    def _datetime(self, value: str) -> dt.datetime:
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise serializers.ValidationError(
                "Must be an ISO 8601 date-time, e.g. 2026-01-05T12:00:00Z."
            )
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows. A bound
        # whose offset takes it past the calendar's ends in UTC (the schema allows it) is
        # clamped to that end: no stored intent lies beyond it either.
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            if parsed.year == dt.MINYEAR:
                return dt.datetime.min.replace(tzinfo=dt.UTC)
            return dt.datetime.max.replace(tzinfo=dt.UTC)

    def validate_created_after(self, value: str) -> dt.datetime:
        return self._datetime(value)

    def validate_created_before(self, value: str) -> dt.datetime:
        return self._datetime(value)
