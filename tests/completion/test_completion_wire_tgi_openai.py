"""The TGI and OpenAI-compatible backends against stand-ins written from the published wire
formats (tests/completion/wire_standins.py): answers, streams split across reads, streams cut
mid-event or before their last event, error events, and 4xx/5xx error payloads."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from completion_helpers import serve_app
from wire_standins import PIECES, TEXT, Script, openai_app, tgi_app

from completion.backends import GenerationRequest, make_backend
from completion.settings import load_settings
from stacklens.errors import BackendError

pytestmark = pytest.mark.integration

REQ = GenerationRequest(
    prompt="<fim_prefix>def add(a, b):<fim_suffix>\n<fim_middle>",
    prefix="def add(a, b):",
    suffix="\n",
    max_new_tokens=12,
    temperature=0.0,
    stop=("<|endoftext|>",),
)
SETTINGS = {
    "tgi": {"backend": "tgi", "retries": 2, "retry_backoff_s": 0.01},
    "openai": {"backend": "openai", "model": "starcoder2-3b", "retries": 2, "retry_backoff_s": 0.01},
}
# What each stand-in's 4xx and 5xx payloads say, as the user must read it.
FOUR = {"tgi": r"422: Input validation error", "openai": r"401: Incorrect API key provided.*api_token"}
FIVE = {
    "tgi": r"500: Request failed during generation: CUDA out of memory",
    "openai": r"503: The server is overloaded",
}
STREAM_ERROR = {
    "tgi": r"TGI stream failed: .*overloaded \(generation\)",
    "openai": r"stream failed: The server had an error",
}


@pytest.fixture(scope="module", params=["tgi", "openai"])
def standin(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, Script]]:
    script = Script()
    app = tgi_app(script) if request.param == "tgi" else openai_app(script)
    with serve_app(app) as url:
        yield request.param, url, script


def backend_for(kind: str, url: str, **extra: Any) -> Any:
    return make_backend(load_settings({**SETTINGS[kind], "url": url, **extra}))


@pytest.fixture
def script(standin: tuple[str, str, Script]) -> Iterator[Script]:
    standin[2].mode, standin[2].failures_left = "ok", 0
    yield standin[2]
    standin[2].mode, standin[2].failures_left = "ok", 0


@pytest.mark.asyncio
async def test_answer_and_request_body(standin: tuple[str, str, Script], script: Script) -> None:
    kind, url, _ = standin
    backend = backend_for(kind, url)
    gens = await backend.generate(REQ)
    assert [g.text for g in gens] == [TEXT] and gens[0].finish_reason == "length"
    path, body = script.bodies[-1]
    if kind == "tgi":
        assert path == "/generate" and body["inputs"] == REQ.prompt
        # TGI rejects temperature 0: greedy is do_sample false with no temperature at all.
        assert body["parameters"] == {
            "max_new_tokens": 12,
            "return_full_text": False,
            "do_sample": False,
            "stop": ["<|endoftext|>"],
        }
    else:
        assert path == "/v1/completions" and body["prompt"] == REQ.prompt and body["model"] == "starcoder2-3b"
        assert (body["max_tokens"], body["temperature"], body["stop"], body["stream"]) == (
            12,
            0.0,
            ["<|endoftext|>"],
            False,
        )
    await backend.aclose()


@pytest.mark.asyncio
async def test_openai_choices_are_taken_by_index() -> None:
    """n > 1 in one request is the OpenAI format's (TGI's backend asks n times)."""
    with serve_app(openai_app(Script())) as url:
        backend = backend_for("openai", url)
        gens = await backend.generate(dataclasses.replace(REQ, n=3))
        assert [g.text for g in gens] == [TEXT, "alt 1", "alt 2"]
        await backend.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["ok", "split"])
async def test_stream_whole_and_split_across_reads(
    standin: tuple[str, str, Script], script: Script, mode: str
) -> None:
    kind, url, _ = standin
    script.mode = mode
    backend = backend_for(kind, url)
    assert [c async for c in backend.stream(REQ)] == list(PIECES)
    assert script.bodies[-1][1]["stream"] is True
    await backend.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["cut", "truncated"])
async def test_a_cut_stream_is_a_backend_error(
    standin: tuple[str, str, Script], script: Script, mode: str
) -> None:
    """Half an event and a dropped connection, or a clean end before the last event: either way
    the text is incomplete and must not pass for a whole suggestion."""
    kind, url, _ = standin
    script.mode = mode
    backend = backend_for(kind, url)
    received: list[str] = []
    with pytest.raises(BackendError, match="ended before its last event"):
        async for chunk in backend.stream(REQ):
            received.append(chunk)
    if mode == "cut":
        assert "".join(received) != TEXT
    await backend.aclose()


@pytest.mark.asyncio
async def test_an_error_event_in_the_stream(standin: tuple[str, str, Script], script: Script) -> None:
    kind, url, _ = standin
    script.mode = "error_event"
    backend = backend_for(kind, url)
    with pytest.raises(BackendError, match=STREAM_ERROR[kind]):
        _ = [c async for c in backend.stream(REQ)]
    await backend.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("streaming", [False, True])
async def test_4xx_error_payload_is_read_and_not_retried(
    standin: tuple[str, str, Script], script: Script, streaming: bool
) -> None:
    kind, url, _ = standin
    script.mode = "4xx"
    backend = backend_for(kind, url)
    before = len(script.bodies)
    with pytest.raises(BackendError, match=FOUR[kind]):
        if streaming:
            _ = [c async for c in backend.stream(REQ)]
        else:
            await backend.generate(REQ)
    assert len(script.bodies) - before == 1  # a client error is not retried
    await backend.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("streaming", [False, True])
async def test_5xx_is_retried_then_reported_with_its_payload(
    standin: tuple[str, str, Script], script: Script, streaming: bool
) -> None:
    kind, url, _ = standin
    backend = backend_for(kind, url)

    async def ask() -> str:
        if streaming:
            return "".join([c async for c in backend.stream(REQ)])
        return (await backend.generate(REQ))[0].text

    script.mode, script.failures_left = "5xx", 2  # within the two retries
    before = len(script.bodies)
    assert await ask() == TEXT
    assert len(script.bodies) - before == 3
    script.failures_left = -1  # always
    with pytest.raises(BackendError, match=FIVE[kind]):
        await ask()
    await backend.aclose()
