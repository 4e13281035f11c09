"""Prompt cache and typed-ahead reuse."""

from __future__ import annotations

from completion.cache import PromptCache, TypedAheadCache


def test_prompt_cache_lru() -> None:
    c = PromptCache(size=2)
    k1, k2, k3 = (PromptCache.key(p, "single") for p in ("a", "b", "c"))
    c.put(k1, ("1",))
    c.put(k2, ("2",))
    assert c.get(k1) == ("1",)  # k1 is now the most recent
    c.put(k3, ("3",))
    assert c.get(k2) is None and c.get(k1) == ("1",) and c.get(k3) == ("3",)
    assert PromptCache.key("ab", "c") != PromptCache.key("a", "bc")


def test_typed_ahead_serves_the_rest() -> None:
    t = TypedAheadCache()
    t.remember("u", "x = ", "\n", ("compute(a, b)", "count"))
    assert t.lookup("u", "x = co", "\n") == ("mpute(a, b)", "unt")
    assert t.lookup("u", "x = com", "\n") == ("pute(a, b)",)
    assert t.lookup("u", "x = q", "\n") is None  # typed something else
    assert t.lookup("u", "x = co", "\nchanged") is None  # the suffix changed
    assert t.lookup("other", "x = co", "\n") is None
    assert t.lookup("u", "x = compute(a, b)", "\n") is None  # nothing left to show


def test_accept_advances_or_clears() -> None:
    t = TypedAheadCache()
    t.remember("u", "x = ", "", ("compute(a, b)",))
    t.accept("u", "compute(")  # partial accept (word by word)
    assert t.lookup("u", "x = compute(", "") == ("a, b)",)
    t.accept("u", "a, b)")
    assert t.lookup("u", "x = compute(a, b)", "") is None
