"""Benchmark tasks: the four HumanEval-Infilling sets shipped as package data, and a user's
``FILE.jsonl`` in the same schema."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from stacklens.errors import InputError

Shape = Literal["lines", "span"]
# The sets as upstream names its files (openai/human-eval-infilling, MIT; see the LICENSE
# beside them in evaluation/data/human-eval-infilling/).
BUILTIN = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span": "HumanEval-RandomSpanInfilling.jsonl.gz",
    "random-span-light": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
}
FIELDS = ("task_id", "prompt", "suffix", "canonical_solution", "test", "entry_point")
_PROBLEM = re.compile(r"HumanEval/(\d+)")


@dataclass(frozen=True)
class OtherFile:
    """A file of the repository, open in the editor while a task is completed."""

    path: str
    text: str


@dataclass(frozen=True)
class Task:
    """One hole to fill: ``prompt`` + middle + ``suffix``. ``test`` empty: scored by exact match
    and edit similarity only (repository tasks)."""

    task_id: str
    prompt: str
    suffix: str
    canonical_solution: str
    test: str = ""
    entry_point: str = ""
    path: str = "task.py"  # where the file lives in the (virtual) workspace
    language: str = "python"
    single_line: bool = False  # the answer is one line: only the first line of a completion counts
    other_files: tuple[OtherFile, ...] = field(default=(), repr=False)

    @property
    def shape(self) -> Shape:
        """``lines`` when the hole is whole lines (the editor shows a blank line there)."""
        whole = (not self.prompt or self.prompt.endswith("\n")) and self.canonical_solution.endswith("\n")
        return "lines" if whole else "span"

    @property
    def problem(self) -> str:
        """The HumanEval problem a task was cut from (the task id for other sets)."""
        m = _PROBLEM.search(self.task_id)
        return m.group(0) if m else self.task_id

    def program(self, middle: str) -> str:
        """The text the tests run: the completed file, its tests and the call of ``check``."""
        return f"{self.prompt}{middle}{self.suffix}\n\n{self.test}\n\ncheck({self.entry_point})\n"


@dataclass(frozen=True)
class Benchmark:
    name: str
    tasks: list[Task]
    executes: bool  # scored by running the tests (else exact match and edit similarity only)


def _rows(lines: Iterable[str], where: str) -> list[dict[str, str]]:
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}:{lineno}: not JSON ({exc}); one task object per line") from None
        if not isinstance(row, dict):
            raise InputError(f"{where}:{lineno}: expected an object with {', '.join(FIELDS)}")
        missing = [k for k in FIELDS if not isinstance(row.get(k), str)]
        if missing:
            raise InputError(
                f"{where}:{lineno}: missing or non-string {', '.join(missing)} "
                f"(each task needs {', '.join(FIELDS)}, as HumanEval-Infilling)"
            )
        rows.append(row)
    if not rows:
        raise InputError(f"{where}: no tasks")
    ids = [r["task_id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{where}: task_id {dup!r} appears more than once")
    return rows


def _task(row: dict[str, str], single_line: bool) -> Task:
    return Task(
        task_id=row["task_id"],
        prompt=row["prompt"],
        suffix=row["suffix"],
        canonical_solution=row["canonical_solution"],
        test=row["test"],
        entry_point=row["entry_point"],
        path=_path_for(row["task_id"]),
        single_line=single_line,
    )


def _path_for(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", task_id).strip("_")[:80] + ".py"


def builtin_path(name: str) -> resources.abc.Traversable:
    """The packaged data file of a built-in set."""
    return resources.files("evaluation") / "data" / "human-eval-infilling" / BUILTIN[name]


def load_builtin(name: str) -> Benchmark:
    data = builtin_path(name).read_bytes()
    text = gzip.decompress(data).decode("utf-8")
    rows = _rows(text.splitlines(), BUILTIN[name])
    return Benchmark(name, [_task(r, name == "single-line") for r in rows], executes=True)


def load_jsonl(path: str) -> Benchmark:
    """A user's tasks in HumanEval-Infilling's schema (``.jsonl`` or ``.jsonl.gz``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"benchmark file {path} does not exist (give a .jsonl of tasks or a built-in set)")
    try:
        raw = p.read_bytes()
        text = (gzip.decompress(raw) if p.suffix == ".gz" else raw).decode("utf-8")
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    rows = _rows(text.splitlines(), path)
    return Benchmark(p.name, [_task(r, False) for r in rows], executes=True)


def per_problem(tasks: Sequence[Task], k: int) -> list[Task]:
    """At most ``k`` tasks of each problem, spread evenly over its tasks (deterministic): a
    quick run that still touches every problem."""
    groups: dict[str, list[Task]] = {}
    for t in tasks:
        groups.setdefault(t.problem, []).append(t)
    out = []
    for group in groups.values():
        if len(group) <= k:
            out.extend(group)
            continue
        step = len(group) / k
        out.extend(group[int(i * step)] for i in range(k))
    return out
