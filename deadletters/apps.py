from django.apps import AppConfig


class DeadlettersConfig(AppConfig):
    name = "deadletters"
    verbose_name = "Dead letters and replays"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (subscribes to intents' terminal-failure hook)
