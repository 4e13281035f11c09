"""Ollama, llama.cpp and HF Inference API backends against small loopback servers that follow the
documented wire formats; retries, timeouts, auth; the engine end to end over one of them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from completion_helpers import free_port, serve_app
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from wire_standins import Script, stream_body

from completion import CompletionEngine, CompletionRequest, OpenDocument
from completion.backends import GenerationRequest, make_backend
from completion.settings import load_settings
from completion.templates import SourceFile
from stacklens.errors import BackendError

pytestmark = pytest.mark.integration


class Recorder(Script):  # type: ignore[misc]  # Script comes from a test helper mypy does not resolve
    """What the stand-ins received; ``mode`` (wire_standins.Script) picks their next answers."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[dict[str, str]] = []


# Error payloads as each server documents them.
OLLAMA_404 = {"error": 'model "qwen-coder" not found, try pulling it first'}
LLAMA_400 = {
    "error": {
        "code": 400,
        "message": "the request exceeds the available context size",
        "type": "exceed_context_size_error",
    }
}
LLAMA_503 = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
HF_401 = {"error": "Invalid credentials in Authorization header"}


def fake_app(rec: Recorder) -> FastAPI:
    app = FastAPI()

    async def record(request: Request) -> dict[str, Any]:
        body = await request.json()
        rec.bodies.append((request.url.path, body))
        rec.headers.append(dict(request.headers))
        return body

    @app.post("/api/show")
    async def show(request: Request) -> dict[str, Any]:
        await record(request)
        return {"template": "{{- if .Suffix }}<|fim_prefix|>{{ .Prompt }}<|fim_suffix|>{{ .Suffix }}"}

    @app.post("/api/generate", response_model=None)
    async def ollama(request: Request) -> Any:
        body = await record(request)
        if rec.mode == "4xx":
            return JSONResponse(OLLAMA_404, status_code=404)
        if not body["stream"]:
            return {"response": "ans", "done": True, "done_reason": "stop"}
        lines = [json.dumps({"response": p, "done": False}) + "\n" for p in ("hello", " world", "\nmore")]
        if rec.mode == "error_event":
            lines[2:] = [json.dumps({"error": "an error was encountered while running the model"}) + "\n"]
        lines.append(json.dumps({"response": "", "done": True, "done_reason": "stop"}) + "\n")
        return StreamingResponse(stream_body(lines, rec), media_type="application/x-ndjson")

    async def llama(request: Request) -> Any:
        body = await record(request)
        if rec.mode == "4xx":
            return JSONResponse(LLAMA_400, status_code=400)
        if rec.mode == "5xx" and rec.failures_left != 0:
            rec.failures_left -= 1
            return JSONResponse(LLAMA_503, status_code=503)
        if not body["stream"]:
            return {"content": "x + 1", "stop": True}
        events = [
            f"data: {json.dumps({'content': p, 'stop': False})}\n\n" for p in ("x", " + 1", "<EOT>tail")
        ]
        if rec.mode == "error_event":
            events[2:] = [f"data: {json.dumps(LLAMA_503)}\n\n"]
        events.append(f"data: {json.dumps({'content': '', 'stop': True})}\n\n")
        return StreamingResponse(stream_body(events, rec), media_type="text/event-stream")

    app.post("/infill", response_model=None)(llama)
    app.post("/completion", response_model=None)(llama)

    @app.post("/models/{owner}/{name}", response_model=None)
    async def hf(owner: str, name: str, request: Request) -> Any:
        await record(request)
        if rec.mode == "4xx":
            return JSONResponse(HF_401, status_code=401)
        if rec.failures_left > 0:
            rec.failures_left -= 1
            return JSONResponse({"error": "loading"}, status_code=503)
        if name == "bad":
            return {"error": "Model bad does not exist"}
        return [{"generated_text": "return a + b"}]

    @app.post("/slow")
    async def slow(request: Request) -> dict[str, Any]:
        await asyncio.sleep(2)
        return {}

    return app


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()
    with serve_app(fake_app(rec)) as url:
        yield url, rec


@pytest.fixture
def rec(fake: tuple[str, Recorder]) -> Iterator[Recorder]:
    fake[1].mode, fake[1].failures_left = "ok", 0
    yield fake[1]
    fake[1].mode, fake[1].failures_left = "ok", 0


REQ = GenerationRequest(
    prompt="<PRE> def add(a, b): <SUF>\n <MID>",
    prefix="def add(a, b):",
    suffix="\n",
    commented_prefix="# Path: util.py\n# x\ndef add(a, b):",
    files=(SourceFile("util.py", "x"),),
    path="main.py",
    max_new_tokens=12,
    temperature=0.0,
    stop=("<EOT>",),
)


@pytest.mark.asyncio
async def test_ollama_suffix_mode_detected_and_streamed(fake: tuple[str, Recorder]) -> None:
    url, rec = fake
    backend = make_backend(load_settings({"backend": "ollama", "url": url, "model": "qwen-coder"}))
    info = await backend.start()
    assert info.server_side_fim
    assert rec.bodies[-1] == ("/api/show", {"model": "qwen-coder"})
    chunks = [c async for c in backend.stream(REQ)]
    assert chunks == ["hello", " world", "\nmore"]
    path, body = rec.bodies[-1]
    assert path == "/api/generate" and body["stream"] is True
    assert body["prompt"] == REQ.commented_prefix and body["suffix"] == "\n"
    assert body["options"] == {
        "num_predict": 12,
        "temperature": 0.0,
        "top_p": 0.95,
        "stop": ["<EOT>"],
    }
    await backend.aclose()


@pytest.mark.asyncio
async def test_ollama_raw_mode(fake: tuple[str, Recorder]) -> None:
    url, rec = fake
    s = load_settings({"backend": "ollama", "url": url, "model": "m", "fim_mode": "raw"})
    backend = make_backend(s)
    await backend.start()
    gens = await backend.generate(REQ)
    assert [g.text for g in gens] == ["ans"]
    body = rec.bodies[-1][1]
    assert body["raw"] is True and body["prompt"] == REQ.prompt and "suffix" not in body
    await backend.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("endpoint", ["infill", "completion"])
async def test_llamacpp(fake: tuple[str, Recorder], endpoint: str) -> None:
    url, rec = fake
    s = load_settings({"backend": "llamacpp", "url": url, "endpoint": endpoint})
    backend = make_backend(s)
    await backend.start()
    assert [g.text for g in await backend.generate(REQ)] == ["x + 1"]
    body = rec.bodies[-1][1]
    if endpoint == "infill":
        assert body["input_prefix"] == "def add(a, b):" and body["input_suffix"] == "\n"
        assert body["input_extra"] == [{"filename": "util.py", "text": "x"}]
    else:
        assert body["prompt"] == REQ.prompt
    assert body["n_predict"] == 12 and body["cache_prompt"] is True
    assert [c async for c in backend.stream(REQ)] == ["x", " + 1", "<EOT>tail"]
    await backend.aclose()


@pytest.mark.asyncio
async def test_hf_inference_api_retries_5xx_and_sends_token(
    fake: tuple[str, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    url, rec = fake
    s = load_settings(
        {
            "backend": "huggingface",
            "url": url,
            "model": "org/coder",
            "api_token": "hf_secret_token",
            "retry_backoff_s": 0.01,
            "retries": 2,
        }
    )
    backend = make_backend(s)
    await backend.start()
    rec.failures_left = 2
    before = len(rec.bodies)
    with caplog.at_level(logging.DEBUG):
        gens = await backend.generate(REQ)
    assert [g.text for g in gens] == ["return a + b"]
    assert len(rec.bodies) - before == 3  # two 503s, then success
    body = rec.bodies[-1][1]
    assert body["inputs"] == REQ.prompt
    assert body["parameters"]["return_full_text"] is False
    assert body["parameters"]["max_new_tokens"] == 12
    assert rec.headers[-1]["authorization"] == "Bearer hf_secret_token"
    assert "hf_secret_token" not in caplog.text
    rec.failures_left = 5  # more than the retries allow
    with pytest.raises(BackendError, match="503"):
        await backend.generate(REQ)
    rec.failures_left = 0
    await backend.aclose()


@pytest.mark.asyncio
async def test_hf_error_payload_becomes_backend_error(fake: tuple[str, Recorder]) -> None:
    url, _ = fake
    backend = make_backend(load_settings({"backend": "huggingface", "url": url, "model": "org/bad"}))
    with pytest.raises(BackendError, match="does not exist"):
        await backend.generate(REQ)
    await backend.aclose()


@pytest.mark.asyncio
async def test_connection_refused_and_timeout_are_clear() -> None:
    port = free_port()  # nothing listens there
    s = load_settings(
        {"backend": "tgi", "url": f"http://127.0.0.1:{port}", "retries": 1, "retry_backoff_s": 0.01}
    )
    backend = make_backend(s)
    with pytest.raises(BackendError, match="cannot reach"):
        await backend.generate(REQ)
    await backend.aclose()


@pytest.mark.asyncio
async def test_timeout(fake: tuple[str, Recorder]) -> None:
    from completion.backends.http import HttpClient

    url, _ = fake
    client = HttpClient(load_settings({"backend": "tgi", "url": url, "timeout_s": 0.2}))
    with pytest.raises(BackendError, match="did not answer in time"):
        await client.post_json("slow", {})
    await client.aclose()


@pytest.mark.asyncio
async def test_engine_over_llamacpp_stream_postprocessed(fake: tuple[str, Recorder]) -> None:
    url, rec = fake
    engine = CompletionEngine(
        load_settings({"backend": "llamacpp", "url": url, "endpoint": "infill", "template": "codellama"})
    )
    await engine.start()
    other = OpenDocument("file:///w/util.py", "def add(a, b):\n    return a + b\n")
    req = CompletionRequest("file:///w/main.py", "y = add(1, 2)\nx = ", 18, "python", (other,))
    out = await engine.complete(req)
    assert [c.text for c in out] == ["x + 1"]  # cut at the <EOT> stop token
    body = rec.bodies[-1][1]
    assert body["input_prefix"] == "y = add(1, 2)\nx = "
    assert body["input_extra"][0]["filename"] == "util.py"
    assert "\n" in body["stop"] and "<EOT>" in body["stop"]  # single line: stop at newline
    await engine.aclose()


STREAMS = {
    "ollama": (
        {"backend": "ollama", "model": "qwen-coder", "fim_mode": "raw"},
        ["hello", " world", "\nmore"],
    ),
    "llamacpp": ({"backend": "llamacpp", "endpoint": "infill"}, ["x", " + 1", "<EOT>tail"]),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", sorted(STREAMS))
@pytest.mark.parametrize("mode", ["split", "cut", "truncated", "error_event"])
async def test_streams_split_cut_and_failing(
    fake: tuple[str, Recorder], rec: Recorder, kind: str, mode: str
) -> None:
    """Pieces across reads are joined; a dropped connection, a stream without its last event and
    an error event are backend errors, never a short suggestion that passes for a whole one."""
    url, _ = fake
    settings, pieces = STREAMS[kind]
    backend = make_backend(load_settings({**settings, "url": url}))
    await backend.start()
    rec.mode = mode
    if mode == "split":
        assert [c async for c in backend.stream(REQ)] == pieces
    else:
        needle = {"error_event": "stream failed: (an error was encountered|Loading model)"}.get(
            mode, "ended before its last event"
        )
        with pytest.raises(BackendError, match=needle):
            _ = [c async for c in backend.stream(REQ)]
    await backend.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        (
            {"backend": "ollama", "model": "qwen-coder", "fim_mode": "raw"},
            r"404: model \"qwen-coder\" not found.*check `url` and `model`",
        ),
        (
            {"backend": "llamacpp", "endpoint": "infill"},
            r"400: the request exceeds the available context size",
        ),
        ({"backend": "huggingface", "model": "org/coder"}, r"401: Invalid credentials.*api_token"),
    ],
)
async def test_4xx_error_payloads_are_read_and_not_retried(
    fake: tuple[str, Recorder], rec: Recorder, settings: dict[str, Any], needle: str
) -> None:
    url, _ = fake
    backend = make_backend(load_settings({**settings, "url": url, "retries": 2, "retry_backoff_s": 0.01}))
    await backend.start()
    rec.mode = "4xx"
    before = len(rec.bodies)
    with pytest.raises(BackendError, match=needle):
        await backend.generate(REQ)
    assert len(rec.bodies) - before == 1
    await backend.aclose()


@pytest.mark.asyncio
async def test_llamacpp_5xx_is_retried_then_reported(fake: tuple[str, Recorder], rec: Recorder) -> None:
    url, _ = fake
    s = load_settings(
        {"backend": "llamacpp", "url": url, "endpoint": "infill", "retries": 2, "retry_backoff_s": 0.01}
    )
    backend = make_backend(s)
    await backend.start()
    rec.mode, rec.failures_left = "5xx", 2
    assert [g.text for g in await backend.generate(REQ)] == ["x + 1"]
    rec.failures_left = -1
    with pytest.raises(BackendError, match="503: Loading model"):
        await backend.generate(REQ)
    await backend.aclose()
