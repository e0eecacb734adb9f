"""Read-only intent screens: list, filters, and a detail page with the attempt timeline,
the frozen contract snapshot and the payload with the contract's sensitive fields masked.

Nobody adds, changes or deletes intents here (superusers included): intents are created
by the API and changed only by the engine. Operators restricted to some tenants see
only those tenants' intents.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.accounts.admin_mixins import RecordAdmin, holds_any_role
from portal.accounts.roles import APPROVERS, AUDITORS, OPERATORS, PLATFORM_ADMINS
from portal.audit.services import Actor

from .models import Intent, Suppression
from .selectors import attempts_for_intent, intent_payload_masked, receipts_for_intent
from .suppressions import SuppressionNotFound, suppression_lift


@admin.register(Intent)
class IntentAdmin(RecordAdmin[Intent]):
    view_roles = (OPERATORS, APPROVERS, AUDITORS, PLATFORM_ADMINS)
    tenant_field = "tenant"
    change_form_template = "admin/intents/intent/change_form.html"
    list_display = (
        "short_public_id",
        "tenant",
        "target_key",
        "status",
        "reason_code",
        "attempts",
        "generation",
        "created_at",
        "finished_at",
    )
    list_filter = (
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "target_key",
        "status",
        "reason_code",
        "delivery_status",
        "created_at",
    )
    list_select_related = ("tenant",)
    search_fields = ("=idempotency_key",)
    search_help_text = "An intent id (UUID) or an exact idempotency key."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50
    show_full_result_count = False
    fields = (
        "public_id",
        "tenant",
        "idempotency_key",
        "target_key",
        "requested_version",
        "contract_version",
        "status",
        "reason_code",
        "attempts_count",
        "max_attempts",
        "generation",
        "next_attempt_at",
        "deadline_at",
        "cancel_requested",
        "gateway_message_id",
        "connection",
        "delivery_status",
        "delivered_at",
        "correlation_id",
        "payload_sha256",
        "metadata",
        "created_at",
        "updated_at",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description="attempts", ordering="attempts_count")
    def attempts(self, obj: Intent) -> int:
        # The model's "attempts count" header is twice as wide as the column's numbers.
        return obj.attempts_count

    def get_queryset(self, request: HttpRequest) -> QuerySet[Intent]:
        # The list never needs the payload or the contract; the detail page loads them.
        return super().get_queryset(request).defer("payload", "contract")

    def detail_context(self, request: HttpRequest, obj: Intent) -> dict[str, Any]:
        return intent_detail_context(obj)


def intent_detail_context(intent: Intent) -> dict[str, Any]:
    """What the intent page (and the dead-letter page) shows beyond the model's fields."""
    return {
        "attempts": list(attempts_for_intent(intent=intent)),
        "receipts": list(receipts_for_intent(intent=intent)),
        "contract_json": json.dumps(intent.contract, indent=2, sort_keys=True),
        "payload_json": json.dumps(
            intent_payload_masked(intent=intent), indent=2, sort_keys=True, ensure_ascii=False
        ),
        "sensitive_fields": (intent.contract or {}).get("sensitive_fields", []),
    }


@admin.register(Suppression)
class SuppressionAdmin(RecordAdmin[Suppression]):
    """The suppression list: operators see it (their tenants only) and lift entries."""

    view_roles = (OPERATORS, APPROVERS, AUDITORS, PLATFORM_ADMINS)
    lift_roles = (OPERATORS, PLATFORM_ADMINS)
    tenant_field = "tenant"
    public_id_fields = ("intent_public_id",)
    list_display = (
        "recipient_masked",
        "channel",
        "tenant",
        "connection",
        "provider_code",
        "created_at",
    )
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter), "channel", "connection")
    list_select_related = ("tenant",)
    ordering = ("-created_at", "-id")
    fields = (
        "recipient_masked",
        "channel",
        "tenant",
        "connection",
        "provider_code",
        "reason",
        "intent_public_id",
        "created_at",
    )
    readonly_fields = fields
    actions = ["lift"]

    def has_lift_permission(self, request: HttpRequest) -> bool:
        return holds_any_role(request.user, self.lift_roles)

    @admin.action(description="Lift the selected suppressions", permissions=["lift"])
    def lift(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        actor = Actor.user(request.user)
        lifted = 0
        for row in queryset:
            try:
                suppression_lift(
                    suppression=row, actor=actor, ip_address=request.META.get("REMOTE_ADDR")
                )
                lifted += 1
            except SuppressionNotFound:
                continue  # lifted by someone else meanwhile
        self.message_user(request, f"Lifted {lifted} suppression(s).", messages.SUCCESS)
