"""`--oracle` inserts each task's canonical middle: every test must pass, or the harness (how
the program is assembled, the sandbox, the scoring) is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from eval_helpers import records, report, run_eval

from evaluation.datasets import BUILTIN, load_builtin, per_problem

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list(BUILTIN))
def test_oracle_passes_every_problem_of_each_set(name: str, tmp_path: Path) -> None:
    # One task of every HumanEval problem (164): the full multi-line set (5,815 tasks) is run
    # for the docs, not here.
    assert run_eval("--benchmark", name, "--oracle", "--per-problem", "1", "--out", str(tmp_path)) == 0
    got = report(tmp_path)
    oracle = got["settings"]["oracle"]
    assert got["complete"] and got["tasks"] == 164
    failed = [(r["task_id"], r["error"]) for r in records(tmp_path) if not r["passed"]]
    assert failed == []
    assert oracle["pass@1"] == 1.0
    assert oracle["exact_match"] == 1.0 and oracle["edit_similarity"] == 1.0
    assert oracle["memorization_rate"] is None  # no index given
    for key in ("latency_p50_ms", "latency_p99_ms"):
        assert key in oracle


def test_per_problem_sample_covers_every_problem_deterministically() -> None:
    tasks = load_builtin("multi-line").tasks
    assert len(tasks) == 5815
    picked = per_problem(tasks, 2)
    assert picked == per_problem(tasks, 2)
    assert {t.problem for t in picked} == {f"HumanEval/{i}" for i in range(164)}
    sizes = {p: sum(t.problem == p for t in tasks) for p in {t.problem for t in tasks}}
    assert len(picked) == sum(min(2, n) for n in sizes.values())
    assert len(set(picked)) == len(picked)


def test_a_wrong_middle_fails(tmp_path: Path) -> None:
    """The same assembly with a wrong middle must fail: the oracle's 1.0 is not a constant."""
    from evaluation.sandbox import Limits, run_python

    task = load_builtin("single-line").tasks[0]
    assert run_python(task.program(task.canonical_solution), Limits()).passed
    broken = run_python(task.program("    for idx, elem in enumerate(numbers[:1]):\n"), Limits())
    assert not broken.passed and "AssertionError" in broken.error
