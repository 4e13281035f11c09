"""Source text kept beside the index (index/content.py): ``--store-content``, datasets by default,
the corpus file while unchanged, merged with the segments, and safe against a killed build."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from index.builder import build
from index.compact import compact_index
from index.config import BuildLimits
from index.content import CONTENT_DIR, FILE, TEXT, ContentReader, compact_content, write_pack
from index.sources import open_source
from index.store import EmbeddedIndex
from membership.cli import main
from membership.evidence import NO_CONTENT, evidence, source_text
from membership.match import Match
from membership.query import Matcher
from membership.settings import QuerySettings
from tests.conftest import CORPUS_FILES, STDLIB

REPO = Path(__file__).parents[2]


def _corpus(root: Path, names: list[str]) -> Path:
    for rel in names:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STDLIB / rel, dest)
    return root


def _build(index: Path, src: Path, store: bool | None, **kw: object) -> None:
    build(index, [open_source(str(src), BuildLimits(), store_content=store)], progress=False, **kw)  # type: ignore[arg-type]


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _texts(index: Path) -> dict[str, str | None]:
    reader = ContentReader(index)
    try:
        with EmbeddedIndex(index) as idx:
            return {d["path"]: reader.text(d["sha"]) for _, _, d in idx.iter_documents()}
    finally:
        reader.close()


def _match_of(index: Path, rel: str) -> tuple[Matcher, tuple[Match, str]]:
    text = (STDLIB / rel).read_text()
    piece = "".join(text.splitlines(keepends=True)[30:60])
    matcher = Matcher(EmbeddedIndex(index), QuerySettings())
    found = [m for m in matcher.check(piece) if m.source.path == rel]
    assert found, "the copied lines are found"
    return matcher, (found[0], piece)


def test_store_content_keeps_every_document_and_evidence_reads_it(tmp_path: Path) -> None:
    src = _corpus(tmp_path / "src", CORPUS_FILES[:3])
    _build(tmp_path / "idx", src, True)
    texts = _texts(tmp_path / "idx")
    assert texts == {rel: (STDLIB / rel).read_text() for rel in CORPUS_FILES[:3]}
    shutil.rmtree(src)  # the index alone has the text now
    matcher, (m, piece) = _match_of(tmp_path / "idx", CORPUS_FILES[0])
    got = source_text(matcher.store, m)
    assert (got.origin, got.reason) == ("index", None)
    ev = evidence(matcher.store, m, piece)
    assert ev.origin == "index" and ev.rows and all(r.status == "same" for r in ev.rows)


def test_without_it_the_unchanged_corpus_file_is_read_else_the_reason_is_given(tmp_path: Path) -> None:
    src = _corpus(tmp_path / "src", CORPUS_FILES[:2])
    _build(tmp_path / "idx", src, None)  # a directory: no text kept by default
    assert set(_texts(tmp_path / "idx").values()) == {None}
    matcher, (m, piece) = _match_of(tmp_path / "idx", CORPUS_FILES[0])
    assert source_text(matcher.store, m).origin == "file"
    target = src / CORPUS_FILES[0]
    target.write_text(target.read_text() + "# edited\n")
    assert "changed since it was indexed" in str(source_text(matcher.store, m).reason)
    target.unlink()
    ev = evidence(matcher.store, m, piece)
    assert ev.origin is None and "is gone" in str(ev.reason)
    assert {r.status for r in ev.rows} == {"query-only"}


def test_datasets_keep_their_text_by_default(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    texts = {rel: (STDLIB / rel).read_text() for rel in CORPUS_FILES[:2]}
    rows.write_text(
        "".join(
            json.dumps({"content": t, "path": rel, "repo_name": "a/b"}) + "\n" for rel, t in texts.items()
        )
    )
    _build(tmp_path / "idx", rows, None)
    assert _texts(tmp_path / "idx") == texts
    _build(tmp_path / "off", rows, False)
    assert set(_texts(tmp_path / "off").values()) == {None}
    matcher = Matcher(EmbeddedIndex(tmp_path / "off"), QuerySettings())
    m = matcher.check("".join(texts[CORPUS_FILES[0]].splitlines(keepends=True)[30:60]))[0]
    assert source_text(matcher.store, m).reason == NO_CONTENT


def test_a_later_build_with_the_flag_adds_the_text_of_unchanged_files(tmp_path: Path) -> None:
    src = _corpus(tmp_path / "src", CORPUS_FILES[:2])
    _build(tmp_path / "idx", src, False)
    _build(tmp_path / "idx", src, True)
    assert None not in _texts(tmp_path / "idx").values()


def test_compaction_merges_packs_and_drops_replaced_text(tmp_path: Path) -> None:
    src = _corpus(tmp_path / "src", CORPUS_FILES[:4])
    _build(tmp_path / "idx", src, True, limits=BuildLimits(segment_bytes=1), compact=False)
    packs = list((tmp_path / "idx" / CONTENT_DIR).glob("*.pack"))
    assert len(packs) >= 4
    target = src / CORPUS_FILES[0]
    old = target.read_text()
    target.write_text(old + "# a new line\n")
    _build(tmp_path / "idx", src, True, compact=False)
    other = _corpus(tmp_path / "other", CORPUS_FILES[4:5])
    _build(tmp_path / "part", other, True)
    compact_index(tmp_path / "idx", [tmp_path / "part"])
    assert len(list((tmp_path / "idx" / CONTENT_DIR).glob("*.pack"))) == 1
    texts = _texts(tmp_path / "idx")
    assert texts[CORPUS_FILES[0]] == old + "# a new line\n"
    assert texts[CORPUS_FILES[4]] == (STDLIB / CORPUS_FILES[4]).read_text()
    assert None not in texts.values()
    reader = ContentReader(tmp_path / "idx")
    assert reader.entry(_sha(old)) is None  # the replaced version is gone with its document
    reader.close()


def test_compaction_writes_the_same_pack_whatever_order_the_packs_are_read_in(tmp_path: Path) -> None:
    shas = [hashlib.sha1(bytes([i])).hexdigest() for i in range(40)]
    entries = [(sha.encode(), FILE if i % 3 else TEXT, f"payload {i}".encode()) for i, sha in enumerate(shas)]
    made = []
    for name in ("a", "b"):
        index = tmp_path / name
        first, second = write_pack(index, entries[::2]), write_pack(index, entries[1::2])
        assert first is not None and second is not None
        if name == "b":  # the same packs, listed the other way round
            swap = first.with_name("swap.pack")
            first.rename(swap), second.rename(first), swap.rename(second)
        compact_content(index, shas)
        (pack,) = (index / CONTENT_DIR).glob("*.pack")
        made.append(pack.read_bytes())
    assert made[0] == made[1]


_KILLED_BUILD = """
import os, signal, sys
from pathlib import Path
import index.content as content
from index.builder import build
from index.config import BuildLimits
from index.sources import open_source

mode, real = sys.argv[3], content.write_pack
calls = []

def dying_pack(path, entries):
    calls.append(1)
    if len(calls) == 2:  # half of the second pack on disk, then the kill
        tmp = path / content.CONTENT_DIR / f".tmp-{os.getpid()}-x.pack"
        tmp.write_bytes(content.MAGIC + b"partial")
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, entries)

if mode == "pack":
    content.write_pack = dying_pack
build(sys.argv[1], [open_source(sys.argv[2], BuildLimits(), store_content=True)],
      limits=BuildLimits(segment_bytes=1), progress=False, jobs=1,
      on_segment=(lambda n: os.kill(os.getpid(), signal.SIGKILL)) if mode == "segment" else None)
"""


@pytest.mark.parametrize("mode", ["segment", "pack"])
def test_a_build_killed_mid_way_keeps_the_text_of_every_committed_document(tmp_path: Path, mode: str) -> None:
    src = _corpus(tmp_path / "src", CORPUS_FILES)
    idx = tmp_path / "idx"
    proc = subprocess.run([sys.executable, "-c", _KILLED_BUILD, str(idx), str(src), mode], cwd=REPO)
    assert proc.returncode == -9
    with EmbeddedIndex(idx) as index:
        assert index.num_docs >= 1
    assert None not in _texts(idx).values()  # whatever was committed has its text
    _build(idx, src, True)
    assert not list((idx / CONTENT_DIR).glob(".tmp-*"))  # the dead build's partial pack is removed
    assert _texts(idx) == {rel: (STDLIB / rel).read_text() for rel in CORPUS_FILES}


def test_the_cli_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _corpus(tmp_path / "src", CORPUS_FILES[:1])
    assert main(["build", "--index", str(tmp_path / "idx"), "--store-content", "--jobs", "1", str(src)]) == 0
    assert None not in _texts(tmp_path / "idx").values()
    assert main(["build", "--index", str(tmp_path / "off"), "--jobs", "1", str(src)]) == 0
    assert set(_texts(tmp_path / "off").values()) == {None}
