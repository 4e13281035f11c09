"""Bad input to `stacklens eval` is one clear line on stderr and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eval_helpers import run_eval


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--benchmark", "nope", "--oracle"], "unknown benchmark 'nope'"),
        (["--benchmark", "single-line"], "no completion backend"),
        (["--benchmark", "single-line", "--backend", "tgi"], "needs `url`"),
        (["--benchmark", "single-line", "--oracle", "--samples", "0"], "--samples must be at least 1"),
        (["--benchmark", "single-line", "--oracle", "--timeout", "-1"], "invalid option"),
        (["--benchmark", "missing.jsonl", "--oracle"], "does not exist"),
    ],
)
def test_bad_options(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STACKLENS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_eval(*args, "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_task_file_with_missing_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "a", "prompt": "x"}) + "\n")
    assert run_eval("--benchmark", str(bad), "--oracle", "--out", str(tmp_path / "out")) == 2
    assert (
        "bad.jsonl:1: missing or non-string suffix, canonical_solution, test, entry_point"
        in capsys.readouterr().err
    )


def test_stacklens_eval_is_a_command_of_the_product() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lsp_server.cli", "eval", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--benchmark" in out and "--compare" in out and "--membership-url" in out
