from django.apps import AppConfig


class IntentsConfig(AppConfig):
    name = "intents"
    verbose_name = "Intents"

    def ready(self) -> None:
        # The accounts app (below this one) checks a tenant's allowed targets against the
        # registry, which lives here: tell it how to list the keys.
        from portal.accounts.services import target_catalogue_register

        from .selectors import registered_target_keys

        target_catalogue_register(registered_target_keys)
