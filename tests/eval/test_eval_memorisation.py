"""The memorisation check of a run: completions found in the index (in process or through the
membership service) are counted with their sources and licences; a check that fails costs that
completion's check, not the run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import MEMORISED, MEMORISED_REPO, MEMORISED_TEST
from eval_helpers import records, report, run_eval, write_tasks

HEAD = MEMORISED.split("\n", 1)[0] + "\n"
UNSEEN = (
    "    total = opening\n    for kind, amount in entries:\n"
    "        total += amount if kind == 'credit' else -amount\n    return total\n"
)


def _bench(tmp_path: Path) -> Path:
    # The oracle's answer is the corpus file's body: a model that reproduced it verbatim.
    seen = {"task_id": "seen", "prompt": HEAD, "canonical_solution": MEMORISED[len(HEAD) :]}
    unseen = {"task_id": "unseen", "prompt": HEAD, "canonical_solution": UNSEEN}
    tasks = [{**t, "test": MEMORISED_TEST, "entry_point": "ledger_balance"} for t in (seen, unseen)]
    return write_tasks(tmp_path / "ledger.jsonl", tasks)


def _assert_found(out: Path) -> None:
    got = report(out)["settings"]["oracle"]
    assert got["memorization_rate"] == 0.5 and got["memorized_completions"] == 1
    assert got["top_sources"] == [
        {"source": f"{MEMORISED_REPO}/ledger.py", "license": "MIT",
         "url": "https://example.com/acme/ledger/ledger.py", "completions": 1}
    ]  # fmt: skip
    assert got["licenses"] == {"MIT": 1}
    by_id = {r["task_id"]: r for r in records(out)}
    assert by_id["seen"]["matches"][0]["lines"][0] >= 1 and by_id["unseen"]["matches"] == []


def test_in_process_index(memorised_index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--benchmark", str(_bench(tmp_path)), "--oracle", "--index", str(memorised_index)]
    assert run_eval(*args, "--min-chars", "100", "--out", str(out)) == 0
    _assert_found(out)
    assert report(out)["membership"] == f"index {memorised_index}"


def test_membership_service(memorised_index: Path, tmp_path: Path) -> None:
    from membership.service import create_app, running, store_opener
    from membership.settings import QuerySettings

    app = create_app(
        store_opener(str(memorised_index), None, None),
        settings=QuerySettings.model_validate({"min_chars": 100}),
        token="t0ken",
    )
    out = tmp_path / "out"
    with running(app) as url:
        args = ["--benchmark", str(_bench(tmp_path)), "--oracle", "--membership-url", url]
        assert run_eval(*args, "--membership-token", "t0ken", "--min-chars", "100", "--out", str(out)) == 0
    _assert_found(out)


def test_a_service_that_is_down_costs_the_checks_not_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    out = tmp_path / "out"
    args = ["--benchmark", str(_bench(tmp_path)), "--oracle", "--membership-url", f"http://127.0.0.1:{port}"]
    assert run_eval(*args, "--out", str(out)) == 0
    got = report(out)["settings"]["oracle"]
    assert got["pass@1"] == 1.0 and got["membership_errors"] == 2
    assert got["memorization_rate"] is None  # nothing was checked: not 0 %
    assert all("cannot reach the membership service" in r["membership_error"] for r in records(out))
    assert "could not be checked" in capsys.readouterr().out
