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
# the same shapes). Short prefill deltas after a keystroke go through these; longer ones run eagerly
# (they are compute bound, where launch overhead no longer matters).
PREFILL_BUCKETS = (16, 64, 256)
_MAX_NGRAM = 3  # prompt lookup: the longest suffix n-gram searched for in the context


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
    """One fixed-shape forward: ``length`` input tokens, logits of ``rows`` selected positions.

    Inputs live in static buffers so a CUDA graph captured over ``run`` replays with new values."""

    def __init__(self, decoder: FastDecoder, length: int, rows: int) -> None:
        dev = decoder.device
        self.decoder, self.length, self.rows = decoder, length, rows
        self.ids = torch.zeros((1, length), dtype=torch.long, device=dev)
        self.pos = torch.zeros((length,), dtype=torch.long, device=dev)
        self.sel = torch.zeros((rows,), dtype=torch.long, device=dev)
        self.out: torch.Tensor | None = None
        self.graph: Any = None

    def run(self) -> torch.Tensor:
        d = self.decoder
        hidden = d.base(
            input_ids=self.ids,
            position_ids=self.pos.unsqueeze(0),
            cache_position=self.pos,
            past_key_values=d.cache,
            use_cache=True,
        ).last_hidden_state
        # Only the needed rows go through the LM head: a 2k-token prefill would otherwise
        # materialise 2k x vocab logits (600 MB in bf16 for Qwen's 151k vocabulary).
        logits = d.head(hidden[0].index_select(0, self.sel)).float()
        if d.logit_scale != 1.0:
            logits = logits / d.logit_scale
        return logits

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

    def __call__(self, tokens: Sequence[int], start: int, rows: Sequence[int]) -> torch.Tensor:
        n = len(tokens)
        # Padding tokens go after the real ones: causal masking hides them from the real rows, and
        # their KV slots lie beyond the valid length, to be overwritten by later steps.
        self.ids[0, :n] = torch.tensor(tokens, dtype=torch.long)
        self.ids[0, n:] = 0
        self.pos.copy_(torch.arange(start, start + self.length, dtype=torch.long))
        sel = list(rows) + [rows[-1]] * (self.rows - len(rows))
        self.sel.copy_(torch.tensor(sel, dtype=torch.long))
        if self.graph is None:
            return self.run()[: len(rows)]
        self.graph.replay()
        assert self.out is not None
        return self.out[: len(rows)]


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
        # Slack past the context: a padded bucket or a draft may write beyond the last real token.
        self.slack = max(max(PREFILL_BUCKETS), lookup_tokens + 1)
        self.max_len = max_cache_len
        # Plain StaticLayers for every layer (StaticCache would roll a sliding window, which cannot
        # be rewound; supports_fast_path() rejects windows shorter than the context).
        layers = [StaticLayer(max_cache_len + self.slack) for _ in range(cfg.num_hidden_layers)]
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
        shapes += [(b, 1) for b in PREFILL_BUCKETS]
        return shapes

    def _step_for(self, n_tokens: int, n_rows: int) -> _Step:
        """The smallest fixed shape that fits, else an exact eager one (long prefills)."""
        for length, rows in self._shapes():
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

    def _forward(self, tokens: Sequence[int], start: int, rows: Sequence[int]) -> torch.Tensor:
        step = self._step_for(len(tokens), len(rows))
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
        eos_ids: Sequence[int] = (),
        should_stop: Callable[[list[int]], bool] | None = None,
        on_tokens: Callable[[list[int]], None] | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
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
            logits = self._forward(delta, keep, [len(delta) - 1])
            stats.forwards += 1
            self._ids.extend(delta)
            greedy = temperature <= 0
            use_lookup = lookup and greedy and self.lookup_tokens > 0
            eos = set(eos_ids)
            new: list[int] = []
            context = list(ids)  # prompt + accepted tokens, for n-gram lookup
            nxt = self._pick(logits[0], temperature, top_p)
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
                    out = self._forward(tokens, pos, list(range(len(tokens))))
                    stats.forwards += 1
                    guess = out.argmax(-1).tolist()
                    n_ok = 0
                    while n_ok < len(draft) and draft[n_ok] == guess[n_ok]:
                        n_ok += 1
                    stats.drafted_tokens += len(draft)
                    stats.accepted_tokens += n_ok
                    # KV is valid for `last` and the accepted drafts; the rest is overwritten later.
                    self._ids.extend(tokens[: n_ok + 1])
                    pending = [*draft[:n_ok], guess[n_ok]]
                else:
                    out = self._forward([last], pos, [0])
                    stats.forwards += 1
                    self._ids.append(last)
                    pending = [self._pick(out[0], temperature, top_p)]
        return new, stats

    def _pick(self, logits: torch.Tensor, temperature: float, top_p: float) -> int:
        if temperature <= 0:
            return int(logits.argmax())
        probs = torch.softmax(logits / temperature, dim=-1)
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
