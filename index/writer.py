"""Adding segments to an embedded index: the write lock and the writer that commits a segment.

Writes are atomic: a segment is written under a temporary name, fsynced and renamed, then a new
manifest replaces the old one with ``os.replace``. A build killed at any point leaves the previous
manifest, and so the previous index, intact; the next build skips what was already committed.
A file lock serialises manifest updates, so ``--shard i/N`` workers can fill one index at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stacklens.errors import IndexBusyError, IndexCorruptError

from .config import FingerprintParams
from .manifest import FORMAT, FORMAT_VERSION, MANIFEST, manifest_key_bits, read_manifest
from .packed import KEY_BITS
from .segment import TableSource, fsync_path, write_segment


@contextlib.contextmanager
def write_lock(path: Path, wait_s: float = 600.0) -> Iterator[None]:
    """Exclusive lock on the index's manifest, shared by all builders of this index."""
    path.mkdir(parents=True, exist_ok=True)
    with (path / ".lock").open("a") as f:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexBusyError(
                        f"another process is writing the index at {path}; wait for it to finish"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class IndexWriter:
    """Adds segments to an index (creating it if needed) and commits them atomically."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        params: FingerprintParams | None = None,
        key_bits: int = KEY_BITS,
    ) -> None:
        """``key_bits``: of a new index only (an existing one keeps its own); fewer than 46 are
        for benchmarks that compare with the 32-bit keys of format 2."""
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._clean_stale_tmp()
        self.key_bits = key_bits
        with write_lock(self.path):
            if (self.path / MANIFEST).exists():
                manifest = read_manifest(self.path)
                self.key_bits = manifest_key_bits(manifest, self.path)
                existing = FingerprintParams(**manifest["params"])
                if params is not None and params != existing:
                    raise IndexCorruptError(
                        f"the index at {self.path} was built with other fingerprint parameters "
                        f"({existing.model_dump()}); build into a new path"
                    )
                self.params = existing
            else:
                self.params = params or FingerprintParams()
                self._write_manifest(self._new_manifest())

    def _new_manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "params": self.params.model_dump(),
            "key_bits": self.key_bits,
            "segments": [],
            "deleted": {},
            "created": time.time(),
        }

    def _clean_stale_tmp(self) -> None:
        for tmp in self.path.glob(".tmp-*"):
            try:
                pid = int(tmp.name.split("-")[1])
            except (IndexError, ValueError):
                pid = -1
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(tmp, ignore_errors=True)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["updated"] = time.time()
        tmp = self.path / f"{MANIFEST}.{os.getpid()}.tmp"
        try:
            with tmp.open("w") as f:
                json.dump(manifest, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path / MANIFEST)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk stays full while it is there
            raise
        fsync_path(self.path)

    def commit_segment(
        self,
        tables: Mapping[str, TableSource],
        docs: list[dict[str, Any]],
        lines: Iterable[bytes],
        starts: np.ndarray,
        delete: dict[str, list[int]] | None = None,
        replace: list[str] | None = None,
    ) -> str:
        """Write one segment and publish it (and any deletions) in a new manifest. ``tables``,
        ``lines``, ``starts``: as `write_segment`, keys as ``key_of(hashes, self.key_bits)``."""
        name = f"seg-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = self.path / f".tmp-{os.getpid()}-{name}"
        try:
            info = write_segment(tmp, tables, docs, lines, starts, self.key_bits) if docs else None
            with write_lock(self.path):
                manifest = read_manifest(self.path)
                if info is not None:
                    os.rename(tmp, self.path / name)
                    manifest["segments"].append({"name": name, **info})
                for seg_name, ids in (delete or {}).items():
                    merged = set(manifest["deleted"].get(seg_name, [])) | set(ids)
                    manifest["deleted"][seg_name] = sorted(merged)
                for old in replace or []:
                    manifest["segments"] = [s for s in manifest["segments"] if s["name"] != old]
                    manifest["deleted"].pop(old, None)
                self._write_manifest(manifest)
        except BaseException:
            # A commit that failed (a full disk, most often) gives back the space it took: no
            # manifest names its segment, so nothing else would ever remove it.
            shutil.rmtree(tmp, ignore_errors=True)
            with contextlib.suppress(OSError):
                if name not in (self.path / MANIFEST).read_text():
                    shutil.rmtree(self.path / name, ignore_errors=True)
            raise
        for old in replace or []:
            shutil.rmtree(self.path / old, ignore_errors=True)
        return name
