"""The operator pages behind ``DeadLetterAdmin`` and ``ReplayRequestAdmin``.

Reached only through the admins' ``get_urls`` (so behind the OTP admin site's verified
staff login, ``never_cache`` and CSRF); the admin method names the role each needs.
Each state change is a POST that validates a form, calls one service and reports
through django.contrib.messages; the services re-check roles and tenants themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters

from portal import clock
from portal.accounts.roles import OPERATORS, has_role
from portal.audit.services import ip_from_request
from portal.errors import DomainError

from . import selectors, services
from .forms import (
    AssignForm,
    CloseForm,
    DecisionForm,
    FileForm,
    LinkForm,
    NoteForm,
    PlanFilterForm,
    ReplayReasonForm,
)
from .models import DeadLetter, EvidenceKind, ReplayItemOutcome, ReplayRequest, ReplayStatus


def _report_form_errors(request: HttpRequest, form: forms.Form) -> None:
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else str(error))


def _change_url(model_admin: ModelAdmin[Any], obj: Any) -> str:
    opts = model_admin.model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def _admin_context(
    request: HttpRequest, model_admin: ModelAdmin[Any], title: str
) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "media": model_admin.media,
    }


# ---------------------------------------------------------------------------------------
# Dead letters: evidence, assignment, closing


def _add_note(request: HttpRequest, dead_letter: DeadLetter, data: dict[str, Any]) -> str:
    services.evidence_add_note(
        dead_letter=dead_letter,
        actor=request.user,
        text=data["text"],
        ip_address=ip_from_request(request),
    )
    return "Note added."


def _add_link(request: HttpRequest, dead_letter: DeadLetter, data: dict[str, Any]) -> str:
    services.evidence_add_link(
        dead_letter=dead_letter,
        actor=request.user,
        url=data["url"],
        title=data.get("title") or "",
        ip_address=ip_from_request(request),
    )
    return "Link added."


def _add_file(request: HttpRequest, dead_letter: DeadLetter, data: dict[str, Any]) -> str:
    evidence = services.evidence_add_file(
        dead_letter=dead_letter,
        actor=request.user,
        upload=data["file"],
        ip_address=ip_from_request(request),
    )
    return (
        f"File {evidence.original_name} added ({evidence.size} bytes, SHA-256 {evidence.sha256})."
    )


def _assign(request: HttpRequest, dead_letter: DeadLetter, data: dict[str, Any]) -> str:
    assignee = data.get("assignee")
    services.dead_letter_assign(
        dead_letter=dead_letter,
        actor=request.user,
        assignee=assignee,
        ip_address=ip_from_request(request),
    )
    return f"Assigned to {assignee.get_username()}." if assignee else "Unassigned."


def _close(request: HttpRequest, dead_letter: DeadLetter, data: dict[str, Any]) -> str:
    close = (
        services.dead_letter_resolve
        if data["outcome"] == "resolve"
        else services.dead_letter_discard
    )
    closed = close(
        dead_letter=dead_letter,
        actor=request.user,
        reason=data["reason"],
        ip_address=ip_from_request(request),
    )
    return f"Dead letter {closed.public_id} is {closed.status}."


Handler = Callable[[HttpRequest, DeadLetter, dict[str, Any]], str]
DEAD_LETTER_ACTIONS: dict[str, tuple[type[forms.Form], Handler]] = {
    "note": (NoteForm, _add_note),
    "link": (LinkForm, _add_link),
    "file": (FileForm, _add_file),
    "assign": (AssignForm, _assign),
    "close": (CloseForm, _close),
}


def dead_letter_action(
    request: HttpRequest, object_id: str, *, action: str, model_admin: ModelAdmin[Any]
) -> HttpResponse:
    """POST one of the dead-letter page's forms; back to the page with the outcome."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if action not in DEAD_LETTER_ACTIONS:
        raise Http404("unknown action")
    dead_letter = model_admin.get_object(request, object_id)
    if dead_letter is None:
        raise Http404("no such dead letter")
    form_class, handler = DEAD_LETTER_ACTIONS[action]
    form = form_class(request.POST, request.FILES)
    if not form.is_valid():
        _report_form_errors(request, form)
    else:
        try:
            messages.success(request, handler(request, dead_letter, form.cleaned_data))
        except DomainError as exc:
            messages.error(request, exc.detail)
    return HttpResponseRedirect(_change_url(model_admin, dead_letter))


def evidence_download(
    request: HttpRequest, pk: int, *, model_admin: ModelAdmin[Any]
) -> FileResponse:
    """An evidence file, always as an attachment: never rendered by the browser, and never
    served from MEDIA_URL (the storage is not exposed)."""
    if not model_admin.has_view_permission(request):
        raise DjangoPermissionDenied
    evidence = selectors.evidence_get(pk=pk, user=request.user)
    if evidence is None or evidence.kind != EvidenceKind.FILE or not evidence.file:
        raise Http404("no such evidence file")
    try:
        handle = services.evidence_file_open(
            evidence=evidence, user=request.user, ip_address=ip_from_request(request)
        )
    except FileNotFoundError:
        raise Http404("the evidence file is missing from storage") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=evidence.original_name or "evidence",
        content_type=evidence.content_type or "application/octet-stream",
    )
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# ---------------------------------------------------------------------------------------
# Replays: plan and request, approvals queue, decision

REASON_PREFIX = "replay"


def replay_plan_page(
    request: HttpRequest, *, model_admin: ModelAdmin[Any], chosen_ids: list[Any] | None = None
) -> HttpResponse:
    """GET: filters and a preview (count and sample). POST: request the replay (operators).

    ``chosen_ids``: the dead-letter list's action hands over its selection; the page
    previews exactly those, and its forms post back to the plan page itself.
    """
    may_request = has_role(request.user, OPERATORS)
    # Prefixed: the filter form has a "reason" field (the reason code) of its own.
    reason_form = ReplayReasonForm(prefix=REASON_PREFIX)
    if chosen_ids is not None:
        filter_form = PlanFilterForm(
            {"ids": "\n".join(str(key) for key in chosen_ids)}, user=request.user
        )
    elif request.method == "POST":
        if not may_request:
            raise DjangoPermissionDenied("needs the operators role")
        filter_form = PlanFilterForm(request.POST, user=request.user)
        reason_form = ReplayReasonForm(request.POST, prefix=REASON_PREFIX)
        if filter_form.is_valid() and reason_form.is_valid():
            try:
                replay_request = services.replay_request_create(
                    requested_by=request.user,
                    reason=reason_form.cleaned_data["reason"],
                    filters=filter_form.filters(),
                    ip_address=ip_from_request(request),
                )
            except DomainError as exc:
                messages.error(request, exc.detail)
            else:
                counts = selectors.replay_request_outcome_counts(request=replay_request)
                messages.success(
                    request,
                    f"Replay request {replay_request.public_id} created for "
                    f"{sum(counts.values())} dead letters; another approver must approve it.",
                )
                return HttpResponseRedirect(_change_url(model_admin, replay_request))
    elif request.method == "GET":
        filter_form = PlanFilterForm(request.GET or None, user=request.user)
    else:
        return HttpResponseNotAllowed(["GET", "POST"])

    plan = None
    if filter_form.is_bound and filter_form.is_valid():
        try:
            plan = services.replay_plan(filters=filter_form.filters(), user=request.user)
        except DomainError as exc:
            messages.error(request, exc.detail)
    context = {
        **_admin_context(request, model_admin, "Plan a replay"),
        "filter_form": filter_form,
        "reason_form": reason_form,
        "plan": plan,
        "may_request": may_request,
        "plan_url": reverse("admin:deadletters_replayrequest_plan"),
    }
    return TemplateResponse(request, "admin/deadletters/replayrequest/plan.html", context)


def approvals_queue(request: HttpRequest, *, model_admin: ModelAdmin[Any]) -> HttpResponse:
    queue = selectors.replay_requests_awaiting_decision(user=request.user, now=clock.now())
    context = {
        **_admin_context(request, model_admin, "Replay requests awaiting a decision"),
        "queue": list(queue),
    }
    return TemplateResponse(request, "admin/deadletters/replayrequest/approvals.html", context)


@sensitive_post_parameters("otp_token")
def replay_decide(
    request: HttpRequest, object_id: str, *, model_admin: ModelAdmin[Any]
) -> HttpResponse:
    """Approve or reject with a fresh authenticator code; the service checks four eyes,
    expiry, tenants and the code, and refuses the requester with a clear message."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    replay_request: ReplayRequest | None = model_admin.get_object(request, object_id)
    if replay_request is None:
        raise Http404("no such replay request")
    form = DecisionForm(request.POST)
    if not form.is_valid():
        _report_form_errors(request, form)
        return HttpResponseRedirect(_change_url(model_admin, replay_request))
    data = form.cleaned_data
    try:
        if data["decision"] == "approve":
            decided = services.replay_request_approve(
                request=replay_request,
                approver=request.user,
                otp_token=data["otp_token"],
                ip_address=ip_from_request(request),
            )
        else:
            decided = services.replay_request_reject(
                request=replay_request,
                approver=request.user,
                otp_token=data["otp_token"],
                reason=data["reason"],
                ip_address=ip_from_request(request),
            )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _decision_report(decided))
    return HttpResponseRedirect(_change_url(model_admin, replay_request))


def _decision_report(decided: ReplayRequest) -> str:
    if decided.status == ReplayStatus.REJECTED:
        return f"Replay request {decided.public_id} rejected; its dead letters re-open."
    # The execution task is queued on commit; with a synchronous queue it has already run.
    decided.refresh_from_db(fields=["status"])
    if decided.status != ReplayStatus.DONE:
        return (
            f"Replay request {decided.public_id} approved; its intents are being re-opened "
            "in the background."
        )
    counts = selectors.replay_request_outcome_counts(request=decided)
    return (
        f"Replay request {decided.public_id} approved and executed: "
        f"{counts.get(ReplayItemOutcome.REOPENED, 0)} re-opened, "
        f"{counts.get(ReplayItemOutcome.SKIPPED, 0)} skipped."
    )
