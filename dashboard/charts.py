"""Small server-rendered SVG charts for the dashboard: no JavaScript, no assets from elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, PAD = 640, 170, 34


def line_chart(
    values: Sequence[float], *, limit: float | None, label: Callable[[float], str], start: str, end: str
) -> SafeString:
    """``values`` (oldest first) as a line, with the plan's ``limit`` as a dashed red line when it
    has one; ``label`` formats a value for the axis; ``start``/``end`` name the time axis' ends."""
    top = max([*values, limit or 0.0, 1.0]) * 1.1
    span_x = WIDTH - 2 * PAD
    step = span_x / max(len(values) - 1, 1)

    def y(value: float) -> float:
        return HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD)

    points = " ".join(f"{PAD + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts = [
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>', PAD, HEIGHT - PAD, WIDTH - PAD, HEIGHT - PAD
        ),
        format_html('<polyline class="usage" points="{}" fill="none" stroke="#417690" stroke-width="2"/>', points),
        format_html('<text x="{}" y="{}" font-size="11">{}</text>', PAD, HEIGHT - PAD + 14, start),
        format_html(
            '<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>', WIDTH - PAD, HEIGHT - PAD + 14, end
        ),
        format_html(
            '<text x="{}" y="{}" font-size="11">{}</text>', PAD, PAD - 8, f"max {label(max(values, default=0))}"
        ),
    ]
    if limit is not None:
        parts.append(
            format_html(
                '<line class="limit" x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ba2121" stroke-dasharray="6 4"/>'
                '<text x="{}" y="{}" font-size="11" fill="#ba2121" text-anchor="end">plan limit {}</text>',
                PAD,
                f"{y(limit):.1f}",
                WIDTH - PAD,
                f"{y(limit):.1f}",
                WIDTH - PAD,
                f"{y(limit) - 4:.1f}",
                label(limit),
            )
        )
    body = format_html_join("", "{}", ((part,) for part in parts))
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img">{}</svg>',
        WIDTH, HEIGHT, WIDTH, HEIGHT, body,
    )  # fmt: skip
