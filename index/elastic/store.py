"""The Elasticsearch store: the embedded index's interface over three Elasticsearch indices.

``NAME-docs`` holds one document per source file: metadata as keyword fields and, in a store
built with ``--es-content``, the content under a character-trigram analyzer (as StarCoder's
dataset search did), which makes ``match_phrase`` an exact substring search and ``match`` a
fuzzy BM25 one; the content is indexed, not stored. ``NAME-fp`` and ``NAME-mh`` hold the
postings in chunks: one Elasticsearch document per CHUNK_POSTINGS consecutive postings of one
file, whose distinct keys are indexed (``k``), whose rows (key, position, line...) are one binary
doc value packed in columns (``c``, `packing`) and which carries the file's record (``r``),
so reporting a match needs no request of its own. A lookup is usually one request: a ``terms``
query on the query's keys fetching up to FIRST_FETCH chunks, from which the rows of the query's
keys are kept; a query's fingerprint and band lookups go together in one ``_msearch``
(`ElasticIndex.lookup_with_bands`). When more chunks
hold them, a ``filters`` aggregation counts each key's chunks (boilerplate keys, in more than
``max_postings`` chunks, are dropped without being fetched) and the rest are fetched in requests
of known size. Postings are then gathered exactly as the embedded store does, so ``Matcher``
verifies and locates matches unchanged. Document references are a 63-bit hash of the document
key, stable across workers, so ``--shard i/N`` builds can fill one index in parallel without
coordination.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
from elasticsearch import NotFoundError

from stacklens.errors import BackendError, ConfigError, InputError

from ..packed import concat_ranges
from ..protocol import BandHits, FingerprintHits
from ..store import gather_postings
from . import packing
from .common import (
    FIRST_FETCH,
    FP_COLUMNS,
    MAX_FETCH,
    MH_COLUMNS,
    TERMS_PER_REQUEST,
    connect,
    es_errors,
    index_names,
    read_meta,
)
from .rows import CONCRETE_MASK

log = logging.getLogger(__name__)


_FILTER = ("took", "hits.total", "hits.hits.fields")  # all a lookup reads of a search response


def _signed(keys: np.ndarray) -> np.ndarray:
    """The distinct keys, sorted, as the signed longs the ``k`` fields hold."""
    return np.unique(np.asarray(keys, dtype=np.uint64)).view(np.int64)


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
            self.params, self.content = read_meta(self.es, url, name)
        except Exception:
            self.es.close()
            raise
        self._columns = {self.fp_index: len(FP_COLUMNS), self.mh_index: len(MH_COLUMNS)}
        self._fields = {self.fp_index: ("p", "l", "m"), self.mh_index: ("l", "e")}
        self._docs: dict[int, dict[str, Any]] = {}
        self.concrete_mask = CONCRETE_MASK  # `index.protocol.concrete_mask`
        # Records of the files whose chunks lookups fetched, as they came (base64 JSON): decoded
        # only for the few files that `document` is asked for.
        self._records: dict[int, str] = {}
        # The fingerprint rows this thread's last lookup fetched: `lookup_in_documents` completes
        # the budget's samples from them (queries run in threads in the service).
        self._fetched = threading.local()

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

    @staticmethod
    def _body(keys: list[int], size: int, count_to: int | bool) -> dict[str, Any]:
        """A search for the chunks holding any of ``keys`` (at most ``size``), with their postings
        and records, and how many chunks match, counted up to ``count_to`` only (boilerplate keys
        can be in millions). Only the doc values ``c`` and ``r`` come back: no stored field is
        read (not even the id), no scores or index names."""
        return {
            "size": size,
            "query": {"terms": {"k": keys}},
            "stored_fields": "_none_",
            "docvalue_fields": [{"field": "c"}, {"field": "r"}],
            "sort": ["_doc"],
            "track_total_hits": count_to,
        }

    def _fetch(self, index: str, keys: list[int], size: int, count_to: int | bool = False) -> Any:
        """The chunks holding any of ``keys`` (`_body`)."""
        with es_errors(self.url):
            return self.es.search(index=index, **self._body(keys, size, count_to), filter_path=list(_FILTER))

    def _first_fetches(self, requests: list[tuple[str, np.ndarray]]) -> list[Any]:
        """The first fetch (`_postings`) of each (index, keys) in one ``_msearch`` request:
        one round trip and one request's fixed cost in Elasticsearch instead of one each."""
        searches: list[dict[str, Any]] = []
        for index, keys in requests:
            searches += [{"index": index}, self._body(keys.tolist(), FIRST_FETCH, FIRST_FETCH)]
        filter_path = ["responses.error", "responses.status", *(f"responses.{f}" for f in _FILTER)]
        with es_errors(self.url):
            responses: list[Any] = self.es.msearch(searches=searches, filter_path=filter_path)["responses"]
        for r in responses:
            if "error" in r:
                raise BackendError(
                    f"Elasticsearch at {self.url} answered {r.get('status')} to a lookup: {r['error']}"
                )
        return responses

    def _counts(self, index: str, keys: list[int]) -> dict[int, int]:
        """How many chunks hold each key: one filter per key and no query, which Elasticsearch
        answers filter by filter from the inverted index (a ``terms`` aggregation would have
        to read every value of every matching chunk)."""
        filters = {str(k): {"term": {"k": k}} for k in keys}
        with es_errors(self.url):
            r = self.es.search(index=index, size=0, aggs={"n": {"filters": {"filters": filters}}})
        return {int(k): int(b["doc_count"]) for k, b in r["aggregations"]["n"]["buckets"].items()}

    def _rows(self, index: str, r: Any, keys: np.ndarray) -> np.ndarray:
        """The postings of ``keys`` (sorted, signed) in the chunks of the response ``r``, as rows
        (k, d, *fields); the chunks' records are kept for `document`."""
        hits = r.get("hits", {}).get("hits", [])
        if len(self._records) > 200_000:  # bounded: a long-lived service sees many files
            self._records.clear()
        texts = [h["fields"]["c"][0] for h in hits]  # base64
        # Rows carry the key's low 32 bits (see `packing`): each takes the query key it matches.
        low = keys.view(np.uint64) & packing.LOW32
        order = np.argsort(low, kind="stable")
        low_sorted = low[order].astype(np.int64)
        docs, blob, cols = packing.decode_texts(texts, self._columns[index], first_in=low_sorted)
        # The records of the files with postings of the query, from any of their chunks (equal).
        refs, first = np.unique(docs, return_index=True)
        for ref, b in zip(refs.tolist(), blob[first].tolist(), strict=True):
            self._records.setdefault(ref, hits[b]["fields"]["r"][0])
        at = np.searchsorted(low_sorted, cols[0])
        if index == self.fp_index:
            cols = [cols[0], cols[1], cols[2], cols[3] | (cols[4] << 16)]
        out = np.empty((len(docs), len(cols) + 1), dtype=np.int64)
        out[:, 0], out[:, 1] = keys[order[at]], docs
        for c, values in enumerate(cols[1:], start=2):
            out[:, c] = values
        return out

    def _postings(self, index: str, keys: np.ndarray, max_postings: int, first: Any = None) -> np.ndarray:
        """Rows (k, d, *fields) of every posting of a key with at most ``max_postings`` postings.

        The first request fetches up to FIRST_FETCH chunks holding the query's keys: on most
        queries that is all of them, one round trip does, and `gather_postings` makes the cut.
        Otherwise the chunks holding each key are counted; a key in more chunks than the limit
        has more postings than it (boilerplate) and is dropped unseen, and the others are
        fetched in requests of known size. ``first``: the first request's response, when
        `_first_fetches` has made it."""
        limit = min(max_postings, MAX_FETCH)
        parts: list[np.ndarray] = [np.empty((0, len(self._fields[index]) + 2), dtype=np.int64)]
        todo: list[tuple[int, int]] = []
        for i, chunk in enumerate(_chunks(_signed(keys), TERMS_PER_REQUEST)):
            if i == 0 and first is not None:
                r = first
            else:
                r = self._fetch(index, chunk.tolist(), FIRST_FETCH, count_to=FIRST_FETCH)
            matched = r["hits"]["total"]
            if matched["relation"] == "eq" and matched["value"] <= FIRST_FETCH:
                parts.append(self._rows(index, r, chunk))
            else:
                counted = self._counts(index, chunk.tolist())
                todo.extend((k, n) for k, n in counted.items() if 0 < n <= limit)
        # Requests of at most MAX_FETCH chunks each: no paging, no scroll context to clean up.
        # Each keeps only the rows of its own keys: a chunk may come back in two requests.
        batch: list[int] = []
        total = 0
        for i, (key, n) in enumerate([*todo, (0, MAX_FETCH + 1)]):
            if batch and (total + n > MAX_FETCH or len(batch) >= TERMS_PER_REQUEST or i == len(todo)):
                r = self._fetch(index, batch, total)
                parts.append(self._rows(index, r, np.unique(np.array(batch, dtype=np.int64))))
                batch, total = [], 0
            batch.append(key)
            total += n
        return np.concatenate(parts)

    def _gathered(
        self, index: str, keys: np.ndarray, max_postings: int, first: Any = None
    ) -> list[np.ndarray]:
        """The postings as the embedded store returns them (same gathering, same cut-off, in
        document order within a key as the embedded tables are), and the postings of each
        hit's key."""
        rows = self._postings(index, keys, max_postings, first)
        post_keys = rows[:, 0].view(np.uint64)
        order = np.lexsort((rows[:, 2], rows[:, 1], post_keys))
        rows, post_keys = rows[order], post_keys[order]
        if index == self.fp_index:
            self._fetched.rows = (rows, post_keys)
        idx, qi, df = gather_postings(post_keys, np.asarray(keys, dtype=np.uint64), max_postings)
        return [qi.astype(np.int64), *(rows[idx, c] for c in range(1, rows.shape[1])), df[qi]]

    def lookup_fingerprints(self, keys: np.ndarray, max_postings: int) -> FingerprintHits:
        return FingerprintHits(*self._gathered(self.fp_index, keys, max_postings))

    def lookup_in_documents(self, keys: np.ndarray, docs: np.ndarray) -> FingerprintHits:
        """As the embedded store's, from the rows the last lookup fetched. Keys over the limit
        were dropped unseen (`_postings`), so for them nothing is completed: unlike the embedded
        store, a copy mostly made of text that hundreds of files share is not found here."""
        rows, post_keys = getattr(self._fetched, "rows", (np.empty((0, 5), dtype=np.int64), None))
        if post_keys is None or len(rows) == 0:
            empty = np.empty(0, dtype=np.int64)
            return FingerprintHits(empty, empty, empty, empty, empty, empty)
        query = np.asarray(keys, dtype=np.uint64)
        lo = np.searchsorted(post_keys, query, side="left")
        hi = np.searchsorted(post_keys, query, side="right")
        qi = np.repeat(np.arange(len(query)), hi - lo)
        idx = concat_ranges(lo, hi - lo)
        keep = np.isin(rows[idx, 1], docs)
        idx, qi = idx[keep], qi[keep]
        return FingerprintHits(qi, rows[idx, 1], rows[idx, 2], rows[idx, 3], rows[idx, 4], (hi - lo)[qi])

    def lookup_bands(self, keys: np.ndarray, max_postings: int) -> BandHits:
        return BandHits(*self._gathered(self.mh_index, keys, max_postings)[:-1])

    def lookup_with_bands(
        self, keys: np.ndarray, band_keys: np.ndarray, max_postings: int
    ) -> tuple[FingerprintHits, Callable[[], BandHits]]:
        """`index.protocol.LooksUpBoth`: the fingerprint lookup's first request and the band
        lookup's go in one ``_msearch``; the bands' chunks are decoded only if asked for. On
        the 200 queries of bench_elastic's 24 MB store, the 26 that find no exact match and
        look up their bands are half of the 12 slowest (a 180-373-chunk fingerprint lookup,
        then a band lookup that finds nothing): each saves a request."""
        fp, mh = _signed(keys)[:TERMS_PER_REQUEST], _signed(band_keys)[:TERMS_PER_REQUEST]
        if not len(fp) or not len(mh):
            return self.lookup_fingerprints(keys, max_postings), partial(
                self.lookup_bands, band_keys, max_postings
            )
        first_fp, first_mh = self._first_fetches([(self.fp_index, fp), (self.mh_index, mh)])
        found = FingerprintHits(*self._gathered(self.fp_index, keys, max_postings, first_fp))

        def bands() -> BandHits:
            return BandHits(*self._gathered(self.mh_index, band_keys, max_postings, first_mh)[:-1])

        return found, bands

    def document(self, ref: int) -> dict[str, Any]:
        doc = self._docs.get(ref)
        if doc is not None:
            return doc
        record = self._records.get(ref)
        if record is not None:
            found: dict[str, Any] = json.loads(base64.b64decode(record))
            self._docs[ref] = found
            return found
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
        source: dict[str, Any] = r["_source"]
        self._docs[ref] = source
        return source

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
        if not self.content:
            raise ConfigError(
                f"the Elasticsearch store {self.name} was built without the content index that "
                "full-text search needs: build it into a new --es-index with `code-search build "
                "--es-content`"
            )
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
