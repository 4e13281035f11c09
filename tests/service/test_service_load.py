"""Load over loopback: 16 concurrent clients for a few seconds against /v1/check.

Asserts correctness under load (no errors, every answer as expected) and bounded memory; prints
latency and throughput figures but asserts none (a shared CI machine gives noisy timings)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENTS = 16
SECONDS = 3.0
RSS_GROWTH_LIMIT = 64 * 2**20


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hammer(url: str, bodies: list[dict], seconds: float) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    # Clients are made first (each builds an SSL context: slow) and start together.
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)
    stop = 0.0

    def client(k: int) -> None:
        http = clients[k]
        start.wait()
        i = k
        while time.monotonic() < stop:
            body = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            try:
                r = http.post("/v1/check", json=body)
                ok = r.status_code == 200 and len(r.json()["results"]) == len(body["snippets"])
                problem = None if ok else f"{r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as exc:
                problem = repr(exc)
            with lock:
                latencies.append(time.perf_counter() - t0)
                if problem:
                    errors.append(problem)
            i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    stop = time.monotonic() + seconds
    start.wait()
    for t in threads:
        t.join()
    for http in clients:
        http.close()
    return latencies, errors


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_sixteen_clients_no_errors_bounded_memory(
    service_index: Path, service_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "membership",
        "serve",
        "--index",
        str(service_index),
        "--port",
        str(port),
    ]
    # The access log goes to a file: an unread pipe would fill up and stall the server.
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the service did not start in 60 s"
            time.sleep(0.1)
        files = sorted(service_corpus.glob("*.py"))
        texts = []
        for n, f in enumerate(files[:24]):
            lines = f.read_text().splitlines(keepends=True)
            texts.append("".join(lines[n : n + 30]))  # verbatim: most match
            texts.append("".join(sorted(lines[n : n + 30])))  # shuffled: mostly no match
        bodies = [{"snippets": [{"id": i, "text": t, "path": "q.py"}]} for i, t in enumerate(texts)]
        bodies.append({"snippets": [{"text": t} for t in texts[:8]]})

        for body in bodies:  # warm-up: lazy imports, caches, allocator arenas
            assert httpx.post(f"{url}/v1/check", json=body, timeout=60).status_code == 200
        _hammer(url, bodies, 1.0)
        before = _rss(server.pid)
        latencies, errors = _hammer(url, bodies, SECONDS)
        after = _rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    assert errors == [], errors[:5]
    assert len(latencies) > CLIENTS
    lat = np.asarray(latencies) * 1000
    rate = len(lat) / SECONDS
    with capsys.disabled():  # the figures are the point of running it: always show them
        print(
            f"\nload: {CLIENTS} clients, {len(lat)} requests in {SECONDS:.0f} s, {rate:.0f} req/s; "
            f"p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms; "
            f"RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB ({os.cpu_count()} CPUs)"
        )
    assert after - before < RSS_GROWTH_LIMIT, f"RSS grew by {(after - before) / 2**20:.0f} MiB under load"
