"""Building an index from sources: incremental, checkpointed, shardable, with progress."""

from __future__ import annotations

import hashlib
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .config import BuildLimits, FingerprintParams
from .errors import InputError
from .fingerprint import fingerprint, minhash_bands
from .normalize import tokenize
from .segment import FP_DTYPE, MH_DTYPE
from .sources import SkipStats, SourceFile
from .store import EmbeddedIndex, IndexWriter

AUTO_COMPACT_SEGMENTS = 8


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


@dataclass
class BuildSummary:
    files: int = 0
    bytes: int = 0
    unchanged: int = 0
    updated: int = 0
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
            f"{self.updated} updated, {self.unchanged} unchanged; skipped {self.skipped.total} ({skipped}); "
            f"index: {self.index_docs} documents, {self.index_bytes / 1e6:.1f} MB on disk"
        )


@dataclass
class _Prepared:
    doc: dict[str, Any]
    fp: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    mh: tuple[np.ndarray, np.ndarray, np.ndarray]


def _prepare(item: tuple[SourceFile, str, FingerprintParams]) -> _Prepared:
    src, sha, params = item
    tokens = tokenize(src.text, src.lang)
    fp = fingerprint(tokens, params)
    bands = minhash_bands(tokens, params, stride=params.minhash_lines)
    lines = np.array([tokens.line[i] for i, _ in bands.ranges], dtype=np.uint32)
    ends = np.array([tokens.end_line[j - 1] for _, j in bands.ranges], dtype=np.uint32)
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
    return _Prepared(doc, (fp.keys, fp.pos, fp.line, fp.meta), (bands.keys, lines[win], ends[win]))


class _Batch:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.fp: list[tuple[np.ndarray, ...]] = []
        self.mh: list[tuple[np.ndarray, ...]] = []
        self.bytes = 0

    def add(self, p: _Prepared) -> None:
        doc_id = len(self.docs)
        self.docs.append(p.doc)
        self.fp.append((np.full(len(p.fp[0]), doc_id, dtype=np.uint32), *p.fp))
        self.mh.append((np.full(len(p.mh[0]), doc_id, dtype=np.uint32), *p.mh))
        self.bytes += p.doc["bytes"]

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n_fp = sum(len(f[0]) for f in self.fp)
        fp_keys = np.concatenate([f[1] for f in self.fp]) if self.fp else np.empty(0, np.uint64)
        fp_vals = np.empty(n_fp, dtype=FP_DTYPE)
        if n_fp:
            fp_vals["doc"] = np.concatenate([f[0] for f in self.fp])
            fp_vals["pos"] = np.concatenate([f[2] for f in self.fp])
            fp_vals["line"] = np.concatenate([f[3] for f in self.fp])
            fp_vals["meta"] = np.concatenate([f[4] for f in self.fp])
        n_mh = sum(len(m[0]) for m in self.mh)
        mh_keys = np.concatenate([m[1] for m in self.mh]) if self.mh else np.empty(0, np.uint64)
        mh_vals = np.zeros(n_mh, dtype=MH_DTYPE)
        if n_mh:
            mh_vals["doc"] = np.concatenate([m[0] for m in self.mh])
            mh_vals["line"] = np.concatenate([m[2] for m in self.mh])
            mh_vals["end_line"] = np.concatenate([m[3] for m in self.mh])
        return fp_keys.astype(np.uint64), fp_vals, mh_keys.astype(np.uint64), mh_vals


def _known(path: Path) -> dict[str, tuple[str, int, str]]:
    if not (path / "manifest.json").exists():
        return {}
    with EmbeddedIndex(path) as idx:
        return {d["key"]: (seg, i, d["sha"]) for seg, i, d in idx.iter_documents()}


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
    limits = limits or BuildLimits()
    path = Path(index_path)
    writer = IndexWriter(path, params)
    known = _known(path)
    summary = BuildSummary()
    started = time.monotonic()
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=None, unit="B", unit_scale=True, desc="indexing", disable=not show, file=sys.stderr)

    def todo() -> Iterator[tuple[SourceFile, str, FingerprintParams]]:
        for source in sources:
            for src in source.files(summary.skipped):
                if not in_shard(src.key, shard):
                    continue
                sha = hashlib.sha1(src.text.encode("utf-8", "surrogatepass")).hexdigest()
                old = known.get(src.key)
                if old is not None and old[2] == sha:
                    summary.unchanged += 1
                    continue
                yield src, sha, writer.params

    batch = _Batch()
    deletes: dict[str, list[int]] = {}

    def flush() -> None:
        nonlocal batch, deletes
        if not batch.docs and not deletes:
            return
        name = writer.commit_segment(*batch.tables(), docs=batch.docs, delete=deletes)
        summary.segments_written += 1
        if on_segment:
            on_segment(name)
        batch, deletes = _Batch(), {}

    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None
    try:
        prepared = pool.imap(_prepare, todo(), chunksize=8) if pool else map(_prepare, todo())
        for p in prepared:
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
        flush()
    finally:
        bar.close()
        if pool:
            pool.terminate()
    if compact if compact is not None else shard is None:
        with EmbeddedIndex(path) as idx:
            many = len(idx.segments) > AUTO_COMPACT_SEGMENTS
        if many:
            compact_index(path)
    summary.seconds = time.monotonic() - started
    with EmbeddedIndex(path) as idx:
        summary.index_bytes = idx.size_bytes()
        summary.index_docs = idx.num_docs
    return summary


def compact_index(path: str | Path, parts: Iterable[str | Path] = ()) -> int:
    """Merge all segments of ``path`` (and of the indexes ``parts``) into one; returns docs kept."""
    path = Path(path)
    writer = IndexWriter(path)
    sources = [EmbeddedIndex(path), *(EmbeddedIndex(p) for p in parts)]
    try:
        for other in sources[1:]:
            if other.params != writer.params:
                raise InputError(f"cannot merge {other.path}: built with other fingerprint parameters")
        batch = _Batch()
        seen: set[str] = set()
        for idx in sources:
            for seg in idx.segments:
                remap = np.full(seg.num_docs, -1, dtype=np.int64)
                for i, doc in enumerate(seg.iter_docs()):
                    if i in seg.deleted or doc["key"] in seen:
                        continue
                    seen.add(doc["key"])
                    remap[i] = len(batch.docs)
                    batch.docs.append(doc)
                for keys, vals, target in ((seg.fp_keys, seg.fp_vals, batch.fp), (seg.mh_keys, seg.mh_vals, batch.mh)):
                    new_doc = remap[np.asarray(vals["doc"], dtype=np.int64)]
                    keep = new_doc >= 0
                    v = np.asarray(vals)[keep]
                    cols = [v[n] for n in v.dtype.names if n not in ("doc", "pad")]
                    target.append((new_doc[keep].astype(np.uint32), np.asarray(keys)[keep], *cols))
        replace = [seg.name for seg in sources[0].segments]
    finally:
        for idx in sources:
            idx.close()
    writer.commit_segment(*batch.tables(), docs=batch.docs, replace=replace)
    return len(batch.docs)
