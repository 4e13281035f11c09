"""`stacklens serve --model <local dir>` as a real process: both APIs answer."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from completion_helpers import CORPUS_CODE, free_port

from completion.serve.cli import main
from completion.templates import TEMPLATES

pytestmark = pytest.mark.integration


PREFIX = CORPUS_CODE[: CORPUS_CODE.index("    for value")]
EXPECTED = "    for value in values:\n"  # what the trained model reproduces after PREFIX


def test_stacklens_serve_answers_both_apis(qwen_trained_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lsp_server.cli",
            "serve",
            "--model",
            str(qwen_trained_dir),
            "--port",
            str(port),
            "--token",
            "t0ken",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("stacklens serve did not come up: " + (tmp_path / "serve.log").read_text())
            time.sleep(0.2)
        auth = {"Authorization": "Bearer t0ken"}
        # The process serves the model it was given: its greedy text continues the corpus.
        fim = {"prompt": PREFIX, "suffix": "", "max_tokens": 12, "temperature": 0}
        oa = httpx.post(f"{base}/v1/completions", headers=auth, timeout=60, json=fim)
        assert oa.status_code == 200 and oa.json()["choices"][0]["text"].startswith(EXPECTED), oa.text
        gen = {"inputs": TEMPLATES["qwen"].render(PREFIX, ""), "parameters": {"max_new_tokens": 12}}
        tgi = httpx.post(f"{base}/generate", headers=auth, timeout=60, json=gen)
        assert tgi.status_code == 200 and tgi.json()["generated_text"].startswith(EXPECTED), tgi.text
        assert httpx.post(f"{base}/generate", json={"inputs": "x"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.stdout is not None and proc.stdout.read() == b""  # nothing on stdout


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "--model" in capsys.readouterr().err
