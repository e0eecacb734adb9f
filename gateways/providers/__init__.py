"""The provider registry: a connection's ``provider`` key names the class that serves it.

Every provider is built as ``ProviderClass(config=ConnectionConfig,
client=httpx.AsyncClient, secrets=SecretSource)`` and implements ``gateways.base.
Provider``. Adding a provider is one module here, its tests, one line below and a row
in ``docs/gateways.md``.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

PROVIDERS: dict[str, str] = {
    "simulator": "gateways.providers.simulator.SimulatorProvider",
    "twilio": "gateways.providers.twilio.TwilioProvider",
    "vonage": "gateways.providers.vonage.VonageProvider",
    "sns": "gateways.providers.sns.SnsProvider",
    "smtp": "gateways.providers.smtp.SmtpProvider",
    "ses": "gateways.providers.ses.SesProvider",
    "fcm": "gateways.providers.fcm.FcmProvider",
    "apns": "gateways.providers.apns.ApnsProvider",
    "webhook": "gateways.providers.webhook.WebhookProvider",
    "pagerduty": "gateways.providers.pagerduty.PagerDutyProvider",
    "slack": "gateways.providers.slack.SlackProvider",
}

# Served only to connections the service builds itself (never named in a file):
# client webhook endpoints, which may be any public host (see the provider).
INTERNAL_PROVIDERS: dict[str, str] = {
    "webhook_endpoint": "gateways.providers.webhook.WebhookEndpointProvider",
}


class UnknownProvider(LookupError):
    """No provider is registered under this key."""


def provider_class(key: str) -> type:
    """The class registered for provider ``key``; raises ``UnknownProvider`` if none."""
    path = PROVIDERS.get(key) or INTERNAL_PROVIDERS.get(key)
    if path is None:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProvider(f"unknown provider {key!r} (known: {known})")
    cls: type = import_string(path)
    return cls
