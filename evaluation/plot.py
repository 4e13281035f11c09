"""One SVG: quality (pass@1, or exact match where nothing runs) against median latency, a point
per setting. Written by hand: no plotting library is needed at run time."""

from __future__ import annotations

import math
from html import escape

W, H = 560, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 40, 52
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _ticks(top: float) -> list[float]:
    """About five round ticks from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _fmt(v: float) -> str:
    return f"{v:g}" if v < 1000 else f"{v:,.0f}"


def quality_latency_svg(points: list[tuple[str, float, float]], quality_label: str, title: str) -> str:
    """``points``: (setting, latency p50 in ms, quality in [0, 1])."""
    xt = _ticks(max([p[1] for p in points] + [1.0]) * 1.1)
    yt = [i / 5 for i in range(6)]
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + pw * v / xt[-1]

    def y(v: float) -> float:
        return TOP + ph * (1 - v)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for v in xt:
        out.append(f'<line x1="{x(v):.1f}" y1="{TOP}" x2="{x(v):.1f}" y2="{TOP + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x(v):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{_fmt(v)}</text>')
    for v in yt:
        out.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{LEFT + pw}" y2="{y(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(
        f'<text x="{LEFT + pw / 2}" y="{H - 12}" text-anchor="middle">latency p50 per request (ms)</text>'
    )
    out.append(
        f'<text transform="translate(16 {TOP + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(quality_label)}</text>"
    )
    for i, (name, lat, q) in enumerate(points):
        c = COLOURS[i % len(COLOURS)]
        px, py = x(lat), y(max(0.0, min(1.0, q)))
        anchor = "end" if px > LEFT + pw * 0.7 else "start"
        dx = -9 if anchor == "end" else 9
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{c}"/>')
        ty = py + 18 if py - 8 < TOP + 12 else py - 8  # below the point at the top edge
        out.append(
            f'<text x="{px + dx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" fill="{c}">'
            f"{escape(name)} ({q:.2f}, {_fmt(round(lat, 1))} ms)</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
