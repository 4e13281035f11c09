"""The model the completion server loads once, with its FIM template: prompt building, fit
checks, batched and streamed generation shared by both APIs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from completion.backends.base import GenerationRequest
from completion.crossfile import as_comment_block, language_of
from completion.postprocess import cut_at_stops
from completion.settings import TransformersSettings
from completion.templates import FimTemplate, SourceFile, resolve_template
from stacklens.errors import InputError, StacklensError

from .schemas import CompletionBody

if TYPE_CHECKING:
    from .batching import Batcher

log = logging.getLogger(__name__)
# Where a model's config keeps its context length, by architecture.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_seq_len")


@dataclass
class ServerConfig:
    model: str
    token: str | None = None
    max_body_bytes: int = 1_000_000
    template: str | None = None
    device: str = "auto"
    dtype: str = "auto"


class ModelService:
    """The loaded model plus its template; generation helpers shared by both APIs."""

    def __init__(self, config: ServerConfig) -> None:
        from completion.backends.transformers_backend import TransformersBackend

        settings = TransformersSettings.model_validate(
            {"model": config.model, "device": config.device, "dtype": config.dtype}
        )
        self.config = config
        self.backend = TransformersBackend(settings)
        self.template: FimTemplate | None = None
        self.batcher: Batcher | None = None
        self.context_length: int | None = None
        self.stats = {"abandoned": 0}  # requests whose client left before the answer

    def load(self) -> None:
        """Load the model now (the CLI does, so a bad --model is one line, not a traceback)."""
        self.backend.load()

    async def start(self) -> None:
        from .batching import Batcher

        info = await self.backend.start()
        self.context_length = _context_length(self.backend.model, self.backend.tokenizer)
        self.batcher = Batcher(self.backend)
        self.batcher.start()
        try:
            self.template = resolve_template(
                self.config.template, model_id=self.config.model, tokens=info.special_tokens
            )
        except StacklensError:
            log.warning("no FIM template known for %s: requests with `suffix` will fail", self.config.model)

    def fim_prompt(self, body: CompletionBody, prompt: str) -> str:
        if body.suffix is None:
            return prompt
        if self.template is None:
            raise InputError("this model has no known FIM template: restart with --template NAME")
        files = tuple(SourceFile(f.filename, f.text) for f in body.input_extra)
        if self.template.has_repo_format:
            return self.template.render(prompt, body.suffix, files, body.filename)
        blocks = "".join(as_comment_block(f.path, f.text, language_of(f.path)) for f in files)
        return self.template.render(blocks + prompt, body.suffix)

    async def check_fits(self, prompt: str, max_new: int, field: str = "max_tokens") -> int:
        """The prompt's token count, after refusing up front what the model cannot generate: an
        empty prompt, or a prompt and ``max_new`` tokens over its context (it would fail, or
        ramble past it, after a minute of work)."""
        # In a thread: a prompt near the body limit takes seconds to tokenize on a small CPU.
        n = len((await asyncio.to_thread(self.backend.tokenizer, prompt))["input_ids"])
        if n == 0:
            raise InputError("the prompt is empty: send at least the code before the cursor")
        ctx = self.context_length
        if ctx is not None and n + max_new > ctx:
            raise InputError(
                f"the prompt ({n} tokens) and {field}={max_new} need {n + max_new}, over this "
                f"model's context of {ctx} tokens; send a shorter prompt or ask for fewer tokens"
            )
        return n

    async def generate(self, req: GenerationRequest) -> list[str]:
        """Texts (cut at stops) for a non-streaming request; n=1 requests are batched."""
        if req.n == 1 and self.batcher is not None:
            return [cut_at_stops(await self.batcher.submit(req), req.stop)]
        return [cut_at_stops(g.text, req.stop) for g in await self.backend.generate(req)]

    def stops(self, extra: list[str]) -> tuple[str, ...]:
        specials = self.template.special_tokens if self.template else ()
        eos = self.backend.tokenizer.eos_token
        return tuple(dict.fromkeys([*extra, *specials, *([eos] if eos else [])]))

    def request(
        self,
        prompt: str,
        max_new: int,
        temperature: float,
        top_p: float,
        stop: tuple[str, ...],
        n: int = 1,
        doc_key: str = "",
    ) -> GenerationRequest:
        return GenerationRequest(
            prompt=prompt,
            max_new_tokens=max_new,
            temperature=temperature,
            top_p=top_p,
            stop=stop,
            n=n,
            doc_key=doc_key,
        )

    async def stream_text(self, req: GenerationRequest) -> AsyncIterator[str]:
        """Deltas cut at the first stop string; text that may start a stop is held back."""
        hold = max((len(s) for s in req.stop), default=1) - 1
        text, sent = "", 0
        agen = self.backend.stream(req)
        try:
            async for delta in agen:
                text += delta
                cut = cut_at_stops(text, req.stop)
                if len(cut) < len(text):
                    if len(cut) > sent:
                        yield cut[sent:]
                    return
                safe = len(text) - hold
                if safe > sent:
                    yield text[sent:safe]
                    sent = safe
            if len(text) > sent:
                yield text[sent:]
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

    def usage(self, prompt_tokens: int, texts: list[str]) -> dict[str, int]:
        tok = self.backend.tokenizer
        c = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": c, "total_tokens": prompt_tokens + c}


def _context_length(model: Any, tokenizer: Any) -> int | None:
    """The most tokens (prompt and generated) the model takes; None when it does not say."""
    config = getattr(model, "config", None)
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel (1e30).
    return value if isinstance(value, int) and 0 < value < 10_000_000 else None
