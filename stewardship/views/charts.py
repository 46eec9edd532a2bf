"""Small charts drawn server-side as inline SVG: no JavaScript, no CDN, readable without colour (labels, titles).

Each function returns safe markup sized by its viewBox (it scales to its container). Values are plain numbers;
`None` in a line series is a gap (no data that day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#417690", "#e0a030", "#5b9a68", "#b5523b", "#7d6bb3", "#4a9fb8", "#8a8a8a"]
_W, _H = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 26, 14, 36


def _nice_max(value: float) -> float:
    """The top of the y axis: four equal, round steps (1, 2, 5, 10, 20, 25, 50, … per step) covering `value`."""
    step = 1.0
    while True:
        for mult in (1, 2, 2.5, 5):
            if value <= step * mult * 4:
                return step * mult * 4
        step *= 10


def _fmt(v: float, percent: bool) -> str:
    if percent:
        return f"{v * 100:.0f}%"
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def _svg(body: list[str], title: str, width: int = _W, height: int = _H) -> SafeString:
    return mark_safe(  # noqa: S308 - every text is escaped below
        f'<svg class="wb-chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _grid(y_max: float, percent: bool, plot_h: float) -> list[str]:
    out = []
    for i in range(5):
        v = y_max * i / 4
        y = _TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="wb-grid"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="wb-axis">{_fmt(v, percent)}</text>')
    return out


def _day_labels(days: Sequence[dt.date], x_of) -> list[str]:
    """A date under every n-th day, counted back from today (so the last day is always labelled)."""
    out = []
    every = max(1, -(-len(days) // 7))
    for i, day in enumerate(days):
        if (len(days) - 1 - i) % every:
            continue
        out.append(
            f'<text x="{x_of(i):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" class="wb-axis">'
            f"{day.strftime('%d %b')}</text>"
        )
    return out


def _legend(names: Sequence[str], colors: Sequence[str]) -> str:
    items = "".join(
        f'<span class="wb-legend-item"><span class="wb-swatch" style="background:{c}"></span>{escape(n)}</span>'
        for n, c in zip(names, colors, strict=False)
    )
    return f'<div class="wb-legend">{items}</div>'


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, href: dict[str, str] | None = None) -> SafeString:
    """Horizontal bars, one per (label, value), the value written at the end of each bar."""
    href = href or {}
    row_h, label_w = 24, 170
    height = max(60, _TOP + row_h * len(items) + 10)
    v_max = max([v for _, v in items] + [1])
    plot_w = _W - label_w - 60
    body = []
    for i, (label, value) in enumerate(items):
        y = _TOP + i * row_h
        w = plot_w * value / v_max if v_max else 0
        color = PALETTE[0] if value else "#ccc"
        text = escape(label)
        if label in href:
            text = f'<a href="{escape(href[label])}">{text}</a>'
        body.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" class="wb-label">{text}</text>')
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" fill="{color}" rx="2">'
            f"<title>{escape(label)}: {value:,.0f}</title></rect>"
        )
        body.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" class="wb-value">{value:,.0f}</text>')
    return _svg(body, title, height=height)


def line_chart(
    days: Sequence[dt.date],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    percent: bool = False,
) -> SafeString:
    """One line per series over the days; a dot per known value; gaps where the value is None."""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    values = [v for s in series.values() for v in s if v is not None]
    y_max = 1.0 if percent else _nice_max(max(values + [0]))
    n = max(len(days) - 1, 1)

    def x_of(i: int) -> float:
        return _LEFT + plot_w * i / n

    def y_of(v: float) -> float:
        return _TOP + plot_h - plot_h * (v / y_max if y_max else 0)

    body = _grid(y_max, percent, plot_h)
    colors = []
    for k, (name, points) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        colors.append(color)
        segment: list[str] = []
        segments = []
        for i, v in enumerate(points):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x_of(i):.1f},{y_of(v):.1f}")
            body.append(
                f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(name)} {days[i].isoformat()}: {_fmt(v, percent)}</title></circle>"
            )
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                body.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{color}" stroke-width="2"/>')
    body += _day_labels(days, x_of)
    return mark_safe(_svg(body, title) + _legend(list(series), colors))  # noqa: S308


def stacked_bars(days: Sequence[dt.date], series: dict[str, Sequence[int]], *, title: str) -> SafeString:
    """One bar per day, stacked by series."""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    totals = [sum(s[i] for s in series.values()) for i in range(len(days))]
    y_max = _nice_max(max(totals + [0]))
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.7, 2)

    def x_of(i: int) -> float:
        return _LEFT + slot * i + slot / 2

    body = _grid(y_max, False, plot_h)
    colors = [PALETTE[k % len(PALETTE)] for k in range(len(series))]
    for i, day in enumerate(days):
        y = _TOP + plot_h
        for (name, points), color in zip(series.items(), colors, strict=True):
            v = points[i]
            if not v:
                continue
            h = plot_h * v / y_max
            y -= h
            body.append(
                f'<rect x="{x_of(i) - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(name)} {day.isoformat()}: {v}</title></rect>'
            )
    body += _day_labels(days, x_of)
    return mark_safe(_svg(body, title) + _legend(list(series), colors))  # noqa: S308
