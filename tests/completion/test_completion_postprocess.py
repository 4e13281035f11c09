"""Mode decision and post-processing filters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from completion.mode import CursorLine, cursor_line, decide_mode
from completion.postprocess import PostContext, finalize, postprocess

STOPS = ("<|endoftext|>", "<fim_middle>", "<file_sep>")


@pytest.mark.parametrize(
    ("before", "after", "explicit", "mode"),
    [
        ("    resu", "lt", False, "none"),  # mid-word
        ("    resu", "lt", True, "single"),  # ...unless invoked
        ("x = foo(", "a, b)", False, "single"),  # code after the cursor
        ("x = foo(", ")", False, "multi"),  # only a closer after: an opener before
        ("    ", "", False, "multi"),  # blank line
        ("def f(x):", "", False, "multi"),  # block opener
        ("if (a) {", "", False, "multi"),
        ("x = 1 +", "", False, "single"),  # mid-statement
        ("# a comment about", "", False, "single"),
    ],
)
def test_decide_mode(before: str, after: str, explicit: bool, mode: str) -> None:
    assert decide_mode(CursorLine(before, after), explicit=explicit) == mode


def test_mode_settings_override() -> None:
    assert decide_mode(CursorLine("    ", ""), setting="never") == "single"
    assert decide_mode(CursorLine("x = 1 +", ""), setting="always") == "multi"
    assert cursor_line("a\nbc d\ne", 5) == CursorLine("bc ", "d")


def _ctx(before: str, after: str, suffix_rest: str = "", mode: str = "multi") -> PostContext:
    return PostContext(mode, CursorLine(before, after), after + suffix_rest, STOPS)  # type: ignore[arg-type]


def test_strip_fim_and_eos_tokens() -> None:
    ctx = _ctx("x = ", "", mode="single")
    assert postprocess("42<|endoftext|>junk", ctx) == "42"
    assert postprocess("42<file_sep>other.py", ctx) == "42"


def test_single_line_keeps_the_first_line() -> None:
    assert postprocess("foo(a)\nbar()\n", _ctx("x = ", "", mode="single")) == "foo(a)"


def test_cut_where_it_repeats_the_suffix() -> None:
    ctx = _ctx("def f(x):", "", "\n    return x * 2\n")
    out = postprocess("\n    y = x + 1\n    return x * 2\n", ctx)
    assert out == "\n    y = x + 1"
    # The rest of the line, repeated at the end of a single-line completion.
    assert postprocess("a, b)", _ctx("foo(", "a, b)", mode="single")) == ""
    assert postprocess("x, a, b)", _ctx("foo(", "a, b)", mode="single")) == "x, "


def test_trim_multiline_to_the_enclosing_block() -> None:
    ctx = _ctx("def f(x):", "")
    raw = "\n    y = x + 1\n    return y\n\ndef g():\n    pass\n"
    assert postprocess(raw, ctx) == "\n    y = x + 1\n    return y"
    ctx = _ctx("    ", "")  # blank line inside a body
    raw = "total = 0\n    for v in vs:\n        total += v\nprint(total)"
    assert postprocess(raw, ctx) == "total = 0\n    for v in vs:\n        total += v"
    braces = _ctx("  if (a) {", "")
    assert postprocess("\n    b();\n  }\n  c();\n", braces) == "\n    b();\n  }"


def test_balance_brackets_against_the_suffix() -> None:
    ctx = _ctx("print(", ")", mode="single")
    assert postprocess('"hi")', ctx) == '"hi"'
    assert postprocess("f(x))", ctx) == "f(x)"
    assert postprocess("f(x)", ctx) == "f(x)"  # its own pair is kept
    assert postprocess("')')", ctx) == "')'"  # brackets in strings do not count


def test_partial_word_echo_is_dropped() -> None:
    ctx = _ctx("    resu", "", mode="single")
    assert postprocess("result = 0", ctx) == "lt = 0"
    assert postprocess("lt = 0", ctx) == "lt = 0"


def test_finalize_drops_empty_and_duplicates() -> None:
    ctx = _ctx("x = ", "", mode="single")
    assert finalize(["1", "<|endoftext|>", "1\nmore", "  ", "2"], ctx) == ["1", "2"]


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=200), st.sampled_from(["single", "multi"]))
def test_output_never_carries_stop_tokens_and_is_stable(raw: str, mode: str) -> None:
    ctx = _ctx("    x = ", "", "\n    return x\n", mode=mode)
    out = postprocess(raw, ctx)
    assert not any(s in out for s in STOPS)
    if mode == "single":
        assert "\n" not in out
    assert postprocess(out, ctx) == out or out == ""
