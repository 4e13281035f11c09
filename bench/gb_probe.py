"""Query latency on a built 1 GB index, as ``bench_gigabyte.py``'s ``in_process`` measures it
(the same 500 probes: 250 snippets of indexed files, 250 of held-out ones), without building:
CPU p50 / p99, the slowest probes, and every probe's full results in a JSON file, so that two
trees can be compared on one index (results identical, latency side by side).

    # once: the index, with bench_gigabyte's corpus (about 4 minutes with two workers)
    .venv/bin/python bench/gb_probe.py --build /work/gb_idx
    # then, per tree (PYTHONPATH=TREE), best of 3 passes per probe:
    .venv/bin/python bench/gb_probe.py --index /work/gb_idx --rounds 3 --out base.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gigabyte import _sources, corpus
from bench_membership import _queries, pct
from corpora import load
from fetch_corpora import LANGS
from timing import timed

from index.builder import build
from index.store import EmbeddedIndex
from membership.query import Matcher

LINUX = Path("/work/bigcorpus/linux-source-6.1")


def probes(linux: Path, cache: Path | None) -> list[tuple[str, str]]:
    """bench_gigabyte's latency probes (same corpus, same seeds), cached in ``cache``."""
    if cache is not None and cache.exists():
        return [(t, n) for t, n in json.loads(cache.read_text())]
    groups, _ = corpus(linux, int(1000e6), 8_000_000)
    corpora = [load(lang, 8_000_000) for lang in LANGS]
    seen = [p for _, fs in groups for p in fs]
    unseen = [p for c in corpora for p in c.held_out]
    out: list[tuple[str, str]] = _queries(seen, 250) + _queries(unseen, 250)
    if cache is not None:
        cache.write_text(json.dumps(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, help="build bench_gigabyte's 1 GB index here and stop")
    ap.add_argument("--index", type=Path, default=Path("/work/gb_idx"))
    ap.add_argument("--linux", type=Path, default=LINUX)
    ap.add_argument("--probes", type=Path, default=Path("/tmp/gb_probes.json"), help="probe cache")
    ap.add_argument("--rounds", type=int, default=1, help="passes; a probe's time is its best")
    ap.add_argument("--slowest", type=int, default=20)
    ap.add_argument("--out", type=Path, help="results and per-probe CPU ms (JSON)")
    args = ap.parse_args()
    if args.build:
        groups, made = corpus(args.linux, int(1000e6), 8_000_000)
        summary = build(args.build, _sources(groups), jobs=2, progress=False)
        print(f"built {summary.bytes / 1e6:.0f} MB, {summary.files} files: {made}")
        return
    snippets = probes(args.linux, args.probes)
    with EmbeddedIndex(args.index) as idx:
        matcher = Matcher(idx)
        for q, name in snippets[:10] + snippets[-10:]:  # as in_process: imports, page cache
            matcher.check(q, path=name)
        passes = []
        for _ in range(args.rounds):
            results, _, cpu = timed(lambda probe: matcher.check(probe[0], path=probe[1]), snippets)
            passes.append(cpu)
    first = passes[0]
    best = [min(p[i] for p in passes) for i in range(len(snippets))]
    print(
        f"CPU ms, first pass: p50 {statistics.median(first):.2f} p99 {pct(first, 99):.2f}; "
        f"best of {args.rounds}: p50 {statistics.median(best):.2f} p99 {pct(best, 99):.2f}"
    )
    for i in sorted(range(len(best)), key=lambda i: -best[i])[: args.slowest]:
        text, name = snippets[i]
        print(f"  #{i:3d} {best[i]:6.2f} ms  {name} ({len(text)} chars, {len(results[i])} matches)")
    if args.out:
        args.out.write_text(
            json.dumps({"results": [[m.model_dump() for m in r] for r in results], "cpu_ms": best})
        )


if __name__ == "__main__":
    main()
