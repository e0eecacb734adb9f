"""Charts as inline SVG, rendered on the server: no script, no library fetched from anywhere.

Every label and value goes through ``format_html``, so data cannot inject markup. Each bar
carries an SVG ``<title>``, which browsers show as a tooltip without any JavaScript.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

OUTCOME_COLORS = {
    "accepted": "#2e7d32",
    "rejected_transient": "#ef6c00",
    "timeout": "#6a1b9a",
    "rejected_permanent": "#c62828",
    "executor_error": "#4e342e",
    "lease_lost": "#546e7a",
}
FALLBACK_COLOR = "#757575"
AXIS_COLOR = "#9e9e9e"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exponent + 1))


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _value_gridlines(
    *, left: int, right: int, top: int, plot_h: int, width: int, peak: float
) -> list[str]:
    """Lines at zero, half and the peak, each with its value on the left axis."""
    parts: list[str] = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="0.5"/>'
                '<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>',
                left,
                f"{y:.1f}",
                width - right,
                f"{y:.1f}",
                AXIS_COLOR,
                left - 4,
                f"{y + 3:.1f}",
                _number(peak * fraction),
            )
        )
    return parts


def _stacked_bar(
    *,
    index: int,
    label: str,
    series: Mapping[str, Sequence[int]],
    colors: dict[str, str],
    x: float,
    bar_w: float,
    bottom_y: float,
    plot_h: int,
    peak: float,
) -> list[str]:
    """The segments of one bar, stacked upwards from ``bottom_y`` in the series' order."""
    parts: list[str] = []
    base = bottom_y
    for name, values in series.items():
        count = values[index]
        if not count:
            continue
        bar_h = plot_h * count / peak
        base -= bar_h
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                "<title>{}: {} {}</title></rect>",
                f"{x:.1f}",
                f"{base:.1f}",
                f"{bar_w:.1f}",
                f"{bar_h:.1f}",
                colors.get(name, FALLBACK_COLOR),
                label,
                count,
                name,
            )
        )
    return parts


def stacked_bar_chart(
    *,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    title: str,
    colors: dict[str, str] | None = None,
    label_every: int = 3,
    width: int = 720,
    height: int = 200,
) -> SafeString:
    """Vertical bars, one per label, each stacked from ``series`` in their given order."""
    colors = colors or OUTCOME_COLORS
    left, right, top, bottom = 44, 8, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    peak = nice_ceiling(max(totals, default=0))
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot - 2, 1)
    parts = _value_gridlines(left=left, right=right, top=top, plot_h=plot_h, width=width, peak=peak)
    for i, label in enumerate(labels):
        x = left + i * slot + 1
        parts += _stacked_bar(
            index=i,
            label=label,
            series=series,
            colors=colors,
            x=x,
            bar_w=bar_w,
            bottom_y=top + plot_h,
            plot_h=plot_h,
            peak=peak,
        )
        if i % label_every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
                    f"{x + bar_w / 2:.1f}",
                    height - 6,
                    label,
                )
            )
    if not any(totals):
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="12" text-anchor="middle">nothing in this window'
                "</text>",
                left + plot_w / 2,
                top + plot_h / 2,
            )
        )
    return _svg(title, width, height, parts)


def horizontal_bar_chart(
    *, items: Sequence[tuple[str, int]], title: str, color: str = "#c62828", width: int = 480
) -> SafeString:
    """One labelled bar per item, longest first as given."""
    row_h, label_w, value_w = 20, 170, 50
    height = max(len(items), 1) * row_h + 8
    peak = max((value for _, value in items), default=0) or 1
    bar_space = width - label_w - value_w
    parts: list[str] = []
    for i, (label, value) in enumerate(items):
        y = 4 + i * row_h
        bar_w = max(bar_space * value / peak, 1)
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
                '<text x="{}" y="{}" font-size="11">{}</text>',
                label_w - 6,
                y + 13,
                label,
                label_w,
                y + 3,
                f"{bar_w:.1f}",
                row_h - 6,
                color,
                label,
                value,
                label_w + bar_w + 4,
                y + 13,
                value,
            )
        )
    if not items:
        parts.append(
            format_html('<text x="{}" y="16" font-size="12">nothing in this window</text>', label_w)
        )
    return _svg(title, width, height, parts)


def _svg(title: str, width: int, height: int, parts: list[str]) -> SafeString:
    body = mark_safe("".join(parts))  # noqa: S308 (every part came from format_html)
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="ops-chart" role="img" '
        'viewBox="0 0 {} {}" width="{}" height="{}" aria-label="{}"><title>{}</title>{}</svg>',
        width, height, width, height, title, title, body,
    )  # fmt: skip


def legend(names: Sequence[str], colors: dict[str, str] | None = None) -> SafeString:
    colors = colors or OUTCOME_COLORS
    return format_html_join(
        "",
        '<span class="ops-legend-item"><svg width="10" height="10" aria-hidden="true">'
        '<rect width="10" height="10" fill="{}"/></svg> {}</span>',
        ((colors.get(name, FALLBACK_COLOR), name) for name in names),
    )
