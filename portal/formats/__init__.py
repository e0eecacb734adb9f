"""The one human-readable time format of the portal (``FORMAT_MODULE_PATH``).

Every time a person reads, on admin fields, list columns, tables, the dashboard, command
output and messages, is ``2026-12-03 10:27:49 UTC``: seconds, so intents created within
one minute can be ordered, and the zone spelled out. Machine formats (JSON exports,
audit data, API bodies) stay ISO 8601. Python code formats with ``portal.timefmt``.
"""
