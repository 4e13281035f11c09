"""The unbiased pass@k estimator against values worked out by hand."""

from __future__ import annotations

from math import comb
from pathlib import Path

import pytest
from eval_helpers import records, report, run_eval, write_tasks

from evaluation.passk import ks_for, mean_pass_at_k, pass_at_k


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (4, 1, 3, 0.75),  # 1 - C(3,3)/C(4,3) = 1 - 1/4
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (10, 0, 5, 0.0),
        (3, 3, 2, 1.0),
        (6, 2, 5, 1.0),  # fewer than k failures: any 5 of 6 contain a pass
    ],
)
def test_pass_at_k_by_hand(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_matches_the_binomial_formula_where_it_is_exact() -> None:
    for n in range(1, 15):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_large_n_needs_no_big_binomials() -> None:
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)
    assert 0.0 < pass_at_k(10_000, 1, 1) < 0.001


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 5 samples"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_mean_over_tasks_and_reported_ks() -> None:
    assert mean_pass_at_k([(2, 1), (2, 2), (2, 0)], 1) == pytest.approx(0.5)
    assert mean_pass_at_k([], 1) is None
    assert ks_for(1) == [1]
    assert ks_for(10) == [1, 5, 10]
    assert ks_for(7) == [1, 5, 7]


def test_a_run_with_samples_reports_pass_at_k(tmp_path: Path) -> None:
    test = "\n\ndef check(candidate):\n    assert candidate() == 1\n"
    tasks = [
        {"task_id": "right", "prompt": "def f():\n", "canonical_solution": "    return 1\n", "test": test},
        {"task_id": "wrong", "prompt": "def f():\n", "canonical_solution": "    return 2\n", "test": test},
    ]
    out = tmp_path / "out"
    bench = write_tasks(tmp_path / "t.jsonl", tasks)
    assert run_eval("--benchmark", str(bench), "--oracle", "--samples", "5", "--out", str(out)) == 0
    rows = records(out)
    assert sorted((r["task_id"], r["sample"]) for r in rows) == [
        (t, s) for t in ("right", "wrong") for s in range(5)
    ]
    got = report(out)["settings"]["oracle"]
    assert got["pass@1"] == 0.5 and got["pass@5"] == 0.5 and got["samples"] == 10
