"""docs/images/index-scaling.svg: index size and query p99 against corpus size, format 5 beside
formats 4, 3 and 2, from the results of bench_membership's speed runs (each format's code on the
same machine, same snippets) and bench_gigabyte's (formats 5, 4 and 3). Plain SVG, written by
hand.

    .venv/bin/python bench/scale_plot.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "index-scaling.svg"
W, H, PAD_L, PAD_B, PAD_T, GAP = 360, 260, 56, 44, 30, 40
COLOURS = {
    "format 5": "#9467bd",
    "format 4": "#2ca02c",
    "format 3": "#1f77b4",
    "format 2": "#d62728",
    "format 2 (computed)": "#d62728",
}

Series = dict[str, list[tuple[float, float]]]


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def _panel(x0: float, title: str, ylabel: str, series: Series) -> list[str]:
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    xlo, xhi = 10 ** math.floor(math.log10(min(xs))), 10 ** math.ceil(math.log10(max(xs)))
    ylo, yhi = 10 ** math.floor(math.log10(min(ys))), 10 ** math.ceil(math.log10(max(ys)))

    def px(x: float) -> float:
        return x0 + PAD_L + (math.log10(x) - math.log10(xlo)) / (math.log10(xhi / xlo)) * (W - PAD_L - 10)

    def py(y: float) -> float:
        return PAD_T + (1 - (math.log10(y) - math.log10(ylo)) / math.log10(yhi / ylo)) * (H - PAD_T - PAD_B)

    out = [
        f'<text x="{x0 + W / 2:.0f}" y="18" text-anchor="middle" font-weight="bold">{title}</text>',
        f'<rect x="{x0 + PAD_L}" y="{PAD_T}" width="{W - PAD_L - 10}" height="{H - PAD_T - PAD_B}" '
        'fill="none" stroke="#888"/>',
    ]
    for t in _log_ticks(xlo, xhi):
        label = f"{t / 1000:g} GB" if t >= 1000 else f"{t:g} MB"
        out.append(f'<text x="{px(t):.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{label}</text>')
        out.append(f'<line x1="{px(t):.1f}" y1="{PAD_T}" x2="{px(t):.1f}" y2="{H - PAD_B}" stroke="#eee"/>')
    for t in _log_ticks(ylo, yhi):
        out.append(f'<text x="{x0 + PAD_L - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
        out.append(
            f'<line x1="{x0 + PAD_L}" y1="{py(t):.1f}" x2="{x0 + W - 10}" y2="{py(t):.1f}" stroke="#eee"/>'
        )
    out.append(
        f'<text x="{x0 + 14}" y="{(PAD_T + H - PAD_B) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 {x0 + 14} {(PAD_T + H - PAD_B) / 2:.0f})">{ylabel}</text>'
    )
    out.append(f'<text x="{x0 + W / 2 + 20:.0f}" y="{H - 8}" text-anchor="middle">corpus</text>')
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS.get(name, "#2ca02c")
        dash = ' stroke-dasharray="5,3"' if "2" in name else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(pts))
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        ly = PAD_T + 14 + 16 * i
        out.append(
            f'<line x1="{x0 + PAD_L + 10}" y1="{ly - 4}" x2="{x0 + PAD_L + 30}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{x0 + PAD_L + 36}" y="{ly}">{name}</text>')
    return out


def render(size: Series, p99: Series) -> str:
    body = _panel(0, "index size", "MB", size) + _panel(W + GAP, "query p99 (CPU)", "ms", p99)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W + GAP}" height="{H}" '
        'font-family="sans-serif" font-size="11">\n'
        '<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n"
    )


def main() -> None:
    runs = {
        "format 5": "membership_multi.json",
        "format 4": "membership_multi_format4.json",
        "format 3": "membership_multi_format3.json",
        "format 2": "membership_multi_format2.json",
    }
    scaling = {name: json.loads((RESULTS / f).read_text())["speed"]["scaling"] for name, f in runs.items()}
    size: Series = {name: [(r["corpus_mb"], r["index_mb"]) for r in rows] for name, rows in scaling.items()}
    p99: Series = {
        name: [(r["corpus_mb"], r["query_cpu_ms_p99"]) for r in rows] for name, rows in scaling.items()
    }
    gigabytes = (
        ("format 5", "gigabyte.json"),
        ("format 4", "gigabyte_format4.json"),
        ("format 3", "gigabyte_format3.json"),
    )
    for name, f in gigabytes:
        if (RESULTS / f).exists():
            gb = json.loads((RESULTS / f).read_text())
            mb = gb["index"]["corpus_mb"]
            size[name].append((mb, gb["index"]["index_mb"]))
            p99[name].append((mb, gb["latency"]["query_cpu_ms_p99"]))
            size["format 2 (computed)"] = [(mb, gb["index"]["format2_ratio"] * mb)]
    OUT.write_text(render(size, p99))
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
