from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "portal.observability"
    label = "observability"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django_q.signals import pre_execute

        from .logging import configure_structlog
        from .services import worker_heartbeat_if_due
        from .tracing import tracing_configure

        configure_structlog()
        tracing_configure()
        # A busy cluster worker beats on its own, even if pings wait behind a long queue.
        pre_execute.connect(worker_heartbeat_if_due, dispatch_uid="observability.heartbeat")
