"""Small server-side SVG charts (no JavaScript, nothing from a CDN): bars and lines with labelled axes."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2f6f9f", "#d9822b", "#4a9c5d", "#b94a48", "#7a5ea8", "#8c8c3a", "#3a8c8c", "#a85e7a")


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _scale_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000):
        if value <= step:
            return float(step)
    return float(value)


def bar_chart(
    bars: list[tuple[str, float]], *, title: str, unit: str = "", width: int = 460, height: int = 200
) -> SafeString:
    """Vertical bars with their values on top; an empty list draws "no data"."""
    left, bottom, top = 40, 36, 24
    inner_w, inner_h = width - left - 10, height - bottom - top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ops-chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
             f'<text x="{left}" y="14" class="ops-title">{escape(title)}</text>']  # fmt: skip
    if not bars:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="ops-empty">no data</text></svg>'
        )
        return mark_safe("".join(parts))  # noqa: S308  (every text is escaped above)
    peak = _scale_max(max(v for _, v in bars))
    parts.append(_axis(left, top, inner_w, inner_h, peak, unit))
    slot = inner_w / len(bars)
    bar_w = max(4.0, min(48.0, slot * 0.6))
    for i, (label, value) in enumerate(bars):
        h = inner_h * (value / peak) if peak else 0
        x = left + i * slot + (slot - bar_w) / 2
        y = top + inner_h - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{PALETTE[i % len(PALETTE)]}">'
                     f"<title>{escape(label)}: {_fmt(value)}{escape(unit)}</title></rect>")  # fmt: skip
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="ops-value">{_fmt(value)}</text>'
        )
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + inner_h + 14}" text-anchor="middle" class="ops-label">'
                     f"{escape(label[:14])}</text>")  # fmt: skip
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def line_chart(
    series: dict[str, list[tuple[str, float]]], *, title: str, unit: str = "", width: int = 460, height: int = 200
) -> SafeString:
    """One line per series over shared x labels (in the order given), with a legend."""
    left, bottom, top = 40, 36, 24
    inner_w, inner_h = width - left - 10, height - bottom - top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ops-chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
             f'<text x="{left}" y="14" class="ops-title">{escape(title)}</text>']  # fmt: skip
    labels: list[str] = []
    for points in series.values():
        for x, _ in points:
            if x not in labels:
                labels.append(x)
    if not labels:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="ops-empty">no data</text></svg>'
        )
        return mark_safe("".join(parts))  # noqa: S308
    labels.sort()
    peak = _scale_max(max(v for points in series.values() for _, v in points))
    parts.append(_axis(left, top, inner_w, inner_h, peak, unit))
    step = inner_w / max(1, len(labels) - 1)
    xs = {x: left + (i * step if len(labels) > 1 else inner_w / 2) for i, x in enumerate(labels)}
    for i, (name, points) in enumerate(sorted(series.items())):
        color = PALETTE[i % len(PALETTE)]
        coords = [(xs[x], top + inner_h - inner_h * (v / peak)) for x, v in sorted(points)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y), (label, v) in zip(coords, sorted(points), strict=True):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{escape(name)} {escape(label)}: '
                         f"{_fmt(v)}{escape(unit)}</title></circle>")  # fmt: skip
        parts.append(f'<text x="{left + 6 + 90 * i}" y="{height - 4}" fill="{color}" class="ops-legend">'
                     f"■ {escape(name[:12])}</text>")  # fmt: skip
    for x in (labels[0], labels[-1]):
        parts.append(
            f'<text x="{xs[x]:.1f}" y="{top + inner_h + 14}" text-anchor="middle" class="ops-label">{escape(x)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def _axis(left: int, top: int, w: float, h: float, peak: float, unit: str) -> str:
    out = [f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" class="ops-axis"/>']
    for frac in (0, 0.5, 1):
        y = top + h - h * frac
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" class="ops-grid"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="ops-label">'
                   f"{_fmt(peak * frac)}{escape(unit)}</text>")  # fmt: skip
    return "".join(out)
