from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "portal.events"
    label = "events"
    verbose_name = "Client webhooks"

    def ready(self) -> None:
        # Subscribes to intents' change and attempt hooks, and serves the engine the
        # connection of each endpoint.
        from . import receivers  # noqa: F401
