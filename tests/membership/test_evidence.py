"""Side-by-side evidence (membership/evidence.py): on verbatim, re-indented and consistently
renamed copies every differing identifier is explained by the mapping, and nothing else differs."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from index.normalize import KEYWORDS
from membership.evidence import align, for_match, query_only
from membership.match import Match

NAMES = [
    n
    for n in ("alpha", "beta", "gamma", "delta", "total", "items", "node", "count", "ring")
    if n not in KEYWORDS
]
_IDENT = re.compile(r"[A-Za-z_]\w*")

_name = st.sampled_from(NAMES)
_num = st.integers(0, 999).map(str)
_stmt = st.one_of(
    st.tuples(_name, _name, _num).map(lambda t: f"{t[0]} = {t[1]} + {t[2]}"),
    st.tuples(_name, _name, _name).map(lambda t: f"def {t[0]}({t[1]}, {t[2]}):"),
    st.tuples(_name, _name).map(lambda t: f"return {t[0]}({t[1]})"),
    st.tuples(_name, _name, _num).map(lambda t: f"if {t[0]} > {t[1]}: {t[0]} = {t[2]}"),
    st.tuples(_name, _name).map(lambda t: f"for {t[0]} in {t[1]}.keys(): pass"),
)
_program = st.lists(st.tuples(st.integers(0, 3), _stmt), min_size=1, max_size=12).map(
    lambda lines: "".join("    " * depth + stmt + "\n" for depth, stmt in lines)
)


def _rename(code: str, mapping: dict[str, str]) -> str:
    return _IDENT.sub(lambda m: mapping.get(m.group(0), m.group(0)), code)


def _identifiers(code: str) -> set[str]:
    return {w for w in _IDENT.findall(code) if w not in KEYWORDS}


def _explained(ev_rows: tuple, renames: dict[str, str]) -> None:
    """Every row pairs a query line with a source line, and applying the mapping to the source
    line gives the query line's tokens: the mapping explains every difference."""
    for row in ev_rows:
        assert row.query_line is not None and row.source_line is not None, row
        assert all(m.kind == "renamed" for m in (*row.query_marks, *row.source_marks)), row
        assert _rename(row.source_text, renames).split() == row.query_text.split(), (row, renames)


@settings(max_examples=60, deadline=None)
@given(_program)
def test_verbatim_copy_has_no_differences(code: str) -> None:
    ev = align(code, code)
    assert ev.renames == {}
    assert [r.status for r in ev.rows] == ["same"] * len(ev.rows)
    assert [(r.query_line, r.source_line) for r in ev.rows] == [
        (i, i) for i in range(1, code.count("\n") + 1)
    ]


@settings(max_examples=60, deadline=None)
@given(_program, st.data())
def test_reindented_copy_has_no_differences(code: str, data: st.DataObject) -> None:
    lines = code.splitlines()
    indents = data.draw(
        st.lists(st.sampled_from(["", " ", "\t", "        "]), min_size=len(lines), max_size=len(lines))
    )
    query = "".join(pad + line.lstrip() + "\n" for pad, line in zip(indents, lines, strict=True))
    ev = align(query, code, query_start_line=40, source_start_line=7)
    assert ev.renames == {}
    assert all(r.status == "same" for r in ev.rows)
    assert [(r.query_line, r.source_line) for r in ev.rows] == [(40 + i, 7 + i) for i in range(len(lines))]


@settings(max_examples=80, deadline=None)
@given(_program, st.data())
def test_renamed_copy_is_explained_by_the_mapping(code: str, data: st.DataObject) -> None:
    present = sorted(_identifiers(code))
    renamed = data.draw(st.lists(st.sampled_from(present), unique=True))
    mapping = {old: f"{old}_v{k}" for k, old in enumerate(renamed)}
    reindent = data.draw(st.booleans())
    query = _rename(code, mapping)
    if reindent:
        query = "".join("  " + line + "\n" for line in query.splitlines())
    ev = align(query, code)
    assert ev.renames == mapping
    _explained(ev.rows, ev.renames)
    statuses = {r.status for r in ev.rows}
    assert statuses <= {"same", "renamed"}
    assert ("renamed" in statuses) == bool(mapping)


def test_an_edit_is_marked_changed_on_both_sides() -> None:
    src = "def area(w, h):\n    return w * h\n"
    query = "def area(width, h):\n    return width * h * 2\n"
    ev = align(query, src)
    assert ev.renames == {"w": "width"}
    first, second = ev.rows
    assert first.status == "renamed"
    assert second.status == "changed"
    changed = [m for m in second.query_marks if m.kind == "changed"]
    assert [second.query_text[m.start : m.end] for m in changed] == ["* 2"]
    assert [second.source_text[m.start : m.end] for m in second.source_marks] == ["w"]


def test_lines_only_one_side_has_stand_alone() -> None:
    src = "a = 1\nb = 2\nc = 3\n"
    query = "a = 1\nprint(a)\nb = 2\nc = 3\n"
    rows = align(query, src).rows
    assert [(r.query_line, r.source_line, r.status) for r in rows] == [
        (1, 1, "same"),
        (2, None, "query-only"),
        (3, 2, "same"),
        (4, 3, "same"),
    ]


def _match(start_char: int, end_char: int, src_lines: tuple[int, int]) -> Match:
    return Match.model_validate(
        {
            "kind": "near",
            "score": 0.9,
            "source": {"repo": "acme/ring", "path": "ring.py", "license": "MIT", "url": None},
            "source_span": {"start_line": src_lines[0], "end_line": src_lines[1]},
            "query_span": {"start_line": 2, "end_line": 3, "start_char": start_char, "end_char": end_char},
            "matched_chars": 30,
        }
    )


def test_for_match_takes_whole_lines_of_both_spans_and_json_round_trips() -> None:
    query = "import os\ndef f(x):\n    return x + 1\nprint(f(2))\n"
    source = "# header\n\ndef f(y):\n    return y + 1\n# tail\n"
    m = _match(query.index("f(x)"), query.index("1\n") + 1, (3, 4))
    ev = for_match(m, query, source, origin="index")
    assert [(r.query_line, r.source_line) for r in ev.rows] == [(2, 3), (3, 4)]
    assert ev.renames == {"y": "x"} and ev.origin == "index"
    data = ev.to_json()
    assert data["rows"][0]["query"]["text"] == "def f(x):"
    assert data["rows"][1]["source"]["marks"] == [{"start": 11, "end": 12, "kind": "renamed"}]
    missing = for_match(m, query, None, reason="gone")
    assert missing.reason == "gone" and [r.status for r in missing.rows] == ["query-only"] * 2
    assert query_only("a\nb\n", "why").rows[-1].query_text == "b"


def test_a_name_renamed_to_a_word_the_lexer_keeps_as_written_is_a_rename() -> None:
    # `data` and `len` are in the lexer's keyword list (Kotlin, Go): not placeholders.
    src = "def keep(payload, n):\n    return payload[:n]\n"
    query = "def keep(data, len):\n    return data[:len]\n"
    ev = align(query, src)
    assert ev.renames == {"payload": "data", "n": "len"}
    _explained(ev.rows, ev.renames)
    # A keyword replaced by another is a change, not a rename.
    assert align("while a:\n    pass\n", "if a:\n    pass\n").rows[0].status == "changed"
