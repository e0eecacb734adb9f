"""Operator screens for dead letters and replay requests, all behind the OTP admin site.

The ModelAdmins here list and show; every change goes through a POST-only page in
``views.py`` that calls one service. Nobody adds, edits or deletes dead letters,
evidence or replay requests through the admin's own forms (superusers included):
evidence is append-only, dead letters change state only through the services.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from intents.selectors import attempts_for_intent
from portal import clock
from portal.accounts.admin_mixins import RecordAdmin, role_required
from portal.accounts.roles import APPROVERS, AUDITORS, OPERATORS, has_role

from . import selectors, views
from .filters import MAX_PLAN_IDS, describe_stored_filters
from .forms import AssignForm, CloseForm, DecisionForm, FileForm, LinkForm, NoteForm
from .models import (
    UNSETTLED_STATUSES,
    DeadLetter,
    DeadLetterStatus,
    ReplayRequest,
    ReplayStatus,
)

_ModelT = TypeVar("_ModelT", bound=Model)

VIEW_ROLES = (OPERATORS, APPROVERS, AUDITORS)
#: replay items shown on a request's page; the outcome counts cover all of them
ITEMS_SHOWN = 500


#: the dead-letter list's filter parameters -> the plan page's
LIST_TO_PLAN = {
    "reason_code__exact": "reason",
    "target_key__exact": "target",
    "tenant__id__exact": "tenant",
    "created_at__gte": "since",
    "created_at__lt": "until",
}


def plan_query_from_list(params: Any) -> str:
    """The plan page's query string for the list's current filters ("" for none)."""
    chosen = {plan: params[name] for name, plan in LIST_TO_PLAN.items() if params.get(name)}
    return urlencode({**chosen, "preview": "1"}) if chosen else ""


def history_details(data: dict[str, Any]) -> list[tuple[str, str]]:
    """An audit event's data as (name, value) rows; nested values stay compact JSON."""
    return [
        (
            key.replace("_", " "),
            value
            if isinstance(value, str)
            else json.dumps(value, sort_keys=True, ensure_ascii=False),
        )
        for key, value in sorted(data.items())
    ]


class _ReadOnlyAdmin(RecordAdmin[_ModelT]):
    view_roles = VIEW_ROLES

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            # Approvers may preview a plan, but only operators request one: the button is
            # offered to those who can finish what it starts.
            "may_plan": has_role(request.user, OPERATORS),
            "may_decide": has_role(request.user, APPROVERS),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)


@admin.register(DeadLetter)
class DeadLetterAdmin(_ReadOnlyAdmin[DeadLetter]):
    change_form_template = "admin/deadletters/deadletter/change_form.html"
    change_list_template = "admin/deadletters/deadletter/change_list.html"
    list_display = (
        "short_public_id",
        "tenant",
        "target_key",
        "reason_code",
        "status",
        "generation",
        "assignee",
        "created_at",
    )
    list_filter = (
        ("tenant", admin.RelatedOnlyFieldListFilter),
        "target_key",
        "reason_code",
        "status",
        "created_at",
    )
    search_fields = ("=intent__idempotency_key",)
    public_id_fields = ("public_id", "intent__public_id")  # either id finds the letter
    search_help_text = "A dead-letter or intent id (UUID), or an exact idempotency key."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50
    show_full_result_count = False
    actions = ("plan_replay_of_selected",)
    fields = (
        "public_id",
        "intent_link",
        "tenant",
        "target_key",
        "generation",
        "reason_code",
        "status",
        "assignee",
        "retention_until",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # "Plan a replay" starts from the filters the list shows (reason, target, tenant,
        # time), so the preview is this list's open dead letters.
        plan_query = plan_query_from_list(request.GET)
        context = {"plan_query": plan_query, **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeadLetter]:
        # The changelist orders it (``ordering``); the joins serve list and detail alike.
        return (
            selectors.dead_letters_visible_to(request.user)
            .select_related("tenant", "assignee", "intent")
            .defer("intent__payload", "intent__contract")
        )

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, OPERATORS)

    @admin.action(description="Plan a replay of the selected dead letters", permissions=["replay"])
    def plan_replay_of_selected(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse:
        # One more than a plan may name, so the plan page refuses an oversized selection
        # by saying so instead of silently cutting it.
        chosen = list(queryset.values_list("public_id", flat=True)[: MAX_PLAN_IDS + 1])
        replay_admin = self.admin_site.get_model_admin(ReplayRequest)
        return views.replay_plan_page(request, model_admin=replay_admin, chosen_ids=chosen)

    @admin.display(description="intent")
    def intent_link(self, obj: DeadLetter) -> str:
        url = reverse("admin:intents_intent_change", args=[obj.intent_id])
        return format_html(
            '<a href="{}">{}</a> ({}, generation {}, {} attempts)',
            url,
            obj.intent.public_id,
            obj.intent.status,
            obj.intent.generation,
            obj.intent.attempts_count,
        )

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/act/<str:action>/",
                wrap(self.action_view),
                name="deadletters_deadletter_act",
            ),
            path(
                "evidence/<int:pk>/download/",
                wrap(self.download_view),
                name="deadletters_evidence_download",
            ),
            *super().get_urls(),
        ]

    @role_required(OPERATORS)
    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        return views.dead_letter_action(request, object_id, action=action, model_admin=self)

    def download_view(self, request: HttpRequest, pk: int) -> FileResponse:
        return views.evidence_download(request, pk, model_admin=self)

    def detail_context(self, request: HttpRequest, dead_letter: DeadLetter) -> dict[str, Any]:
        is_operator = has_role(request.user, OPERATORS)
        unsettled = dead_letter.status in UNSETTLED_STATUSES
        context: dict[str, Any] = {
            "attempts": list(attempts_for_intent(intent=dead_letter.intent)),
            "history": [
                (event, history_details(event.data))
                for event in selectors.dead_letter_history(dead_letter=dead_letter)
            ],
            "evidence_list": list(selectors.evidence_for(dead_letter=dead_letter)),
            "replay_items": list(selectors.replay_items_for_dead_letter(dead_letter=dead_letter)),
            "may_act": is_operator,
            "is_unsettled": unsettled,
            "is_open": dead_letter.status == DeadLetterStatus.OPEN,
        }
        if is_operator:
            context.update(
                note_form=NoteForm(),
                link_form=LinkForm(),
                file_form=FileForm(),
                assign_form=AssignForm(initial={"assignee": dead_letter.assignee_id}),
                close_form=CloseForm(),
            )
        return context


@admin.register(ReplayRequest)
class ReplayRequestAdmin(_ReadOnlyAdmin[ReplayRequest]):
    change_form_template = "admin/deadletters/replayrequest/change_form.html"
    change_list_template = "admin/deadletters/replayrequest/change_list.html"
    list_display = (
        "short_public_id",
        "status",
        "requested_by",
        "decided_by",
        "item_count",
        "created_at",
        "expires_at",
        "decided_at",
        "finished_at",
    )
    list_filter = ("status", "created_at")
    search_fields = ("reason",)
    search_help_text = "A replay request id (UUID), or words of its reason."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50
    fields = (
        "public_id",
        "status",
        "reason",
        "chosen_by",
        "requested_by",
        "created_at",
        "expires_at",
        "decided_by",
        "decided_at",
        "decision_reason",
        "finished_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReplayRequest]:
        return selectors.replay_requests_with_item_counts(user=request.user)

    @admin.display(description="chosen by")
    def chosen_by(self, obj: ReplayRequest) -> str:
        """The filters in words ("reason=…, target=…", "3 chosen dead letters"), not JSON."""
        return describe_stored_filters(obj.filters)

    @admin.display(description="dead letters", ordering="item_count")
    def item_count(self, obj: ReplayRequest) -> int:
        return int(obj.item_count)  # type: ignore[attr-defined]

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("plan/", wrap(self.plan_view), name="deadletters_replayrequest_plan"),
            path(
                "approvals/",
                wrap(self.approvals_view),
                name="deadletters_replayrequest_approvals",
            ),
            path(
                "<path:object_id>/decide/",
                wrap(self.decide_view),
                name="deadletters_replayrequest_decide",
            ),
            *super().get_urls(),
        ]

    @role_required(OPERATORS, APPROVERS)
    def plan_view(self, request: HttpRequest) -> HttpResponse:
        return views.replay_plan_page(request, model_admin=self)

    @role_required(APPROVERS)
    def approvals_view(self, request: HttpRequest) -> HttpResponse:
        return views.approvals_queue(request, model_admin=self)

    @role_required(APPROVERS)
    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return views.replay_decide(request, object_id, model_admin=self)

    def detail_context(self, request: HttpRequest, replay_request: ReplayRequest) -> dict[str, Any]:
        user = request.user
        is_requester = replay_request.requested_by_id == user.pk
        is_pending = replay_request.status == ReplayStatus.PENDING
        is_expired = is_pending and replay_request.expires_at <= clock.now()
        is_approver = has_role(user, APPROVERS)
        # Every item's outcome is counted (at most REPLAY_MAX_ITEMS); the first are listed.
        results = selectors.replay_item_results(
            items=list(selectors.replay_request_items(request=replay_request))
        )
        return {
            "results": results[:ITEMS_SHOWN],
            "item_total": len(results),
            "items_shown": ITEMS_SHOWN,
            "outcome_counts": selectors.replay_result_counts(results),
            "is_requester": is_requester,
            "is_pending": is_pending,
            "is_expired": is_expired,
            "decision_form": (
                DecisionForm()
                if is_approver and is_pending and not is_expired and not is_requester
                else None
            ),
        }
