"""Tenants and their API keys: create, revoke, change limits. Each audited in its transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction

from portal import clock
from portal.audit.services import Actor, audit_record
from portal.errors import InvalidRequest

from .models import ALL_SCOPES, ApiKey, Tenant

API_KEY_NAME_MAX = 50  # AbstractAPIKey.name
TENANT_NAME_MAX = 100
STATE_REASON_MAX_CHARS = 2_000  # why a tenant was disabled or enabled, as audited


def tenant_create(*, name: str, actor: Actor, ip_address: str | None = None) -> tuple[Tenant, bool]:
    """The tenant called ``name``, created if missing. Returns ``(tenant, created)``."""
    name = name.strip()
    if not name or len(name) > TENANT_NAME_MAX:
        raise InvalidRequest(f"A tenant name is 1 to {TENANT_NAME_MAX} characters.", field="name")
    existing = Tenant.objects.filter(name=name).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(name=name)
            audit_record(
                actor=actor,
                action="tenant.created",
                object_type="tenant",
                object_id=tenant.pk,
                data={"name": tenant.name},
                ip_address=ip_address,
            )
    except IntegrityError:
        # Created concurrently by someone else: still idempotent.
        return Tenant.objects.get(name=name), False
    return tenant, True


def scopes_parse(scopes: Iterable[str]) -> list[str]:
    """Known scopes, de-duplicated in catalogue order; an unknown one is refused."""
    wanted = {scope.strip() for scope in scopes if scope.strip()}
    unknown = sorted(wanted - set(ALL_SCOPES))
    if unknown:
        raise InvalidRequest(
            f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(ALL_SCOPES)}.",
            field="scopes",
        )
    if not wanted:
        raise InvalidRequest(
            f"An API key needs at least one scope of: {', '.join(ALL_SCOPES)}.", field="scopes"
        )
    return [scope for scope in ALL_SCOPES if scope in wanted]


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    actor: Actor,
    expiry_date: dt.datetime | None = None,
    ip_address: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key for ``tenant``. The plain key is returned once and never stored.

    ``expiry_date``, when given, must be in the future: a key born expired is a mistake.
    """
    name = name.strip()
    if not name or len(name) > API_KEY_NAME_MAX:
        raise InvalidRequest(
            f"An API key name is 1 to {API_KEY_NAME_MAX} characters.", field="name"
        )
    scope_list = scopes_parse(scopes)
    if expiry_date is not None and expiry_date <= clock.now():
        raise InvalidRequest("The expiry must be in the future.", field="expiry_date")
    with transaction.atomic():
        created, key = ApiKey.objects.create_key(
            name=name, tenant=tenant, scopes=scope_list, expiry_date=expiry_date
        )
        # The library annotates its manager with AbstractAPIKey; it builds self.model, ApiKey.
        api_key = cast(ApiKey, created)
        audit_record(
            actor=actor,
            action="api_key.created",
            object_type="api_key",
            object_id=api_key.prefix,
            data={
                "tenant": tenant.name,
                "name": name,
                "prefix": api_key.prefix,
                "scopes": scope_list,
                "expires": expiry_date.isoformat() if expiry_date else None,
            },
            ip_address=ip_address,
        )
    return api_key, key


def api_key_revoke(*, api_key: ApiKey, actor: Actor, ip_address: str | None = None) -> ApiKey:
    """Revoke for good (djangorestframework-api-key refuses to un-revoke)."""
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().select_related("tenant").get(pk=api_key.pk)
        if api_key.revoked:
            return api_key
        api_key.revoked = True
        api_key.save(update_fields=["revoked"])
        audit_record(
            actor=actor,
            action="api_key.revoked",
            object_type="api_key",
            object_id=api_key.prefix,
            data={"tenant": api_key.tenant.name, "name": api_key.name, "prefix": api_key.prefix},
            ip_address=ip_address,
        )
    return api_key


TENANT_LIMIT_FIELDS = (
    "rate_limit_per_minute",
    "max_open_intents",
    "allow_all_targets",
    "allowed_targets",
    "retry_overrides",
)


# The target registry lives in ``intents``, a layer above this app: it registers how to
# list its keys once it is ready (intents/apps.py), so the allowed-targets rule stays here
# without an upward import.
_target_catalogue: list[Callable[[], Iterable[str]]] = []


def target_catalogue_register(keys: Callable[[], Iterable[str]]) -> None:
    """Install the function that lists the registered target keys (one; the last wins)."""
    _target_catalogue[:] = [keys]


def _registered_target_keys() -> set[str]:
    if not _target_catalogue:
        raise RuntimeError("No target registry is installed to check allowed_targets against.")
    return set(_target_catalogue[0]())


def _validated_limits(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` checked limit by limit, in ``TENANT_LIMIT_FIELDS`` order (so the first
    problem reported does not depend on the caller's order), ``allowed_targets`` sorted."""
    for name, check in _LIMIT_CHECKS:
        if name in changes:
            changes[name] = check(name, changes[name])
    return changes


def _whole_number(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{name} must be a whole number >= 0.", field=name)
    return value


def _true_or_false(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be true or false.", field=name)
    return value


def _target_keys(name: str, targets: Any) -> list[str]:
    """Registered target keys, without duplicates, sorted."""
    if not isinstance(targets, list | tuple) or not all(
        isinstance(key, str) and key for key in targets
    ):
        raise InvalidRequest(f"{name} must be a list of target keys.", field=name)
    unknown = sorted(set(targets) - _registered_target_keys())
    if unknown:
        raise InvalidRequest(
            f"Unknown target key(s): {', '.join(unknown)}; the registry has "
            f"{', '.join(sorted(_registered_target_keys())) or 'none'}.",
            field=name,
        )
    return sorted(set(targets))


def _retry_overrides(name: str, overrides: Any) -> dict[str, Any]:
    """Only the retry settings ``TENANT_RETRY_BOUNDS`` lists, each within its bounds."""
    if not isinstance(overrides, dict):
        raise InvalidRequest(f"{name} must be an object.", field=name)
    bounds = settings.TENANT_RETRY_BOUNDS
    for key, value in overrides.items():
        if key not in bounds:
            raise InvalidRequest(
                f"{name} may only set: {', '.join(sorted(bounds))} (not {key}).", field=name
            )
        low, high = bounds[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{name}.{key} must be a number.", field=name)
        if not low <= value <= high:
            raise InvalidRequest(f"{name}.{key} must be within {low}..{high}.", field=name)
    return overrides


# Each limit's check, in TENANT_LIMIT_FIELDS order: the value to store, or InvalidRequest.
_LIMIT_CHECKS: tuple[tuple[str, Callable[[str, Any], Any]], ...] = (
    ("rate_limit_per_minute", _whole_number),
    ("max_open_intents", _whole_number),
    ("allow_all_targets", _true_or_false),
    ("allowed_targets", _target_keys),
    ("retry_overrides", _retry_overrides),
)


def tenant_limits_update(
    *,
    tenant: Tenant,
    actor: Actor,
    ip_address: str | None = None,
    **changes: Any,
) -> Tenant:
    """Change any of a tenant's limits (rate, open-intent cap, targets, retry overrides)."""
    unknown = set(changes) - set(TENANT_LIMIT_FIELDS)
    if unknown:
        raise InvalidRequest(f"Not a tenant limit: {', '.join(sorted(unknown))}.")
    changes = _validated_limits(dict(changes))
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        before = {name: getattr(tenant, name) for name in changes}
        changed = {name: value for name, value in changes.items() if before[name] != value}
        if not changed:
            return tenant
        for name, value in changed.items():
            setattr(tenant, name, value)
        tenant.save(update_fields=sorted(changed))
        audit_record(
            actor=actor,
            action="tenant.limits_updated",
            object_type="tenant",
            object_id=tenant.pk,
            data={
                "name": tenant.name,
                "before": {name: before[name] for name in changed},
                "after": changed,
            },
            ip_address=ip_address,
        )
    return tenant


def tenant_set_active(
    *,
    tenant: Tenant,
    active: bool,
    actor: Actor,
    reason: str = "",
    ip_address: str | None = None,
) -> tuple[Tenant, bool]:
    """Disable a tenant (its keys are answered 401 ``unauthenticated`` from the next
    request: "The tenant of this API key is disabled.") or enable it again.

    Intents already accepted are still delivered: disabling stops new intake, it does not
    withdraw what the engine promised. Returns the tenant and whether it changed; the
    change is audited (``tenant.disabled`` / ``tenant.enabled``) with the reason given.
    """
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if locked.is_active == active:
            return locked, False
        locked.is_active = active
        locked.save(update_fields=["is_active"])
        audit_record(
            actor=actor,
            action="tenant.enabled" if active else "tenant.disabled",
            object_type="tenant",
            object_id=locked.pk,
            data={"name": locked.name, "reason": reason.strip()[:STATE_REASON_MAX_CHARS]},
            ip_address=ip_address,
        )
    return locked, True
