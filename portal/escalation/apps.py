from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "portal.escalation"
    label = "escalation"
    verbose_name = "Escalation"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (loads escalations.toml with sync_targets)
