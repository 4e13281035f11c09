"""Load on a `code-search serve` process over loopback: many clients posting /v1/check at once.
Shared by bench/bench_service.py (the figures) and tests/service/test_service_load.py (zero
errors under load)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CLIENTS = 16


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def service(index: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`code-search serve --index INDEX` on a free loopback port, once /healthz answers."""
    port = _free_port()
    cmd = [sys.executable, "-m", "membership", "serve", "--index", str(index), "--port", str(port)]
    # The access log goes to a file: an unread pipe would fill up and stall the server.
    with log.open("w") as out:
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
            yield url, server
        finally:
            server.terminate()
            server.wait(timeout=30)


def check_bodies(files: list[Path]) -> list[dict[str, Any]]:
    """Request bodies: 30 verbatim lines of each file (most match), the same lines sorted
    (mostly no match), and one batch of eight snippets."""
    texts = []
    for n, f in enumerate(files[:24]):
        lines = f.read_text().splitlines(keepends=True)
        texts.append("".join(lines[n : n + 30]))
        texts.append("".join(sorted(lines[n : n + 30])))
    bodies: list[dict[str, Any]] = [
        {"snippets": [{"id": i, "text": t, "path": "q.py"}]} for i, t in enumerate(texts)
    ]
    bodies.append({"snippets": [{"text": t} for t in texts[:8]]})
    return bodies


@dataclass
class Load:
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, every answered request
    errors: list[str] = field(default_factory=list)
    per_client: list[int] = field(default_factory=lambda: [0] * CLIENTS)


def hammer(url: str, bodies: list[dict[str, Any]], seconds: float) -> Load:
    """CLIENTS threads posting ``bodies`` in turn for ``seconds``; an answer is an error unless
    it is 200 with one result per snippet."""
    load = Load(seconds)
    lock = threading.Lock()
    # Clients are made first (each builds an SSL context: slow) and start together.
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)
    stop = 0.0

    def client(k: int) -> None:
        http = clients[k]
        start.wait()
        i = k
        while True:
            body = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            try:
                r = http.post("/v1/check", json=body)
                ok = r.status_code == 200 and len(r.json()["results"]) == len(body["snippets"])
                problem = None if ok else f"{r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as exc:
                problem = repr(exc)
            with lock:
                load.latencies.append(time.perf_counter() - t0)
                load.per_client[k] += 1
                if problem:
                    load.errors.append(problem)
            i += 1
            if time.monotonic() >= stop:  # checked after a request: every client sends one
                return

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    stop = time.monotonic() + seconds
    start.wait()
    for t in threads:
        t.join()
    for http in clients:
        http.close()
    return load


def warm_up(url: str, bodies: list[dict[str, Any]]) -> None:
    """Lazy imports, caches and allocator arenas, before anything is measured."""
    for body in bodies:
        r = httpx.post(f"{url}/v1/check", json=body, timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"warm-up answered {r.status_code}: {r.text[:200]}")
    hammer(url, bodies, 1.0)
