from __future__ import annotations

import builtins
import keyword
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.normalize import tokenize
from index.store import EmbeddedIndex
from membership import Match, Matcher, QuerySettings, decode_query
from stacklens.errors import InputError
from tests.conftest import CORPUS_FILES, STDLIB


@pytest.fixture(scope="module")
def matcher(index_path: Path) -> Matcher:
    return Matcher(EmbeddedIndex(index_path))


def _lines(rel: str, start: int, n: int) -> str:
    """Lines ``start+1 .. start+n`` (1-based) of a corpus file."""
    return "".join((STDLIB / rel).read_text().splitlines(keepends=True)[start : start + n])


def _code_window(rel: str, n: int = 25) -> tuple[int, str]:
    """An n-line window of real code (not mostly docstring) from a corpus file."""
    lines = (STDLIB / rel).read_text().splitlines(keepends=True)
    for start in range(0, len(lines) - n, 5):
        chunk = "".join(lines[start : start + n])
        if chunk.count("def ") >= 1 and chunk.count('"""') == 0 and len(chunk.strip()) > 600:
            return start, chunk
    raise AssertionError(f"no code window in {rel}")


def test_verbatim_copy_is_exact_and_attributed(matcher: Matcher) -> None:
    rel = "src/" + CORPUS_FILES[0]
    start, text = _code_window(CORPUS_FILES[0])
    matches = matcher.check(text, lang="python")
    assert matches, "a verbatim 25-line copy must be found"
    top = matches[0]
    assert top.kind == "exact" and top.score == 1.0
    assert (top.source.repo, top.source.path, top.source.license) == ("example/corpus", rel, "GPL-3.0")
    assert top.source.url == f"https://example.invalid/example/corpus/blob/main/{rel}"
    # Located in the source: within the copied lines.
    assert start + 1 <= top.source_span.start_line <= top.source_span.end_line <= start + 25
    assert top.source_span.end_line - top.source_span.start_line >= 15
    qs = top.query_span
    assert 1 <= qs.start_line <= qs.end_line <= 25
    assert text[qs.start_char : qs.end_char].strip() == text[qs.start_char : qs.end_char]
    assert top.matched_chars >= 150


def test_reindented_copy_is_still_exact(matcher: Matcher) -> None:
    _, text = _code_window(CORPUS_FILES[1])
    reindented = "\n".join(
        "  " * ((len(line) - len(line.lstrip(" "))) // 4) + line.strip() + "   " for line in text.splitlines()
    )
    top = matcher.check(reindented, lang="python")[0]
    assert top.kind == "exact" and top.source.path.endswith(CORPUS_FILES[1])


def test_renamed_copy_is_near_and_still_attributed(matcher: Matcher) -> None:
    _, text = _code_window(CORPUS_FILES[2], 40)
    names: dict[str, str] = {}
    keep = set(keyword.kwlist) | set(dir(builtins)) | {"self"}

    def sub(m: re.Match[str]) -> str:
        w = m.group()
        return w if w in keep else names.setdefault(w, f"renamed_{len(names)}")

    renamed = re.sub(r"\b[A-Za-z_]\w*\b(?![\"'])", sub, text)
    matches = matcher.check(renamed, lang="python")
    assert matches and matches[0].source.path.endswith(CORPUS_FILES[2])
    assert matches[0].kind == "near" and matches[0].score < 1.0


def test_a_copy_inside_unseen_code_is_located(matcher: Matcher, unseen_texts: list[str]) -> None:
    _, copied = _code_window(CORPUS_FILES[3])
    before = "".join(unseen_texts[0].splitlines(keepends=True)[40:60])
    after = "".join(unseen_texts[0].splitlines(keepends=True)[60:80])
    text = before + copied + after
    top = matcher.check(text, lang="python")[0]
    lo, hi = len(before), len(before) + len(copied)
    qs = top.query_span
    # The span covers the copy, first and last lines included; it may reach past it by what
    # winnowing cannot tell apart (fewer than a window of tokens at either end), never more.
    first_line = before.count("\n") + 1
    assert qs.start_line <= first_line and qs.end_line >= first_line + copied.count("\n") - 1
    window = matcher.store.params.window
    assert len(tokenize(text[qs.start_char : lo])) < window
    assert len(tokenize(text[hi : qs.end_char])) < window


def test_context_before_the_focus_gives_no_match_of_its_own(
    matcher: Matcher, unseen_texts: list[str]
) -> None:
    """A suggestion is checked with the code before the cursor: a copy lying wholly in that
    context is not reported, one reaching into the suggestion is, located the same."""
    _, copied = _code_window(CORPUS_FILES[3])
    fresh = "".join(unseen_texts[0].splitlines(keepends=True)[40:60])
    assert matcher.check(copied + fresh, lang="python")  # found without a focus
    assert matcher.check(copied + fresh, lang="python", focus_start=len(copied)) == []
    plain = matcher.check(fresh + copied, lang="python")
    focused = matcher.check(fresh + copied, lang="python", focus_start=len(fresh))
    assert focused and [m.query_span for m in focused] == [m.query_span for m in plain]
    # A copy straddling the focus is still reported whole.
    half = len(copied) // 2
    straddling = matcher.check(copied, lang="python", focus_start=half)
    assert straddling and straddling[0].query_span.start_char < half < straddling[0].query_span.end_char


def test_unseen_code_and_short_idioms_do_not_match(matcher: Matcher, unseen_texts: list[str]) -> None:
    for text in unseen_texts:
        for start in range(0, len(text) - 1500, 3000):
            assert matcher.check(text[start : start + 1500], lang="python") == []
    short = _lines(CORPUS_FILES[0], 30, 3)
    assert matcher.check(short, lang="python") == []


def test_minimum_match_size_is_configurable(index_path: Path) -> None:
    _, text = _code_window(CORPUS_FILES[0])
    piece = "\n".join(text.splitlines()[:6])
    loose = Matcher(EmbeddedIndex(index_path), QuerySettings(min_chars=40))
    strict = Matcher(EmbeddedIndex(index_path), QuerySettings(min_chars=10_000))
    assert loose.check(piece, lang="python")
    assert strict.check(text, lang="python") == []


def test_match_json_has_exactly_the_designed_shape(matcher: Matcher) -> None:
    _, text = _code_window(CORPUS_FILES[0])
    data = matcher.check(text, lang="python")[0].model_dump()
    shape = {"kind", "score", "source", "source_span", "query_span", "matched_chars", "occurrences"}
    assert set(data) == shape
    assert data["occurrences"] == 1
    assert set(data["source"]) == {"repo", "path", "license", "url", "sha"}
    assert len(data["source"]["sha"]) == 40  # what evidence looks the source text up by
    assert set(data["source_span"]) == {"start_line", "end_line"}
    assert set(data["query_span"]) == {"start_line", "end_line", "start_char", "end_char"}
    assert Match.model_validate(data).model_dump() == data


def test_bad_query_bytes_get_clear_errors() -> None:
    with pytest.raises(InputError, match="binary"):
        decode_query(b"\x00\x01\x02", 100)
    with pytest.raises(InputError, match="UTF-8"):
        decode_query(b"caf\xe9", 100)
    with pytest.raises(InputError, match="empty"):
        decode_query(b"  \n\t", 100)
    with pytest.raises(InputError, match="limit"):
        decode_query(b"x" * 101, 100)
    assert decode_query("héllo 😀".encode(), 100) == "héllo 😀"


_SOURCES = {rel: (STDLIB / rel).read_text().splitlines(keepends=True) for rel in CORPUS_FILES}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(CORPUS_FILES), st.floats(0, 1), st.integers(12, 40))
def test_any_long_enough_copy_is_found(matcher: Matcher, rel: str, where: float, n: int) -> None:
    """Winnowing's guarantee, end to end: any copied span comfortably above the minimum
    size (in normalised characters and tokens) is reported, with the right source."""
    lines = _SOURCES[rel]
    start = int(where * max(0, len(lines) - n))
    text = "".join(lines[start : start + n])
    from index.normalize import normalized_text, tokenize

    if len(normalized_text(text, "python")) < 400 or len(tokenize(text, "python")) < 80:
        return
    matches = matcher.check(text, lang="python")
    assert any(m.source.path == f"src/{rel}" for m in matches)


@settings(deadline=None, max_examples=60)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab(), =\n+:")), min_size=40, max_size=300),
    bounds=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_per_query_shape_counts_equal_the_direct_ones(text: str, bounds: tuple[float, float]) -> None:
    """The structure-only checks count over token ranges from per-query arrays; the counts must be
    those of a direct computation on the range."""
    import numpy as np

    from index.fingerprint import structure_hashes
    from index.normalize import PLACEHOLDER_ID, tokenize
    from membership.renamed import PUNCTUATION, Shape

    tokens = tokenize(text, "python")
    structure = structure_hashes(tokens, 3)
    if len(structure) < 2:
        return
    i, j = sorted(int(b * len(structure)) for b in bounds)
    shape = Shape(tokens, structure)
    assert shape.distinct(i, j) == len(np.unique(structure[i:j]))
    span = tokens.abstract[i:j]
    assert shape.specific(i, j) == int(((span != PLACEHOLDER_ID) & ~np.isin(span, PUNCTUATION)).sum())


def test_a_short_copy_without_a_language_is_found_and_covered(matcher: Matcher) -> None:
    """llm-vscode's /overlap sends only the document: bisect.insort_right pasted alone (433
    characters) must match, and the span must cover it from `def insort_right(` to the last
    `insert(lo, x)`, not stop a few tokens short at either end."""
    text = (STDLIB / "bisect.py").read_text()
    start = text.index("def insort_right(")
    end = text.index("a.insert(lo, x)", start) + len("a.insert(lo, x)")
    pasted = "x = compute()\n\n" + text[start:end] + "\n"
    top = matcher.check(pasted)[0]
    assert top.source.path.endswith("bisect.py")
    qs = top.query_span
    copied_from = pasted.index("def insort_right(")
    assert qs.start_char <= copied_from and qs.end_char >= len(pasted) - 1


def test_window_argmins_are_each_windows_leftmost_smallest() -> None:
    # Few distinct hashes, so windows hold ties: the leftmost of them, as winnowing keeps.
    from membership.query import _window_argmins

    rng = np.random.default_rng(3)
    for n in [*range(0, 30), 200]:
        hashes = rng.integers(0, 6, n).astype(np.uint64)
        expected = [int(np.argmin(hashes))] if 0 < n < 11 else []
        expected += [j + int(np.argmin(hashes[j : j + 11])) for j in range(n - 10)]
        assert _window_argmins(hashes, 11) == expected
