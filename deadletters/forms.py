"""Forms of the operator screens: they check shapes only; the services decide."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from intents.models import ReasonCode
from portal.accounts.models import Tenant
from portal.accounts.roles import tenant_ids_visible_to
from portal.accounts.stepup import StepUpForm
from portal.errors import InvalidRequest

from .filters import ReplayFilters
from .models import DEAD_LETTER_REASONS
from .selectors import assignable_users

_TEXTAREA = forms.Textarea(attrs={"rows": 3, "cols": 60})


class NoteForm(forms.Form):
    text = forms.CharField(label="Note", widget=_TEXTAREA, max_length=10_000)


class LinkForm(forms.Form):
    # A text input, not type=url: the browser would refuse "tickets.example.com/INC-1",
    # which the field completes with https:// and the service accepts.
    url = forms.URLField(
        label="Link",
        max_length=500,
        assume_scheme="https",
        widget=forms.TextInput(attrs={"inputmode": "url", "autocomplete": "url"}),
    )
    title = forms.CharField(label="What it is", max_length=200, required=False)


class FileForm(forms.Form):
    file = forms.FileField(
        label="File",
        help_text="PDF, PNG, JPEG, TXT, LOG, CSV or JSON; the content must match the name.",
    )


class AssignForm(forms.Form):
    assignee: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="(nobody)", label="Assign to"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read per form: the staff list changes while the process runs.
        cast("forms.ModelChoiceField[Any]", self.fields["assignee"]).queryset = assignable_users()


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[("resolve", "Resolved (handled without a replay)"), ("discard", "Discard")],
        widget=forms.RadioSelect,
        initial="resolve",
    )
    reason = forms.CharField(label="Why", widget=_TEXTAREA, max_length=2_000)


def _tenant_choices(user: Any) -> forms.ModelChoiceField[Tenant]:
    tenants = Tenant.objects.order_by("name")
    visible = tenant_ids_visible_to(user)
    if visible is not None:
        tenants = tenants.filter(pk__in=visible)
    return forms.ModelChoiceField(queryset=tenants, required=False, empty_label="(any)")


class PlanFilterForm(forms.Form):
    """The replay filters (GET): reason, target, tenant, time range, chosen ids."""

    reason = forms.ChoiceField(
        required=False,
        choices=[("", "(any)")]
        + [(r.value, r.label) for r in ReasonCode if r in DEAD_LETTER_REASONS],
    )
    target = forms.CharField(required=False, max_length=100, label="Target key")
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), required=False)
    since = forms.DateTimeField(
        required=False, label="Dead-lettered since (UTC)", help_text="e.g. 2026-01-05 12:00"
    )
    until = forms.DateTimeField(required=False, label="Until (UTC)")
    ids = forms.CharField(
        required=False,
        label="Dead letter ids",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Only these (a selection from the list, or one dead letter's Replay "
        "button): ids separated by spaces, commas or lines.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"] = _tenant_choices(user)

    def clean_ids(self) -> str:
        text = self.cleaned_data.get("ids") or ""
        try:
            ReplayFilters.parse(dead_letter_ids=text)
        except InvalidRequest as exc:
            raise forms.ValidationError(exc.detail) from None
        return text

    def filters(self) -> ReplayFilters:
        return ReplayFilters.from_input(self.cleaned_data, dead_letters="ids")


class ReplayReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the replay",
        widget=_TEXTAREA,
        max_length=2_000,
        help_text="What was fixed, so the approver can judge that a replay will now succeed.",
    )


class DecisionForm(StepUpForm):
    """Approve or reject, with a fresh authenticator code (verified by the service)."""

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")], widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label="Reason (required to reject)", widget=_TEXTAREA, max_length=2_000, required=False
    )

    field_order = ["decision", "reason", "otp_token"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("decision") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why the replay is rejected.")
        return data
