"""`stacklens serve` at its edges, for real on loopback: prompts over the model's context, empty
prompts, clients that leave, chunked bodies over the limit, non-ASCII tokens, a missing model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from completion_helpers import free_port, serve_app
from raw_http import address, error_message, request_bytes, send

from completion.backends import GenerationRequest, make_backend
from completion.serve import ServerConfig, create_app
from completion.settings import load_settings
from stacklens.errors import BackendError

pytestmark = pytest.mark.integration

TOKEN = "clé-tökén"
AUTH = {"Authorization": f"Bearer {TOKEN}".encode()}
LONG_PROMPT = "def f(x): return x\n" * 400  # ~3,200 tokens: over the tiny models' 2,048
LIMIT = 50_000


@pytest.fixture(scope="module")
def server(starcoder_dir: Path) -> Iterator[tuple[str, Any]]:
    """The untrained GPTBigCode (2,048 positions; it never stops early), with a non-ASCII token."""
    app = create_app(ServerConfig(str(starcoder_dir), token=TOKEN, max_body_bytes=LIMIT))
    with serve_app(app) as url:
        yield url, app.state.service


def _post(url: str, path: str, body: Any, headers: Any = AUTH) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=120)


def _events(resp: httpx.Response) -> list[Any]:
    lines = [line[5:].strip() for line in resp.text.splitlines() if line.startswith("data:")]
    return [d if d == "[DONE]" else json.loads(d) for d in lines]


CASES = [
    ("/v1/completions", {"prompt": LONG_PROMPT, "max_tokens": 4}),
    ("/v1/completions", {"prompt": LONG_PROMPT, "max_tokens": 4, "stream": True}),
    ("/v1/completions", {"prompt": "x", "max_tokens": 2048}),
    ("/generate", {"inputs": LONG_PROMPT, "parameters": {"max_new_tokens": 4}}),
    ("/generate_stream", {"inputs": LONG_PROMPT, "parameters": {"max_new_tokens": 4}}),
    ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 2048}}),
]


def _refused(path: str) -> int:
    """OpenAI refuses an invalid request with 400, TGI with 422 (stacklens/http.py)."""
    return 422 if path.startswith("/generate") else 400


@pytest.mark.parametrize(("path", "body"), CASES)
def test_over_the_context_is_refused_up_front(server: tuple[str, Any], path: str, body: Any) -> None:
    url, service = server
    resp = _post(url, path, body)
    assert resp.status_code == _refused(path), resp.text
    message = error_message(resp.text)
    assert "context of 2048 tokens" in message and "fewer tokens" in message
    assert service.context_length == 2048


def test_healthz_reports_the_context_length(server: tuple[str, Any]) -> None:
    assert httpx.get(f"{server[0]}/healthz").json()["context_length"] == 2048


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"prompt": "", "max_tokens": 2}),
        ("/v1/completions", {"prompt": [""], "max_tokens": 2, "stream": True}),
        ("/generate", {"inputs": ""}),
        ("/generate_stream", {"inputs": ""}),
    ],
)
def test_empty_prompt_is_refused(server: tuple[str, Any], path: str, body: Any) -> None:
    resp = _post(server[0], path, body)
    assert resp.status_code == _refused(path), resp.text
    assert "prompt is empty" in error_message(resp.text)


def _without_model(service: Any) -> Callable[[], None]:
    """Unloads the model under the running server (as at shutdown): generation then fails."""
    model = service.backend.model
    service.backend.model = None

    def restore() -> None:
        service.backend.model = model

    return restore


def test_a_stream_that_fails_ends_with_an_error_event(server: tuple[str, Any]) -> None:
    url, service = server
    restore = _without_model(service)
    try:
        openai = _post(url, "/v1/completions", {"prompt": "x", "max_tokens": 3, "stream": True})
        tgi = _post(url, "/generate_stream", {"inputs": "x", "parameters": {"max_new_tokens": 3}})
    finally:
        restore()
    assert openai.status_code == 200  # the status line went out before generation began
    events = _events(openai)
    assert events[-1] == "[DONE]"
    assert "model is not loaded" in events[-2]["error"]["message"]
    assert "model is not loaded" in _events(tgi)[-1]["error"]
    assert _events(tgi)[-1]["error_type"] == "generation"  # TGI's type for a failed generation


@pytest.mark.asyncio
async def test_our_clients_raise_the_stream_error(server: tuple[str, Any]) -> None:
    url, service = server
    settings = {"url": url, "model": "tiny", "api_token": TOKEN}
    req = GenerationRequest(prompt="x", max_new_tokens=3)
    for backend in (
        make_backend(load_settings({**settings, "backend": "tgi"})),
        make_backend(load_settings({**settings, "backend": "openai", "fim_mode": "prompt"})),
    ):
        restore = _without_model(service)
        try:
            with pytest.raises(BackendError, match="model is not loaded"):
                _ = [c async for c in backend.stream(req)]
        finally:
            restore()
            await backend.aclose()


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 120  # a hang guard, not a speed check
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"prompt": "x", "max_tokens": 1500, "temperature": 0}),
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 1500}}),
    ],
)
def test_generation_stops_when_the_client_leaves(server: tuple[str, Any], path: str, body: Any) -> None:
    url, service = server
    batcher, backend = service.batcher, service.backend
    before = dict(batcher.stats), backend.stats["generations"], service.stats["abandoned"]
    raw = request_bytes(path, json.dumps(body).encode(), {**AUTH, "Content-Type": b"application/json"})
    with socket.create_connection(address(url), timeout=60) as sock:
        sock.sendall(raw)
        _wait(lambda: backend.stats["generations"] > before[1], "the generation to start")
    _wait(lambda: batcher.stats["batches"] > before[0]["batches"], "the batch to end")
    assert batcher.stats["cancelled"] == before[0]["cancelled"] + 1
    # The untrained model never stops by itself: it would have made all 1,500 tokens.
    assert batcher.stats["abandoned_tokens"] - before[0]["abandoned_tokens"] < 500
    _wait(lambda: service.stats["abandoned"] > before[2], "the request to be counted")
    ok = _post(url, "/v1/completions", {"prompt": "x", "max_tokens": 4, "temperature": 0})
    assert ok.status_code == 200 and ok.json()["choices"][0]["text"]


def test_chunked_body_over_the_limit_is_413(server: tuple[str, Any]) -> None:
    url = server[0]
    headers = {**AUTH, "Content-Type": b"application/json"}
    piece = b'{"prompt": "' + b"x" * 9_000
    status, body = send(url, request_bytes("/v1/completions", b"", headers, [piece] * 7))
    assert status == 413, body
    assert f"over {LIMIT} bytes" in error_message(body)
    status, body = send(url, request_bytes("/generate", b"", headers, [b'{"inputs": "' + b"x" * 9_000] * 7))
    assert status == 413 and json.loads(body)["error_type"], body  # in TGI's shape on its routes
    # Under the limit, chunked bodies are read whole.
    small = [b'{"prompt": "x", ', b'"max_tokens": 2}']
    status, body = send(url, request_bytes("/v1/completions", b"", headers, small))
    assert status == 200, body


def test_non_ascii_token(server: tuple[str, Any]) -> None:
    url = server[0]
    body = {"prompt": "x", "max_tokens": 2}
    assert _post(url, "/v1/completions", body).status_code == 200
    for wrong in ({}, {"Authorization": b"Bearer cl\xe9-t\xf6k\xe9n"}, {"Authorization": b"Bearer \xff"}):
        resp = _post(url, "/v1/completions", body, wrong)
        assert resp.status_code == 401, wrong
        assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("model", ["/nonexistent/stacklens-model", "{empty}"])
def test_a_model_that_does_not_load_is_one_line_and_exit_2(tmp_path: Path, model: str) -> None:
    model = model.format(empty=tmp_path)  # a directory without config.json or weights
    stacklens = Path(sys.executable).with_name("stacklens")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [str(stacklens), "serve", "--model", model, "--port", str(free_port())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"stacklens serve: cannot load model '{model}'")
