"""The membership test in every language family: comments are content, a copy is found without
knowing its language and from a fragment that starts inside a comment or string, a comment-
stripped copy still matches on its code, and text that many files share is reported as such."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from index.builder import build
from index.config import BuildLimits
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from membership import Matcher, QuerySettings

SAMPLES = Path(__file__).parent.parent / "index" / "samples"
LICENCE = """/*
 * Licensed to the Example Foundation under one or more contributor license agreements. The
 * Example Foundation licenses this file to you under the Apache License, Version 2.0 (the
 * "License"); you may not use this file except in compliance with the License. Unless required
 * by applicable law or agreed to in writing, software distributed under the License is
 * distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND.
 */
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("langs")
    for p in SAMPLES.iterdir():
        (root / p.name).write_text(p.read_text())
    for i in range(12):  # one licence header in many files, each with code of its own
        (root / f"gen/Widget{i}.java").parent.mkdir(exist_ok=True)
        code = f"package gen;\npublic class Widget{i} {{ int size{i}() {{ return {i} * {i + 7}; }} }}\n"
        (root / f"gen/Widget{i}.java").write_text(LICENCE + code)
    return root


@pytest.fixture(scope="module")
def matcher(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    path = tmp_path_factory.mktemp("idx") / "idx"
    build(path, [DirectorySource(corpus, BuildLimits())], progress=False)
    # A small corpus: "shared by more than 8 files" stands in for The Stack's hundreds.
    return Matcher(EmbeddedIndex(path), QuerySettings(max_postings=8))


def _lines(name: str, start: int, end: int) -> str:
    return "".join((SAMPLES / name).read_text().splitlines(keepends=True)[start:end])


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("Ring.java", 8, 21),  # starts inside a Javadoc block, mostly comment
        ("template.js", 9, 19),  # starts inside a multi-line template literal
        ("lifetimes.rs", 21, 30),  # starts inside a raw string, lifetimes after it
        ("raw.go", 11, 22),  # starts inside a Go raw string
        ("buffer.c", 16, 30),  # starts inside a block comment without leading stars
        ("strings.py", 1, 14),  # starts inside a docstring
    ],
)
def test_a_fragment_from_inside_a_comment_or_string_is_found_without_a_language(
    matcher: Matcher, name: str, start: int, end: int
) -> None:
    text = _lines(name, start, end)
    for kwargs in ({}, {"path": name}):
        matches = matcher.check(text, **kwargs)  # type: ignore[arg-type]
        assert matches and matches[0].source.path == name, (name, kwargs)
        top = matches[0]
        assert top.kind == "exact"
        # The located span covers the copy, first and last lines included.
        assert top.query_span.start_line == 1 and top.query_span.end_line == end - start
        assert (top.source_span.start_line, top.source_span.end_line) == (start + 1, end)


def test_a_comment_block_alone_is_content(matcher: Matcher) -> None:
    doc = _lines("Ring.java", 7, 13)  # the class's Javadoc: comment and nothing else
    assert len(re.sub(r"\s", "", doc)) >= 150
    top = matcher.check(doc)[0]
    assert top.source.path == "Ring.java" and top.kind == "exact"


def test_a_copy_with_its_comments_stripped_still_matches_on_its_code(matcher: Matcher) -> None:
    text = _lines("Ring.java", 13, 37)
    stripped = re.sub(r"/\*[\s\S]*?\*/|//[^\n]*", "", text)
    stripped = "\n".join(line for line in stripped.splitlines() if line.strip()) + "\n"
    assert len(stripped) < 0.8 * len(text)
    top = matcher.check(stripped)[0]
    assert top.source.path == "Ring.java" and top.kind == "near"


def test_text_that_many_files_share_is_found_and_counted(matcher: Matcher) -> None:
    top = matcher.check(LICENCE)[0]
    assert top.kind == "exact" and top.source.path.startswith("gen/Widget")
    assert top.occurrences >= 12
    assert "found in" in top.describe()
    unique = matcher.check(_lines("Ring.java", 13, 37))[0]
    assert unique.occurrences == 1 and "found in" not in unique.describe()
