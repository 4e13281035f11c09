"""The static-cache fast path (completion/backends/fast_decode.py): greedy tokens identical to plain
``generate()`` on GPTBigCode and Llama, across KV reuse (append, one-character edit, switching
documents) and with prompt lookup; host-sync-free steps (what CUDA-graph capture needs), checked on
CPU; the CUDA graph path itself where a GPU is present."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest
from completion_helpers import CORPUS_CODE

from completion.backends.base import GenerationRequest
from completion.settings import TransformersSettings, load_settings

torch = pytest.importorskip("torch", reason="torch is missing: run `make install`")

from completion.backends.fast_decode import FastDecoder, supports_fast_path  # noqa: E402
from completion.backends.transformers_backend import TransformersBackend, pick_attention  # noqa: E402

NEED_CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA graph capture needs a CUDA device (none on this machine)"
)
_EDITED = CORPUS_CODE.replace("result = 0", "result = 1")  # a one-character edit mid-prompt


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained Llama with Qwen FIM tokens (building it takes well under a second)."""
    from fixtures.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("fast_llama"), "qwen", "llama")


def _backend(model_dir: Path, **extra: Any) -> TransformersBackend:
    settings = {"backend": "transformers", "model": str(model_dir), "context_window": 256, **extra}
    return TransformersBackend(TransformersSettings.model_validate(settings))


# Same document typed on (appends), edited one character before the end, another document in
# between (its KV is snapshotted and restored), the first again.
_REQUESTS = [
    ("a.py", CORPUS_CODE[:120]),
    ("a.py", CORPUS_CODE[:121]),
    ("a.py", CORPUS_CODE[:160]),
    ("b.py", CORPUS_CODE[60:200]),
    ("a.py", _EDITED[:160]),
    ("a.py", _EDITED[:160]),  # identical prompt: everything but the last token reused
    ("b.py", CORPUS_CODE[60:201]),
]


async def _texts(backend: TransformersBackend, stop: tuple[str, ...] = ()) -> list[str]:
    await backend.start()
    out = []
    for doc, prompt in _REQUESTS:
        req = GenerationRequest(prompt=prompt, max_new_tokens=24, temperature=0.0, stop=stop, doc_key=doc)
        out.append((await backend.generate(req))[0].text)
    return out


@pytest.mark.asyncio
@pytest.mark.parametrize("fixture", ["starcoder_dir", "llama_dir"])
@pytest.mark.parametrize("lookup", [0, 4])
async def test_fast_path_gives_the_same_greedy_tokens(fixture: str, lookup: int, request: Any) -> None:
    model_dir = request.getfixturevalue(fixture)
    plain = _backend(model_dir, fast_path="off", kv_reuse=False)
    expected = await _texts(plain)
    assert plain.fast is None and any(expected)

    fast = _backend(model_dir, fast_path="on", prompt_lookup_tokens=lookup)
    got = await _texts(fast)
    assert got == expected
    assert fast.fast is not None and fast.stats["fast_generations"] == len(_REQUESTS)
    # Reuse beyond strict extension: the edit and the return to each document reuse KV.
    assert fast.stats["reused_tokens"] > fast.stats["prefilled_tokens"]
    if lookup:
        assert fast.stats["drafted_tokens"] > 0
    await fast.aclose()
    await plain.aclose()


@pytest.mark.asyncio
async def test_fast_path_without_reuse_and_with_stops_and_stream(llama_dir: Path) -> None:
    plain = _backend(llama_dir, fast_path="off", kv_reuse=False)
    fast = _backend(llama_dir, fast_path="on", kv_reuse=False, prompt_lookup_tokens=3)
    stop = ("\n", "ue")
    assert await _texts(fast, stop) == await _texts(plain, stop)
    assert fast.stats["reused_tokens"] == 0
    req = GenerationRequest(prompt=CORPUS_CODE[:90], max_new_tokens=16, temperature=0.0, doc_key="s.py")
    whole = (await fast.generate(req))[0].text
    # _Streamer holds back a trailing incomplete UTF-8 sequence (untrained models emit them).
    assert "".join([d async for d in fast.stream(req)]) == whole.rstrip("\ufffd")
    # Closing a stream early frees the model lock.
    agen = fast.stream(req)
    await agen.__anext__()
    await agen.aclose()  # type: ignore[attr-defined]
    assert (await fast.generate(req))[0].text == whole
    # A prompt longer than the static cache goes through plain generate().
    before = fast.stats["fast_generations"]
    long_req = GenerationRequest(prompt=CORPUS_CODE * 6, max_new_tokens=4, temperature=0.0)
    assert (await fast.generate(long_req))[0].text == (await plain.generate(long_req))[0].text
    assert fast.stats["fast_generations"] == before
    # Sampling runs on the fast path too (no drafts), reproducibly under a seed.
    sampled = GenerationRequest(prompt=CORPUS_CODE[:90], max_new_tokens=8, temperature=0.8, top_p=0.9)
    torch.manual_seed(0)
    first = (await fast.generate(sampled))[0].text
    torch.manual_seed(0)
    assert (await fast.generate(sampled))[0].text == first
    await fast.aclose()
    await plain.aclose()


@pytest.mark.asyncio
async def test_fast_path_setting(llama_dir: Path) -> None:
    from stacklens.errors import ConfigError

    auto = _backend(llama_dir)  # auto: only on CUDA
    await auto.start()
    assert (auto.fast is not None) == torch.cuda.is_available()
    assert pick_attention("auto", "cuda", fast_path=True) == "sdpa"
    assert pick_attention("eager", "cuda", fast_path=True) == "eager"
    cfg = auto.model.config
    assert supports_fast_path(auto.model, 512) is None
    cfg.sliding_window = 128  # a rolling window cannot be rewound to a common prefix
    assert "sliding-window" in (supports_fast_path(auto.model, 512) or "")
    assert supports_fast_path(auto.model, 64) is None
    del cfg.sliding_window
    cfg._attn_implementation = "flash_attention_2"
    assert "needs 'sdpa'" in (supports_fast_path(auto.model, 512) or "")
    with pytest.raises(ConfigError, match="fast_path 'on' cannot be used"):
        auto._load_fast(required=True)
    cfg._attn_implementation = "sdpa"
    auto.model.generation_config.repetition_penalty = 1.2  # generate() would apply it
    assert "repetition_penalty" in (supports_fast_path(auto.model, 512) or "")
    auto.model.generation_config.repetition_penalty = 1.0
    await auto.aclose()


@pytest.mark.parametrize(("heads", "kv_heads", "length"), [(4, 2, 1), (12, 2, 5), (4, 1, 3), (4, 4, 2)])
def test_grouped_sdpa_matches_repeated_kv(heads: int, kv_heads: int, length: int) -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from completion.backends.fast_decode import grouped_sdpa

    class Module:  # the attributes the SDPA functions read
        num_key_value_groups = heads // kv_heads
        is_causal = True

    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, heads, length, 8, generator=gen)
    k, v = (torch.randn(1, kv_heads, 20, 8, generator=gen) for _ in range(2))
    mask = torch.rand(1, 1, length, 24, generator=gen) > 0.3  # wider than K, as a static cache's
    mask[..., 0] = True
    got, _ = grouped_sdpa(Module(), q, k, v, mask, scaling=0.3)
    want, _ = sdpa_attention_forward(Module(), q, k, v, mask, scaling=0.3)  # type: ignore[arg-type]
    assert got.shape == want.shape == (1, length, heads, 8)
    assert torch.allclose(got, want, atol=1e-5)


def test_prompt_lookup_drafts() -> None:
    dec = FastDecoder.__new__(FastDecoder)
    dec.lookup_tokens = 3
    # Latest earlier occurrence of the longest suffix n-gram, then what followed it.
    assert dec._draft([1, 2, 3, 4, 5, 9, 2, 3]) == [4, 5, 9]
    assert dec._draft([7, 1, 2, 8, 1, 2, 6, 6, 1, 2]) == [6, 6, 1]
    assert dec._draft([1, 2, 3]) == []
    assert dec._draft([5, 6, 5]) == [6, 5]


@pytest.mark.parametrize("fixture", ["starcoder_dir", "llama_dir"])
def test_fast_steps_have_no_host_sync(fixture: str, request: Any) -> None:
    """CUDA-graph capture fails on any host sync (`.item()`, a tensor in an `if`, `nonzero`). On
    CPU, watch for the ATen ops behind them while the decode and verify steps run."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(request.getfixturevalue(fixture), attn_implementation="sdpa")
    dec = FastDecoder(model.eval(), 128, cuda_graphs=False, lookup_tokens=4)
    dec.warmup(32)
    syncing = {"_local_scalar_dense", "nonzero", "equal", "is_nonzero"}
    seen: list[str] = []

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            name = func.overloadpacket.__name__
            if name in syncing:
                seen.append(name)
            return func(*args, **(kwargs or {}))

    with torch.inference_mode():
        for length, rows in ((1, 1), (5, 5), (16, 1)):
            step = dec._step(length, rows)
            step.pos.copy_(torch.arange(7, 7 + length))
            with Watch():
                logits, _top = step.run()
            assert logits.shape == (rows, model.config.vocab_size)
    assert seen == []
    with Watch():  # the watch does see a sync
        torch.ones(1).item()
    assert seen == ["_local_scalar_dense"]


@pytest.mark.parametrize("fixture", ["starcoder_dir", "llama_dir"])
def test_graph_replay_logic_on_cpu(fixture: str, request: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA-graph branch without CUDA: a stand-in graph replays ``run`` into the captured
    output tensors in place (as a real replay does), so a result read after the next replay, or
    an input not routed through the static buffers, would change the tokens."""
    from transformers import AutoModelForCausalLM

    class FakeGraph:
        def __init__(self, step: Any) -> None:
            self.step = step

        def replay(self) -> None:
            for static, fresh in zip(self.step.out, self.step.run(), strict=True):
                static.copy_(fresh)

    def capture(self: Any, pool: Any) -> Any:
        self.out = tuple(t.clone() for t in self.run())
        self.graph = FakeGraph(self)
        return pool

    monkeypatch.setattr("completion.backends.fast_decode._Step.capture", capture)
    model = AutoModelForCausalLM.from_pretrained(request.getfixturevalue(fixture), attn_implementation="sdpa")
    model.eval()
    tok_ids = list(range(5, 45)) + list(range(5, 25))  # repeats: the drafts get accepted
    with torch.inference_mode():
        ref = model.generate(
            torch.tensor([tok_ids]), max_new_tokens=20, do_sample=False, eos_token_id=None, pad_token_id=0
        )[0, len(tok_ids) :].tolist()
    dec = FastDecoder(model, 128, cuda_graphs=False, lookup_tokens=4)
    dec.cuda_graphs = True  # take the capture/replay branches with the stand-in above
    dec.warmup(64)
    assert all(step.graph is not None for step in dec._steps.values())
    got, stats = dec.generate(tok_ids, 20, doc_key="g")
    assert got == ref and stats.drafted_tokens > 0
    edited = [*tok_ids[:30], 99, *tok_ids[31:]]
    got, stats = dec.generate(edited, 20, doc_key="g")
    with torch.inference_mode():
        ref = model.generate(
            torch.tensor([edited]), max_new_tokens=20, do_sample=False, eos_token_id=None, pad_token_id=0
        )[0, len(edited) :].tolist()
    assert got == ref and stats.reused_tokens == 30
    assert model.config._attn_implementation == "sdpa"  # the grouped kernel only inside steps


@NEED_CUDA
@pytest.mark.asyncio
@pytest.mark.parametrize("fixture", ["starcoder_dir", "llama_dir"])
async def test_cuda_graphs_give_the_same_tokens(fixture: str, request: Any) -> None:
    model_dir = request.getfixturevalue(fixture)
    # float32 on both sides: the comparison is of the decode logic, not of bf16 rounding.
    plain = _backend(model_dir, fast_path="off", kv_reuse=False, device="cuda", dtype="float32")
    fast = _backend(model_dir, fast_path="on", device="cuda", dtype="float32", prompt_lookup_tokens=4)
    expected = await _texts(plain)
    assert await _texts(fast) == expected
    assert fast.fast is not None and fast.fast.cuda_graphs
    assert all(s.graph is not None for s in fast.fast._steps.values())
    await fast.aclose()
    await plain.aclose()


@pytest.mark.asyncio
async def test_typing_with_suffix_first_prefills_only_the_typed_tokens(starcoder_dir: Path) -> None:
    """Through the engine: with `fim_order: spm` each keystroke prefills the new tokens only;
    with PSM the suffix after the cursor is recomputed every time."""
    from completion import CompletionEngine, CompletionRequest

    at = CORPUS_CODE.index("    return message")
    typed = "    print(name)\n    x = 1\n"
    per_call = {}
    for order in ("psm", "spm"):
        engine = CompletionEngine(
            load_settings(
                {
                    "backend": "transformers",
                    "model": str(starcoder_dir),
                    "fast_path": "on",
                    "fim_order": order,
                    "context_window": 256,
                    "max_new_tokens": 4,
                    "temperature": 0,
                    "cache_size": 0,
                }
            )
        )
        await engine.start()
        backend = engine.backend
        assert isinstance(backend, TransformersBackend)
        prefilled = []
        for i in range(1, len(typed) + 1):
            doc = CORPUS_CODE[:at] + typed[:i] + CORPUS_CODE[at:]
            calls, before = backend.stats.get("fast_generations", 0), backend.stats.get("prefilled_tokens", 0)
            await engine.complete(CompletionRequest("file:///g.py", doc, at + i, "python", explicit=True))
            if backend.stats["fast_generations"] > calls:  # not answered from a cache
                prefilled.append(backend.stats["prefilled_tokens"] - before)
        assert len(prefilled) > len(typed) // 2
        per_call[order] = statistics.median(prefilled[1:])
        await engine.aclose()
    suffix_tokens = len(CORPUS_CODE[at:]) // 4
    assert per_call["spm"] <= 3 < suffix_tokens < per_call["psm"]
