"""New segments keep their documents in blocks of `BLOCK_DOCS` and record it; a segment that
records no block size (written in blocks of 64 before) opens and answers as it did."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.builder import build
from index.config import BuildLimits
from index.doctable import BLOCK_DOCS, DOCS_FILE, LEGACY_BLOCK_DOCS, OFFSETS_FILE, DocTable, write_doc_table
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from membership.query import Matcher
from stacklens.errors import IndexCorruptError
from tests.conftest import STDLIB


def _small_modules(n: int) -> list[Path]:
    found = [
        *sorted(STDLIB.glob("*.py")),
        *sorted(STDLIB.glob("email/*.py")),
        *sorted(STDLIB.glob("json/*.py")),
    ]
    return [p for p in found if 1_000 < p.stat().st_size < 16_000][:n]


def _to_legacy(index: Path) -> None:
    """Rewrite each segment's document table in blocks of 64 and drop its recorded block size,
    as a format-5 build before it was recorded left them."""
    manifest = json.loads((index / "manifest.json").read_text())
    for entry in manifest["segments"]:
        seg = index / entry["name"]
        docs = list(DocTable(seg, entry["docs"], entry["doc_block"]))
        write_doc_table(seg, docs, LEGACY_BLOCK_DOCS)
        info = json.loads((seg / "segment.json").read_text())
        for meta in (entry, info):
            del meta["doc_block"]
            for name in (DOCS_FILE, OFFSETS_FILE):
                data = (seg / name).read_bytes()
                meta["files"][name] = {"size": len(data), "crc32": zlib.crc32(data)}
        (seg / "segment.json").write_text(json.dumps(info, indent=1))
    (index / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _answers(index: Path, snippets: list[str]) -> tuple[list[Any], list[Any], list[Any]]:
    with EmbeddedIndex(index) as idx:
        assert idx.verify() == []
        docs = list(idx.iter_documents())
        refs = [(si << 32) | i for si, seg in enumerate(idx.segments) for i in range(seg.num_docs)]
        shuffled = [idx.document(refs[int(k)]) for k in np.random.default_rng(0).permutation(len(refs))]
        matcher = Matcher(idx)
        found = [[m.model_dump() for m in matcher.check(s)] for s in snippets]
    return docs, shuffled, found


def test_a_segment_in_blocks_of_64_opens_and_answers_the_same(tmp_path: Path) -> None:
    files = _small_modules(3 * LEGACY_BLOCK_DOCS // 2)
    assert len(files) > LEGACY_BLOCK_DOCS
    root = tmp_path / "corpus"
    root.mkdir()
    for p in files:
        (root / p.relative_to(STDLIB)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, root / p.relative_to(STDLIB))
    new = tmp_path / "new"
    build(new, [DirectorySource(root, BuildLimits())], progress=False)
    manifest = json.loads((new / "manifest.json").read_text())
    assert [s["doc_block"] for s in manifest["segments"]] == [BLOCK_DOCS]
    assert manifest["segments"][0]["docs"] == len(files)
    picks = [files[i] for i in (3, BLOCK_DOCS + 2, LEGACY_BLOCK_DOCS + 1, len(files) - 1)]
    snippets = ["".join(p.read_text().splitlines(keepends=True)[10:40]) for p in picks]
    answers = _answers(new, snippets)
    assert all(answers[2]), "every snippet is found"
    old = tmp_path / "old"
    shutil.copytree(new, old)
    _to_legacy(old)
    assert (old / manifest["segments"][0]["name"] / DOCS_FILE).read_bytes() != (
        new / manifest["segments"][0]["name"] / DOCS_FILE
    ).read_bytes()
    assert _answers(old, snippets) == answers


def test_a_table_read_with_the_wrong_block_size_is_an_error(tmp_path: Path) -> None:
    docs = [{"path": f"{i}.py"} for i in range(3 * BLOCK_DOCS + 1)]
    write_doc_table(tmp_path, docs, 2 * BLOCK_DOCS)
    assert list(DocTable(tmp_path, len(docs), 2 * BLOCK_DOCS)) == docs
    assert DocTable(tmp_path, len(docs), 2 * BLOCK_DOCS).doc(2 * BLOCK_DOCS + 1) == docs[2 * BLOCK_DOCS + 1]
    with pytest.raises(IndexCorruptError, match="inconsistent"):
        DocTable(tmp_path, len(docs), BLOCK_DOCS)
    with pytest.raises(IndexCorruptError, match="blocks of 0 records"):
        DocTable(tmp_path, len(docs), 0)
