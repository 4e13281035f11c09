"""Filling an Elasticsearch store: resumable, shardable, with back-pressure.

Documents go in batches. For each batch the builder asks which documents are already present
with the same content hash (skipped: this is what makes an interrupted build resumable), drops the
postings of changed ones, writes the postings and only then the document records. A new file
first gets a record marked PENDING, so a build stopped before its real record is written leaves
a record that the next build treats as changed: its partial postings are dropped, not kept
beside the new ones. Postings go in chunks with deterministic ids, so a batch written twice
overwrites itself. While one batch is written the workers fingerprint the next. Bulk requests
retry with exponential back-off on 429 (Elasticsearch's "slow down"), which throttles many
workers.
"""

from __future__ import annotations

import base64
import json
import logging
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from stacklens.errors import ConfigError, IndexCorruptError, IndexNotFoundError

from ..builder import BuildSummary, PreparedDocument, prepare_document, progress_bar, sharded_files
from ..config import BuildLimits, FingerprintParams
from ..sources import SourceFile
from . import common, packing, rows
from .common import (
    PENDING,
    connect,
    doc_ref,
    docs_body,
    es_errors,
    index_names,
    postings_body,
    read_meta,
)
from .store import ElasticIndex

log = logging.getLogger(__name__)

BATCH_DOCS = 256
# A batch being fingerprinted: the files to write, the hashes stored before, and the prepared
# documents (a list, or the worker pool's pending result).
_InFlight = tuple[list[tuple[int, SourceFile, str]], dict[int, str], Any]


def ensure_indices(
    es: Elasticsearch,
    url: str,
    name: str,
    params: FingerprintParams | None,
    shards: int = 1,
    replicas: int = 0,
    content: bool = False,
) -> tuple[FingerprintParams, bool]:
    """Create the three indices if missing (racing workers are fine); return the parameters and
    whether the store indexes the content (``content`` asks for it in a new store)."""
    docs, fp, mh = index_names(name)
    with es_errors(url):
        bodies = {
            fp: postings_body(shards, replicas),
            mh: postings_body(shards, replicas),
            # Created last: its presence means the postings indices exist too.
            docs: docs_body(params or FingerprintParams.model_validate({}), shards, replicas, content),
        }
        for index, body in bodies.items():
            if not es.indices.exists(index=index):
                es.options(ignore_status=400).indices.create(index=index, **body)
    existing, has_content = read_meta(es, url, name)
    if content and not has_content:
        raise ConfigError(
            f"Elasticsearch store {name} was built without the content index, so --es-content "
            "cannot add it to some files only: build into a new --es-index with --es-content"
        )
    if params is not None and params != existing:
        raise IndexCorruptError(
            f"Elasticsearch index {name} was built with other fingerprint parameters "
            f"({existing.model_dump()}); build into a new --es-index"
        )
    return existing, has_content


def _chunk_actions(
    index: str, ref: int, keys: np.ndarray, columns: list[np.ndarray], record: str
) -> Iterator[dict[str, Any]]:
    """One Elasticsearch document per CHUNK_POSTINGS consecutive postings of one file, each with
    the file's record. Ids are deterministic (file reference and chunk number): a batch written
    again after an interruption overwrites its chunks instead of adding copies."""
    size = common.CHUNK_POSTINGS
    for i, start in enumerate(range(0, len(keys), size)):
        end = start + size
        # Keys are uint64; Elasticsearch's long is signed, so they are indexed as the same 64 bits.
        k = np.unique(keys[start:end]).view(np.int64).tolist()
        payload = packing.encode(ref, [c[start:end] for c in columns])
        src = {"d": ref, "k": k, "c": base64.b64encode(payload).decode(), "r": record}
        yield {"_index": index, "_id": f"{ref:x}.{i}", "_source": src}


def _actions(
    ref: int, p: PreparedDocument, fp: str, mh: str, params: FingerprintParams
) -> Iterator[dict[str, Any]]:
    record = base64.b64encode(json.dumps({**p.doc, "ref": ref}).encode()).decode()
    yield from _chunk_actions(fp, ref, *rows.fingerprint_columns(p, params.kgram), record)
    yield from _chunk_actions(mh, ref, *rows.band_columns(p, params.minhash_lines), record)


class ElasticBuilder:
    """Writes batches of prepared documents into one store."""

    def __init__(
        self,
        url: str,
        name: str,
        params: FingerprintParams | None,
        timeout: float = 60.0,
        content: bool = False,
    ) -> None:
        self.url, self.name = url, name
        self.es = connect(url, timeout)
        self.docs, self.fp, self.mh = index_names(name)
        self.params, self.content = ensure_indices(self.es, url, name, params, content=content)

    def known(self, refs: list[int]) -> dict[int, str]:
        """Content hashes of the documents already stored, by reference."""
        with es_errors(self.url):
            r = self.es.mget(index=self.docs, ids=[str(r) for r in refs], source_includes=["sha"])
        return {int(d["_id"]): d["_source"]["sha"] for d in r["docs"] if d.get("found")}

    def drop_postings(self, refs: list[int]) -> None:
        with es_errors(self.url):
            # delete_by_query sees only refreshed postings; an interrupted build may have
            # left some unrefreshed (the postings indices refresh every 30 s).
            self.es.indices.refresh(index=f"{self.fp},{self.mh}")
            self.es.delete_by_query(
                index=f"{self.fp},{self.mh}",
                query={"terms": {"d": refs}},
                conflicts="proceed",
                refresh=True,
            )

    def drop_documents(self, refs: list[int]) -> None:
        """Remove document records by id (realtime, unlike a query on unrefreshed data)."""
        self._bulk({"_op_type": "delete", "_index": self.docs, "_id": str(r)} for r in refs)

    def _bulk(self, actions: Iterable[dict[str, Any]]) -> None:
        with es_errors(self.url):
            for _ in streaming_bulk(
                self.es,
                actions,
                chunk_size=2000,
                max_chunk_bytes=20 * 1024 * 1024,
                max_retries=8,
                initial_backoff=0.5,
                max_backoff=30,
            ):
                pass

    def write(self, batch: list[tuple[int, PreparedDocument, str]], new: set[int]) -> None:
        """Postings first, then the document records that make them count as present.

        New files first get a record whose hash is PENDING: if the build stops before their
        real record is written, the next build sees them as changed and deletes whatever
        postings got in before writing them again (their chunks may differ by then)."""
        self._bulk(
            {"_index": self.docs, "_id": str(ref), "_source": {**p.doc, "ref": ref, "sha": PENDING}}
            for ref, p, _ in batch
            if ref in new
        )
        self._bulk(a for ref, p, _ in batch for a in _actions(ref, p, self.fp, self.mh, self.params))
        self._bulk(
            {
                "_index": self.docs,
                "_id": str(ref),
                "_source": {**p.doc, "ref": ref, **({"content": text} if self.content else {})},
            }
            for ref, p, text in batch
        )

    def refresh(self) -> None:
        with es_errors(self.url):
            self.es.indices.refresh(index=",".join(index_names(self.name)))

    def close(self) -> None:
        self.es.close()


def build_elastic(
    url: str,
    name: str,
    sources: Iterable[Any],
    *,
    params: FingerprintParams | None = None,
    limits: BuildLimits | None = None,
    shard: tuple[int, int] | None = None,
    jobs: int = 1,
    progress: bool | None = None,
    content: bool = False,
) -> BuildSummary:
    """Add ``sources`` to the Elasticsearch store ``name`` at ``url`` (created if missing);
    ``content``: index the text for /v1/search (a new store only)."""
    del limits  # sources already apply them; kept for the same signature as `build`
    builder = ElasticBuilder(url, name, params, content=content)
    summary = BuildSummary()
    started = time.monotonic()
    bar = progress_bar(progress)
    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None

    def start(pending: list[tuple[SourceFile, str]]) -> _InFlight:
        """Skip the unchanged files, drop the changed ones' postings, and set the workers
        fingerprinting the rest."""
        refs = [doc_ref(src.key) for src, _ in pending]
        known = builder.known(refs)
        todo = [
            (ref, src, sha) for ref, (src, sha) in zip(refs, pending, strict=True) if known.get(ref) != sha
        ]
        summary.unchanged += len(pending) - len(todo)
        # Changed files, and new ones whose postings an interrupted build began (PENDING).
        changed = [ref for ref, _, _ in todo if ref in known]
        if changed:
            builder.drop_postings(changed)
            summary.updated += sum(known[ref] != PENDING for ref in changed)
        items = [(src, sha, builder.params) for _, src, sha in todo]
        if pool:
            return todo, known, pool.map_async(prepare_document, items, chunksize=8)
        return todo, known, [prepare_document(i) for i in items]

    def finish(todo: list[tuple[int, SourceFile, str]], known: dict[int, str], prepared: Any) -> None:
        ready = []
        done = prepared.get() if pool else prepared
        for (ref, src, _), p in zip(todo, done, strict=True):
            if p is None:  # too many tokens to be code: skipped, as the embedded build does
                summary.skipped.skip("over-large")
                if ref in known:
                    builder.drop_documents([ref])
                continue
            ready.append((ref, p, src.text))
            summary.files += 1
            summary.bytes += p.doc["bytes"]
            bar.update(p.doc["bytes"])
        builder.write(ready, new={ref for ref, _, _ in todo if ref not in known})

    # One batch is written while the workers fingerprint the next, so that Elasticsearch's
    # indexing and the fingerprinting overlap (they took turns before, each idling the other's
    # cores). A batch holding a file that the one in flight still has to write waits for it:
    # its check of what is stored would miss that write and leave stale chunks beside its own.
    in_flight: _InFlight | None = None

    def flush(pending: list[tuple[SourceFile, str]]) -> None:
        nonlocal in_flight
        if in_flight is not None:
            writing = {ref for ref, _, _ in in_flight[0]}
            if any(doc_ref(src.key) in writing for src, _ in pending):
                finish(*in_flight)
                in_flight = None
        nxt = start(pending)
        if in_flight is not None:
            finish(*in_flight)
        in_flight = nxt

    try:
        pending: list[tuple[SourceFile, str]] = []
        files = iter(sharded_files(sources, summary.skipped, shard))
        while True:
            try:
                src, sha = next(files)
            except StopIteration:
                break
            except Exception:
                # A source that fails (unreadable archive, lost mount) keeps the whole batches
                # read before it, as when batches were written one after the other.
                if in_flight is not None:
                    finish(*in_flight)
                raise
            pending.append((src, sha))
            if len(pending) >= BATCH_DOCS:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
        if in_flight is not None:
            finish(*in_flight)
        builder.refresh()
    finally:
        bar.close()
        if pool:
            pool.terminate()
        builder.close()
    summary.seconds = time.monotonic() - started
    try:
        with ElasticIndex(url, name) as idx:
            summary.index_docs, summary.index_bytes = idx.num_docs, idx.size_bytes()
    except IndexNotFoundError:  # pragma: no cover - the indices were created above
        pass
    return summary
