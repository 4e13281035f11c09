"""The documents' text kept beside an index's segments (``code-search build --store-content``;
datasets by default), so that a match can show its source side by side with the query.

Content is addressed by the SHA-1 each document record already carries (``sha``): a pack never
depends on segment names or document ids, so merging segments leaves it valid, a file that many
repositories vendor is kept once, and a pack written by a build killed before its segment was
committed is only unreferenced, never wrong. A document whose text is not kept gets a reference
to its file instead (an absolute path), which a reader uses while the file is unchanged.

A pack is one file, ``content/<name>.pack``, written under a temporary name, fsynced and renamed
before the segment it serves is committed: ``MAGIC``, the entries (zlib-compressed UTF-8 text, or
a path), then a table sorted by hex SHA-1 (``_ENTRY``), its offset and length, and ``MAGIC`` again.
zlib rather than zstd: on the benchmark corpora, one frame per file, zlib level 6 keeps 21-36 %
of the bytes and zstd level 3 23-38 % (docs/service.md), with no dependency to add.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from stacklens.errors import IndexCorruptError

from .segment import fsync_path

CONTENT_DIR = "content"
MAGIC = b"SLPACK01"
TEXT, FILE = 0, 1  # entry kinds: compressed text, a path to the file
# SHA-1s as hex: numpy's bytes dtype drops trailing NUL bytes, which 1 digest in 256 ends with.
_ENTRY = np.dtype([("sha", "S40"), ("off", "<u8"), ("len", "<u4"), ("kind", "u1")])
_TRAILER = struct.Struct("<QQ8s")  # table offset, entries, magic
_LEVEL = 6


def entry_for(text: str, file: str | None, store: bool) -> tuple[int, bytes] | None:
    """What to keep of one document: its compressed text, or the path of its file."""
    if store:
        return TEXT, zlib.compress(text.encode("utf-8", "surrogatepass"), _LEVEL)
    if file:
        return FILE, os.fsencode(file)
    return None


def write_pack(index_path: Path, entries: Iterable[tuple[bytes, int, bytes]]) -> Path | None:
    """Write ``entries`` (hex SHA-1, kind, payload; distinct SHA-1s) as a new pack, streamed;
    None when there are none."""
    directory = index_path / CONTENT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}.pack"
    tmp = directory / f".tmp-{os.getpid()}-{name}"
    rows: list[tuple[bytes, int, int, int]] = []
    try:
        with tmp.open("wb") as f:
            f.write(MAGIC)
            for sha, kind, payload in entries:
                rows.append((sha, f.tell(), len(payload), kind))
                f.write(payload)
            if not rows:
                tmp.unlink()
                return None
            table = np.array(sorted(rows), dtype=_ENTRY)
            at = f.tell()
            f.write(table.tobytes())
            f.write(_TRAILER.pack(at, len(rows), MAGIC))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, directory / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(directory)
    return directory / name


def clean_stale(index_path: Path) -> None:
    """Remove temporary packs of builds that were killed (their process is gone)."""
    for tmp in (index_path / CONTENT_DIR).glob(".tmp-*"):
        try:
            pid = int(tmp.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, IndexError, PermissionError):
            continue


def _pack_files(directory: Path) -> list[Path]:
    """The complete packs of a content directory (temporary ones start with a dot)."""
    return sorted(p for p in directory.glob("*.pack") if not p.name.startswith("."))


class _Pack:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        size = os.fstat(self.fd).st_size
        try:
            if size < len(MAGIC) + _TRAILER.size:
                raise ValueError("too short")
            at, n, magic = _TRAILER.unpack(os.pread(self.fd, _TRAILER.size, size - _TRAILER.size))
            if magic != MAGIC or at + n * _ENTRY.itemsize + _TRAILER.size != size:
                raise ValueError("bad trailer")
            self.table = np.frombuffer(os.pread(self.fd, n * _ENTRY.itemsize, at), dtype=_ENTRY)
        except (ValueError, OSError) as exc:
            os.close(self.fd)
            raise IndexCorruptError(
                f"the content pack {path} is damaged ({exc}); delete it and rebuild with "
                "`code-search build --store-content` to keep the source text again"
            ) from None

    def find(self, sha: bytes) -> tuple[int, bytes] | None:
        k = int(np.searchsorted(self.table["sha"], sha))
        if k >= len(self.table) or self.table["sha"][k] != sha:
            return None
        row = self.table[k]
        return int(row["kind"]), os.pread(self.fd, int(row["len"]), int(row["off"]))

    def close(self) -> None:
        os.close(self.fd)


def _digest(sha: str) -> bytes | None:
    """The pack key of a hex SHA-1, or None for anything else."""
    try:
        raw = bytes.fromhex(sha)
    except (ValueError, TypeError):
        return None
    return raw.hex().encode() if len(raw) == 20 else None


class ContentReader:
    """What an index keeps of its documents' text, by SHA-1; packs added later are seen on the
    next lookup that misses."""

    def __init__(self, index_path: str | os.PathLike[str]) -> None:
        self.directory = Path(index_path) / CONTENT_DIR
        self._packs: dict[str, _Pack] = {}
        self._lock = threading.Lock()
        self._stamp = -1

    def _refresh(self) -> None:
        try:
            stamp = self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if stamp == self._stamp:
            return  # no pack was added or removed since the last look
        self._stamp = stamp
        listed = _pack_files(self.directory)
        for gone in set(self._packs) - {p.name for p in listed}:  # merged by a compaction
            self._packs.pop(gone).close()
        for path in listed:
            if path.name not in self._packs:
                with contextlib.suppress(FileNotFoundError):  # removed by a compaction meanwhile
                    self._packs[path.name] = _Pack(path)

    def entry(self, sha: str) -> tuple[int, bytes] | None:
        """The kept text (kind ``TEXT``, compressed) or file path (``FILE``) of a document;
        text wins where packs hold both."""
        digest = _digest(sha)
        if digest is None:
            return None
        with self._lock:
            for attempt in range(2):
                if attempt:
                    self._refresh()
                elif not self._packs:
                    continue
                found = [e for p in self._packs.values() if (e := p.find(digest)) is not None]
                if found:
                    return min(found, key=lambda e: e[0])
        return None

    def text(self, sha: str) -> str | None:
        e = self.entry(sha)
        if e is None or e[0] != TEXT:
            return None
        return zlib.decompress(e[1]).decode("utf-8", "surrogatepass")

    def has_text(self, sha: str) -> bool:
        e = self.entry(sha)
        return e is not None and e[0] == TEXT

    def close(self) -> None:
        with self._lock:
            for p in self._packs.values():
                p.close()
            self._packs.clear()


class ContentWriter:
    """What a build keeps of the files it reads. ``add`` runs for every file before it is handed
    to a worker (in the pool's feeder thread), ``flush`` before each segment is committed: every
    committed document's entry is then on disk, whatever moment the build is killed at."""

    def __init__(self, index_path: Path) -> None:
        self.path = index_path
        self._pending: dict[bytes, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._reader = ContentReader(index_path)
        clean_stale(index_path)

    def add(self, sha: str, text: str, file: str | None, store: bool) -> None:
        """One file read by the build, changed or not: an index built without its text gains
        it when the file is indexed again with ``store``."""
        digest = _digest(sha)
        have = self._reader.entry(sha)
        if digest is None or (have is not None and (have[0] == TEXT or not store)):
            return
        entry = entry_for(text, file, store)
        if entry is not None:
            with self._lock:
                old = self._pending.get(digest)
                if old is None or entry[0] <= old[0]:
                    self._pending[digest] = entry

    def flush(self) -> Path | None:
        """Write what was added since the last flush as a pack; its path, or None if nothing."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return write_pack(self.path, ((sha, kind, data) for sha, (kind, data) in pending.items()))

    def close(self) -> None:
        self._reader.close()


def compact_content(
    index_path: str | os.PathLike[str], live: Iterable[str], parts: Iterable[Path] = ()
) -> None:
    """One pack holding the entries of the ``live`` SHA-1s, from this index's packs and those of
    the indexes ``parts`` merged into it; the packs read are removed after the new one is in
    place. Packs newer than the call are left alone: a concurrent build writes its pack before
    it commits the segment that makes its documents live."""
    path = Path(index_path)
    started = time.time()
    clean_stale(path)
    wanted = {d for sha in live if (d := _digest(sha)) is not None}
    old = [p for p in _pack_files(path / CONTENT_DIR) if p.stat().st_mtime < started]
    others = [p for part in parts for p in _pack_files(Path(part) / CONTENT_DIR)]
    if not old and not others:
        return
    packs = [_Pack(p) for p in [*old, *others]]
    try:
        best: dict[bytes, tuple[int, int]] = {}  # digest -> (kind, pack number), text first
        for n, pack in enumerate(packs):
            for sha, kind in zip(pack.table["sha"].tolist(), pack.table["kind"].tolist(), strict=True):
                if sha in wanted and (sha not in best or kind < best[sha][0]):
                    best[sha] = (kind, n)

        def entries() -> Iterable[tuple[bytes, int, bytes]]:
            # In SHA-1 order: packs are named by time and a random id, so two written in one
            # second are read in either order, and the pack would differ from run to run.
            for sha, (kind, n) in sorted(best.items()):
                found = packs[n].find(sha)
                if found is not None:
                    yield sha, kind, found[1]

        write_pack(path, entries())
    finally:
        for pack in packs:
            pack.close()
    for p in old:
        p.unlink(missing_ok=True)
