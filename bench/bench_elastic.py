"""Elasticsearch store vs embedded store on the same corpus: build time, index size, and query
latency through the same `Matcher` (medians, p99, ratios).

The Elasticsearch size is measured force-merged right after the build, and "settled": without the
``_recovery_source`` copies of the indexed JSON that Elasticsearch keeps for indices without a
full ``_source`` until its retention lease moves past them (about 30 s) and a merge drops them;
on a large or long-lived index that is what stays on disk.

    .venv/bin/python bench/bench_elastic.py [--corpus-mb 4] [--queries 200] [--es-url URL]

Without --es-url a throw-away Elasticsearch is started with scripts/elasticsearch.sh (provision
it first: `bash scripts/provision/elasticsearch.sh`). The corpus is Python's standard library.

Wall times on a shared machine are noisy, so CPU seconds are printed too: the bench process with
its build workers ("client"), and Elasticsearch's own process (its node statistics), for the
build and per query.

Elasticsearch is warmed first (``--warmup-mb``: a small store built, queried and deleted), as a
cluster that serves queries has long been: a JVM started minutes before compiles its hot paths
during the first builds and queries, which on this 2-core machine measured the build at
1.29-1.56 MB/s and 17-21 ms of Elasticsearch CPU a query in the first two runs on a fresh
node, and 2.56 MB/s and 6 ms from the third on (24 MB, same code).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import python_files, stdlib_root, take_bytes  # noqa: E402
from elasticsearch import Elasticsearch  # noqa: E402

from index.builder import build  # noqa: E402
from index.config import BuildLimits  # noqa: E402
from index.elastic import ElasticIndex, build_elastic  # noqa: E402
from index.sources import open_source  # noqa: E402
from index.store import EmbeddedIndex  # noqa: E402
from membership.query import Matcher  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def make_corpus(dest: Path, mb: float) -> tuple[list[Path], list[Path]]:
    """Copies of stdlib files (about ``mb`` MB) and held-out files for negative queries."""
    files = python_files(stdlib_root())
    random.Random(0).shuffle(files)
    chosen = take_bytes(files, int(mb * 1e6))
    held_out = files[len(chosen) : len(chosen) + 200]
    dest.mkdir(parents=True)
    copies = []
    for i, f in enumerate(chosen):
        copies.append(dest / f"{i:05d}_{f.name}")
        shutil.copy(f, copies[-1])
    return copies, held_out


def make_queries(indexed: list[Path], held_out: list[Path], n: int) -> list[str]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        lines = rng.choice(indexed if i % 4 else held_out).read_text().splitlines(keepends=True)
        size = rng.randint(10, 40)
        start = rng.randrange(0, max(1, len(lines) - size))
        out.append("".join(lines[start : start + size]))
    return out


def cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the build's worker pool)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def es_cpu_s(url: str) -> float:
    """CPU seconds Elasticsearch's process has used (single node): from /proc when it runs
    here, since the node statistics refresh only every second or so."""
    with Elasticsearch(url, request_timeout=60) as es:
        nodes = es.nodes.info(metric="process")["nodes"]
        pids = [n["process"]["id"] for n in nodes.values()]
        try:
            ticks = 0
            for pid in pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
            return ticks / os.sysconf("SC_CLK_TCK")
        except OSError:
            stats = es.nodes.stats(metric="process")["nodes"]
            return float(sum(n["process"]["cpu"]["total_in_millis"] for n in stats.values())) / 1000


def timed(matcher: Matcher, queries: list[str]) -> tuple[list[float], int, float]:
    """Wall ms per query, queries matched, CPU ms of this process per query."""
    for q in queries[:10]:  # warm caches, lazy imports, JIT of the JVM
        matcher.check(q)
    times, found = [], 0
    c0 = time.process_time()
    for q in queries:
        t0 = time.perf_counter()
        found += bool(matcher.check(q, path="q.py"))
        times.append((time.perf_counter() - t0) * 1000)
    return times, found, (time.process_time() - c0) * 1000 / len(queries)


def warm_up(url: str, work: Path, mb: float, jobs: int) -> None:
    """Build a throw-away store of ``mb`` MB twice, query it, delete it: the node's JIT then has
    compiled the build's and the lookups' paths."""
    files, held_out = make_corpus(work, mb)
    source = open_source(str(work), BuildLimits(), repo="python/cpython")
    name = f"bench-warmup-{int(time.time())}"
    for _ in range(2):
        build_elastic(url, name, [source], jobs=jobs, progress=False)
        with ElasticIndex(url, name) as elastic:
            timed(Matcher(elastic), make_queries(files, held_out, 200))
            elastic.es.indices.delete(index=f"{name}-*")
    shutil.rmtree(work, ignore_errors=True)


def settle(es: Any, name: str, seconds: float) -> None:
    """Wait ``seconds`` (past the retention lease after which Elasticsearch drops the
    ``_recovery_source`` copies, ~30 s, and merges), then until no merge runs: queries measured
    while the build's merges ran read 12-20 ms of Elasticsearch CPU a query, 7.5 ms settled."""
    time.sleep(seconds)
    for _ in range(120):
        stats = es.indices.stats(index=f"{name}-*", metric="merge")["_all"]["total"]["merges"]
        if stats["current"] == 0:
            return
        time.sleep(0.5)


def start_es(run_dir: Path) -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/elasticsearch.sh"), "start", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        sys.exit(f"could not start Elasticsearch: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus-mb", type=float, default=4.0, help="corpus size (default 4 MB)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--es-url", help="an Elasticsearch to use (default: start one)")
    ap.add_argument("--quick", action="store_true", help="1 MB corpus, 50 queries, 1 MB warm-up, no settling")
    ap.add_argument("--warmup-mb", type=float, default=4.0, help="warm-up store first (0: none)")
    ap.add_argument(
        "--settle-s", type=float, default=40.0, help="wait before the queries for merges to end (0: none)"
    )
    args = ap.parse_args()
    if args.quick:
        args.corpus_mb, args.queries, args.warmup_mb, args.settle_s = 1.0, 50, 1.0, 0.0

    work = Path(tempfile.mkdtemp(prefix="bench-elastic-"))
    work.chmod(0o755)  # Elasticsearch runs as another user and must reach run_dir
    run_dir = work / "es"
    run_dir.mkdir()
    run_dir.chmod(0o755)
    url = args.es_url or start_es(run_dir)
    try:
        if args.warmup_mb > 0:
            warm_up(url, work / "warmup", args.warmup_mb, args.jobs)
        files, held_out = make_corpus(work / "corpus", args.corpus_mb)
        mb = sum(f.stat().st_size for f in files) / 1e6
        source = open_source(str(work / "corpus"), BuildLimits(), repo="python/cpython")
        t0, c0 = time.perf_counter(), cpu_s()
        build(work / "embedded", [source], jobs=args.jobs, progress=False)
        emb_build, emb_cpu = time.perf_counter() - t0, cpu_s() - c0
        name = f"bench-{int(time.time())}"
        t0, c0, e0 = time.perf_counter(), cpu_s(), es_cpu_s(url)
        build_elastic(url, name, [source], jobs=args.jobs, progress=False)
        es_build, es_cpu, es_side = time.perf_counter() - t0, cpu_s() - c0, es_cpu_s(url) - e0

        embedded, elastic = EmbeddedIndex(work / "embedded"), ElasticIndex(url, name)
        es = elastic.es.options(request_timeout=600)
        es.indices.forcemerge(index=f"{name}-*", max_num_segments=1)
        emb_size, es_size = embedded.size_bytes(), elastic.size_bytes()
        stats = es.indices.stats(index=f"{name}-*", metric="store")["indices"]
        parts = {k: v["primaries"]["store"]["size_in_bytes"] / 1e6 for k, v in sorted(stats.items())}
        with warnings.catch_warnings():  # the disk usage API is a technical preview
            warnings.simplefilter("ignore")
            usage = es.indices.disk_usage(index=f"{name}-*", run_expensive_tasks=True)
        recovery = {
            k: v["fields"].get("_recovery_source", {}).get("total_in_bytes", 0) / 1e6
            for k, v in usage.body.items()
            if k != "_shards"
        }
        if args.settle_s > 0:
            settle(es, name, args.settle_s)
        queries = make_queries(files, held_out, args.queries)
        emb_ms, emb_found, emb_qcpu = timed(Matcher(embedded), queries)
        e0 = es_cpu_s(url)
        es_ms, es_found, es_qcpu = timed(Matcher(elastic), queries)
        es_qside = (es_cpu_s(url) - e0) * 1000 / len(queries)
        es.indices.delete(index=f"{name}-*")
    finally:
        if not args.es_url:
            subprocess.run(["bash", str(ROOT / "scripts/elasticsearch.sh"), "stop", str(run_dir)])
        shutil.rmtree(work, ignore_errors=True)

    print(f"corpus: {len(files)} files, {mb:.1f} MB of Python; {len(queries)} queries (3/4 indexed)")
    print(f"{'':24}{'embedded':>12}{'elasticsearch':>15}{'ratio es/emb':>14}")
    rows = [
        ("build s", emb_build, es_build),
        ("build MB/s", mb / emb_build, mb / es_build),
        ("build CPU s, client", emb_cpu, es_cpu),
        ("build CPU s, all", emb_cpu, es_cpu + es_side),
        ("build MB per CPU s", mb / emb_cpu, mb / (es_cpu + es_side)),
        ("index MB", emb_size / 1e6, es_size / 1e6),
        ("index / corpus", emb_size / 1e6 / mb, es_size / 1e6 / mb),
        ("index / corpus, settled", emb_size / 1e6 / mb, (es_size / 1e6 - sum(recovery.values())) / mb),
        ("query median ms", statistics.median(emb_ms), statistics.median(es_ms)),
        ("query p99 ms", pct(emb_ms, 99), pct(es_ms, 99)),
        ("query CPU ms, client", emb_qcpu, es_qcpu),
        ("query CPU ms, all", emb_qcpu, es_qcpu + es_qside),
        ("queries matched", emb_found, es_found),
    ]
    for label, a, b in rows:
        print(f"{label:24}{a:12.2f}{b:15.2f}{b / a if a else float('nan'):14.2f}")
    print(
        "elasticsearch indices: "
        + ", ".join(f"{k} {v:.1f} MB ({recovery.get(k, 0):.1f} MB recovery copies)" for k, v in parts.items())
    )


if __name__ == "__main__":
    main()
