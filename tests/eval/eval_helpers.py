"""Helpers for the eval tests: run the command in-process and read what it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_tasks(path: Path, tasks: list[dict[str, str]]) -> Path:
    """A FILE.jsonl benchmark; each task gets defaults for the fields it leaves out."""
    rows = []
    for i, t in enumerate(tasks):
        row = {"task_id": f"t/{i}", "prompt": "", "suffix": "", "test": "", "entry_point": "f", **t}
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def run_eval(*args: str) -> int:
    from evaluation.cli import main

    return main(["--no-progress", *args])


def report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
