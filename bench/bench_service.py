"""Membership service under load: 16 concurrent clients posting /v1/check to `code-search serve`
over loopback. Prints throughput, latency and RSS growth beside a same-run baseline (the same
requests checked in-process by one thread, no HTTP) and the targets; asserts nothing.

    .venv/bin/python bench/bench_service.py [--quick] [--seconds 10]

The corpus is the json and email packages of this Python's standard library (as the service
tests use); the index is built in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.service_load import CLIENTS, check_bodies, hammer, rss, service, warm_up  # noqa: E402

# The figures tests/service/test_service_load.py asserted until 2026-12 (they belong here: a
# shared CI machine makes any timing threshold in a test flaky).
RSS_GROWTH_LIMIT = 64 * 2**20  # bytes the server may grow by during the measured run
MIN_REQUESTS_PER_CLIENT_S = 1.0 / 3  # the old floor: more requests than clients in 3 s
PACKAGES = ("json", "email")


def corpus(dest: Path) -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for pkg in PACKAGES:
        for f in sorted((stdlib / pkg).glob("*.py")):
            target = dest / f"{pkg}_{f.name}"
            shutil.copy(f, target)
            out.append(target)
    return out


def in_process_rate(index: Path, bodies: list[dict], seconds: float) -> float:
    """Requests a second when one thread checks the same bodies without HTTP."""
    from index.store import EmbeddedIndex
    from membership import Matcher

    with EmbeddedIndex(index) as idx:
        matcher = Matcher(idx)
        for body in bodies:  # warm, as the service is
            for s in body["snippets"]:
                matcher.check(s["text"], path=s.get("path"))
        done, stop = 0, time.monotonic() + seconds
        while time.monotonic() < stop:
            for s in bodies[done % len(bodies)]["snippets"]:
                matcher.check(s["text"], path=s.get("path"))
            done += 1
    return done / seconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 s of load instead of 10")
    ap.add_argument("--seconds", type=float, default=None)
    args = ap.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)

    from index.builder import build
    from index.config import BuildLimits
    from index.sources import open_source

    work = Path(tempfile.mkdtemp(prefix="stacklens-bench-service-"))
    try:
        src = work / "src"
        src.mkdir()
        files = corpus(src)
        index = work / "idx"
        build(index, [open_source(str(src), BuildLimits(), repo="python/cpython")], progress=False)
        bodies = check_bodies(files)
        baseline = in_process_rate(index, bodies, min(seconds, 3.0))
        with service(index, work / "serve.log") as (url, server):
            warm_up(url, bodies)
            before = rss(server.pid)
            load = hammer(url, bodies, seconds)
            after = rss(server.pid)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lat = np.asarray(load.latencies) * 1000
    rate = len(lat) / seconds
    growth = after - before
    floor = MIN_REQUESTS_PER_CLIENT_S * CLIENTS
    print(
        f"service load: {CLIENTS} clients for {seconds:.0f} s on {os.cpu_count()} CPUs, "
        f"{len(files)} files indexed"
    )
    print(f"  {'':28} {'measured':>12} {'baseline/target':>18}")
    print(f"  {'requests/s':28} {rate:12.1f} {baseline:14.1f} (1 thread in-process)")
    print(f"  {'requests/s (floor)':28} {rate:12.1f} {floor:14.1f} {'met' if rate > floor else 'NOT MET'}")
    print(f"  {'p50 / p99 latency, ms':28} {np.percentile(lat, 50):5.1f} / {np.percentile(lat, 99):5.1f}")
    print(
        f"  {'RSS growth, MiB':28} {growth / 2**20:12.1f} {RSS_GROWTH_LIMIT / 2**20:14.0f} "
        f"{'met' if growth < RSS_GROWTH_LIMIT else 'NOT MET'} "
        f"({before / 2**20:.0f} -> {after / 2**20:.0f} MiB)"
    )
    print(f"  {'errors':28} {len(load.errors):12d} {0:14d} {'met' if not load.errors else 'NOT MET'}")
    results = ROOT / "bench" / "results" / f"service{'_quick' if args.quick else ''}.json"
    results.write_text(
        json.dumps(
            {
                "clients": CLIENTS,
                "seconds": seconds,
                "cpus": os.cpu_count(),
                "requests_per_s": round(rate, 1),
                "baseline_in_process_requests_per_s": round(baseline, 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 2),
                "p99_ms": round(float(np.percentile(lat, 99)), 2),
                "rss_growth_mib": round(growth / 2**20, 1),
                "rss_growth_limit_mib": RSS_GROWTH_LIMIT / 2**20,
                "errors": len(load.errors),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"  written: {results.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
