"""How the portal's admin screens show long values in narrow columns.

A UUID is 36 characters: five lines in a list cell at laptop width. ``short_id`` shows its
first eight (CSS clips the rest, ``.portal-id``), with the full id in the tooltip and
still in the text, so selecting or copying the cell takes the whole id.
"""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString


def short_id(value: Any) -> SafeString:
    text = str(value)
    return format_html('<span class="portal-id" title="{}">{}</span>', text, text)
