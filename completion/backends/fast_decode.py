"""Batch-1 fast path for the in-process model: a static KV cache, padded fixed-shape forward steps
(captured once as CUDA graphs on CUDA, run eagerly elsewhere), KV reuse across keystrokes by the
longest common token prefix, and optional prompt-lookup drafts verified in one forward pass.

Why this shape: batch-1 decode of a 1-7B model is bound by memory bandwidth (~1 ms/token for a
1.5B model on an H100), but eager ``generate()`` spends 20-40 ms/token launching kernels. Replaying
a captured graph removes the launches; a static cache keeps every tensor address fixed so the graph
stays valid. The same Python loop drives the graphs and the eager steps, so CPU tests exercise the
logic that runs on the GPU (see docs/gpu.md).

Imported only by the transformers backend (it imports torch)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

# Forward shapes captured as graphs (and used as padding buckets without graphs, so the CPU runs
# the same shapes). Prefill deltas after a keystroke go through these (with a PSM template an edit
# recomputes the suffix too: ~1/4 of the prompt); longer ones run eagerly (compute bound, where
# launch overhead no longer matters). Padding to a bucket at most doubles a compute-bound prefill.
PREFILL_BUCKETS = (16, 64, 256, 512, 1024)
_MAX_NGRAM = 3  # prompt lookup: the longest suffix n-gram searched for in the context
_NEUTRAL_GENERATION: dict[str, Any] = {
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "sequence_bias": None,
    "min_length": 0,
    "min_new_tokens": None,
}


_GROUPED = "stacklens_grouped_sdpa"  # registered with transformers' attention interfaces


def grouped_sdpa(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA for grouped-query attention with a mask, without copying K/V per query head.

    HF's SDPA path repeats K/V to every query head whenever a mask is given (and a static cache
    always needs one): for Qwen2.5-Coder-1.5B (12 query / 2 KV heads) that writes and reads ~0.8 GB
    per decode step on top of 3.1 GB of weights. Folding the query heads of a group into the query
    length instead attends each group to its one K/V head, with the mask rows repeated."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    b, hq, n, d = query.shape
    hkv, s = key.shape[1], key.shape[-2]
    groups = hq // hkv
    mask = attention_mask
    if groups == 1 or mask is None or mask.dtype != torch.bool or mask.shape[1] != 1 or dropout:
        return sdpa_attention_forward(
            module, query, key, value, mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    # Query head h = kv * groups + g (repeat_kv's order); row g * n + i of a group is query i.
    q = query.reshape(b, hkv, groups * n, d)
    mask = mask[:, :, :, :s][:, :, None].expand(b, 1, groups, n, s).reshape(b, 1, groups * n, s)
    out = torch.nn.functional.scaled_dot_product_attention(q, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(b, hq, n, d).transpose(1, 2).contiguous(), None


def _register_grouped_sdpa() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(_GROUPED, grouped_sdpa)
    AttentionMaskInterface.register(_GROUPED, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


@dataclass
class DecodeStats:
    """Counters of one generation (the backend sums them)."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    prefilled_tokens: int = 0
    forwards: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    ttft_ms: float = 0.0


@dataclass
class _Snapshot:
    ids: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


class _Step:
    """One fixed-shape forward: ``length`` input tokens, logits (and their argmax) of ``rows``
    selected positions.

    Inputs live in one static device buffer so a CUDA graph captured over ``run`` replays with new
    values; one pinned host buffer feeds it with a single copy per step (each separate small copy
    costs ~10 us of a ~1 ms step)."""

    def __init__(self, decoder: FastDecoder, length: int, rows: int) -> None:
        dev = decoder.device
        self.decoder, self.length, self.rows = decoder, length, rows
        size = 2 * length + rows
        self.buf = torch.zeros((size,), dtype=torch.long, device=dev)
        self.host = torch.zeros((size,), dtype=torch.long, pin_memory=dev.type == "cuda")
        self.ids = self.buf[:length].view(1, length)
        self.pos = self.buf[length : 2 * length]
        self.sel = self.buf[2 * length :]
        self.out: tuple[torch.Tensor, torch.Tensor] | None = None
        self.graph: Any = None

    def run(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.decoder
        cfg = d.model.config
        attn = cfg._attn_implementation
        if d.grouped:
            # Only for the fast path's steps (a captured graph keeps what ran at capture);
            # generate() on the same model keeps the implementation it was loaded with.
            cfg._attn_implementation = _GROUPED
        try:
            hidden = d.base(
                input_ids=self.ids,
                position_ids=self.pos.unsqueeze(0),
                cache_position=self.pos,
                past_key_values=d.cache,
                use_cache=True,
            ).last_hidden_state
        finally:
            cfg._attn_implementation = attn
        # Only the needed rows go through the LM head: a 2k-token prefill would otherwise
        # materialise 2k x vocab logits (600 MB in bf16 for Qwen's 151k vocabulary).
        logits = d.head(hidden[0].index_select(0, self.sel)).float()
        if d.logit_scale != 1.0:
            logits = logits / d.logit_scale
        return logits, logits.argmax(-1)  # greedy reads only the argmax back to the host

    def capture(self, pool: Any) -> Any:
        """Record ``run`` as a CUDA graph (warm-up on a side stream first, as PyTorch requires)."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.run()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            self.out = self.run()
        self.graph = graph
        return graph.pool()

    def __call__(
        self, tokens: Sequence[int], start: int, rows: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, length = len(tokens), self.length
        # Padding tokens go after the real ones: causal masking hides them from the real rows, and
        # their KV slots lie beyond the valid length, to be overwritten by later steps.
        sel = list(rows) + [rows[-1]] * (self.rows - len(rows))
        self.host.copy_(
            torch.tensor(
                [*tokens, *([0] * (length - n)), *range(start, start + length), *sel], dtype=torch.long
            )
        )
        # Non-blocking is safe: the host buffer is rewritten only after this step's results were
        # read back, which waits for everything queued before them.
        self.buf.copy_(self.host, non_blocking=True)
        if self.graph is None:
            logits, top = self.run()
        else:
            self.graph.replay()
            assert self.out is not None
            logits, top = self.out
        return logits[: len(rows)], top[: len(rows)]


def supports_fast_path(model: Any, max_cache_len: int) -> str | None:
    """Why ``model`` cannot use the fast path, or None when it can."""
    cfg = model.config.get_text_config(decoder=True)
    if getattr(cfg, "is_encoder_decoder", False):
        return "encoder-decoder models are not supported"
    window = getattr(cfg, "sliding_window", None)
    use_window = getattr(cfg, "use_sliding_window", True)
    if window is not None and use_window and window < max_cache_len:
        # A rolling window cache cannot be rewound to a common prefix.
        return f"sliding-window attention ({window}) shorter than the context ({max_cache_len})"
    if getattr(cfg, "_attn_implementation", "sdpa") not in ("sdpa", "eager"):
        # flash-attn's HF path unpads with nonzero() (a host sync, not capturable) and without a
        # mask would attend to every static slot; SDPA takes the cache-position mask.
        return f"attention {cfg._attn_implementation!r}: the static cache needs 'sdpa' or 'eager'"
    gen = getattr(model, "generation_config", None)
    # Logits processors generate() would apply from the model's generation_config; the fast path
    # implements plain greedy/temperature/top-k/top-p only, and must give generate()'s tokens.
    for name, neutral in _NEUTRAL_GENERATION.items():
        value = getattr(gen, name, neutral)
        if value not in (neutral, None):
            return f"generation_config.{name}={value!r} is not implemented by the fast path"
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if base is None or model.get_output_embeddings() is None:
        return "the model has no separate base model and LM head"
    return None


class FastDecoder:
    """Greedy (or sampled) batch-1 generation over one static KV cache.

    The cache holds one document at a time; other documents' valid KV prefixes are kept as
    snapshots (an LRU of ``max_docs``) and copied back when they return, so graphs captured on the
    working cache stay valid. Not thread-safe: the backend calls it under its model lock."""

    def __init__(
        self,
        model: Any,
        max_cache_len: int,
        *,
        cuda_graphs: bool,
        lookup_tokens: int = 0,
        max_docs: int = 4,
        grouped_attention: bool = True,
    ) -> None:
        from transformers.cache_utils import Cache, StaticLayer

        self.model = model
        self.device = next(model.parameters()).device
        self.base = getattr(model, model.base_model_prefix)
        self.head = model.get_output_embeddings()
        cfg = model.config.get_text_config(decoder=True)
        self.logit_scale = float(getattr(cfg, "logits_scaling", 1.0) or 1.0)
        self.lookup_tokens = lookup_tokens
        self.max_docs = max_docs
        self.grouped = grouped_attention and model.config._attn_implementation == "sdpa"
        if self.grouped:
            _register_grouped_sdpa()
        self.max_len = max_cache_len
        # A verify step may write one draft past the budget. Padded prefill buckets get no slack:
        # one that would run past the end runs eagerly instead, because every decode step's SDPA
        # reads all slots (slack would cost bandwidth on every token).
        # Rounded to 64 slots: SDPA's memory-efficient kernel wants an aligned mask row.
        self.capacity = -(-(max_cache_len + lookup_tokens + 1) // 64) * 64
        # Plain StaticLayers for every layer (StaticCache would roll a sliding window, which cannot
        # be rewound; supports_fast_path() rejects windows shorter than the context).
        layers: list[Any] = [StaticLayer(self.capacity) for _ in range(cfg.num_hidden_layers)]
        self.cache = Cache(layers=layers)
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self._steps: dict[tuple[int, int], _Step] = {}
        self._pool: Any = None
        self._owner: str | None = None
        self._ids: list[int] = []  # tokens whose KV is valid in the working cache, in order
        self._docs: OrderedDict[str, _Snapshot] = OrderedDict()
        self.warmed = False

    # --- shapes -------------------------------------------------------------------------------

    def _shapes(self) -> list[tuple[int, int]]:
        shapes = [(1, 1)]
        if self.lookup_tokens:
            shapes.append((self.lookup_tokens + 1, self.lookup_tokens + 1))
        shapes += [(b, 1) for b in PREFILL_BUCKETS if b < self.max_len]
        return shapes

    def _step_for(self, n_tokens: int, start: int, n_rows: int) -> _Step:
        """The smallest fixed shape that fits, else an exact eager one (long prefills)."""
        for length, rows in self._shapes():
            if start + length > self.capacity:
                continue
            if n_tokens <= length and n_rows <= rows and (rows == 1) == (n_rows == 1):
                return self._step(length, rows)
        return _Step(self, n_tokens, n_rows)  # not kept: one per long prefill

    def _step(self, length: int, rows: int) -> _Step:
        step = self._steps.get((length, rows))
        if step is None:
            step = self._steps[(length, rows)] = _Step(self, length, rows)
        return step

    def warmup(self, prompt_len: int = 0) -> float:
        """Initialise the cache, run every shape once (and capture the CUDA graphs), and run one
        long prefill so its kernels are chosen before the first user request. Seconds taken."""
        t0 = time.perf_counter()
        with torch.inference_mode():
            long_len = max(1, min(prompt_len or self.max_len, self.max_len) - 1)
            self._forward([0] * long_len, 0, [long_len - 1])
            for length, rows in self._shapes():
                step = self._step(length, rows)
                if self.cuda_graphs:
                    step.pos.copy_(torch.arange(length))
                    self._pool = step.capture(self._pool)
                else:
                    step([0] * length, 0, list(range(rows)))
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        self._owner, self._ids = None, []  # warm-up wrote junk KV
        self._docs.clear()
        self.warmed = True
        return time.perf_counter() - t0

    def _forward(
        self, tokens: Sequence[int], start: int, rows: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        step = self._step_for(len(tokens), start, len(rows))
        return step(tokens, start, rows)

    # --- per-document KV ----------------------------------------------------------------------

    def _switch_to(self, doc_key: str) -> None:
        """Make ``doc_key`` the working cache's document: snapshot the owner's valid prefix and
        copy back ``doc_key``'s (device-to-device copies; ~60 MB for 2k tokens of a 1.5B model)."""
        if self._owner == doc_key:
            return
        if self._owner is not None and self._ids:
            n = len(self._ids)
            kv = [(lay.keys[:, :, :n].clone(), lay.values[:, :, :n].clone()) for lay in self._layers()]
            self._docs[self._owner] = _Snapshot(list(self._ids), kv)
            self._docs.move_to_end(self._owner)
            while len(self._docs) > self.max_docs:
                self._docs.popitem(last=False)
        snap = self._docs.pop(doc_key, None)
        self._ids = []
        if snap is not None and self._layers():
            for lay, (k, v) in zip(self._layers(), snap.kv, strict=True):
                lay.keys[:, :, : k.shape[2]].copy_(k)
                lay.values[:, :, : v.shape[2]].copy_(v)
            self._ids = snap.ids
        self._owner = doc_key

    def _layers(self) -> list[Any]:
        return [lay for lay in self.cache.layers if lay.is_initialized]

    def forget(self) -> None:
        self._owner, self._ids = None, []
        self._docs.clear()

    # --- generation ---------------------------------------------------------------------------

    def fits(self, n_prompt: int, max_new_tokens: int) -> bool:
        return n_prompt + max_new_tokens + self.lookup_tokens + 1 <= self.max_len

    def generate(
        self,
        ids: list[int],
        max_new_tokens: int,
        *,
        doc_key: str = "",
        reuse: bool = True,
        eos_ids: Sequence[int] = (),
        should_stop: Callable[[list[int]], bool] | None = None,
        on_tokens: Callable[[list[int]], None] | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        lookup: bool = True,
    ) -> tuple[list[int], DecodeStats]:
        """New token ids for prompt ``ids`` (EOS included when it ended the generation, as
        ``generate()`` returns it). ``should_stop(new_ids)`` is asked after every accepted token
        (stop strings, cancellation); ``on_tokens`` receives accepted tokens as they come."""
        if not ids:
            raise ValueError("empty prompt")
        if not self.fits(len(ids), max_new_tokens):
            raise ValueError(f"prompt of {len(ids)} tokens + {max_new_tokens} new exceeds the static cache")
        t0 = time.perf_counter()
        stats = DecodeStats(prompt_tokens=len(ids))
        with torch.inference_mode():
            self._switch_to(doc_key or "")
            if not reuse:
                self._ids = []
            # KV of a position depends only on the tokens up to it: the longest common token
            # prefix is exact to reuse. At least the last prompt token is fed to get its logits.
            keep = 0
            for a, b in zip(self._ids, ids, strict=False):
                if a != b:
                    break
                keep += 1
            keep = min(keep, len(ids) - 1)
            stats.reused_tokens = keep
            delta = ids[keep:]
            stats.prefilled_tokens = len(delta)
            self._ids = list(ids[:keep])  # KV past `keep` is stale from here on
            logits, top = self._forward(delta, keep, [len(delta) - 1])
            stats.forwards += 1
            self._ids.extend(delta)
            greedy = temperature <= 0
            use_lookup = lookup and greedy and self.lookup_tokens > 0
            eos = set(eos_ids)
            new: list[int] = []
            context = list(ids)  # prompt + accepted tokens, for n-gram lookup
            nxt = int(top[0]) if greedy else self._sample(logits[0], temperature, top_p, top_k)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            stats.ttft_ms = (time.perf_counter() - t0) * 1000
            pending = [nxt]  # accepted, not yet emitted
            while True:
                done = False
                emitted: list[int] = []
                for tok in pending:
                    new.append(tok)
                    context.append(tok)
                    emitted.append(tok)
                    if tok in eos or len(new) >= max_new_tokens or (should_stop and should_stop(new)):
                        done = True
                        break
                if on_tokens is not None and emitted:
                    on_tokens(emitted)
                if done:
                    break
                last = new[-1]
                pos = len(self._ids)
                draft = self._draft(context) if use_lookup else []
                # Drafts past the token budget could only be thrown away.
                draft = draft[: max(0, max_new_tokens - len(new) - 1)]
                if draft:
                    tokens = [last, *draft]
                    _, top = self._forward(tokens, pos, list(range(len(tokens))))
                    stats.forwards += 1
                    guess = top.tolist()
                    n_ok = 0
                    while n_ok < len(draft) and draft[n_ok] == guess[n_ok]:
                        n_ok += 1
                    stats.drafted_tokens += len(draft)
                    stats.accepted_tokens += n_ok
                    # KV is valid for `last` and the accepted drafts; the rest is overwritten later.
                    self._ids.extend(tokens[: n_ok + 1])
                    pending = [*draft[:n_ok], guess[n_ok]]
                else:
                    logits, top = self._forward([last], pos, [0])
                    stats.forwards += 1
                    self._ids.append(last)
                    pending = [int(top[0]) if greedy else self._sample(logits[0], temperature, top_p, top_k)]
        return new, stats

    def _sample(self, logits: torch.Tensor, temperature: float, top_p: float, top_k: int) -> int:
        """generate()'s order: temperature, top-k, top-p, then a multinomial draw."""
        logits = logits / temperature
        if 0 < top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            # Keep the smallest set whose mass reaches top_p (the top token always stays).
            drop = sorted_p.cumsum(-1) - sorted_p > top_p
            sorted_p[drop] = 0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
        return int(torch.multinomial(probs, 1))

    def _draft(self, context: list[int]) -> list[int]:
        """Prompt lookup: the tokens that followed the latest earlier occurrence of the context's
        last n-gram (n from _MAX_NGRAM down to 1). Code completions often copy nearby lines."""
        k = self.lookup_tokens
        size = len(context)
        for n in range(min(_MAX_NGRAM, size - 1), 0, -1):
            tail = context[-n:]
            first = tail[0]
            # Latest match first: nearby code is the likeliest continuation.
            for i in range(size - n - 1, -1, -1):
                if context[i] == first and context[i : i + n] == tail:
                    follow = context[i + n : i + n + k]
                    if follow:
                        return follow
        return []
