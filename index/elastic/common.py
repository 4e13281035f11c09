"""Names, client, error translation and mappings shared by the Elasticsearch reader and builder."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from elasticsearch.helpers import BulkIndexError
from elasticsearch.serializer import OrjsonSerializer

from stacklens.errors import BackendError, ConfigError, IndexCorruptError, IndexNotFoundError

from ..config import FingerprintParams

FORMAT = "stacklens-es"
# 2: postings in chunks (one Elasticsearch document per CHUNK_POSTINGS postings of one file,
# was one per posting); content no longer kept in the documents' _source.
# 3: comments indexed, one tokenisation for every language (the fingerprints changed).
# 4: the trigram content index is optional, off unless built with --es-content: it was 1.3x
# the corpus and only /v1/search reads it.
# 5: chunks of CHUNK_POSTINGS = 128 postings packed in columns (`packing`, ~10 bytes a posting
# instead of 20), each carrying its file's record, so a lookup needs no request per matched file.
# 6: the packed rows and the file's record are binary doc values instead of stored fields: a
# lookup's fetch reads them in place instead of decompressing an LZ4 block of stored fields for
# every chunk (a lookup of 300 chunks: 12 -> 3.3 ms in Elasticsearch, `postings_body`).
FORMAT_VERSION = 6
TERMS_PER_REQUEST = 8192  # well under index.max_terms_count (65,536) and search.max_buckets
FIRST_FETCH = 1_000  # chunks a lookup's first request fetches: most lookups need no second
MAX_FETCH = 100_000  # chunks fetched per request; the postings indices allow this window
# Postings per Elasticsearch document. Each Elasticsearch document costs an _id, a sequence
# number, a version, an indexed reference and a round of indexing work (format 1 had one
# document per posting: ~46 bytes on disk for 20 of data); a chunk shares that cost. Format 2-4
# had 32 (16 and 64 measured the same then); with packed rows and the file's record in every
# chunk 128 makes the store smaller and the build faster, and a lookup fetches about as many
# chunks (most query keys are in one or two, of the files they come from): see docs/benchmarks.md.
CHUNK_POSTINGS = 128
# The columns of a chunk's payload (`packing`), in the file's order: the key's low 32 bits, then
# the fields lookups return. The fingerprint meta (line span << 16 | concrete hash) is split so
# the span, a few lines, takes one byte.
FP_COLUMNS = ("k", "p", "l", "m_lo", "m_hi")
MH_COLUMNS = ("k", "l", "e")
# The content hash a document record carries while its postings are being written: a build
# interrupted then leaves a record that no content matches, so the next build replaces it.
PENDING = "pending"


def doc_ref(key: str) -> int:
    """A document's reference: the same in every worker, non-negative to fit a ``long``."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def index_names(name: str) -> tuple[str, str, str]:
    """The documents, fingerprint-postings and band-postings indices of one store."""
    return f"{name}-docs", f"{name}-fp", f"{name}-mh"


@contextlib.contextmanager
def es_errors(url: str) -> Iterator[None]:
    """Turn client failures into `BackendError` with a message naming the cluster."""
    try:
        yield
    except BulkIndexError as exc:
        first = exc.errors[0] if exc.errors else {}
        msg = f"Elasticsearch at {url} rejected {len(exc.errors)} documents: {first}"
        raise BackendError(msg) from exc
    except ApiError as exc:
        msg = f"Elasticsearch at {url} answered {exc.meta.status}: {exc.message} ({exc.body})"
        raise BackendError(msg) from exc
    except TransportError as exc:
        raise BackendError(
            f"cannot reach Elasticsearch at {url} ({type(exc).__name__}: {exc.message}); "
            "is it running, and is --es-url right?"
        ) from exc


def connect(url: str, timeout: float = 10.0) -> Elasticsearch:
    """A client whose every request ends within about ``timeout`` seconds (no endless retries)."""
    # orjson, not the standard json module, for request and response bodies (the client uses it
    # only when asked): a slow lookup's response is 300-650 KB of JSON, mostly base64 chunks;
    # parsing the 16 responses of bench_elastic's 10 slowest 24 MB queries took 0.45 instead
    # of 0.76 ms each, and writing their requests (up to 8,192 keys) 0.010 instead of 0.041.
    try:
        return Elasticsearch(
            url, request_timeout=timeout, max_retries=1, retry_on_timeout=False, serializer=OrjsonSerializer()
        )
    except ValueError as exc:
        raise ConfigError(f"Elasticsearch URL {url!r} is unusable ({exc})") from None


def _fmt_params(params: FingerprintParams, content: bool) -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "params": params.model_dump(), "content": content}


def read_params(es: Elasticsearch, url: str, name: str) -> FingerprintParams:
    """The fingerprint parameters recorded in the store, or `IndexNotFoundError`."""
    return read_meta(es, url, name)[0]


def read_meta(es: Elasticsearch, url: str, name: str) -> tuple[FingerprintParams, bool]:
    """The fingerprint parameters recorded in the store and whether it indexes the content
    (for /v1/search), or `IndexNotFoundError`."""
    docs = index_names(name)[0]
    try:
        with es_errors(url):
            mapping = es.indices.get_mapping(index=docs)
    except BackendError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            raise IndexNotFoundError(
                f"no stacklens index {name!r} in Elasticsearch at {url}: build one with "
                f"`code-search build --es-url {url} --es-index {name} SOURCE...`"
            ) from None
        raise
    meta = next(iter(mapping.values()))["mappings"].get("_meta", {})
    if meta.get("format") != FORMAT:
        raise IndexCorruptError(f"Elasticsearch index {docs} at {url} was not written by stacklens")
    if meta.get("version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"Elasticsearch index {docs} has format version {meta.get('version')}, this stacklens "
            f"reads {FORMAT_VERSION}; rebuild it: `code-search build --es-url URL --es-index NEW_NAME "
            "SOURCE...` with the same sources (the fingerprints or the postings layout changed)"
        )
    return FingerprintParams(**meta["params"]), bool(meta.get("content", False))


def docs_body(params: FingerprintParams, shards: int, replicas: int, content: bool = False) -> dict[str, Any]:
    """Settings and mapping of ``NAME-docs``; ``_meta`` records the fingerprint parameters and
    whether the content is indexed (trigrams, for /v1/search: 1.3x the corpus, so only on request)."""
    body: dict[str, Any] = {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "analysis": {
                # Character trigrams over all characters: code has no reliable word boundaries.
                "tokenizer": {"trigram": {"type": "ngram", "min_gram": 3, "max_gram": 3, "token_chars": []}},
                "analyzer": {
                    "code_trigrams": {
                        "tokenizer": "trigram",
                        "filter": ["lowercase", "asciifolding"],
                    }
                },
            },
        },
        "mappings": {
            "_meta": _fmt_params(params, content),
            "dynamic": "strict",
            # The content is only searched (queries never read it back, and the sources are
            # the copy to rebuild from): kept out of _source, it costs no stored copy.
            "_source": {"excludes": ["content"]},
            "properties": {
                "ref": {"type": "long"},
                "key": {"type": "keyword"},
                "sha": {"type": "keyword", "index": False},
                "repo": {"type": "keyword"},
                "path": {"type": "keyword"},
                "license": {"type": "keyword"},
                "lang": {"type": "keyword"},
                "url": {"type": "keyword", "index": False, "doc_values": False},
                "lines": {"type": "integer", "index": False},
                "bytes": {"type": "integer", "index": False},
                "content": {"type": "text", "analyzer": "code_trigrams", "norms": False},
            },
        },
    }
    if not content:
        mappings = body["mappings"]
        del mappings["properties"]["content"], mappings["_source"]
        del body["settings"]["analysis"]
    return body


def postings_body(shards: int, replicas: int) -> dict[str, Any]:
    """One document per chunk of postings of one file: ``k`` (the chunk's distinct keys, only
    searched: counting uses the inverted index, see `ElasticIndex._counts`), ``d`` (the file's
    reference, only searched: when a file is replaced), ``c`` (the packed rows, `packing`, with
    the reference) and ``r`` (the file's record as JSON, what `ElasticIndex.document` returns),
    both only returned, as binary doc values: a lookup's fetch reads them where they lie. As
    stored fields (format 5) every fetched chunk decompressed its LZ4 block of stored fields:
    on the slowest lookups of bench_elastic's 24 MB store (120-390 chunks of ~300 distinct files)
    12 ms of Elasticsearch's time a request against 3.3 ms from doc values (1.7 ms of it the
    fetch without any field), for 15 % more bytes for ``c`` (7.0 instead of 6.0 MB there, LZ4
    took that off) and 13 % for ``r`` (1.7 instead of 1.5 MB). No ``_source``: lookups read
    ``c`` and ``r`` directly, and the postings can always be rebuilt from the sources."""
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "max_result_window": MAX_FETCH,
            # Builders refresh when they finish; fewer refreshes while bulk loading mean
            # fewer tiny segments to merge.
            "refresh_interval": "30s",
        },
        "mappings": {
            "dynamic": "strict",
            "_source": {"enabled": False},
            "properties": {
                "k": {"type": "long", "doc_values": False},
                "d": {"type": "long", "doc_values": False},
                "c": {"type": "binary", "doc_values": True},
                "r": {"type": "binary", "doc_values": True},
            },
        },
    }
