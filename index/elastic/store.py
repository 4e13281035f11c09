"""The Elasticsearch store: the embedded index's interface over three Elasticsearch indices.

``NAME-docs`` holds one document per source file: metadata as keyword fields and the content
under a character-trigram analyzer (as StarCoder's dataset search did), which makes
``match_phrase`` an exact substring search and ``match`` a fuzzy BM25 one. ``NAME-fp`` and
``NAME-mh`` hold one small document per posting (key, doc, position...) with doc values only and
no ``_source``. A lookup is two requests: a ``terms`` query with a ``terms`` aggregation counts the
postings of each query key (boilerplate keys, shared by more than ``max_postings``, are dropped
without being fetched), then a ``terms`` query on the remaining keys fetches their postings.
Postings are then gathered exactly as the embedded store does, so ``Matcher`` verifies and locates
matches unchanged. Document references are a 63-bit hash of the document key, stable across
workers, so ``--shard i/N`` builds can fill one index in parallel without coordination.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from elasticsearch import NotFoundError

from ..errors import BackendError, InputError
from ..store import BandHits, FingerprintHits, gather_postings
from .common import (
    FIRST_FETCH,
    MAX_FETCH,
    TERMS_PER_REQUEST,
    connect,
    es_errors,
    index_names,
    read_params,
)

log = logging.getLogger(__name__)

_FP_FIELDS = ("p", "l", "m")
_MH_FIELDS = ("l", "e")


def _chunks(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class ElasticIndex:
    """A read view of a stacklens store in Elasticsearch. Thread-safe: the client is, and the
    document cache is a dict whose single operations are atomic."""

    def __init__(self, url: str, name: str, *, timeout: float = 10.0) -> None:
        self.url, self.name = url, name
        self.docs_index, self.fp_index, self.mh_index = index_names(name)
        self.es = connect(url, timeout)
        try:
            self.params = read_params(self.es, url, name)
        except Exception:
            self.es.close()
            raise
        self._fields = {self.fp_index: _FP_FIELDS, self.mh_index: _MH_FIELDS}
        self._docs: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> ElasticIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.es.close()

    @property
    def num_docs(self) -> int:
        with es_errors(self.url):
            return int(self.es.count(index=self.docs_index)["count"])

    def size_bytes(self) -> int:
        """Primary store size of the three indices (replicas not counted)."""
        with es_errors(self.url):
            stats = self.es.indices.stats(index=",".join(index_names(self.name)), metric="store")
        return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])

    def describe(self) -> str:
        return f"Elasticsearch {self.url} index {self.name} ({self.num_docs} documents)"

    def _search_postings(self, index: str, keys: list[int], size: int, counts: bool) -> Any:
        body: dict[str, Any] = {
            "index": index,
            "size": size,
            "query": {"terms": {"k": keys}},
            "docvalue_fields": [{"field": n} for n in ("k", "d", *self._fields[index])],
            "source": False,
            "track_total_hits": counts,
        }
        if counts:
            body["aggs"] = {"n": {"terms": {"field": "k", "size": len(keys)}}}
        with es_errors(self.url):
            return self.es.search(**body)

    def _postings(self, index: str, keys: np.ndarray, max_postings: int) -> np.ndarray:
        """Rows (k, d, *fields) of every posting of a key with at most ``max_postings`` postings.

        The first request counts the postings of every key (an aggregation) and fetches up to
        FIRST_FETCH of them: on most queries that is all there are, and one round trip does.
        Otherwise the keys that are not boilerplate are fetched in requests of known size."""
        names = ("k", "d", *self._fields[index])
        limit = min(max_postings, MAX_FETCH)
        rows: list[list[int]] = []
        todo: list[tuple[int, int]] = []
        signed = np.unique(np.asarray(keys, dtype=np.uint64)).view(np.int64)
        for chunk in _chunks(signed, TERMS_PER_REQUEST):
            r = self._search_postings(index, chunk.tolist(), FIRST_FETCH, counts=True)
            counted = {int(b["key"]): int(b["doc_count"]) for b in r["aggregations"]["n"]["buckets"]}
            if r["hits"]["total"]["value"] <= FIRST_FETCH:
                hits = ([h["fields"][n][0] for n in names] for h in r["hits"]["hits"])
                rows.extend(row for row in hits if counted.get(row[0], 0) <= limit)
            else:
                todo.extend((k, n) for k, n in counted.items() if n <= limit)
        # Requests of at most MAX_FETCH postings each: no paging, no scroll context to clean up.
        batch: list[int] = []
        total = 0
        for i, (key, n) in enumerate([*todo, (0, MAX_FETCH + 1)]):
            if batch and (total + n > MAX_FETCH or len(batch) >= TERMS_PER_REQUEST or i == len(todo)):
                r = self._search_postings(index, batch, total, counts=False)
                rows.extend([h["fields"][f][0] for f in names] for h in r["hits"]["hits"])
                batch, total = [], 0
            batch.append(key)
            total += n
        if not rows:
            return np.empty((0, len(names)), dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)

    def _gathered(self, index: str, keys: np.ndarray, max_postings: int) -> list[np.ndarray]:
        """The postings as the embedded store returns them (same gathering, same cut-off)."""
        rows = self._postings(index, keys, max_postings)
        post_keys = rows[:, 0].view(np.uint64)
        order = np.argsort(post_keys, kind="stable")
        rows, post_keys = rows[order], post_keys[order]
        idx, qi = gather_postings(post_keys, np.asarray(keys, dtype=np.uint64), max_postings)
        return [qi.astype(np.int64), *(rows[idx, c] for c in range(1, rows.shape[1]))]

    def lookup_fingerprints(self, keys: np.ndarray, max_postings: int) -> FingerprintHits:
        return FingerprintHits(*self._gathered(self.fp_index, keys, max_postings))

    def lookup_bands(self, keys: np.ndarray, max_postings: int) -> BandHits:
        return BandHits(*self._gathered(self.mh_index, keys, max_postings))

    def document(self, ref: int) -> dict[str, Any]:
        doc = self._docs.get(ref)
        if doc is not None:
            return doc
        try:
            with es_errors(self.url):
                r = self.es.get(index=self.docs_index, id=str(ref), source_excludes=["content"])
        except BackendError as exc:
            if isinstance(exc.__cause__, NotFoundError):
                raise BackendError(
                    f"document {ref} of {self.name} is not (yet) in Elasticsearch; is a build running?"
                ) from None
            raise
        if len(self._docs) > 50_000:  # bounded: a long-lived service sees many documents
            self._docs.clear()
        self._docs[ref] = doc = r["_source"]
        return doc

    def search(
        self,
        query: str,
        *,
        phrase: bool = False,
        filters: dict[str, list[str]] | None = None,
        offset: int = 0,
        size: int = 10,
    ) -> dict[str, Any]:
        """Full-text search of the content: ``phrase`` is an exact (normalised-case) substring."""
        if len(query) < 3:
            raise InputError("search for at least 3 characters (content is indexed as trigrams)")
        match = {"match_phrase" if phrase else "match": {"content": query}}
        terms = [{"terms": {field: values}} for field, values in (filters or {}).items() if values]
        with es_errors(self.url):
            r = self.es.search(
                index=self.docs_index,
                query={"bool": {"must": [match], "filter": terms}},
                from_=offset,
                size=size,
                source_excludes=["content"],
                track_total_hits=True,
            )
        hits = [
            {
                "score": h["_score"],
                "repo": h["_source"].get("repo"),
                "path": h["_source"]["path"],
                "license": h["_source"].get("license"),
                "lang": h["_source"].get("lang"),
                "url": h["_source"].get("url"),
                "lines": h["_source"].get("lines"),
            }
            for h in r["hits"]["hits"]
        ]
        return {"total": int(r["hits"]["total"]["value"]), "offset": offset, "hits": hits}
