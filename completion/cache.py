"""Completion caches: exact prompt hits, and typed-ahead reuse of a shown suggestion."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass


class PromptCache:
    """LRU of post-processed candidates keyed on a digest of the prompt and sampling settings."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._data: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()

    @staticmethod
    def key(*parts: str) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        for part in parts:
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        return h.digest()

    def get(self, key: bytes) -> tuple[str, ...] | None:
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
        return hit

    def put(self, key: bytes, values: tuple[str, ...]) -> None:
        if self.size <= 0:
            return
        self._data[key] = values
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


@dataclass
class _Shown:
    prefix: str  # document text before the cursor when the suggestions were shown
    suffix: str  # document text after the cursor
    texts: tuple[str, ...]


class TypedAheadCache:
    """Remembers the suggestions last shown per document. When the user then types the start of
    one of them, the rest is served without a model call."""

    def __init__(self, max_docs: int = 256) -> None:
        self.max_docs = max_docs
        self._shown: OrderedDict[str, _Shown] = OrderedDict()

    def remember(self, uri: str, prefix: str, suffix: str, texts: tuple[str, ...]) -> None:
        if not texts:
            self._shown.pop(uri, None)
            return
        self._shown[uri] = _Shown(prefix, suffix, texts)
        self._shown.move_to_end(uri)
        while len(self._shown) > self.max_docs:
            self._shown.popitem(last=False)

    def lookup(self, uri: str, prefix: str, suffix: str) -> tuple[str, ...] | None:
        shown = self._shown.get(uri)
        if shown is None or suffix != shown.suffix or not prefix.startswith(shown.prefix):
            return None
        typed = prefix[len(shown.prefix) :]
        rest = tuple(t[len(typed) :] for t in shown.texts if t.startswith(typed) and len(t) > len(typed))
        return rest or None

    def accept(self, uri: str, text: str) -> None:
        """The user inserted ``text`` (all or the start of a shown suggestion) at the cursor."""
        shown = self._shown.get(uri)
        if shown is None:
            return
        rest = tuple(t[len(text) :] for t in shown.texts if t.startswith(text) and len(t) > len(text))
        if not rest:
            del self._shown[uri]  # fully accepted: the next request needs the model
            return
        self._shown[uri] = _Shown(shown.prefix + text, shown.suffix, rest)

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)
