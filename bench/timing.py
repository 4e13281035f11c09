"""Per-call latency for the benchmarks: wall and CPU milliseconds of each call, as measured
the same way by every benchmark (CPU time is the thread's: noisy neighbours barely move it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def timed(call: Callable[[T], R], items: Iterable[T]) -> tuple[list[R], list[float], list[float]]:
    """``call(item)`` for each item: (results, wall ms, CPU ms), in order."""
    results: list[R] = []
    wall: list[float] = []
    cpu: list[float] = []
    for item in items:
        t, c = time.perf_counter(), time.thread_time()
        results.append(call(item))
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
    return results, wall, cpu
