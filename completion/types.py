"""The completion engine's public types: the contract between the engine, its backends, the
language server and the completion server. Change only with all of them in mind."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OpenDocument:
    """Another document open in the editor, offered as cross-file context."""

    uri: str
    text: str
    language_id: str = "unknown"


@dataclass(frozen=True)
class CompletionRequest:
    """What the editor knows at the cursor. ``offset`` indexes ``text`` (a Python str index)."""

    uri: str
    text: str
    offset: int
    language_id: str = "unknown"
    other_documents: tuple[OpenDocument, ...] = ()
    explicit: bool = False  # invoked by the user (not while typing): completes mid-word too
    max_candidates: int = 1
    strip: tuple[str, ...] = ()  # removed from every suggestion (an llm-ls client's tokensToClear)


@dataclass(frozen=True)
class Completion:
    """One suggestion: ``text`` is inserted at the cursor (it replaces nothing)."""

    text: str
    backend: str = ""
    model: str = ""
    cached: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
