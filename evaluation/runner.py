"""Runs a benchmark for one or more settings: completions with bounded concurrency, the tests in
the sandbox, the membership check; one JSON line per finished (setting, task, sample), so an
interrupted run keeps what it did and the next run with the same ``--out`` goes on from there."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stacklens.errors import InputError, StacklensError

from .completer import Outcome
from .datasets import Benchmark, Task
from .memorise import Memorisation
from .sandbox import Limits, kill_all, run_python
from .score import edit_similarity, exact_match, middle

TASKS_FILE = "tasks.jsonl"
RUN_FILE = "run.json"


class Completer(Protocol):
    name: str

    async def start(self) -> None: ...

    async def complete(self, task: Task, sample: int) -> Outcome: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Setup:
    """One setting to evaluate: its name, what the report shows of it, and how to build it."""

    name: str
    described: dict[str, Any]
    make: Callable[[], Completer]


@dataclass(frozen=True)
class RunOptions:
    out: Path
    samples: int = 1
    concurrency: int = 1
    exec_workers: int = max(1, os.cpu_count() or 1)
    limits: Limits = field(default_factory=Limits)
    progress: bool = True


def prompt_hash(task: Task) -> str:
    data = (task.prompt + "\0" + task.suffix).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:16]


def _fingerprint(bench: Benchmark, setups: list[Setup], opts: RunOptions) -> dict[str, Any]:
    ids = hashlib.sha256("\n".join(t.task_id + prompt_hash(t) for t in bench.tasks).encode()).hexdigest()
    return {
        "benchmark": bench.name,
        "tasks": len(bench.tasks),
        "tasks_sha256": ids[:16],
        "samples": opts.samples,
        "settings": {s.name: s.described for s in setups},
    }


def prepare_out(
    bench: Benchmark, setups: list[Setup], opts: RunOptions, fresh: bool
) -> set[tuple[str, str, int]]:
    """Create ``opts.out`` (or check that it holds this same run) and return what is done."""
    opts.out.mkdir(parents=True, exist_ok=True)
    run_file, tasks_file = opts.out / RUN_FILE, opts.out / TASKS_FILE
    want = _fingerprint(bench, setups, opts)
    if fresh:
        tasks_file.unlink(missing_ok=True)
    elif run_file.is_file() and tasks_file.is_file():
        have = json.loads(run_file.read_text(encoding="utf-8"))
        if have.get("fingerprint") != want:
            raise InputError(
                f"{opts.out} holds another run ({have.get('fingerprint', {}).get('benchmark')}, other "
                "tasks or settings): give another --out, or --fresh to start this one over"
            )
    run_file.write_text(json.dumps({"fingerprint": want}, indent=1) + "\n", encoding="utf-8")
    return done_keys(tasks_file)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The per-task records; a line cut short by a crash is skipped (it is redone)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            out.append(row)
    return out


def done_keys(path: Path) -> set[tuple[str, str, int]]:
    return {(r["setting"], r["task_id"], r["sample"]) for r in read_records(path)}


class _Writer:
    def __init__(self, path: Path) -> None:
        # Drop a last line cut short by a crash, so appended records start on a line of their own.
        if path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                path.write_bytes(data[: data.rfind(b"\n") + 1])
        self.f = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def _progress(total: int, initial: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="task", file=sys.stderr, disable=not enabled)


async def _one(
    task: Task,
    sample: int,
    setup: Setup,
    completer: Completer,
    bench: Benchmark,
    opts: RunOptions,
    memo: Memorisation | None,
    sems: tuple[asyncio.Semaphore, asyncio.Semaphore],
    pool: ThreadPoolExecutor,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    async with sems[0]:
        outcome = await completer.complete(task, sample)
    filled = middle(task, outcome.text)
    record: dict[str, Any] = {
        "setting": setup.name,
        "task_id": task.task_id,
        "sample": sample,
        "prompt_sha256": prompt_hash(task),
        "completion": outcome.text,
        "exact_match": exact_match(task, filled),
        "edit_similarity": round(edit_similarity(task, filled), 4),
        "latency_ms": round(outcome.latency_ms, 2),
        "ttft_ms": None if outcome.ttft_ms is None else round(outcome.ttft_ms, 2),
        "tokens": outcome.tokens,
        "generation_ms": None if outcome.generation_ms is None else round(outcome.generation_ms, 2),
        "passed": None,
        "verdict": "scored",
        "error": outcome.error,
        "matches": [],
    }
    if outcome.error:
        record["verdict"] = "error"
        record["passed"] = False if bench.executes else None
    elif bench.executes:
        async with sems[1]:
            result = await loop.run_in_executor(pool, run_python, task.program(filled), opts.limits)
        record.update(passed=result.passed, verdict=result.verdict, error=result.error or None)
    if memo is not None and outcome.text.strip():
        try:
            record["matches"] = await loop.run_in_executor(
                pool, memo.check, task.prompt, outcome.text, task.language, task.path
            )
        except StacklensError as exc:  # the service went away: this completion is unchecked
            record.update(matches=None, membership_error=str(exc))
    return record


async def _run_setup(
    bench: Benchmark,
    setup: Setup,
    opts: RunOptions,
    memo: Memorisation | None,
    done: set[tuple[str, str, int]],
    writer: _Writer,
    pool: ThreadPoolExecutor,
) -> None:
    todo = [
        (t, s) for t in bench.tasks for s in range(opts.samples) if (setup.name, t.task_id, s) not in done
    ]
    total = len(bench.tasks) * opts.samples
    bar = _progress(total, total - len(todo), opts.progress, setup.name)
    if not todo:
        bar.close()
        return
    completer = setup.make()
    started = time.perf_counter()
    await completer.start()
    bar.set_postfix_str(f"ready in {time.perf_counter() - started:.1f} s")
    sems = (asyncio.Semaphore(opts.concurrency), asyncio.Semaphore(opts.exec_workers))
    jobs = [
        asyncio.ensure_future(_one(t, s, setup, completer, bench, opts, memo, sems, pool)) for t, s in todo
    ]
    try:
        for fut in asyncio.as_completed(jobs):
            writer.write(await fut)
            bar.update(1)
    finally:
        for j in jobs:
            j.cancel()
        bar.close()
        await completer.aclose()


async def run(
    bench: Benchmark,
    setups: list[Setup],
    opts: RunOptions,
    memo: Memorisation | None = None,
    fresh: bool = False,
) -> None:
    """Evaluate every setup on ``bench``; records go to ``opts.out``/tasks.jsonl as they finish."""
    done = prepare_out(bench, setups, opts, fresh)
    writer = _Writer(opts.out / TASKS_FILE)
    pool = ThreadPoolExecutor(max_workers=opts.exec_workers + 1, thread_name_prefix="stacklens-eval")
    try:
        for setup in setups:
            await _run_setup(bench, setup, opts, memo, done, writer, pool)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        kill_all()  # an interrupted run leaves no test processes behind
        writer.close()
