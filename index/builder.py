"""Building an index from sources: incremental, checkpointed, shardable, with progress."""

from __future__ import annotations

import collections
import hashlib
import itertools
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stacklens.errors import InputError

from .batch import fingerprint_many, minhash_many
from .compact import compact_index, segment_documents, writing
from .config import BuildLimits, FingerprintParams
from .content import ContentWriter
from .fingerprint import BandKeys, Fingerprints, fingerprint, minhash_bands
from .linetable import encode_lines
from .normalize import Tokens, tokenize
from .packed import key_of
from .segment import CONC_BITS, MAX_POS
from .skiplist import update_skip_list
from .sources import SkipStats, SourceFile
from .store import EmbeddedIndex
from .writer import IndexWriter

# A query searches every segment's tables, so after a build the segments are merged into one:
# always while the index is small enough that rewriting it costs seconds (a 223 MB corpus:
# 1.7 s, and its query p50/p99 drop by a quarter to a third), and past that size only once
# there are many, so that adding a few files to a huge index stays cheap.
AUTO_COMPACT_SEGMENTS = 8
COMPACT_ALWAYS_BYTES = 1_000_000_000


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"i/N"`` (0-based i) to ``(i, N)``."""
    if not spec:
        return None
    try:
        i_s, n_s = spec.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise InputError(f"--shard expects i/N such as 0/4, got {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {spec}: need 0 <= i < N")
    return i, n


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shard[1] == shard[0]


def sharded_files(
    sources: Iterable[Any], stats: SkipStats, shard: tuple[int, int] | None
) -> Iterator[tuple[SourceFile, str]]:
    """This worker's files from every source, each with the SHA-1 that incremental builds compare."""
    for source in sources:
        for src in source.files(stats):
            if in_shard(src.key, shard):
                yield src, hashlib.sha1(src.text.encode("utf-8", "surrogatepass")).hexdigest()


def progress_bar(progress: bool | None) -> tqdm:
    """A byte-counting bar on stderr; by default only when stderr is a terminal."""
    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=None, unit="B", unit_scale=True, desc="indexing", disable=not show, file=sys.stderr)


@dataclass
class BuildSummary:
    files: int = 0
    bytes: int = 0
    unchanged: int = 0
    updated: int = 0
    removed: int = 0  # documents whose file left a rebuilt tree
    skipped: SkipStats = field(default_factory=SkipStats)
    seconds: float = 0.0
    segments_written: int = 0
    index_bytes: int = 0
    index_docs: int = 0

    def render(self) -> str:
        mb = self.bytes / 1e6
        rate = mb / self.seconds if self.seconds > 0 else 0.0
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.counts.items())) or "none"
        return (
            f"indexed {self.files} files ({mb:.1f} MB) in {self.seconds:.1f} s ({rate:.2f} MB/s); "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.removed} removed; "
            f"skipped {self.skipped.total} ({skipped}); "
            f"index: {self.index_docs} documents, {self.index_bytes / 1e6:.1f} MB on disk"
            + ("; --list-skipped lists the skipped files" if self.skipped.total else "")
        )


@dataclass
class PreparedDocument:
    doc: dict[str, Any]
    fp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # key64, pos, flag, concrete hash
    mh: tuple[np.ndarray, np.ndarray]  # band key64, first token of its window
    lines: bytes  # the document's line table record
    tokens: int


def fingerprint_lines(tokens: Tokens, fp: Fingerprints, kgram: int) -> tuple[np.ndarray, bytes]:
    """The flag of each fingerprint (its k-gram does not end on the line of token
    ``pos + kgram - 1``: a bridge) and the document's line table record, from which the query
    resolves the same start and end lines that format 3 stored in every posting."""
    span = (fp.meta >> np.uint32(16)).astype(np.int64)
    last = np.minimum(fp.pos.astype(np.int64) + kgram - 1, len(tokens) - 1)
    flag = fp.line.astype(np.int64) + span != tokens.end_line[last] if len(fp.pos) else np.zeros(0, bool)
    bridges = fp.pos[flag].tolist()  # a few per file: a set, not np.unique's sort and overhead
    if len(set(bridges)) != len(bridges):
        raise AssertionError("two bridges start at one token")  # code_stream has one k-gram a token
    return flag, encode_lines(tokens.line, tokens.end_line, fp.pos[flag], span[flag])


def prepare_document(item: tuple[SourceFile, str, FingerprintParams]) -> PreparedDocument | None:
    return prepare_documents([item])[0]


def prepare_documents(
    items: list[tuple[SourceFile, str, FingerprintParams]],
) -> list[PreparedDocument | None]:
    """`prepare_document` of each item; the documents are fingerprinted and their band keys
    computed together (one set of numpy calls for all: `index.batch`) when they share their
    parameters, as a build's do."""
    tokens = [tokenize(src.text, src.lang) for src, _, _ in items]
    # Positions are stored in 20 bits: longer files are data, not code.
    kept = [i for i, t in enumerate(tokens) if len(t) <= MAX_POS]
    params = items[0][2] if items else None
    if all(p is params for _, _, p in items) and params is not None:
        docs = [tokens[i] for i in kept]
        fps, bands = fingerprint_many(docs, params), minhash_many(docs, params)
    else:
        fps = [fingerprint(tokens[i], items[i][2]) for i in kept]
        bands = [minhash_bands(tokens[i], items[i][2], stride=items[i][2].minhash_lines) for i in kept]
    out: list[PreparedDocument | None] = [None] * len(items)
    for i, fp, band in zip(kept, fps, bands, strict=True):
        out[i] = _prepared(*items[i], tokens[i], fp, band)
    return out


def _prepared(
    src: SourceFile, sha: str, params: FingerprintParams, tokens: Tokens, fp: Fingerprints, bands: BandKeys
) -> PreparedDocument:
    # A window's lines are resolved from the line table: it starts at its first token and
    # holds ``minhash_lines`` lines with tokens.
    firsts = np.array([i for i, _ in bands.ranges], dtype=np.int64)
    doc = {
        "key": src.key,
        "sha": sha,
        "repo": src.repo,
        "path": src.path,
        "license": src.license,
        "url": src.url,
        "lang": src.lang,
        "lines": src.text.count("\n") + 1,
        "bytes": len(src.text.encode("utf-8", "surrogatepass")),
    }
    win = bands.window
    flag, line_table = fingerprint_lines(tokens, fp, params.kgram)
    return PreparedDocument(
        doc,
        (fp.keys, fp.pos, flag, fp.meta & np.uint32(0xFFFF)),
        (bands.keys, firsts[win]),
        line_table,
        len(tokens),
    )


# Files fingerprinted together: 16 take 29 % less fingerprinting CPU than one at a time on the
# gigabyte's first 33 MB (8: 29 %, 64: 29 %), and a build reads no further ahead than this.
_PREPARED_TOGETHER = 16


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


class _Batch:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.lines: list[bytes] = []
        self.starts = [0]  # first token number of each document, and the total
        self.fp: list[tuple[np.ndarray, ...]] = []
        self.mh: list[tuple[np.ndarray, ...]] = []
        self.bytes = 0

    def add(self, p: PreparedDocument) -> None:
        self.docs.append(p.doc)
        self.lines.append(p.lines)
        first = self.starts[-1]
        self.starts.append(first + p.tokens)
        self.fp.append((first + p.fp[1].astype(np.int64), *p.fp))
        self.mh.append((first + p.mh[1], p.mh[0]))
        self.bytes += p.doc["bytes"]

    def tables(self, key_bits: int) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
        return {"fp": _fp_table(self.fp, key_bits), "mh": _mh_table(self.mh, key_bits)}


def _cat(parts: list[tuple[np.ndarray, ...]], i: int) -> np.ndarray:
    """Column ``i`` of every part, in its own dtype."""
    return np.concatenate([p[i] for p in parts]) if parts else np.empty(0, np.uint64)


# The flag and the concrete hash travel as bytes, not 64-bit words, until they are packed: the
# sort's gathers and the grouped writer's splits move an eighth of the bytes (0.5 s of a 100 MB
# build's 6 s of storage).
_CONC_DTYPE = np.min_scalar_type((1 << CONC_BITS) - 1)


def _fp_table(parts: list[tuple[np.ndarray, ...]], key_bits: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(token number, key64, pos, flag, concrete) columns to stored keys and the fingerprint
    table's fields."""
    conc = _cat(parts, 4) & np.uint32((1 << CONC_BITS) - 1)
    return key_of(_cat(parts, 1), key_bits), {
        "at": _cat(parts, 0),
        "flag": _cat(parts, 3).astype(np.uint8),
        "conc": conc.astype(_CONC_DTYPE),
    }


def _mh_table(parts: list[tuple[np.ndarray, ...]], key_bits: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(token number of the window's first token, key64) columns to stored keys and the band
    table's fields."""
    return key_of(_cat(parts, 1), key_bits), {"at": _cat(parts, 0)}


def _known(path: Path) -> dict[str, tuple[str, int, str]]:
    if not (path / "manifest.json").exists():
        return {}
    with EmbeddedIndex(path) as idx:
        return {
            d["key"]: (seg.name, i, d["sha"])
            for seg in idx.segments
            for i, d in segment_documents(seg)
            if i not in seg.deleted
        }


def _vanished(
    known: dict[str, tuple[str, int, str]],
    seen: set[str],
    sources: list[Any],
    shard: tuple[int, int] | None,
) -> list[tuple[str, int]]:
    """(segment, local id) of the documents of a rebuilt tree whose file is gone (deleted, now
    excluded or skipped): without this an update kept attributing code the tree no longer holds."""
    prefixes = tuple(p for p in (s.prune_prefix for s in sources) if p)
    if not prefixes:
        return []
    return [
        (segment, local)
        for key, (segment, local, _) in known.items()
        if key.startswith(prefixes) and key not in seen and in_shard(key, shard)
    ]


def build(
    index_path: str | Path,
    sources: Iterable[Any],
    *,
    params: FingerprintParams | None = None,
    limits: BuildLimits | None = None,
    shard: tuple[int, int] | None = None,
    jobs: int = 1,
    progress: bool | None = None,
    compact: bool | None = None,
    on_segment: Callable[[str], None] | None = None,
) -> BuildSummary:
    """Add ``sources`` to the index at ``index_path`` (created if missing)."""
    with writing(Path(index_path)):
        return _build(
            Path(index_path),
            sources,
            params,
            limits or BuildLimits(),
            shard,
            jobs,
            progress,
            compact,
            on_segment,
        )


def _build(
    path: Path,
    sources: Iterable[Any],
    params: FingerprintParams | None,
    limits: BuildLimits,
    shard: tuple[int, int] | None,
    jobs: int,
    progress: bool | None,
    compact: bool | None,
    on_segment: Callable[[str], None] | None,
) -> BuildSummary:
    writer = IndexWriter(path, params)
    contents = ContentWriter(path)  # before a file reaches a segment, its text or path
    known = _known(path)
    summary = BuildSummary()
    started = time.monotonic()
    bar = progress_bar(progress)

    sources = list(sources)
    # Where each file handed to prepare_document came from, in order (imap keeps it): a file
    # too long to index is listed by path. Appended by the pool's feeder thread, popped here.
    pending: collections.deque[tuple[str | None, str, str | None]] = collections.deque()

    seen: set[str] = set()  # every key the sources hold now, changed or not
    # What each file read gives the content store (and whether it is a document to index),
    # added when the documents before it have reached the batch: files are prepared several at
    # a time, and a content pack holds the text of its segment's documents, as when they were
    # read one at a time.
    to_store: collections.deque[tuple[str, str, str | None, bool, bool]] = collections.deque()

    def todo() -> Iterator[tuple[SourceFile, str, FingerprintParams]]:
        for src, sha in sharded_files(sources, summary.skipped, shard):
            seen.add(src.key)
            old = known.get(src.key)
            changed = old is None or old[2] != sha
            to_store.append((sha, src.text, src.file, src.store_content, changed))
            if not changed:
                summary.unchanged += 1
                continue
            pending.append((src.source, src.path, src.path_bytes))
            yield src, sha, writer.params

    def store_contents(through_document: bool) -> None:
        """The contents of the files read, through the next document's or all."""
        while to_store:
            sha, text, file, store, document = to_store.popleft()
            contents.add(sha, text, file, store)
            if document and through_document:
                return

    batch = _Batch()
    deletes: dict[str, list[int]] = {}

    def flush() -> None:
        nonlocal batch, deletes
        pack = contents.flush()
        if not batch.docs and not deletes:
            return
        try:
            name = writer.commit_segment(
                batch.tables(writer.key_bits),
                docs=batch.docs,
                lines=batch.lines,
                starts=np.asarray(batch.starts, dtype=np.int64),
                delete=deletes,
            )
        except Exception:
            # The pack holds only this batch's text, which no committed segment names: a commit
            # that failed (a full disk) gives its space back too. (A build killed here leaves it
            # unreferenced, never wrong; compaction drops it.)
            if pack is not None:
                pack.unlink(missing_ok=True)
            raise
        summary.segments_written += 1
        if on_segment:
            on_segment(name)
        batch, deletes = _Batch(), {}

    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None
    try:
        # Files are prepared _PREPARED_TOGETHER at a time (a worker's task, as imap's chunks were).
        chunks = _chunks(todo(), _PREPARED_TOGETHER)
        batches = pool.imap(prepare_documents, chunks) if pool else map(prepare_documents, chunks)
        prepared = itertools.chain.from_iterable(batches)
        for p in prepared:
            store_contents(through_document=True)
            source, rel, raw = pending.popleft()
            if p is None:
                summary.skipped.skip("over-large", source, rel, f"more than {MAX_POS:,} tokens")
                continue
            if raw:  # a file name that is not UTF-8: its exact bytes (index/names.py)
                p.doc["path_bytes"] = raw
            old = known.get(p.doc["key"])
            if old is not None:
                deletes.setdefault(old[0], []).append(old[1])
                summary.updated += 1
            batch.add(p)
            summary.files += 1
            summary.bytes += p.doc["bytes"]
            bar.update(p.doc["bytes"])
            if batch.bytes >= limits.segment_bytes:
                flush()
        store_contents(through_document=False)
        for segment, local in _vanished(known, seen, sources, shard):
            deletes.setdefault(segment, []).append(local)
            summary.removed += 1
        flush()
    finally:
        bar.close()
        contents.close()
        if pool:
            pool.terminate()
    if compact if compact is not None else shard is None:
        with EmbeddedIndex(path) as idx:
            n, size = len(idx.segments), idx.size_bytes()
        if n > AUTO_COMPACT_SEGMENTS or (n > 1 and size <= COMPACT_ALWAYS_BYTES):
            compact_index(path)
    names = [name for name in (getattr(s, "name", None) for s in sources) if isinstance(name, str)]
    update_skip_list(path, names, summary.skipped.listed, summary.skipped.unlisted)
    summary.seconds = time.monotonic() - started
    with EmbeddedIndex(path) as idx:
        summary.index_bytes = idx.size_bytes()
        summary.index_docs = idx.num_docs
    return summary
