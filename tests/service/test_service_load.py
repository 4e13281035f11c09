"""Load over loopback: 16 concurrent clients for a few seconds against /v1/check.

Asserts correctness under load: no errors, every answer as expected, every client answered.
Throughput, latency and memory growth are figures, printed here and measured against their
targets by bench/bench_service.py (a shared CI machine gives noisy timings)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.service_load import CLIENTS, check_bodies, hammer, rss, service, warm_up

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECONDS = 3.0


def test_sixteen_clients_no_errors(
    service_index: Path, service_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = check_bodies(sorted(service_corpus.glob("*.py")))
    with service(service_index, tmp_path / "serve.log") as (url, server):
        # Before the load: what each body must get back, so that answers under load are
        # compared with answers, not only counted.
        expected = [httpx.post(f"{url}/v1/check", json=b, timeout=60).json() for b in bodies]
        assert sum(bool(r["matches"]) for e in expected for r in e["results"]) >= len(bodies) // 3
        warm_up(url, bodies)
        before = rss(server.pid)
        load = hammer(url, bodies, SECONDS)
        after = rss(server.pid)
        again = [httpx.post(f"{url}/v1/check", json=b, timeout=60).json() for b in bodies]

    assert load.errors == [], load.errors[:5]
    assert all(n >= 1 for n in load.per_client), load.per_client  # every client was answered
    assert again == expected, "answers changed after the load"
    lat = np.asarray(load.latencies) * 1000
    with capsys.disabled():  # the figures are the point of running it: always show them
        print(
            f"\nload: {CLIENTS} clients, {len(lat)} requests in {SECONDS:.0f} s, "
            f"{len(lat) / SECONDS:.0f} req/s; "
            f"p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms; "
            f"RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB ({os.cpu_count()} CPUs; "
            "targets: bench/bench_service.py)"
        )
