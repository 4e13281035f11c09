"""The document table gives back every record, read in any order, decoding a block's records
only as far as the one asked for, and says that a damaged block is damaged."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from index.doctable import BLOCK_DOCS, DOCS_FILE, OFFSETS_FILE, DocTable, write_doc_table
from stacklens.errors import IndexCorruptError


def _docs(n: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(n)
    # Records of very different sizes: the decoder's estimate of a record's size is off.
    return [{"path": f"src/{i}.c", "pad": "x" * int(rng.integers(0, 2000)), "i": i} for i in range(n)]


def test_every_record_in_any_order(tmp_path: Path) -> None:
    docs = _docs(3 * BLOCK_DOCS + 5)
    assert write_doc_table(tmp_path, docs, BLOCK_DOCS) == len(docs)
    for seed in range(3):
        table = DocTable(tmp_path, len(docs), BLOCK_DOCS)
        for i in np.random.default_rng(seed).permutation(len(docs)):
            assert table.doc(int(i)) == docs[i]
    assert list(DocTable(tmp_path, len(docs), BLOCK_DOCS)) == docs


def test_a_record_decodes_its_block_as_far_as_it(tmp_path: Path) -> None:
    docs = [{"path": f"{i}.py", "pad": "x" * 300} for i in range(BLOCK_DOCS)]
    write_doc_table(tmp_path, docs, BLOCK_DOCS)
    table = DocTable(tmp_path, len(docs), BLOCK_DOCS)
    assert table.doc(1) == docs[1]
    assert len(table._cache[0].lines) < BLOCK_DOCS // 2
    assert table.doc(BLOCK_DOCS - 1) == docs[-1] and table._cache[0].done


def _rewrite(tmp_path: Path, blocks: list[bytes]) -> None:
    (tmp_path / DOCS_FILE).write_bytes(b"".join(blocks))
    offsets = np.concatenate(([0], np.cumsum([len(b) for b in blocks])))
    np.save(tmp_path / OFFSETS_FILE, offsets.astype(np.uint64))


@pytest.mark.parametrize(
    "damage",
    [
        lambda z: z[: len(z) // 2],  # truncated
        lambda z: z + b"junk",  # bytes after the stream
        lambda z: z[:10] + bytes(b ^ 0xFF for b in z[10:20]) + z[20:],  # flipped
        lambda z: zlib.compress(zlib.decompress(z) + b'{"path":"extra"}\n'),  # a record too many
        lambda z: zlib.compress(zlib.decompress(z).split(b"\n", 1)[1]),  # a record too few
        lambda z: zlib.compress(zlib.decompress(z) + b"{"),  # half a record after the last
    ],
)
def test_a_damaged_block_says_so(tmp_path: Path, damage: object) -> None:
    docs = [{"path": f"{i}.py"} for i in range(BLOCK_DOCS)]
    write_doc_table(tmp_path, docs, BLOCK_DOCS)
    whole = (tmp_path / DOCS_FILE).read_bytes()
    assert callable(damage)
    _rewrite(tmp_path, [damage(whole)])
    table = DocTable(tmp_path, len(docs), BLOCK_DOCS)
    with pytest.raises(IndexCorruptError, match="is damaged"):
        for i in range(BLOCK_DOCS):  # the last record at the latest
            table.doc(i)
    with pytest.raises(IndexCorruptError, match="is damaged"):  # and again: not cached as good
        table.doc(BLOCK_DOCS - 1)
