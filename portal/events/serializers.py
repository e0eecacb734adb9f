"""Input and output shapes of the webhook endpoints API (CONTRACT.md v1.1)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from portal.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor

from .models import DELIVERY_STATUSES, EVENT_TYPES, DisabledReason, EndpointStatus


class EndpointCreateInputSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=2000, trim_whitespace=False, help_text="https (http only with DEBUG on)."
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        required=False,
        help_text="The types sent to it; empty or absent: every type.",
    )
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, trim_whitespace=False
    )

    class Meta:
        ref_name = "WebhookEndpointCreate"


class EndpointUpdateInputSerializer(EndpointCreateInputSerializer):
    url = serializers.CharField(max_length=2000, required=False, trim_whitespace=False)
    status = serializers.ChoiceField(choices=EndpointStatus.choices, required=False)

    class Meta:
        ref_name = "WebhookEndpointUpdate"

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = sorted(name for name in data if name not in self.fields)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class EndpointOutputSerializer(serializers.Serializer):
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


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="whsec_…: shown only now.")

    class Meta:
        ref_name = "WebhookSecret"


class EndpointPageSerializer(serializers.Serializer):
    results = EndpointOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True)

    class Meta:
        ref_name = "WebhookEndpointPage"


class DeliveryOutputSerializer(serializers.Serializer):
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


class DeliveryPageSerializer(serializers.Serializer):
    results = DeliveryOutputSerializer(many=True)
    next = serializers.URLField(allow_null=True)

    class Meta:
        ref_name = "WebhookDeliveryPage"


class PageParamsSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = serializers.CharField(required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Like the intent list: an unknown parameter is a typo, a blank one meant something.
        problems = {name: ["Unknown parameter."] for name in data if name not in self.fields}
        problems.update({name: ["May not be blank."] for name in data if data.get(name) == ""})
        if problems:
            raise serializers.ValidationError(problems)
        return super().to_internal_value(data)

    def validate_cursor(self, value: str) -> Cursor:
        try:
            return Cursor.decode(value)
        except ValueError:
            raise serializers.ValidationError("Not a cursor returned by this API.") from None
