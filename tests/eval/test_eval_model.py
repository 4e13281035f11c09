"""The tiny local model end to end: in process on a few tasks of each set, through a loopback
`stacklens serve`, and on a task it memorised (found in the index, with its source)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import MEMORISED, MEMORISED_REPO, MEMORISED_TEST
from eval_helpers import records, report, run_eval, write_tasks

from evaluation.datasets import BUILTIN

pytestmark = [pytest.mark.slow, pytest.mark.integration]
VERDICTS = {"passed", "failed", "timeout", "killed", "error"}


def _memorised_task(tmp_path: Path) -> Path:
    # The cursor after the first line's indentation, where the tiny model was trained to start.
    head = MEMORISED.split("\n", 1)[0] + "\n    "
    task = {
        "task_id": "ledger/0",
        "prompt": head,
        "canonical_solution": MEMORISED[len(head) :],
        "test": MEMORISED_TEST,
        "entry_point": "ledger_balance",
    }
    return write_tasks(tmp_path / "memorised.jsonl", [task])


def _check_model_report(out: Path, tasks: int) -> dict:
    got = report(out)
    assert got["complete"] and got["tasks"] == tasks
    (setting,) = got["settings"].values()
    assert 0.0 <= setting["pass@1"] <= 1.0
    assert setting["latency_p50_ms"] > 0 and setting["latency_p99_ms"] >= setting["latency_p50_ms"]
    assert setting["tokens_per_s"] is not None and setting["tokens_per_s"] > 0
    for r in records(out):
        assert r["verdict"] in VERDICTS and isinstance(r["completion"], str) and len(r["prompt_sha256"]) == 16
    assert (out / "quality-latency.svg").read_text().startswith("<svg")
    return setting


@pytest.mark.parametrize("name", list(BUILTIN))
def test_tiny_model_in_process_on_each_set(name: str, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--benchmark", name, "--backend", "transformers", "--model", str(tiny_model)]
    args += ["--temperature", "0"]
    assert run_eval(*args, "--per-problem", "1", "--limit", "2", "--out", str(out)) == 0
    setting = _check_model_report(out, 2)
    assert setting["ttft_p50_ms"] is not None  # the in-process backend streams


def test_memorised_task_reports_its_source(tiny_model: Path, memorised_index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"completion": {"maxNewTokens": 4}}))  # a second setting: cut short
    args = ["--benchmark", str(_memorised_task(tmp_path))]
    args += ["--backend", "transformers", "--model", str(tiny_model)]
    args += ["--temperature", "0", "--index", str(memorised_index), "--min-chars", "100", "--out", str(out)]
    assert run_eval(*args, "--compare", str(short)) == 0
    got = report(out)
    assert list(got["settings"]) == ["tiny", "short"]
    tiny, cut = got["settings"]["tiny"], got["settings"]["short"]
    assert tiny["pass@1"] == 1.0 and tiny["exact_match"] == 1.0  # it memorised the file
    assert tiny["memorization_rate"] == 1.0
    assert tiny["top_sources"][0]["source"] == f"{MEMORISED_REPO}/ledger.py"
    assert tiny["top_sources"][0]["license"] == "MIT"
    assert tiny["licenses"] == {"MIT": 1}
    assert cut["config"]["max_new_tokens"] == 4
    assert cut["pass@1"] == 0.0 and cut["memorization_rate"] == 0.0
    (hit,) = [r for r in records(out) if r["setting"] == "tiny"]
    assert hit["matches"][0]["url"] == "https://example.com/acme/ledger/ledger.py"
    md = (out / "report.md").read_text()
    assert "| tiny |" in md and "| short |" in md and "acme/ledger/ledger.py (MIT)" in md


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tiny_model: Path, tmp_path: Path) -> Iterator[str]:
    """`stacklens serve` with the tiny model, as a real process on loopback."""
    port = _free_port()
    log = tmp_path / "serve.log"
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "lsp_server.cli", "serve", "--model", str(tiny_model), "--port", str(port)]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "stacklens serve did not come up: " + log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_through_a_loopback_stacklens_serve(
    served: str, memorised_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings come from STACKLENS_CONFIG, as the language server's would.
    config = {"completion": {"backend": "stacklens", "url": served, "temperature": 0}}
    monkeypatch.setenv("STACKLENS_CONFIG", json.dumps(config))
    monkeypatch.delenv("STACKLENS_INDEX", raising=False)
    out = tmp_path / "out"
    args = ["--benchmark", str(_memorised_task(tmp_path))]
    args += ["--index", str(memorised_index), "--min-chars", "100"]
    assert run_eval(*args, "--out", str(out)) == 0
    setting = _check_model_report(out, 1)
    assert setting["config"]["backend"] == "stacklens"
    assert setting["pass@1"] == 1.0 and setting["memorization_rate"] == 1.0
    out2 = tmp_path / "out2"
    assert run_eval("--benchmark", "single-line", "--limit", "2", "--out", str(out2)) == 0
    _check_model_report(out2, 2)


def test_tiny_model_on_a_repository(tiny_model: Path, tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "ledger.py").write_text(MEMORISED)
    (repo / "report.py").write_text("def report(balance):\n    text = f'{balance:.2f}'\n    return text\n")
    out = tmp_path / "out"
    args = ["--benchmark", f"repo:{repo}", "--backend", "transformers", "--model", str(tiny_model)]
    assert run_eval(*args, "--temperature", "0", "--limit", "4", "--out", str(out)) == 0
    got = report(out)["settings"]["tiny"]
    assert got["tasks"] == 4 and got["pass@1"] is None
    assert 0.0 <= got["exact_match"] <= 1.0 and got["latency_p50_ms"] > 0
