"""The four staff roles of CONTRACT.md, as Django groups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from portal.errors import PermissionDenied

_M = TypeVar("_M", bound=Model)

OPERATORS = "operators"
APPROVERS = "approvers"
AUDITORS = "auditors"
PLATFORM_ADMINS = "platform_admins"
ALL_ROLES = (OPERATORS, APPROVERS, AUDITORS, PLATFORM_ADMINS)


def has_role(user: Any, role: str) -> bool:
    """True when ``user`` is active and in ``role``'s group (superusers hold every role)."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, "_role_cache", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._role_cache = cache
    return role in cache


def require_role(user: Any, role: str) -> None:
    """Raise ``portal.errors.PermissionDenied`` unless ``user`` holds ``role``."""
    require_any_role(user, (role,))


def require_any_role(user: Any, roles: Iterable[str]) -> None:
    """Raise ``portal.errors.PermissionDenied`` unless ``user`` holds one of ``roles``."""
    roles = tuple(roles)
    unknown = [role for role in roles if role not in ALL_ROLES]
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(unknown)}")
    if not any(has_role(user, role) for role in roles):
        who = user.get_username() if user and user.is_authenticated else "anonymous"
        raise PermissionDenied(f"{who} needs the {' or '.join(roles)} role for this.")


def tenant_ids_visible_to(user: Any) -> set[int] | None:
    """The tenant ids ``user`` may see, or ``None`` for all of them.

    Platform admins and superusers see every tenant; so does a staff user whose
    StaffProfile has ``all_tenants`` set. Anyone else sees the tenants their profile
    lists, and a staff user with no profile or an empty list sees none (fail closed).
    """
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return set()
    if user.is_superuser or has_role(user, PLATFORM_ADMINS):
        return None
    from .models import StaffProfile

    profile = StaffProfile.objects.filter(user=user).values_list("pk", "all_tenants").first()
    if profile is None:
        return set()
    profile_id, all_tenants = profile
    if all_tenants:
        return None
    return set(
        StaffProfile.tenants.through.objects.filter(staffprofile_id=profile_id).values_list(
            "tenant_id", flat=True
        )
    )


def restrict_to_visible_tenants(
    queryset: QuerySet[_M],
    user: Any,
    *,
    tenant_field: str = "tenant",
) -> QuerySet[_M]:
    """``queryset`` limited to the tenants ``user`` may see (through ``tenant_field``)."""
    visible = tenant_ids_visible_to(user)
    if visible is None:
        return queryset
    return queryset.filter(**{f"{tenant_field}__in": visible})


def require_tenant_visible(user: Any, tenant_id: int) -> None:
    """Raise ``portal.errors.PermissionDenied`` when ``tenant_id`` is outside ``user``'s scope."""
    visible = tenant_ids_visible_to(user)
    if visible is not None and tenant_id not in visible:
        raise PermissionDenied("This tenant is outside your assigned tenants.")
