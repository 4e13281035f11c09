"""Context building: token budget, prefix/suffix split, cross-file ranking and formats, CRLF."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from completion.context import ContextBuilder, relative_paths
from completion.crossfile import SnippetIndex
from completion.settings import BudgetSettings
from completion.templates import TEMPLATES
from completion.tokens import EstimatingCounter, TokenizerCounter
from completion.types import CompletionRequest, OpenDocument
from fixtures.tiny_model import make_tiny_tokenizer


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> TokenizerCounter:
    return TokenizerCounter(make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), "qwen"))


def _doc(n: int, word: str = "value") -> str:
    return "".join(f"def func_{i}({word}):\n    return {word} + {i}\n\n" for i in range(n))


def test_prompt_fits_the_budget_with_the_split(counter: TokenizerCounter) -> None:
    text = _doc(200)
    offset = len(text) // 2
    cfg = BudgetSettings(context_window=512, max_new_tokens=64, prefix_ratio=0.75)
    ctx = ContextBuilder(TEMPLATES["qwen"], counter, cfg).build(
        CompletionRequest("file:///p/a.py", text, offset, "python")
    )
    total = counter.count(ctx.prompt)
    assert total <= 512 - 64
    assert total > 300  # the budget is used, not wasted
    pre, suf = counter.count(ctx.prefix), counter.count(ctx.suffix)
    assert 2.0 < pre / suf < 4.5  # ~75/25
    assert text[:offset].endswith(ctx.prefix) and text[offset:].startswith(ctx.suffix)
    assert ctx.prefix.startswith("def") or ctx.prefix.startswith("    ") or ctx.prefix[0] == "\n"
    assert ctx.suffix.endswith("\n")  # whole lines


def test_short_suffix_lends_its_budget_to_the_prefix(counter: TokenizerCounter) -> None:
    text = _doc(200)
    cfg = BudgetSettings(context_window=512, max_new_tokens=64, prefix_ratio=0.5)
    ctx = ContextBuilder(TEMPLATES["qwen"], counter, cfg).build(
        CompletionRequest("file:///p/a.py", text, len(text) - 5)
    )
    assert counter.count(ctx.prefix) > 300


def test_estimating_counter_without_tokenizer() -> None:
    text = _doc(300)
    ctx = ContextBuilder(
        TEMPLATES["starcoder"], EstimatingCounter(), BudgetSettings(context_window=1024, max_new_tokens=64)
    ).build(CompletionRequest("file:///a.py", text, len(text)))
    budget_chars = (1024 - 64) * 3  # the window less the new tokens, at 3 characters a token
    # Fills the budget (a prompt cut to nothing would pass an upper bound alone) with the text
    # right before the cursor.
    assert 0.9 * budget_chars <= len(ctx.prompt) <= budget_chars
    assert text.endswith(ctx.prefix) and len(ctx.prefix) >= 0.9 * budget_chars


def test_crossfile_ranking_prefers_the_related_document() -> None:
    related = OpenDocument("file:///p/geometry.py", "class Vector:\n    def norm(self): ...\n" * 3)
    unrelated = OpenDocument("file:///p/http.py", "def fetch(url, session):\n    return session.get(url)\n")
    idx = SnippetIndex(window_lines=10)
    ranked = idx.rank("v = Vector(1, 2)\nprint(v.norm())", [unrelated, related], 4)
    assert [s.uri for s in ranked] == ["file:///p/geometry.py"]


def test_crossfile_in_repo_format_for_qwen(counter: TokenizerCounter) -> None:
    other = OpenDocument("file:///proj/pkg/vec.py", "class Vector:\n    def norm(self):\n        pass\n")
    noise = OpenDocument("file:///proj/pkg/net.py", "def fetch(url):\n    return url\n")
    req = CompletionRequest(
        "file:///proj/main.py",
        "from pkg.vec import Vector\nv = Vector()\nv.",
        40,
        "python",
        (noise, other),
    )
    cfg = BudgetSettings(context_window=1024, max_new_tokens=64, repo_name="proj")
    ctx = ContextBuilder(TEMPLATES["qwen"], counter, cfg).build(req)
    assert ctx.prompt.startswith("<|repo_name|>proj\n<|file_sep|>pkg/vec.py\nclass Vector:")
    assert "<|file_sep|>main.py\n<|fim_prefix|>from pkg.vec" in ctx.prompt
    assert "net.py" not in ctx.prompt


def test_crossfile_as_comment_blocks_otherwise(counter: TokenizerCounter) -> None:
    other = OpenDocument("file:///proj/vec.ts", "class Vector {\n  norm() { return 1; }\n}\n")
    req = CompletionRequest("file:///proj/main.ts", "const v = new Vector();\nv.", 26, "typescript", (other,))
    ctx = ContextBuilder(
        TEMPLATES["starcoder"], counter, BudgetSettings(context_window=1024, max_new_tokens=64)
    ).build(req)
    assert ctx.prompt.startswith("<fim_prefix>// Path: vec.ts\n// class Vector {\n//   norm()")
    assert ctx.commented_prefix.endswith("const v = new Vector();\nv.")


def test_crlf_normalised(counter: TokenizerCounter) -> None:
    text = "a = 1\r\nb = 2\r\nc = "
    req = CompletionRequest("file:///x.py", text, len(text))
    ctx = ContextBuilder(
        TEMPLATES["qwen"], counter, BudgetSettings(context_window=512, max_new_tokens=32)
    ).build(req)
    assert ctx.crlf and "\r" not in ctx.prompt and ctx.prefix == "a = 1\nb = 2\nc = "


def test_relative_paths() -> None:
    got = relative_paths(["file:///w/p/a.py", "file:///w/p/sub/b.py", "untitled:Untitled-1"])
    assert got == {
        "file:///w/p/a.py": "a.py",
        "file:///w/p/sub/b.py": "sub/b.py",
        "untitled:Untitled-1": "Untitled-1",
    }


def test_tokenizer_counter_head_tail(counter: TokenizerCounter, tmp_path: Path) -> None:
    text = _doc(50)
    head, tail = counter.head(text, 40), counter.tail(text, 40)
    assert text.startswith(head) and text.endswith(tail)
    assert 36 <= counter.count(head) <= 40 and 36 <= counter.count(tail) <= 40


@settings(deadline=None, max_examples=150)
@given(
    text=st.text(alphabet=st.sampled_from(list("abc xyz_():\n\t\r{}é€")), max_size=3000),
    where=st.floats(0, 1),
    ratio=st.floats(0.1, 0.9),
)
def test_context_invariants(counter: TokenizerCounter, text: str, where: float, ratio: float) -> None:
    """Any text, any cursor: the kept prefix/suffix touch the cursor and the budget holds."""
    offset = int(len(text) * where)
    cfg = BudgetSettings(context_window=256, max_new_tokens=32, prefix_ratio=ratio)
    ctx = ContextBuilder(TEMPLATES["starcoder"], counter, cfg).build(
        CompletionRequest("file:///a.py", text, offset)
    )
    lf = text.replace("\r\n", "\n")
    lf_offset = offset - text[:offset].count("\r\n")
    assert lf[:lf_offset].endswith(ctx.prefix)
    assert lf[lf_offset:].startswith(ctx.suffix)
    assert counter.count(ctx.prefix) + counter.count(ctx.suffix) <= 256 - 32


def _typing_session(builder: ContextBuilder, text: str, at: int, typed: str) -> list[str]:
    """The prompts for typing ``typed`` one character at a time at ``at`` in ``text``."""
    prompts = []
    for i in range(1, len(typed) + 1):
        doc = text[:at] + typed[:i] + text[at:]
        prompts.append(builder.build(CompletionRequest("file:///a.py", doc, at + i)).prompt)
    return prompts


def _not_appends(prompts: list[str]) -> int:
    return sum(not b.startswith(a) for a, b in itertools.pairwise(prompts))


def test_suffix_first_prompt_only_grows_while_typing(counter: TokenizerCounter) -> None:
    """With SPM and the cut grid, typing only appends to the prompt (the KV cache keeps all of
    it); the prefix start moves about once per grid of lines typed, not once per line."""
    text = _doc(300)
    at = text.index("def func_150")
    typed = "".join(f"def typed_{i}(x):\n    return x * {i}\n" for i in range(8))  # 16 lines
    spm = TEMPLATES["starcoder"].ordered("spm")
    cfg = BudgetSettings(context_window=1024, max_new_tokens=64)
    prompts = _typing_session(ContextBuilder(spm, counter, cfg), text, at, typed)
    assert all(p.startswith("<fim_prefix><fim_suffix>") for p in prompts)
    moved_grid = _not_appends(prompts)
    no_grid = ContextBuilder(spm, counter, cfg, cut_grid_lines=1)
    moved_lines = _not_appends(_typing_session(no_grid, text, at, typed))
    assert moved_grid <= 16 // 8 + 1 and moved_lines >= 16
    # PSM: every keystroke changes the text before the suffix.
    psm = _typing_session(ContextBuilder(TEMPLATES["starcoder"], counter, cfg), text, at, typed[:40])
    assert _not_appends(psm) == len(psm) - 1


def test_cut_grid_counts_prefix_lines_from_the_top_and_suffix_lines_from_the_bottom(
    counter: TokenizerCounter,
) -> None:
    text = _doc(300)
    offset = text.index("def func_150")
    cfg = BudgetSettings(context_window=2048, max_new_tokens=64)
    ctx = ContextBuilder(TEMPLATES["starcoder"], counter, cfg, cut_grid_lines=8).build(
        CompletionRequest("file:///a.py", text, offset)
    )
    start = offset - len(ctx.prefix)
    end = offset + len(ctx.suffix)
    assert start > 0 and end < len(text)
    assert text.count("\n", 0, start) % 8 == 0 and text[start - 1] == "\n"
    assert text.count("\n", end) % 8 == 0 and text[end - 1] == "\n"
