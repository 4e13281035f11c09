"""Generated code runs in the sandbox: whatever a completion does costs one failed task, never
the run, and leaves no process behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from eval_helpers import records, report, run_eval, write_tasks

from evaluation.sandbox import Limits, run_python

LIMITS = Limits(timeout_s=2, cpu_s=2, memory_mb=256, file_mb=1)
GOOD = "    return 1\n"
# Each is a function body the "model" wrote; the test calls f().
BAD = {
    "loop": "    while True:\n        pass\n",
    "sleep": "    import time\n    time.sleep(60)\n",
    "fork-bomb": "    import os\n    while True:\n        os.fork()\n",
    "memory": "    x = bytearray(8 << 30)\n    return 1\n",
    "exit": "    import sys\n    sys.exit(0)\n",
    "os-exit": "    import os\n    os._exit(0)\n",
    "stdout-flood": "    while True:\n        print('x' * 65536)\n",
    "subprocess": "    import subprocess\n    subprocess.run(['sleep', '60'])\n",
}
TEST = "\n\ndef check(candidate):\n    assert candidate() == 1\n"


def _tasks() -> list[dict[str, str]]:
    names = ["good-before", *BAD, "good-after"]
    bodies = [GOOD, *BAD.values(), GOOD]
    return [
        {"task_id": name, "prompt": "def f():\n", "canonical_solution": body, "test": TEST}
        for name, body in zip(names, bodies, strict=True)
    ]


def _our_processes() -> set[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if "stacklens-eval-" in line}


@pytest.mark.slow
def test_each_misbehaving_completion_is_one_failed_task(tmp_path: Path) -> None:
    bench = write_tasks(tmp_path / "bad.jsonl", _tasks())
    out = tmp_path / "out"
    args = ["--benchmark", str(bench), "--oracle", "--out", str(out), "--timeout", "2", "--memory-mb", "256"]
    assert run_eval(*args) == 0
    by_id = {r["task_id"]: r for r in records(out)}
    assert by_id["good-before"]["passed"] and by_id["good-after"]["passed"]
    for name in BAD:
        assert by_id[name]["passed"] is False, name
    assert by_id["loop"]["verdict"] == "timeout" and by_id["sleep"]["verdict"] == "timeout"
    assert "disabled in the stacklens eval sandbox" in by_id["fork-bomb"]["error"]
    assert "disabled" in by_id["subprocess"]["error"]
    assert "MemoryError" in by_id["memory"]["error"]
    assert "before the tests finished" in by_id["exit"]["error"]
    assert "before the tests finished" in by_id["os-exit"]["error"]
    assert by_id["stdout-flood"]["verdict"] in ("failed", "killed")  # 1 MB file limit
    got = report(out)["settings"]["oracle"]
    assert got["pass@1"] == pytest.approx(2 / (len(BAD) + 2))
    assert not _our_processes()


def test_no_inherited_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKLENS_API_TOKEN", "s3cret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    result = run_python("import os\nprint(sorted(os.environ.items()))\n", LIMITS)
    assert result.passed
    assert "s3cret" not in result.stdout and "STACKLENS" not in result.stdout


def test_runs_in_a_fresh_directory_that_is_removed() -> None:
    first = run_python("import os\nprint(os.getcwd()); print(os.listdir('.'))\n", LIMITS)
    second = run_python("import os\nprint(os.getcwd())\n", LIMITS)
    where = first.stdout.splitlines()[0]
    assert where != second.stdout.strip() and "stacklens-eval-" in where
    assert not os.path.exists(where)


def test_output_is_capped() -> None:
    result = run_python("import sys\nsys.stdout.write('y' * 100000)\n", LIMITS)
    assert result.passed and len(result.stdout) == LIMITS.output_chars


def test_a_timeout_kills_the_whole_process_group() -> None:
    # A child the fork guard cannot see (forked through the C library) dies with the task.
    code = "import ctypes, time\nctypes.CDLL(None).fork()\ntime.sleep(60)\n"
    result = run_python(code, Limits(timeout_s=1, cpu_s=1))
    assert result.verdict == "timeout" and "timed out after 1 s" in result.error
    assert not _our_processes()
