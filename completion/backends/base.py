"""The one small interface every backend implements, and the normalised request/response types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from completion.templates import SourceFile


@dataclass(frozen=True)
class GenerationRequest:
    """What the engine asks of a backend. ``prompt`` has the FIM template applied; backends that
    do FIM server-side use ``commented_prefix`` and ``suffix``, or ``prefix``, ``suffix`` and
    ``files`` when they take cross-file context separately."""

    prompt: str
    prefix: str = ""  # in-file prefix only
    suffix: str = ""
    commented_prefix: str = ""  # prefix with cross-file snippets as comment blocks
    files: tuple[SourceFile, ...] = ()
    path: str = ""
    max_new_tokens: int = 64
    temperature: float = 0.2
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    n: int = 1
    doc_key: str = ""  # same document across requests: lets a local backend reuse its KV cache


@dataclass(frozen=True)
class Generation:
    """One candidate, normalised across backends."""

    text: str
    finish_reason: str = "stop"  # "stop" | "length" | "cancelled"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendInfo:
    """What the engine needs to know after start(): the model and how to count its tokens."""

    model: str
    tokenizer: Any | None = None  # a HF fast tokenizer or tokenizers.Tokenizer, when known
    special_tokens: tuple[str, ...] | None = None  # for template detection
    template: str | None = None  # a template name the backend reports (our own server)
    server_side_fim: bool = False  # the backend applies the template itself from prefix/suffix


@runtime_checkable
class Backend(Protocol):
    name: str

    async def start(self) -> BackendInfo: ...

    async def generate(self, request: GenerationRequest) -> list[Generation]: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        """Text deltas of one candidate; closing the iterator stops the generation."""
        ...

    async def aclose(self) -> None: ...
