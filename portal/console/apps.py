from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """Cross-app admin screens (tenants) and demo commands (``seed_demo``)."""

    name = "portal.console"
    label = "console"
    verbose_name = "Console"
