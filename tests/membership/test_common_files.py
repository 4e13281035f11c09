""" "Found in N files" for text that many files share and each repeats (a licence header at the
top of a file and again before each section): the number of files, not of postings, though the
lookup reads only a sample of such a key's postings; an index written before the files table
counts postings, as it did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.builder import build
from index.config import BuildLimits
from index.protocol import key_files
from index.segment import FILES_COUNT_FILE, FILES_KEYS_FILE
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from membership.query import Matcher
from membership.settings import QuerySettings

HEADER = """# Copyright (c) 2026 Example Corporation and contributors. All rights reserved.
# Licensed under the Example Public Licence, version 3.1: you may use, copy, modify and
# distribute this file only under the terms of that licence, which you can read in the file
# LICENCE at the root of this distribution or at https://example.org/licences/epl-3.1.
# Unless required by applicable law or agreed to in writing, software distributed under the
# licence is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND.
"""
FILES, REPEATS = 200, 3  # 600 postings per header key: more than max_postings (512), so sampled


@pytest.fixture(scope="module")
def header_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("headers")
    src = root / "src"
    src.mkdir()
    for i in range(FILES):
        body = "".join(
            f"def handler_{i}_{j}(value_{j}, count={i * 7 + j}):\n"
            f"    return value_{j} * {j + i} + count // {j + 2}\n\n"
            for j in range(6)
        )
        (src / f"m{i}.py").write_text("\n".join([HEADER, body, *[HEADER] * (REPEATS - 1)]))
    build(root / "idx", [DirectorySource(src, BuildLimits())], progress=False)
    return root / "idx"


@pytest.mark.parametrize("max_postings", [512, 16])
def test_a_shared_header_is_found_in_as_many_files_as_hold_it(header_index: Path, max_postings: int) -> None:
    with EmbeddedIndex(header_index) as idx:
        matches = Matcher(idx, QuerySettings(max_postings=max_postings)).check(HEADER)
        assert matches and {m.occurrences for m in matches} == {FILES}
        assert f"found in {FILES:,} files" in matches[0].describe()


def test_the_store_counts_files_where_it_sampled_postings(header_index: Path) -> None:
    with EmbeddedIndex(header_index) as idx:
        keys = np.arange(1, 2000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # no such keys
        assert (idx.key_files(keys) == 0).all()

        class NoCounts:  # a store without ``key_files`` (Elasticsearch): the postings stand
            pass

        postings = np.array([7, 600])
        assert key_files(NoCounts(), keys[:2], postings) is postings  # type: ignore[arg-type]


def test_an_index_without_the_files_table_counts_postings_as_before(
    header_index: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(header_index, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for info in manifest["segments"]:
        for name in (FILES_KEYS_FILE, FILES_COUNT_FILE):
            del info["files"][name]
            (old / info["name"] / name).unlink()
    (old / "manifest.json").write_text(json.dumps(manifest))
    with EmbeddedIndex(old) as idx:
        assert all(seg.files is None for seg in idx.segments) and idx.verify() == []
        matches = Matcher(idx).check(HEADER)
        assert matches and {m.occurrences for m in matches} == {FILES * REPEATS}


@pytest.mark.parametrize("order", ["by key and document", "by key", "none"])
def test_files_per_key_count_distinct_documents_in_any_order(order: str) -> None:
    # The embedded index gives each key's postings together, in document order, and the count
    # skips sorting them then; hits in another order (another store's) are sorted first.
    from index.protocol import FingerprintHits
    from membership.common_keys import files_per_key

    rng = np.random.default_rng(11)
    for _ in range(300):
        n, keys = int(rng.integers(1, 80)), int(rng.integers(1, 12))
        qi = rng.integers(0, keys, n)
        doc = rng.integers(0, 6, n) | (rng.integers(0, 2, n) << 32)  # two segments' references
        if order != "none":
            by = np.lexsort((doc, qi)) if order == "by key and document" else np.argsort(qi, kind="stable")
            qi, doc = qi[by], doc[by]
        zero = np.zeros(n, dtype=np.int64)
        found = FingerprintHits(qi=qi, doc=doc, pos=zero, line=zero, meta=zero, df=zero)
        sampled = rng.random(keys) < 0.3
        sampled_files = rng.integers(1, 50, int(sampled.sum()))
        pairs = set(zip(qi.tolist(), doc.tolist(), strict=True))
        expected = np.array([sum(q == k for q, _ in pairs) for k in range(keys)])
        expected[sampled] = sampled_files
        assert files_per_key(found, sampled, sampled_files).tolist() == expected.tolist()
