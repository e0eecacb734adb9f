"""Role checks for admin screens: every ModelAdmin declares which roles may do what.

The four roles are Django groups without model permissions, so these checks replace
Django's per-model permissions on the admin classes that use them. Superusers hold every
role (``has_role``); a ModelAdmin that must refuse even them overrides the method.

    class DeadLetterAdmin(RoleRequiredAdminMixin, admin.ModelAdmin[DeadLetter]):
        view_roles = (OPERATORS, APPROVERS, AUDITORS)
        change_roles = (OPERATORS,)
        tenant_field = "tenant"          # operators see only their tenants
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse

from portal.admin_display import short_id
from portal.errors import DomainError

from .roles import has_role, restrict_to_visible_tenants

_ModelT = TypeVar("_ModelT", bound=Model)


def holds_any_role(user: Any, roles: Iterable[str]) -> bool:
    return any(has_role(user, role) for role in roles)


class RoleRequiredAdminMixin:
    """Mix into a ``ModelAdmin`` (or an inline) before the admin base class."""

    #: roles that may open the list and detail pages
    view_roles: tuple[str, ...] = ()
    #: roles that may change objects (they may view too)
    change_roles: tuple[str, ...] = ()
    #: roles that may add objects; ``None`` means the same as ``change_roles``
    add_roles: tuple[str, ...] | None = None
    #: roles that may delete objects; nobody by default
    delete_roles: tuple[str, ...] = ()
    #: lookup path to the tenant foreign key, to limit users to their tenants
    tenant_field: str | None = None

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return holds_any_role(request.user, (*self.view_roles, *self.change_roles))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return holds_any_role(request.user, self.change_roles)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        roles = self.change_roles if self.add_roles is None else self.add_roles
        return holds_any_role(request.user, roles)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return holds_any_role(request.user, self.delete_roles)

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """The list, or ``IncorrectLookupParameters`` (the admin's own "?e=1" answer) when
        a filter value cannot be sent to the database: a time whose offset or year the
        backend cannot hold (``OverflowError`` in Python, ``DataError`` from PostgreSQL).
        The list's first query runs here, in ``ChangeList.__init__``."""
        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except (OverflowError, DataError) as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        if self.tenant_field:
            queryset = restrict_to_visible_tenants(
                queryset, request.user, tenant_field=self.tenant_field
            )
        return queryset


def _audit_refused_write(request: HttpRequest, roles: tuple[str, ...]) -> None:
    from portal.audit.services import Actor, audit_record, ip_from_request

    audit_record(
        actor=Actor.user(request.user),
        action="auth.permission_denied",
        object_type="user",
        object_id=request.user.pk or "",
        data={"path": request.path, "method": request.method, "needs": list(roles)},
        ip_address=ip_from_request(request),
    )


def role_required(*roles: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., Any]]:
    """Decorate an admin view function or method: 403 unless the user holds one of ``roles``.

    Put it inside ``admin_site.admin_view(...)``, which already demands a verified staff
    login; this adds the role check.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> HttpResponse:
            request = next(arg for arg in args if isinstance(arg, HttpRequest))
            if not holds_any_role(request.user, roles):
                if request.method not in ("GET", "HEAD", "OPTIONS"):
                    # A refused write (a forged approval, say) is a security event.
                    _audit_refused_write(request, roles)
                raise DjangoPermissionDenied(f"needs the {' or '.join(roles)} role")
            return view(*args, **kwargs)

        return wrapped

    return decorator


class ReadOnlyAdminMixin:
    """No add, change or delete in the admin for anyone, superusers included: the rows
    change only through services (or never, for append-only history)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DetailPageAdmin(admin.ModelAdmin[_ModelT]):
    """A change page that shows more than the fields: timelines, history, actions.

    Subclasses return what their template needs from ``detail_context``; it is only
    asked for an object the user may see (the one ``change_view`` found).
    """

    def detail_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        return {}

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        # Django hands over the object change_view already fetched: no second query.
        if obj is not None:
            context.update(self.detail_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)


#: Styles of the portal's record pages (timelines, tables, sections).
PORTAL_ADMIN_CSS = "deadletters/admin.css"


class RecordAdmin(ReadOnlyAdminMixin, RoleRequiredAdminMixin, DetailPageAdmin[_ModelT]):
    """The portal's read-only record screens (intents, dead letters, replay requests).

    A UUID typed in the search box finds the row whose ``public_id_fields`` hold it;
    anything else is the usual search.
    """

    public_id_fields: tuple[str, ...] = ("public_id",)

    class Media:
        css = {"all": (PORTAL_ADMIN_CSS,)}

    @admin.display(description="id")
    def short_public_id(self, obj: Any) -> str:
        """The list's first column: eight characters shown, the full id on hover and copy."""
        return short_id(obj.public_id)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        try:
            key = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        matches = Q()
        for field in self.public_id_fields:
            matches |= Q(**{field: key})
        return queryset.filter(matches), False


class ServiceFormAdminMixin:
    """Render an admin form whose valid data a service applies (instead of a model save)."""

    def render_service_form(
        self,
        request: HttpRequest,
        form: forms.ModelForm[Any],
        obj: Any,
        *,
        fieldsets: list[tuple[str | None, dict[str, Any]]],
        readonly_fields: tuple[str, ...] = (),
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        model_admin: Any = self
        admin_form = helpers.AdminForm(
            form, fieldsets, {}, readonly_fields, model_admin=model_admin
        )
        opts = model_admin.opts
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"{'Add' if obj is None else 'Change'} {opts.verbose_name}",
            "subtitle": str(obj) if obj is not None else None,
            "adminform": admin_form,
            "object_id": obj.pk if obj is not None else None,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": model_admin.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": model_admin.get_preserved_filters(request),
            **(extra_context or {}),
        }
        response: HttpResponse = model_admin.render_change_form(
            request, context, add=obj is None, change=obj is not None, obj=obj
        )
        return response


def add_service_error(form: forms.BaseForm, exc: DomainError) -> None:
    """Show a service's refusal on the field it names (``DomainError.field``), if the form
    has that field; otherwise above the form."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.detail)
