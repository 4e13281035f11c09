"""How much of the prompt the KV cache keeps while the user types (not a test: prints figures).

A real file is retyped character by character in its middle, with a ~2k-token context window,
so both the prefix and the suffix are cut. For every keystroke the prompt is tokenized and
compared with the previous one: the tokens after their longest common prefix are what the fast
path (completion/backends/fast_decode.py) must prefill again, whatever the GPU. Compared: the
PSM and suffix-first (SPM) prompt orders, each with and without the cut grid
(completion/context.py: CUT_GRID_LINES). The baseline is the layout before the grid: PSM, cut
at the first whole line.

Usage: .venv/bin/python bench/bench_prompt_reuse.py [--file PATH] [--chars 600] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_completion import pct, repo_tokenizer  # noqa: E402
from completion.context import CUT_GRID_LINES, ContextBuilder  # noqa: E402
from completion.settings import BudgetSettings  # noqa: E402
from completion.templates import TEMPLATES  # noqa: E402
from completion.tokens import TokenizerCounter  # noqa: E402
from completion.types import CompletionRequest  # noqa: E402


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def replay(text: str, at: int, typed: str, order: str, grid: int, counter: TokenizerCounter) -> list[int]:
    """Tokens to prefill again at each keystroke (after the first)."""
    template = TEMPLATES["starcoder"].ordered("spm" if order == "spm" else "auto")
    cfg = BudgetSettings(context_window=2048 + 64, max_new_tokens=64)
    builder = ContextBuilder(template, counter, cfg, cut_grid_lines=grid)
    encode = counter._tok.encode
    previous: list[int] = []
    recomputed = []
    for i in range(len(typed) + 1):
        doc = text[:at] + typed[:i] + text[at:]
        prompt = builder.build(CompletionRequest("file:///w/a.py", doc, at + i, "python")).prompt
        ids = encode(prompt, add_special_tokens=False).ids
        if previous:
            recomputed.append(len(ids) - common_prefix(previous, ids))
        previous = ids
    return recomputed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", type=Path, default=ROOT / "completion" / "backends" / "fast_decode.py")
    ap.add_argument("--chars", type=int, default=600, help="characters retyped")
    ap.add_argument("--quick", action="store_true", help="retype 150 characters")
    args = ap.parse_args()
    if args.quick:
        args.chars = 150
    counter = TokenizerCounter(repo_tokenizer("starcoder"))
    text = args.file.read_text(encoding="utf-8")
    # Retype a stretch from the middle of the file: delete it, then type it back.
    start = text.index("\n", len(text) // 2) + 1
    typed = text[start : start + args.chars]
    text = text[:start] + text[start + args.chars :]
    lines = typed.count("\n")
    print(
        f"prompt reuse while typing: {args.chars} characters ({lines} lines) retyped in the middle of"
        f" {args.file.relative_to(ROOT)}, 2,048-token window, starcoder template, token-accurate."
        " Tokens to prefill again per keystroke (after the longest common prefix with the previous"
        " prompt):"
    )
    rows = (
        ("PSM, cut at the first whole line (baseline)", "psm", 1),
        (f"PSM, cut grid {CUT_GRID_LINES} lines", "psm", CUT_GRID_LINES),
        ("SPM, cut at the first whole line", "spm", 1),
        (f"SPM, cut grid {CUT_GRID_LINES} lines", "spm", CUT_GRID_LINES),
    )
    means = {}
    for label, order, grid in rows:
        r = replay(text, start, typed, order, grid, counter)
        means[label] = statistics.fmean(r)
        whole = sum(v > 1000 for v in r)
        print(
            f"  {label:<44} median {statistics.median(r):6.0f}   p90 {pct(r, 0.9):6.0f}"
            f"   mean {statistics.fmean(r):7.1f}   keystrokes recomputing >1000 tokens {whole}"
        )
    base = means[rows[0][0]]
    best = means[rows[-1][0]]
    print(f"  mean tokens prefilled per keystroke: SPM + grid = {best / base:.3f}x the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
