"""In-process generation with transformers: a hub id or a local directory, bf16/fp16 on CUDA,
flash-attn 2 when installed (else SDPA), and KV-cache reuse when a new prompt for the same
document extends the previous one. Single-candidate requests go through the static-cache fast path
(completion/backends/fast_decode.py) when `fast_path` says so. Imported only when this backend is
chosen."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

from completion.backends.base import BackendInfo, Generation, GenerationRequest
from completion.backends.fast_decode import FastDecoder, supports_fast_path
from completion.settings import TransformersSettings
from stacklens.errors import BackendError, ConfigError

log = logging.getLogger(__name__)
_KV_DOCS = 4  # documents whose KV cache is kept (each costs context x layers of memory)


def pick_device(setting: str) -> str:
    if setting != "auto":
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(setting: str, device: str) -> torch.dtype:
    if setting != "auto":
        return {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(setting, torch.float32)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def pick_attention(setting: str, device: str, fast_path: bool = False) -> str:
    if setting != "auto":
        return setting
    if fast_path:
        return "sdpa"  # the static cache needs a cache-position mask (see supports_fast_path)
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


class _Stopper(StoppingCriteria):
    """Stops on cancellation and on stop strings found in the generated text."""

    def __init__(self, tokenizer: Any, start: int, stops: tuple[str, ...], cancel: threading.Event):
        self.tokenizer, self.start, self.stops, self.cancel = tokenizer, start, stops, cancel

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kw: Any) -> Any:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if self.cancel.is_set():
            return done | True
        if self.stops:
            for row in range(input_ids.shape[0]):
                tail = self.tokenizer.decode(input_ids[row, self.start :][-16:])
                if any(s in tail for s in self.stops):
                    done[row] = True
        return done


class _Streamer:
    """transformers streamer protocol -> text deltas on an asyncio queue."""

    def __init__(self, tokenizer: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]):
        self.tokenizer, self.loop, self.queue = tokenizer, loop, queue
        self.ids: list[int] = []
        self.text = ""
        self.skip_prompt = True

    def put(self, value: torch.Tensor) -> None:
        if self.skip_prompt:  # the first call carries the prompt
            self.skip_prompt = False
            return
        self.ids.extend(int(i) for i in value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return  # an incomplete UTF-8 sequence: wait for the next token
        delta, self.text = text[len(self.text) :], text
        if delta:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, delta)

    def end(self) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)


@dataclass
class _Kv:
    ids: list[int]
    cache: Any


class TransformersBackend:
    name = "transformers"

    def __init__(self, settings: TransformersSettings) -> None:
        self.settings = settings
        self.model: Any = None
        self.tokenizer: Any = None
        self.device = "cpu"
        self._lock = threading.Lock()  # one generation at a time on the model
        self._kv: OrderedDict[str, _Kv] = OrderedDict()
        self.kv_reuse = settings.kv_reuse
        self.stats: dict[str, float] = {"prompt_tokens": 0, "reused_tokens": 0, "generations": 0}
        self.fast: FastDecoder | None = None

    async def start(self) -> BackendInfo:
        if self.model is None:
            await asyncio.to_thread(self.load)
        specials = tuple(self.tokenizer.get_vocab()) if self.tokenizer is not None else None
        return BackendInfo(self.settings.model, tokenizer=self.tokenizer, special_tokens=specials)

    def load(self) -> None:
        s = self.settings
        self.device = pick_device(s.device)
        dtype = pick_dtype(s.dtype, self.device)
        fast_setting = s.fast_path
        want_fast = fast_setting == "on" or (fast_setting == "auto" and self.device.startswith("cuda"))
        attn = pick_attention(s.attn_implementation, self.device, want_fast)
        trust = s.trust_remote_code
        if s.model.startswith(("/", "./", "../", "~")) and not os.path.isdir(os.path.expanduser(s.model)):
            raise ConfigError(
                f"cannot load model {s.model!r}: no such directory. Give a directory written by "
                "save_pretrained (config.json, weights, tokenizer) or a hub id"
            )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(s.tokenizer or s.model, trust_remote_code=trust)
            self.model = AutoModelForCausalLM.from_pretrained(
                s.model, dtype=dtype, attn_implementation=attn, trust_remote_code=trust
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load model {s.model!r}: {exc}. Give a local directory made with "
                "save_pretrained, or a hub id with network access (or a filled HF cache)"
            ) from exc
        self.model.to(self.device).eval()
        log.info("loaded %s on %s (%s, attention=%s)", s.model, self.device, dtype, attn)
        if want_fast:
            self._load_fast(fast_setting == "on")

    def _load_fast(self, required: bool) -> None:
        s = self.settings
        # Room for the engine's prompt budget (an estimate near the edges) and the new tokens.
        max_len = -(-(s.context_window + s.max_new_tokens + 64) // 256) * 256
        why = supports_fast_path(self.model, max_len)
        if why is not None:
            if required:
                raise ConfigError(f"fast_path 'on' cannot be used with {s.model!r}: {why}")
            log.info("fast path off for %s: %s", s.model, why)
            return
        self.fast = FastDecoder(
            self.model,
            max_len,
            cuda_graphs=self.device.startswith("cuda"),
            lookup_tokens=s.prompt_lookup_tokens,
            max_docs=_KV_DOCS,
        )
        # At start-up, so the first user request does not pay for graph capture and kernel choice.
        secs = self.fast.warmup(s.context_window)
        log.info(
            "fast path ready (cache %d tokens, graphs=%s) in %.1f s", max_len, self.fast.cuda_graphs, secs
        )

    # --- generation -------------------------------------------------------------------------

    def _stop_ids(self, stops: tuple[str, ...]) -> tuple[list[int], tuple[str, ...]]:
        """Stop strings that are single tokens become EOS ids; the rest are matched as text."""
        vocab = self.tokenizer.get_vocab()
        ids = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        text_stops = []
        for s in stops:
            if s in vocab:
                ids.add(vocab[s])
            else:
                text_stops.append(s)
        return sorted(ids), tuple(text_stops)

    def _run(
        self, req: GenerationRequest, cancel: threading.Event, streamer: _Streamer | None = None
    ) -> list[Generation]:
        if self.model is None:
            raise BackendError("the model is not loaded: call `await engine.start()` first")
        tok = self.tokenizer
        with self._lock, torch.inference_mode():
            ids: list[int] = tok(req.prompt)["input_ids"]
            n = req.n if req.temperature > 0 else 1
            if self.fast is not None and n == 1 and ids and self.fast.fits(len(ids), req.max_new_tokens):
                return [self._run_fast(req, ids, cancel, streamer)]
            eos, text_stops = self._stop_ids(req.stop)
            kwargs: dict[str, Any] = {
                "max_new_tokens": req.max_new_tokens,
                "eos_token_id": eos or None,
                "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else (eos or [0])[0],
                "stopping_criteria": StoppingCriteriaList([_Stopper(tok, len(ids), text_stops, cancel)]),
                "return_dict_in_generate": True,
                "num_return_sequences": n,
            }
            if req.temperature > 0:
                kwargs.update(do_sample=True, temperature=req.temperature, top_p=req.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if streamer is not None:
                kwargs["streamer"] = streamer
            reuse = self.kv_reuse and n == 1 and bool(req.doc_key)
            if reuse:
                kwargs["past_key_values"] = self._reusable_cache(req.doc_key, ids)
            input_ids = torch.tensor([ids], device=self.device)
            self.stats["prompt_tokens"] += len(ids)
            self.stats["generations"] += 1
            out = self.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs
            )
            seqs = out.sequences
            if reuse and out.past_key_values is not None:
                kept = seqs[0].tolist()[: out.past_key_values.get_seq_length()]
                self._kv[req.doc_key] = _Kv(kept, out.past_key_values)
                self._kv.move_to_end(req.doc_key)
                while len(self._kv) > _KV_DOCS:
                    self._kv.popitem(last=False)
        reason = "cancelled" if cancel.is_set() else "stop"
        return [Generation(tok.decode(row[len(ids) :]), reason) for row in seqs]

    def _run_fast(
        self, req: GenerationRequest, ids: list[int], cancel: threading.Event, streamer: _Streamer | None
    ) -> Generation:
        """One candidate on the static-cache fast path; same tokens as `_run`'s generate() (greedy)."""
        assert self.fast is not None
        tok = self.tokenizer
        eos, text_stops = self._stop_ids(req.stop)

        def should_stop(new: list[int]) -> bool:
            # As _Stopper: cancellation, or a stop string in the last 16 tokens' text.
            if cancel.is_set():
                return True
            return bool(text_stops) and any(s in tok.decode(new[-16:]) for s in text_stops)

        on_tokens = None
        if streamer is not None:
            streamer.put(torch.tensor([ids]))  # the protocol's first call carries the prompt
            on_tokens = lambda toks: streamer.put(torch.tensor(toks))  # noqa: E731
        new, st = self.fast.generate(
            ids,
            req.max_new_tokens,
            doc_key=req.doc_key,
            reuse=self.kv_reuse and bool(req.doc_key),
            eos_ids=eos,
            should_stop=should_stop,
            on_tokens=on_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=int(getattr(self.model.generation_config, "top_k", 0) or 0),
        )
        if streamer is not None:
            streamer.end()
        for key, value in (
            ("prompt_tokens", st.prompt_tokens),
            ("reused_tokens", st.reused_tokens),
            ("generations", 1),
            ("fast_generations", 1),
            ("prefilled_tokens", st.prefilled_tokens),
            ("drafted_tokens", st.drafted_tokens),
            ("accepted_tokens", st.accepted_tokens),
        ):
            self.stats[key] = self.stats.get(key, 0) + value
        self.stats["last_ttft_ms"] = st.ttft_ms
        return Generation(tok.decode(new), "cancelled" if cancel.is_set() else "stop")

    def run_batch(self, reqs: list[GenerationRequest], cancel: threading.Event) -> list[str]:
        """Greedy or sampled generation of several prompts in one left-padded batch (the server
        batches concurrent requests with the same sampling settings). One text per request."""
        if self.model is None:
            raise BackendError("the model is not loaded")
        tok, first = self.tokenizer, reqs[0]
        with self._lock, torch.inference_mode():
            rows = [tok(r.prompt)["input_ids"] for r in reqs]
            width = max(len(r) for r in rows)
            eos, text_stops = self._stop_ids(tuple(dict.fromkeys(s for r in reqs for s in r.stop)))
            pad = tok.pad_token_id if tok.pad_token_id is not None else (eos or [0])[0]
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
            kwargs: dict[str, Any] = {
                "max_new_tokens": max(r.max_new_tokens for r in reqs),
                "eos_token_id": eos or None,
                "pad_token_id": pad,
                "stopping_criteria": StoppingCriteriaList([_Stopper(tok, width, text_stops, cancel)]),
            }
            if first.temperature > 0:
                kwargs.update(do_sample=True, temperature=first.temperature, top_p=first.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            self.stats["prompt_tokens"] += sum(len(r) for r in rows)
            self.stats["generations"] += 1
            self.stats["batched"] = self.stats.get("batched", 0) + (len(reqs) > 1)
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        texts = []
        for req, row in zip(reqs, out, strict=True):
            new = row[width:].tolist()[: req.max_new_tokens]
            while new and new[-1] == pad:
                new.pop()
            texts.append(tok.decode(new))
        return texts

    def _reusable_cache(self, doc_key: str, ids: list[int]) -> Any:
        prev = self._kv.pop(doc_key, None)
        if prev is None:
            return None
        common = 0
        for a, b in zip(prev.ids, ids, strict=False):
            if a != b:
                break
            common += 1
        # At least one token must be fed; and BPE may retokenize the seam: back off 2 tokens.
        keep = min(common, len(ids) - 1) - 2
        if keep < 8:
            return None
        prev.cache.crop(keep)
        self.stats["reused_tokens"] += keep
        return prev.cache

    async def generate(self, request: GenerationRequest) -> list[Generation]:
        cancel = threading.Event()
        try:
            return await asyncio.to_thread(self._run, request, cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()
        streamer = _Streamer(self.tokenizer, loop, queue)

        def work() -> None:
            try:
                self._run(request, cancel, streamer)
            except BaseException as exc:  # surfaced in the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, work)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            if not worker.done():
                await asyncio.shield(worker)

    async def aclose(self) -> None:
        self._kv.clear()
        self.fast = None
        self.model = None
