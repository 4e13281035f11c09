"""Membership benchmark: quality (detected / attributed / located / false positives) in seven
languages beside the Data Portraits and Moss-style baselines (quality.py), and speed and size
(build throughput, index size, open time, query latency in-process and through the CLI) beside
the Data Portraits baseline, all measured in the same run.

    .venv/bin/python bench/bench_membership.py [--quick] [--lang go rust] [--dump-misses FILE]
        [--speed-corpus python|multi] [--skip-speed] [--skip-quality] [--out bench/results]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality
import quality_report
from corpora import load
from corpus import python_files, site_roots, split, stdlib_root, take_bytes
from dataportraits import Portrait
from fetch_corpora import LANGS
from timing import timed

from index.builder import build
from index.config import BuildLimits, FingerprintParams
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from membership.query import Matcher
from stacklens.errors import InputError


def _sources(files: list[Path], roots: list[Path]) -> list[DirectorySource]:
    by_root: dict[Path, list[Path]] = {}
    for f in files:
        root = next(r for r in roots if f.is_relative_to(r))
        by_root.setdefault(root, []).append(f)
    return [
        DirectorySource(r, BuildLimits(), paths=tuple(f.relative_to(r).as_posix() for f in fs))
        for r, fs in by_root.items()
    ]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def _queries(files: list[Path], count: int, seed: int = 3) -> list[tuple[str, str]]:
    """Snippets of 300-2,000 characters and the name of the file each came from."""
    import random

    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    while len(out) < count:
        path = rng.choice(files)
        text = path.read_text()
        if len(text) < 2500:
            continue
        n = rng.randint(300, 2000)
        start = rng.randrange(0, len(text) - n)
        out.append((text[start : start + n], path.name))
    return out


def _speed_corpus(kind: str) -> tuple[list[Path], list[Path], list[Path]]:
    """(roots, indexed files, held-out files) for the speed runs."""
    if kind == "python":
        roots = [stdlib_root(), *site_roots()]
        files = python_files(roots[0])
        for r in roots[1:]:
            files += python_files(r, skip_site=False)
        return roots, *split(files, 0.85)
    # Every language, up to 22 MB each (about 130 MB, 110 MB of it indexed), interleaved so
    # that each size step of the scaling run holds all of them.
    corpora = [load(lang, 22_000_000) for lang in LANGS]
    key = {
        p: hashlib.sha1(f"{c.lang}/{c.rel(p)}".encode()).digest()
        for c in corpora
        for p in c.indexed + c.held_out
    }
    seen, unseen = split(sorted(key, key=key.__getitem__), 0.85)
    seen.sort(key=key.__getitem__)
    return [c.root for c in corpora], seen, unseen


def speed(args: argparse.Namespace, workdir: Path) -> dict:
    roots, seen, unseen = _speed_corpus(args.speed_corpus)
    total = sum(p.stat().st_size for p in seen)
    sizes = [10_000_000, 30_000_000, total] if not args.quick else [3_000_000, 10_000_000]
    results = []
    probes_unseen = _queries(unseen, 200 if args.quick else 500)
    for target in sizes:
        subset = take_bytes(seen, target)
        corpus_bytes = sum(p.stat().st_size for p in subset)
        path = workdir / f"speed-{target}"
        # One worker: CPU seconds of this process are the per-core cost, and stay meaningful
        # when other jobs share the machine (wall time is reported beside them).
        jobs = 1
        params = FingerprintParams(kgram=args.kgram, window=args.window)
        t0, c0 = time.perf_counter(), time.process_time()
        build(path, _sources(subset, roots), params=params, jobs=jobs, progress=False)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        opens = []
        for _ in range(20):
            t = time.perf_counter()
            EmbeddedIndex(path).close()
            opens.append((time.perf_counter() - t) * 1000)
        idx = EmbeddedIndex(path)
        matcher = Matcher(idx)
        probes = _queries(subset, len(probes_unseen)) + probes_unseen
        for q, name in probes[:20]:
            matcher.check(q, path=name)  # warm caches and imports
        _, lat, cpu = timed(lambda probe, m=matcher: m.check(probe[0], path=probe[1]), probes)
        portrait = Portrait()
        t0 = time.perf_counter()
        for p in subset:
            portrait.add(p.read_text())
        dp_build_s = time.perf_counter() - t0
        _, dp_lat, dp_cpu = timed(portrait.hits, [q for q, _ in probes])
        row = {
            "corpus_mb": corpus_bytes / 1e6,
            "files": len(subset),
            "build_jobs": jobs,
            "build_s": build_s,
            "build_mb_s_per_core": corpus_bytes / 1e6 / build_cpu,
            "build_wall_s": build_s,
            "index_mb": idx.size_bytes() / 1e6,
            "size_ratio": idx.size_bytes() / corpus_bytes,
            "open_ms_p50": statistics.median(opens),
            "query_ms_p50": statistics.median(lat),
            "query_ms_p99": pct(lat, 99),
            "query_cpu_ms_p50": statistics.median(cpu),
            "query_cpu_ms_p99": pct(cpu, 99),
            "dp_build_s": dp_build_s,
            "dp_size_ratio": portrait.bloom_bytes() / corpus_bytes,
            "dp_query_ms_p50": statistics.median(dp_lat),
            "dp_query_ms_p99": pct(dp_lat, 99),
            "dp_query_cpu_ms_p50": statistics.median(dp_cpu),
            "dp_query_cpu_ms_p99": pct(dp_cpu, 99),
        }
        idx.close()
        results.append(row)
        print(
            f"[speed] {row['corpus_mb']:.0f} MB: build {row['build_mb_s_per_core']:.2f} MB/s per core "
            f"(CPU time), size x{row['size_ratio']:.3f}, open {row['open_ms_p50']:.2f} ms, "
            f"query p50 {row['query_ms_p50']:.2f} ms p99 {row['query_ms_p99']:.2f} ms "
            f"(CPU p50 {row['query_cpu_ms_p50']:.2f} p99 {row['query_cpu_ms_p99']:.2f}) | "
            f"DP: size x{row['dp_size_ratio']:.3f}, query p50 {row['dp_query_ms_p50']:.2f} "
            f"p99 {row['dp_query_ms_p99']:.2f} ms (CPU p99 {row['dp_query_cpu_ms_p99']:.2f})",
            flush=True,
        )
    big = workdir / f"speed-{sizes[-1]}"
    batch = workdir / "batch.jsonl"
    with batch.open("w") as f:
        for i, (q, name) in enumerate(probes):
            f.write(json.dumps({"id": i, "query": q, "path": name}) + "\n")
    exe = Path(sys.executable).parent / "code-search"
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "membership"]
    # The code of this checkout, also when the installed command points at another one.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    t = time.perf_counter()
    subprocess.run(
        [*cli, "query", "--index", str(big), "--batch", str(batch)], capture_output=True, check=False, env=env
    )
    batch_s = time.perf_counter() - t
    single = workdir / "one.jsonl"
    single.write_text(json.dumps({"id": 0, "query": probes[0][0], "path": probes[0][1]}) + "\n")
    starts = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(
            [*cli, "query", "--index", str(big), "--batch", str(single)],
            capture_output=True,
            check=False,
            env=env,
        )
        starts.append(time.perf_counter() - t)
    cli_row = {
        "queries": len(probes),
        "batch_ms_per_query": batch_s * 1000 / len(probes),
        "process_ms_one_query": statistics.median(starts) * 1000,
    }
    print(
        f"[cli] batch mode: {cli_row['batch_ms_per_query']:.2f} ms/query over {len(probes)} queries "
        f"(incl. start-up); one-query process: {cli_row['process_ms_one_query']:.0f} ms"
    )
    return {"scaling": results, "cli": cli_row}


def plot(speed_rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mb = [r["corpus_mb"] for r in speed_rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(mb, [r["query_cpu_ms_p50"] for r in speed_rows], "o-", label="stacklens p50")
    a.plot(mb, [r["query_cpu_ms_p99"] for r in speed_rows], "o--", label="stacklens p99")
    a.plot(mb, [r["dp_query_cpu_ms_p99"] for r in speed_rows], "s:", label="DP 50/50 p99")
    a.set_xlabel("corpus (MB)")
    a.set_ylabel("query CPU time (ms)")
    a.legend()
    b.plot(mb, [r["index_mb"] for r in speed_rows], "o-", label="stacklens index")
    b.plot(mb, [r["dp_size_ratio"] * r["corpus_mb"] for r in speed_rows], "s:", label="DP Bloom (1% FPR)")
    b.set_xlabel("corpus (MB)")
    b.set_ylabel("index size (MB)")
    b.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def _commit() -> str:
    """HEAD, marked when the product's own folders have uncommitted changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*a: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--", "index", "membership")
    return head + (" + uncommitted index/membership changes" if dirty else "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick", action="store_true", help="40 cases per kind and language, small speed corpora"
    )
    ap.add_argument("--lang", nargs="+", choices=LANGS, help="quality for these languages only")
    ap.add_argument("--dump-misses", metavar="FILE", help="write every case the product missed (JSONL)")
    ap.add_argument("--speed-corpus", choices=("python", "multi"), default="python")
    ap.add_argument("--corpus-mb", type=float, default=8.0, help="source per language (half indexed)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--kgram", type=int, default=FingerprintParams().kgram)
    ap.add_argument("--window", type=int, default=FingerprintParams().window)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    langs = tuple(args.lang or LANGS)
    suffix = ("_quick" if args.quick else "") + ("" if args.lang is None else "_" + "-".join(langs))
    commit = _commit()
    workdir = Path(tempfile.mkdtemp(prefix="stacklens-bench-"))
    params = FingerprintParams(kgram=args.kgram, window=args.window)
    try:
        report: dict = {"commit": commit}
        if not args.skip_quality:
            t = time.perf_counter()
            report["quality"] = quality.run(
                langs,
                int(args.corpus_mb * 1e6),
                40 if args.quick else 150,
                60 if args.quick else 300,
                workdir,
                params,
                args.jobs,
                Path(args.dump_misses) if args.dump_misses else None,
            )
            report["quality"]["seconds"] = time.perf_counter() - t
            text = quality_report.markdown(report["quality"], commit, args.quick)
            print("\n" + text)
            (out / f"membership_quality{suffix}.md").write_text(text + "\n")
            (out / f"membership_quality{suffix}.json").write_text(json.dumps(report["quality"], indent=1))
        if not args.skip_speed:
            report["speed"] = speed(args, workdir)
            report["speed"]["corpus"] = args.speed_corpus
            png = (
                "membership_scaling.png" if args.speed_corpus == "python" else "membership_scaling_multi.png"
            )
            plot(report["speed"]["scaling"], out / png)
        name = (
            f"membership{suffix}.json" if args.speed_corpus == "python" else f"membership_multi{suffix}.json"
        )
        (out / name).write_text(json.dumps(report, indent=1))
        print(f"\nresults written to {out / name}")
    except InputError as e:  # a corpus that could not be fetched
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
