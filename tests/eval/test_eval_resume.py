"""Ctrl-C writes the report of what is done; the same command then goes on from there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_helpers import records, report, run_eval, write_tasks

TASKS = 16
SLOW = "    import time\n    time.sleep(0.4)\n    return 1\n"
TEST = "\n\ndef check(candidate):\n    assert candidate() == 1\n"


def _gated(gate: Path) -> str:
    """A solution that waits for ``gate`` to exist (at most 2 s), then returns 1."""
    return (
        "    import os, time\n"
        "    for _ in range(40):\n"
        f"        if os.path.exists({str(gate)!r}):\n"
        "            break\n"
        "        time.sleep(0.05)\n"
        "    return 1\n"
    )


def _bench(tmp_path: Path, gate: Path) -> Path:
    # Tasks run in order, one at a time (--jobs 1): the first three take 0.4 s, the others wait
    # for the gate (the test opens it only to resume), so the run cannot end for 26 s after them
    # however late the Ctrl-C lands, and still ends by itself if it is never heard.
    tasks = [
        {"prompt": "def f():\n", "canonical_solution": SLOW if i < 3 else _gated(gate), "test": TEST}
        for i in range(TASKS)
    ]
    return write_tasks(tmp_path / "slow.jsonl", tasks)


def _command(bench: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "lsp_server.cli", "eval", "--benchmark", str(bench), "--oracle",
            "--out", str(out), "--jobs", "1", "--no-progress"]  # fmt: skip


@pytest.mark.slow
def test_interrupted_run_reports_what_is_done_and_resumes(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    bench, out = _bench(tmp_path, gate), tmp_path / "out"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    # Ctrl-C reaches a program started from a terminal; one started in the background of a
    # non-interactive shell (`make test &`, nohup) inherits SIGINT ignored, and Python then never
    # raises KeyboardInterrupt: the run went on to exit 0 with all 16 records.
    proc = subprocess.Popen(
        _command(bench, out),
        cwd=root,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    tasks_file = out / "tasks.jsonl"
    while not (tasks_file.is_file() and len(tasks_file.read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    partial = report(out)
    assert partial["complete"] is False
    done = len(records(out))
    assert done == 3  # the fourth waits for the gate
    assert partial["settings"]["oracle"]["tasks"] == done
    assert "incomplete run" in (out / "report.md").read_text()

    # The same command again: only the rest is run.
    gate.touch()
    assert run_eval("--benchmark", str(bench), "--oracle", "--out", str(out), "--jobs", "2") == 0
    rows = records(out)
    assert len(rows) == TASKS and len({r["task_id"] for r in rows}) == TASKS
    final = report(out)
    assert final["complete"] and final["settings"]["oracle"]["pass@1"] == 1.0


def test_another_run_in_the_same_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = {"prompt": "def f():\n", "canonical_solution": "    return 1\n", "test": TEST}
    bench, out = write_tasks(tmp_path / "t.jsonl", [one]), tmp_path / "out"
    assert run_eval("--benchmark", str(bench), "--oracle", "--out", str(out)) == 0
    other = write_tasks(tmp_path / "u.jsonl", [{**one, "canonical_solution": "    return 2\n"}])
    assert run_eval("--benchmark", str(other), "--oracle", "--out", str(out)) == 2
    assert "holds another run" in capsys.readouterr().err
    assert run_eval("--benchmark", str(other), "--oracle", "--out", str(out), "--fresh") == 0
    assert [r["passed"] for r in records(out)] == [False]


def test_a_record_cut_short_by_a_crash_is_redone(tmp_path: Path) -> None:
    bench = write_tasks(
        tmp_path / "t.jsonl",
        [{"prompt": "def f():\n", "canonical_solution": "    return 1\n", "test": TEST} for _ in range(3)],
    )
    out = tmp_path / "out"
    assert run_eval("--benchmark", str(bench), "--oracle", "--out", str(out)) == 0
    lines = (out / "tasks.jsonl").read_text().splitlines(keepends=True)
    (out / "tasks.jsonl").write_text("".join(lines[:2]) + lines[2][:20])  # killed mid-write
    assert run_eval("--benchmark", str(bench), "--oracle", "--out", str(out)) == 0
    assert sorted(r["task_id"] for r in records(out)) == ["t/0", "t/1", "t/2"]
