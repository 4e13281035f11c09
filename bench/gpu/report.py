"""The GPU figures table of docs/gpu.md from bench_decode.py's JSON files (one column each).

    .venv/bin/python bench/gpu/report.py OUT/gpu_decode.json [MORE.json ...] [--update docs/gpu.md]

With --update, the table between the ``gpu-figures`` markers in that file is replaced; then run
scripts/build_readme.py so README.md follows.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

START, END = "<!-- gpu-figures:start -->", "<!-- gpu-figures:end -->"
TARGET_ROOFLINE, TARGET_SPEEDUP, TARGET_TTFT_MS = 0.60, 5.0, 15.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def rows(r: dict) -> list[tuple[str, str]]:
    """(figure, value) pairs for one run."""
    recomputed = r["prompt_tokens"] - r["prompt_tokens"] * 3 // 4
    step = f"{r['weights_bytes'] / 1e9:.2f} GB + {r['kv_bytes'] / 1e6:.0f} MB"
    return [
        ("copy bandwidth (device to device, read + write)", f"{r['bandwidth_gbs']:.0f} GB/s"),
        (
            "roofline (weights + KV per step / bandwidth)",
            f"{r['roofline_tps']:.0f} tok/s ({step})",
        ),
        (
            f"fast path decode (target ≥ {TARGET_ROOFLINE:.0%} of roofline)",
            f"{r['fast_tps']:.0f} tok/s = {r['roofline_fraction']:.0%}: "
            + _verdict(r["roofline_fraction"] >= TARGET_ROOFLINE),
        ),
        ("plain `generate()` decode", f"{r['plain_tps']:.1f} tok/s"),
        (
            f"speed-up (target ≥ {TARGET_SPEEDUP:.0f}×)",
            f"{r['speedup']:.1f}×: " + _verdict(r["speedup"] >= TARGET_SPEEDUP),
        ),
        (f"TTFT cold ({r['prompt_tokens']} tokens)", f"{r['ttft_cold_ms']:.1f} ms"),
        (
            f"TTFT, reuse, one token appended (target ≤ {TARGET_TTFT_MS:.0f} ms)",
            f"{r['ttft_reuse_append_ms']:.1f} ms: " + _verdict(r["ttft_reuse_append_ms"] <= TARGET_TTFT_MS),
        ),
        (
            f"TTFT, reuse, one token changed at 3/4 ({recomputed} recomputed)",
            f"{r['ttft_reuse_mid_edit_ms']:.1f} ms",
        ),
        ("warm-up (graph capture) at start-up", f"{r['warmup_s']:.1f} s"),
    ]


def table(runs: list[dict]) -> str:
    head = "| figure | " + " | ".join(f"{r['device']} ({r['config']}, {r['dtype']})" for r in runs) + " |"
    lines = [head, "|" + " --- |" * (len(runs) + 1)]
    columns = [rows(r) for r in runs]
    for i, (label, _) in enumerate(columns[0]):
        lines.append(f"| {label} | " + " | ".join(col[i][1] for col in columns) + " |")
    return "\n".join(lines)


def update(doc: Path, text: str) -> None:
    body = doc.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(body):
        raise SystemExit(f"{doc}: no {START} ... {END} markers")
    doc.write_text(pattern.sub(lambda _: f"{START}\n{text}\n{END}", body), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", type=Path, nargs="+")
    ap.add_argument("--update", type=Path, help="replace the marked table in this file")
    args = ap.parse_args()
    text = table([json.loads(p.read_text(encoding="utf-8")) for p in args.json])
    print(text)
    if args.update:
        update(args.update, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
