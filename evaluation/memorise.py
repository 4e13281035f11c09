"""Memorisation: is a completion in the model's training corpus? Checked as the language server
checks a suggestion (with the code before the cursor as context, only matches that reach into
the suggestion count), against an embedded index or a membership service."""

from __future__ import annotations

import inspect
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stacklens.errors import ConfigError, StacklensError


class MembershipOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: str | None = None
    url: str | None = None
    token: str | None = Field(default=None, repr=False)
    min_chars: int = Field(default=150, ge=20)
    context_chars: int = Field(default=300, ge=0, le=5000)

    @property
    def configured(self) -> bool:
        return bool(self.index or self.url)


def _open(opts: MembershipOptions) -> Any:
    from membership.settings import QuerySettings

    query = QuerySettings.model_validate({"min_chars": opts.min_chars})
    try:  # the one opener, where membership/open.py exists (#14)
        from membership import open as opener
    except ImportError:
        opener = None  # type: ignore[assignment]
    if opener is not None:
        settings = opener.CheckerSettings(index=opts.index, url=opts.url, token=opts.token, query=query)
        return opener.open_checker(settings)
    if opts.url:  # as `code-search query` opens one
        from membership.client import RemoteChecker

        return RemoteChecker(opts.url, settings=query, token=opts.token)
    from index.store import EmbeddedIndex
    from membership.query import Matcher

    return Matcher(EmbeddedIndex(str(opts.index)), query)


class Memorisation:
    """Opens the checker once; `check` is safe from several threads."""

    def __init__(self, opts: MembershipOptions) -> None:
        if not opts.configured:
            raise ConfigError("no membership index: give --index PATH or --membership-url URL")
        if opts.index and opts.url:
            raise ConfigError("check against one place: --index or --membership-url, not both")
        self.opts = opts
        self.checker = _open(opts)
        self._focus = "focus_start" in inspect.signature(self.checker.check).parameters
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"membership service {self.opts.url}" if self.opts.url else f"index {self.opts.index}"

    def check(self, before: str, completion: str, language: str, path: str) -> list[dict[str, Any]]:
        """The matches of ``completion`` (typed after ``before``), as small JSON objects."""
        if not completion.strip():
            return []
        context = before[-self.opts.context_chars :] if self.opts.context_chars else ""
        text = context + completion
        try:
            with self._lock:
                if self._focus:
                    found = self.checker.check(text, language, path, focus_start=len(context))
                else:
                    found = self.checker.check(text, language, path)
        except StacklensError:
            raise
        except Exception as exc:  # a broken index is one message, not a traceback per task
            raise StacklensError(f"membership check failed: {exc}") from exc
        out = []
        for m in found:
            if m.query_span.end_char <= len(context):
                continue  # the context alone: not what the model wrote
            out.append(
                {
                    "repo": m.source.repo,
                    "path": m.source.path,
                    "license": m.source.license,
                    "url": m.source.url,
                    "lines": [m.source_span.start_line, m.source_span.end_line],
                    "kind": m.kind,
                    "score": round(m.score, 3),
                    "matched_chars": m.matched_chars,
                    "occurrences": m.occurrences,
                }
            )
        return out

    def close(self) -> None:
        target = getattr(self.checker, "close", None) or getattr(
            getattr(self.checker, "store", None), "close", None
        )
        if target is not None:
            target()
