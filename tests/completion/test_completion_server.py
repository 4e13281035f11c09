"""`stacklens serve` for real on loopback: both APIs, streaming, errors, auth, concurrency, and the
OpenAI-compatible, TGI and stacklens backends against it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from completion_helpers import CORPUS_CODE, serve_app
from raw_http import error_message

from completion import CompletionEngine, CompletionRequest
from completion.backends import GenerationRequest, make_backend
from completion.serve import ServerConfig, create_app
from completion.settings import TransformersSettings, load_settings
from completion.templates import TEMPLATES

pytestmark = pytest.mark.integration

CUT = CORPUS_CODE.index("    for value")
PREFIX = CORPUS_CODE[:CUT]
EXPECTED = "    for value in values:\n"


def _post(url: str, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=60, **kw)


def _sse(resp: httpx.Response) -> list[Any]:
    out = []
    for line in resp.text.splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_healthz_reports_model_and_template(stacklens_url: str, qwen_trained_dir: Path) -> None:
    data = httpx.get(f"{stacklens_url}/healthz").json()
    assert data == {
        "status": "ok",
        "model": str(qwen_trained_dir),
        "template": "qwen",
        "device": "cpu",
        "context_length": 2048,
    }


def test_openai_fim_with_suffix_field_reproduces_corpus(stacklens_url: str) -> None:
    body = {"prompt": PREFIX, "suffix": "", "max_tokens": 12, "temperature": 0}
    data = _post(stacklens_url, "/v1/completions", body).json()
    text = data["choices"][0]["text"]
    assert text.startswith(EXPECTED)
    assert "<|" not in text  # stop tokens are cut
    assert data["object"] == "text_completion" and data["usage"]["completion_tokens"] > 0
    # The same prompt built by hand, without `suffix`, gives the same text.
    raw = {"prompt": TEMPLATES["qwen"].render(PREFIX, ""), "max_tokens": 12, "temperature": 0}
    assert _post(stacklens_url, "/v1/completions", raw).json()["choices"][0]["text"] == text


def test_openai_stream_equals_non_stream(stacklens_url: str) -> None:
    body = {"prompt": PREFIX, "suffix": "", "max_tokens": 16, "temperature": 0, "stop": ["\n\n"]}
    whole = _post(stacklens_url, "/v1/completions", body).json()["choices"][0]["text"]
    events = _sse(_post(stacklens_url, "/v1/completions", {**body, "stream": True}))
    assert events[-1] == "[DONE]"
    chunks = [e["choices"][0]["text"] for e in events[:-1]]
    assert len(chunks) > 2 and "".join(chunks) == whole
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


def test_tgi_generate_and_stream(stacklens_url: str) -> None:
    prompt = TEMPLATES["qwen"].render(PREFIX, "")
    body = {"inputs": prompt, "parameters": {"max_new_tokens": 12, "details": True}}
    data = _post(stacklens_url, "/generate", body).json()
    assert data["generated_text"].startswith(EXPECTED)
    assert data["details"]["generated_tokens"] > 0
    events = _sse(_post(stacklens_url, "/generate_stream", body))
    assert "".join(e["token"]["text"] for e in events[:-1]) == data["generated_text"]
    assert events[-1]["generated_text"] == data["generated_text"]
    full = {"inputs": prompt, "parameters": {"max_new_tokens": 4, "return_full_text": True}}
    assert _post(stacklens_url, "/generate", full).json()["generated_text"].startswith(prompt)


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v1/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ("/v1/completions", {"max_tokens": 3}, 400, "prompt"),
        ("/v1/completions", {"prompt": ["a", "b"]}, 400, "one string"),
        ("/v1/completions", {"prompt": "x", "n": 2, "stream": True, "temperature": 1}, 400, "n=1"),
        ("/generate", {"inputs": "x", "parameters": {"top_p": 1.5}}, 422, "top_p"),
        ("/v1/completions", {"prompt": "x" * 300_000}, 413, "bytes"),
    ],
)
def test_clear_4xx_errors(stacklens_url: str, path: str, body: Any, status: int, needle: str) -> None:
    resp = _post(stacklens_url, path, body)
    assert resp.status_code == status
    assert needle in error_message(resp.text)


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/completions", {"prompt": 3}), ("/generate", {"inputs": 3}), ("/generate_stream", {})],
)
def test_an_invalid_body_is_refused_as_the_imitated_server_does(
    stacklens_url: str, path: str, body: Any
) -> None:
    """OpenAI: 400 and ``{"error": {"message", "type"}}``; TGI: 422 and ``{"error": str,
    "error_type": "validation"}`` (llm-ls reads TGI's ``error`` as a string)."""
    resp = _post(stacklens_url, path, body)
    field = "prompt" if path == "/v1/completions" else "inputs"
    if path.startswith("/generate"):
        assert resp.status_code == 422, resp.text
        assert resp.json()["error_type"] == "validation"
        assert resp.json()["error"].startswith(f"invalid request: {field}: ")
    else:
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["type"] == "invalid_request_error"
        assert resp.json()["error"]["message"].startswith(f"invalid request: {field}: ")


def test_bad_json_is_400(stacklens_url: str) -> None:
    resp = httpx.post(
        f"{stacklens_url}/v1/completions",
        content=b"{nope",
        timeout=10,
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 400


@pytest.mark.asyncio
async def test_concurrent_requests_are_safe(stacklens_url: str) -> None:
    bodies = [
        {
            "prompt": CORPUS_CODE[: CORPUS_CODE.index(n)],
            "suffix": "",
            "max_tokens": 8,
            "temperature": 0,
        }
        for n in ("    for value", "    result = 0", "    print(", "def total")
    ]
    async with httpx.AsyncClient(timeout=120) as client:
        sequential = [
            (await client.post(f"{stacklens_url}/v1/completions", json=b)).json()["choices"][0]["text"]
            for b in bodies
        ]
        resps = await asyncio.gather(
            *(client.post(f"{stacklens_url}/v1/completions", json=b) for b in bodies * 2)
        )
    assert [r.json()["choices"][0]["text"] for r in resps] == sequential * 2


@pytest.fixture(scope="module")
def token_server(qwen_trained_dir: Path) -> Iterator[str]:
    with serve_app(create_app(ServerConfig(str(qwen_trained_dir), token="s3cret"))) as url:
        yield url


def test_bearer_token(token_server: str) -> None:
    body = {"prompt": "x", "max_tokens": 2}
    assert _post(token_server, "/v1/completions", body).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    refused = _post(token_server, "/generate", {"inputs": "x"}, headers=bad)
    assert refused.status_code == 401 and refused.json()["error_type"] == "authentication"
    good = {"Authorization": "Bearer s3cret"}
    assert _post(token_server, "/v1/completions", body, headers=good).status_code == 200
    assert httpx.get(f"{token_server}/healthz").status_code == 200  # probes need no token


REQ = GenerationRequest(
    prompt=TEMPLATES["qwen"].render(PREFIX, ""),
    prefix=PREFIX,
    suffix="",
    max_new_tokens=10,
    temperature=0.0,
    stop=TEMPLATES["qwen"].stop,
)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "settings",
    [
        {"backend": "openai", "fim_mode": "prompt"},
        {"backend": "openai", "fim_mode": "suffix"},
        {"backend": "tgi"},
        {"backend": "stacklens"},
    ],
)
async def test_backends_against_our_server(stacklens_url: str, settings: dict[str, Any]) -> None:
    url = stacklens_url + ("/v1" if settings.get("fim_mode") == "suffix" else "")
    backend = make_backend(load_settings({**settings, "url": url, "model": "tiny"}))
    await backend.start()
    gens = await backend.generate(REQ)
    assert gens[0].text.startswith(EXPECTED)
    streamed = "".join([c async for c in backend.stream(REQ)])
    assert streamed.startswith(EXPECTED)
    await backend.aclose()


@pytest.mark.asyncio
async def test_engine_over_stacklens_backend(stacklens_url: str) -> None:
    engine = CompletionEngine(load_settings({"backend": "stacklens", "url": stacklens_url, "temperature": 0}))
    await engine.start()
    assert engine.template is not None and engine.template.name == "qwen"  # from /healthz
    out = await engine.complete(CompletionRequest("file:///w/greet.py", PREFIX, len(PREFIX), "python"))
    assert out and out[0].text.startswith("    for value in values:")
    assert out[0].backend == "stacklens" and not out[0].cached
    await engine.aclose()


@pytest.mark.asyncio
async def test_batcher_generates_queued_requests_together(qwen_trained_dir: Path) -> None:
    from completion.backends.transformers_backend import TransformersBackend
    from completion.serve.batching import Batcher

    backend = TransformersBackend(
        TransformersSettings.model_validate({"backend": "transformers", "model": str(qwen_trained_dir)})
    )
    await backend.start()
    reqs = [
        GenerationRequest(
            prompt=TEMPLATES["qwen"].render(CORPUS_CODE[: CORPUS_CODE.index(n)], ""),
            max_new_tokens=m,
            temperature=0.0,
            stop=TEMPLATES["qwen"].stop,
        )
        for n, m in (("    for value", 8), ("    print(", 5), ("def total", 12))
    ]
    alone = [(await backend.generate(r))[0].text for r in reqs]
    batcher = Batcher(backend)
    jobs = [asyncio.ensure_future(batcher.submit(r)) for r in reqs]
    await asyncio.sleep(0)  # all three are queued before the worker starts
    batcher.start()
    batched = await asyncio.gather(*jobs)
    await batcher.aclose()
    cut = [t.split("<|endoftext|>")[0] for t in batched]
    assert cut == [t.split("<|endoftext|>")[0] for t in alone]
    assert backend.stats["batched"] == 1
    await backend.aclose()


def test_server_fim_prompt_uses_input_extra() -> None:
    from completion.serve.model import ModelService
    from completion.serve.schemas import CompletionBody

    service = ModelService(ServerConfig("unused"))  # not started: no model needed here
    body = CompletionBody.model_validate(
        {
            "prompt": "x = ",
            "suffix": "",
            "filename": "main.py",
            "input_extra": [{"filename": "util.py", "text": "def u(): ..."}],
        }
    )
    service.template = TEMPLATES["qwen"]
    assert service.fim_prompt(body, "x = ") == (
        "<|repo_name|>\n<|file_sep|>util.py\ndef u(): ...\n<|file_sep|>main.py\n"
        "<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>"
    )
    service.template = TEMPLATES["starcoder"]
    assert service.fim_prompt(body, "x = ").startswith("<fim_prefix># Path: util.py\n# def u(): ...")
    body.suffix = None
    assert service.fim_prompt(body, "raw") == "raw"
