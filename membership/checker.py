"""The `Checker` protocol every membership checker offers (in process or over HTTP), and the
in-process checker over an index store."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any, Protocol, TypedDict

from index.protocol import IndexStore

from .match import Match
from .query import Matcher
from .settings import QuerySettings


class Snippet(TypedDict, total=False):
    """One text of a batch check; ``text`` is required, ``lang`` and ``path`` are hints."""

    text: str
    lang: str | None
    path: str | None


class Checker(Protocol):
    """Is this code in the corpus? One text or a batch; ``close`` releases the store or client."""

    def check(
        self, text: str, lang: str | None = None, path: str | None = None, *, focus_start: int = 0
    ) -> list[Match]: ...

    def check_many(self, snippets: Sequence[Snippet], *, focus_start: int = 0) -> list[list[Match]]: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


class StoreChecker:
    """A `Matcher` over an index store it owns (closed with it).

    ``serialise``: the embedded store reads documents through one shared file handle (seek +
    read), so its checks run one at a time; Elasticsearch's client is thread-safe."""

    def __init__(self, store: IndexStore, settings: QuerySettings | None = None, *, serialise: bool) -> None:
        self.store = store
        self.matcher = Matcher(store, settings)
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if serialise else contextlib.nullcontext()
        )

    def check(
        self, text: str, lang: str | None = None, path: str | None = None, *, focus_start: int = 0
    ) -> list[Match]:
        """As `Matcher.check`: text before ``focus_start`` is context only."""
        with self._lock:
            return self.matcher.check(text, lang, path, focus_start=focus_start)

    def check_many(self, snippets: Sequence[Snippet], *, focus_start: int = 0) -> list[list[Match]]:
        """`check` of each snippet, in order, under one hold of the lock."""
        with self._lock:
            return [
                self.matcher.check(s["text"], s.get("lang"), s.get("path"), focus_start=focus_start)
                for s in snippets
            ]

    def describe(self) -> str:
        return self.store.describe()

    def close(self) -> None:
        self.store.close()
