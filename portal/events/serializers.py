"""Input and output shapes of the webhook endpoints API (CONTRACT.md v1.1)."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers

from intents.serializers import StrictCharField
from portal.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor

from .models import DELIVERY_STATUSES, EVENT_TYPES, DisabledReason, EndpointStatus

# What the schema promises is accepted: https, a host, an optional port, printable ASCII.
# (With DEBUG on, for development, http is accepted too.)
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
URL_PATTERN = rf"^https://[A-Za-z0-9.\-]+(:{_PORT})?([/?#][\x21-\x7E]*)?$"
URL_HELP = "An https URL (http too with DEBUG on, for development)."


def _url_field(*, required: bool) -> serializers.CharField:
    return StrictCharField(
        max_length=2000,
        required=required,
        trim_whitespace=False,
        help_text=URL_HELP,
        validators=[_UrlPattern(URL_PATTERN)],
    )


class _UrlPattern(RegexValidator):
    """The schema's ``pattern`` (https), enforced; with DEBUG on, http matches too."""

    message = "url must be an https URL: a host, an optional port, printable ASCII."

    def __call__(self, value: Any) -> None:
        if settings.DEBUG and isinstance(value, str) and value.startswith("http://"):
            value = "https://" + value.removeprefix("http://")
        super().__call__(value)


class EndpointCreateInputSerializer(serializers.Serializer[Any]):
    url = _url_field(required=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        required=False,
        help_text="The types sent to it; empty or absent: every type.",
    )
    description = StrictCharField(
        max_length=500,
        required=False,
        allow_blank=True,
        # In the schema too: PostgreSQL cannot store U+0000 in text.
        validators=[RegexValidator(r"^[^\x00]*$", "May not contain the character U+0000.")],
    )

    class Meta:
        ref_name = "WebhookEndpointCreate"


class EndpointUpdateInputSerializer(EndpointCreateInputSerializer):
    url = _url_field(required=False)
    status = serializers.ChoiceField(choices=EndpointStatus.choices, required=False)

    class Meta:
        ref_name = "WebhookEndpointUpdate"

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = sorted(name for name in data if name not in self.fields)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return cast(dict[str, Any], super().to_internal_value(data))


class EndpointOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(source="public_id")
    url = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES))
    status = serializers.ChoiceField(choices=EndpointStatus.choices)
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.ChoiceField(
        choices=DisabledReason.choices, allow_null=True, allow_blank=True
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "WebhookEndpoint"

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["disabled_reason"] = data["disabled_reason"] or None
        return data


class EndpointWithSecretSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(help_text="whsec_…: shown only here and on rotation.")

    class Meta:
        ref_name = "WebhookEndpointCreated"


class SecretSerializer(serializers.Serializer[Any]):
    secret = serializers.CharField(help_text="whsec_…: shown only now.")

    class Meta:
        ref_name = "WebhookSecret"


class EndpointPageSerializer(serializers.Serializer[Any]):
    results = EndpointOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True)

    class Meta:
        ref_name = "WebhookEndpointPage"


class DeliveryOutputSerializer(serializers.Serializer[Any]):
    event_id = serializers.UUIDField(source="public_id", help_text="Also its webhook-id.")
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    status = serializers.ChoiceField(
        choices=DELIVERY_STATUSES,
        source="delivery_status",
        help_text="pending (waiting or retrying), delivered (a 2xx), failed (given up).",
    )
    attempts = serializers.IntegerField(source="intent.attempts_count")
    last_status_code = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(source="intent.finished_at", allow_null=True)

    class Meta:
        ref_name = "WebhookDelivery"


class DeliveryPageSerializer(serializers.Serializer[Any]):
    results = DeliveryOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True)

    class Meta:
        ref_name = "WebhookDeliveryPage"


class PageParamsSerializer(serializers.Serializer[Any]):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = serializers.CharField(required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Like the intent list: an unknown parameter is a typo, a blank one meant something.
        problems = {name: ["Unknown parameter."] for name in data if name not in self.fields}
        problems.update({name: ["May not be blank."] for name in data if data.get(name) == ""})
        if problems:
            raise serializers.ValidationError(problems)
        return cast(dict[str, Any], super().to_internal_value(data))

    def validate_cursor(self, value: str) -> Cursor:
        try:
            return Cursor.decode(value)
        except ValueError:
            raise serializers.ValidationError("Not a cursor returned by this API.") from None
