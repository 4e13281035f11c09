"""The engine end to end: in-process transformers backend with tiny local models (loaded through
from_pretrained), KV-cache reuse, cancellation, caches, CRLF, mid-word."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from completion_helpers import CORPUS_CODE

import completion.engine as engine_module
from completion import CompletionEngine, CompletionRequest, OpenDocument
from completion.backends import BackendInfo, Generation, GenerationRequest
from completion.backends.transformers_backend import TransformersBackend
from completion.settings import TransformersSettings, load_settings

CUT = CORPUS_CODE.index("    for value")


class FakeBackend:
    """Scripted backend: counts calls; `gate` holds a stream open until set."""

    name = "fake"

    def __init__(self, reply: str = "compute(a, b)\n") -> None:
        self.reply = reply
        self.calls: list[GenerationRequest] = []
        self.gate: asyncio.Event | None = None

    async def start(self) -> BackendInfo:
        return BackendInfo("fake-model", special_tokens=("<fim_prefix>", "<fim_suffix>"))

    async def generate(self, request: GenerationRequest) -> list[Generation]:
        self.calls.append(request)
        return [Generation(self.reply)]

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        self.calls.append(request)
        if self.gate is not None:
            await self.gate.wait()
        for ch in self.reply:
            yield ch

    async def aclose(self) -> None:
        pass


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend()
    monkeypatch.setattr(engine_module, "make_backend", lambda settings: backend)
    return backend


def _engine(**extra: Any) -> CompletionEngine:
    return CompletionEngine(load_settings({"backend": "tgi", "url": "http://127.0.0.1:9", **extra}))


@pytest.mark.asyncio
async def test_tokens_to_clear_are_removed_after_the_shared_caches(fake: FakeBackend) -> None:
    fake.reply = "compute(a, b)<EOT>\n"
    engine = _engine()
    request = CompletionRequest("file:///a.py", "x = ", 4, explicit=True)
    cleared = await engine.complete(replace(request, strip=("<EOT>",)))
    assert [c.text for c in cleared] == ["compute(a, b)"]
    again = await engine.complete(request)  # the cached suggestion, for a client that clears nothing
    assert [c.text for c in again] == ["compute(a, b)<EOT>"] and len(fake.calls) == 1


@pytest.mark.asyncio
async def test_the_caller_cancels_and_close_stops_what_is_in_flight(fake: FakeBackend) -> None:
    """The engine supersedes nothing itself (the language server decides, per document): two
    requests for one document both finish; a cancelled call stops; aclose stops the rest."""
    engine = _engine()
    await engine.start()
    fake.gate = asyncio.Event()
    first = asyncio.create_task(engine.complete(CompletionRequest("file:///a.py", "x = ", 4)))
    newer = CompletionRequest("file:///a.py", "x = y", 5, explicit=True)
    second = asyncio.create_task(engine.complete(newer))
    while len(fake.calls) < 2:
        await asyncio.sleep(0.001)
    fake.gate.set()
    assert [c.text for c in await first] == [c.text for c in await second] == ["compute(a, b)"]
    fake.gate = asyncio.Event()
    cancelled = asyncio.create_task(engine.complete(CompletionRequest("file:///b.py", "z = ", 4)))
    closed = asyncio.create_task(engine.complete(CompletionRequest("file:///c.py", "w = ", 4)))
    while len(fake.calls) < 4:
        await asyncio.sleep(0.001)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await engine.aclose()
    with pytest.raises(asyncio.CancelledError):
        await closed


@pytest.mark.asyncio
async def test_typed_ahead_and_prompt_cache_skip_the_model(fake: FakeBackend) -> None:
    engine = _engine()
    await engine.start()
    first = await engine.complete(CompletionRequest("file:///a.py", "x = ", 4))
    assert [c.text for c in first] == ["compute(a, b)"] and len(fake.calls) == 1
    typed = await engine.complete(CompletionRequest("file:///a.py", "x = comp", 8))
    assert [(c.text, c.cached) for c in typed] == [("ute(a, b)", True)]
    engine.accept("file:///a.py", "ute(")
    rest = await engine.complete(CompletionRequest("file:///a.py", "x = compute(", 12))
    assert [c.text for c in rest] == ["a, b)"]
    assert len(fake.calls) == 1 and engine.stats["typed_ahead_hits"] == 2
    # Same prompt again after the typed-ahead entry is gone: the prompt cache answers.
    engine.typed_ahead.forget("file:///a.py")
    again = await engine.complete(CompletionRequest("file:///a.py", "x = ", 4))
    assert again[0].cached and len(fake.calls) == 1
    await engine.aclose()


@pytest.mark.asyncio
async def test_mid_word_needs_explicit_invocation(fake: FakeBackend) -> None:
    engine = _engine()
    assert await engine.complete(CompletionRequest("file:///a.py", "resu\n", 2)) == []
    assert fake.calls == []
    out = await engine.complete(CompletionRequest("file:///a.py", "resu\n", 2, explicit=True))
    assert out
    await engine.aclose()


@pytest.mark.asyncio
async def test_crlf_restored(fake: FakeBackend) -> None:
    fake.reply = "\n    y = 1\n    return y\n\nprint(2)"
    engine = _engine(template="starcoder")
    text = "def f():\r\n"
    out = await engine.complete(CompletionRequest("file:///a.py", text, len("def f():")))
    assert out[0].text == "\r\n    y = 1\r\n    return y"
    prompt = fake.calls[0].prompt
    assert "\r" not in prompt
    await engine.aclose()


@pytest.mark.asyncio
async def test_generate_path_for_several_candidates(fake: FakeBackend) -> None:
    engine = _engine(template="starcoder", temperature=0.8)
    out = await engine.complete(CompletionRequest("file:///a.py", "x = ", 4, max_candidates=3))
    assert [c.text for c in out] == ["compute(a, b)"]  # duplicates dropped
    assert fake.calls[0].n == 3
    await engine.aclose()


# --- the real in-process backend ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_transformers_engine_reproduces_trained_code(qwen_trained_dir: Path) -> None:
    engine = CompletionEngine(
        load_settings(
            {
                "backend": "transformers",
                "model": str(qwen_trained_dir),
                "temperature": 0,
                "context_window": 512,
            }
        )
    )
    await engine.start()
    assert engine.template is not None and engine.template.name == "qwen"  # from the tokenizer
    other = OpenDocument("file:///w/util.py", "def values_sum(values):\n    return sum(values)\n")
    req = CompletionRequest("file:///w/greet.py", CORPUS_CODE[:CUT], CUT, "python", (other,))
    out = await engine.complete(req)
    assert out[0].text.startswith("    for value in values:")
    assert out[0].model == str(qwen_trained_dir) and out[0].timings_ms["model"] > 0
    await engine.aclose()


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize("fixture", ["starcoder_dir", "qwen_trained_dir"])
async def test_kv_cache_reuse_gives_the_same_tokens(fixture: str, request: Any) -> None:
    """A prompt that extends the previous one for the same document reuses its KV cache, and
    greedy output is the same as without reuse (GPTBigCode and Llama architectures)."""
    model_dir = request.getfixturevalue(fixture)
    prompts = [CORPUS_CODE[:80], CORPUS_CODE[:95], CORPUS_CODE[:140]]
    results = {}
    for reuse in (True, False):
        backend = TransformersBackend(
            TransformersSettings.model_validate(
                {"backend": "transformers", "model": str(model_dir), "kv_reuse": reuse}
            )
        )
        await backend.start()
        texts = []
        for p in prompts:
            req = GenerationRequest(prompt=p, max_new_tokens=8, temperature=0.0, doc_key="greet.py")
            texts.append((await backend.generate(req))[0].text)
        results[reuse] = texts
        if reuse:
            assert backend.stats["reused_tokens"] > 0
        else:
            assert backend.stats["reused_tokens"] == 0
        await backend.aclose()
    assert results[True] == results[False]


@pytest.mark.asyncio
async def test_transformers_stream_matches_generate(starcoder_dir: Path) -> None:
    backend = TransformersBackend(
        TransformersSettings.model_validate({"backend": "transformers", "model": str(starcoder_dir)})
    )
    info = await backend.start()
    assert info.tokenizer is not None and "<fim_prefix>" in (info.special_tokens or ())
    prompt = "<fim_prefix>def f(<fim_suffix>\n<fim_middle>"
    req = GenerationRequest(prompt=prompt, max_new_tokens=10, temperature=0.0)
    whole = (await backend.generate(req))[0].text
    streamed = "".join([c async for c in backend.stream(req)])
    assert streamed == whole and len(whole) > 0
    # Closing a stream early stops the generation thread (the lock is free again).
    agen = backend.stream(req)
    await agen.__anext__()
    await agen.aclose()  # type: ignore[attr-defined]
    assert (await backend.generate(req))[0].text == whole
    await backend.aclose()


def test_start_sync_and_no_heavy_import_at_import_time() -> None:
    import subprocess
    import sys

    code = (
        "import sys, completion, completion.engine, completion.settings\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "s = completion.settings.load_settings({'backend': 'transformers', 'model': '/nope'})\n"
        "e = completion.CompletionEngine(s)\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_start_sync_loads(qwen_trained_dir: Path) -> None:
    settings = {"backend": "transformers", "model": str(qwen_trained_dir), "temperature": 0}
    engine = CompletionEngine(load_settings({**settings, "crossfileMaxSnippets": 0}))
    engine.start_sync()
    assert engine.template is not None and engine.template.name == "qwen"
    request = CompletionRequest("file:///a.py", CORPUS_CODE[:CUT], CUT, explicit=True)
    out = asyncio.run(engine.complete(request))
    # The loaded model answers, with the text it was trained on.
    assert out and out[0].text.startswith("    for value in values:"), out


def test_device_dtype_and_attention_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import torch

    from completion.backends import transformers_backend as tb

    assert tb.pick_device("cpu") == "cpu"
    assert tb.pick_dtype("auto", "cpu") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert tb.pick_dtype("auto", "cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert tb.pick_dtype("auto", "cuda:0") == torch.float16
    assert tb.pick_dtype("bfloat16", "cpu") == torch.bfloat16
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n == "flash_attn" else real(n, *a)
    )
    assert tb.pick_attention("auto", "cuda") == "flash_attention_2"
    assert tb.pick_attention("auto", "cpu") == "sdpa"
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None)
    assert tb.pick_attention("auto", "cuda") == "sdpa"
    assert tb.pick_attention("eager", "cuda") == "eager"


@pytest.mark.asyncio
async def test_missing_local_model_is_a_config_error(tmp_path: Path) -> None:
    from stacklens.errors import ConfigError

    engine = CompletionEngine(load_settings({"backend": "transformers", "model": str(tmp_path / "absent")}))
    with pytest.raises(ConfigError, match="cannot load model"):
        await engine.start()


@pytest.mark.asyncio
async def test_multiline_stream_stops_when_the_block_ends(fake: FakeBackend) -> None:
    fake.reply = "\n    y = x + 1\n    return y\n\ndef g():\n" + "    pass\n" * 200

    consumed: list[str] = []
    original = fake.stream

    async def counting(request: GenerationRequest) -> AsyncIterator[str]:
        async for ch in original(request):
            consumed.append(ch)
            yield ch

    fake.stream = counting  # type: ignore[method-assign]
    engine = _engine(template="starcoder")
    text = "def f(x):\n"
    out = await engine.complete(CompletionRequest("file:///a.py", text, len("def f(x):")))
    assert out[0].text == "\n    y = x + 1\n    return y"
    assert len(consumed) < 60  # stopped at "def g", not after the 200 extra lines
    await engine.aclose()
