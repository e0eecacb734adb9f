"""``{{ user|has_role:"approvers" }}``: the role check of ``portal.accounts.roles`` in templates."""

from __future__ import annotations

from typing import Any

from django import template

from portal.accounts.roles import has_role as _has_role

register = template.Library()


@register.filter
def has_role(user: Any, role: str) -> bool:
    return _has_role(user, role)
