from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """Install the 2FA admin site as ``admin.site`` so no admin page opens without OTP."""

    default_site = "portal.admin_site.PortalAdminSite"
