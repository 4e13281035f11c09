"""``stacklens eval``: a completion setup's quality, latency and memorisation in one run.

Exit status: 0 done, 2 error (message on stderr), 130 interrupted (what was done is reported).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stacklens.errors import InputError, StacklensError

from .datasets import BUILTIN, Benchmark, load_builtin, load_jsonl, per_problem
from .sandbox import Limits


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stacklens eval",
        description="Measure a completion setup: pass@k, exact match, edit similarity, latency "
        "and how often completions are found in the training corpus.",
    )
    p.add_argument(
        "--benchmark", required=True, metavar="SET",
        help=f"{' | '.join(BUILTIN)} | FILE.jsonl | repo:DIR",
    )  # fmt: skip
    g = p.add_argument_group("completion settings (as the language server's; STACKLENS_CONFIG applies)")
    g.add_argument("--backend", help="transformers, tgi, huggingface, openai, ollama, llamacpp, stacklens")
    g.add_argument("--model", help="hub id or local directory (transformers); model name for servers")
    g.add_argument("--url", help="the backend server's base URL")
    g.add_argument("--temperature", type=float, help="sampling temperature (default: the settings')")
    g.add_argument(
        "--oracle", action="store_true", help="insert each task's canonical middle (checks the harness)"
    )
    g.add_argument("--compare", metavar="SETTINGS.json", help="a second setting, layered over the first")
    r = p.add_argument_group("the run")
    r.add_argument("--limit", type=int, help="the first N tasks")
    r.add_argument("--per-problem", type=int, metavar="K", help="at most K tasks per HumanEval problem")
    r.add_argument("--samples", type=int, default=1, metavar="K", help="samples per task, for pass@k")
    r.add_argument("--concurrency", type=int, default=1, help="completion requests in flight (default 1)")
    r.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="tests run at once (default: CPUs)")
    r.add_argument("--timeout", type=float, default=10.0, help="seconds per test run (default 10)")
    r.add_argument("--memory-mb", type=int, default=1024, help="address space per test run (default 1024)")
    r.add_argument("--seed", type=int, default=0, help="repo: which lines are masked (default 0)")
    r.add_argument("--open-files", type=int, default=8, help="repo: files open beside the task's (default 8)")
    r.add_argument("--out", default="stacklens-eval", help="output folder (default ./stacklens-eval)")
    r.add_argument("--fresh", action="store_true", help="start over instead of resuming --out")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    m = p.add_argument_group("memorisation (STACKLENS_INDEX / STACKLENS_MEMBERSHIP_URL apply)")
    m.add_argument("--index", help="embedded index of the model's training corpus")
    m.add_argument("--membership-url", help="membership service (code-search serve)")
    m.add_argument("--membership-token", help="its bearer token (or STACKLENS_MEMBERSHIP_TOKEN)")
    m.add_argument("--min-chars", type=int, help="minimum matched characters (default 150)")
    return p


def _benchmark(args: argparse.Namespace) -> Benchmark:
    spec: str = args.benchmark
    if spec.startswith("repo:"):
        from .repo import load_repo

        count = args.limit if args.limit is not None else 100
        bench = load_repo(spec[5:], count=count, seed=args.seed, open_files=args.open_files)
    elif spec in BUILTIN:
        bench = load_builtin(spec)
    elif spec.endswith((".jsonl", ".jsonl.gz")) or Path(spec).is_file():
        bench = load_jsonl(spec)
    else:
        raise InputError(f"unknown benchmark {spec!r}: use {', '.join(BUILTIN)}, FILE.jsonl or repo:DIR")
    tasks = bench.tasks
    if args.per_problem is not None:
        tasks = per_problem(tasks, args.per_problem)
    if args.limit is not None:
        tasks = tasks[: args.limit]
    if not tasks:
        raise InputError("no tasks to run (check --limit / --per-problem)")
    return Benchmark(bench.name, tasks, bench.executes)


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("limit", "per_problem", "samples", "concurrency", "jobs", "open_files"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    if args.oracle and args.compare:
        raise InputError("--oracle needs no --compare: the oracle is the only setting of its run")
    if args.samples > 1 and args.temperature == 0:
        sys.stderr.write("stacklens eval: warning: --samples > 1 at temperature 0 gives k equal samples\n")


def _setups(args: argparse.Namespace, bench: Benchmark) -> list[Any]:
    from .completer import EngineCompleter, OracleCompleter
    from .runner import Setup
    from .settings import compare_settings, completion_settings, shown

    if args.oracle:
        return [Setup("oracle", {"oracle": True}, OracleCompleter)]
    base = completion_settings(
        backend=args.backend, model=args.model, url=args.url, temperature=args.temperature,
        benchmark=args.benchmark,
    )  # fmt: skip
    name = str(base.get("model") or base.get("backend") or "base").rstrip("/").rsplit("/", 1)[-1]
    setups = [Setup(name, shown(base), lambda: EngineCompleter(name, base))]
    if args.compare:
        other = compare_settings(base, args.compare)
        other_name = Path(args.compare).stem
        if other_name == name:
            other_name += "-compare"
        setups.append(Setup(other_name, shown(other), lambda: EngineCompleter(other_name, other)))
    return setups


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from .report import write_report
    from .runner import RunOptions, run
    from .settings import membership_options

    memo = None
    try:
        _check_numbers(args)
        bench = _benchmark(args)
        setups = _setups(args, bench)
        limits = Limits(timeout_s=args.timeout, cpu_s=max(1, int(args.timeout)), memory_mb=args.memory_mb)
        opts = RunOptions(
            out=Path(args.out),
            samples=args.samples,
            concurrency=args.concurrency,
            exec_workers=args.jobs,
            limits=limits,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
        m_opts = membership_options(
            index=args.index, url=args.membership_url, token=args.membership_token, min_chars=args.min_chars
        )
        if m_opts is not None:
            from .memorise import Memorisation

            memo = Memorisation(m_opts)
        info = {
            "benchmark": bench.name,
            "tasks": len(bench.tasks),
            "samples": args.samples,
            "executes": bench.executes,
            "settings": {s.name: s.described for s in setups},
            "membership": memo.describe() if memo else None,
        }
        status = 0
        try:
            asyncio.run(run(bench, setups, opts, memo, fresh=args.fresh))
        except KeyboardInterrupt:
            sys.stderr.write("stacklens eval: interrupted; reporting what is done (rerun to resume)\n")
            status = 130
        write_report(opts.out, info)
    except StacklensError as exc:
        sys.stderr.write(f"stacklens eval: error: {exc}\n")
        return 2
    except ValueError as exc:  # a pydantic limit out of range
        sys.stderr.write(f"stacklens eval: error: invalid option: {exc}\n")
        return 2
    finally:
        if memo is not None:
            memo.close()
    sys.stdout.write((opts.out / "report.md").read_text(encoding="utf-8"))
    sys.stderr.write(f"stacklens eval: report in {opts.out}/report.json, report.md, quality-latency.svg\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
