"""Names, client, error translation and mappings shared by the Elasticsearch reader and builder."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from elasticsearch.helpers import BulkIndexError

from ..config import FingerprintParams
from ..errors import BackendError, ConfigError, IndexCorruptError, IndexNotFoundError

FORMAT = "stacklens-es"
FORMAT_VERSION = 1
TERMS_PER_REQUEST = 8192  # well under index.max_terms_count (65,536) and search.max_buckets
FIRST_FETCH = 1_000  # postings fetched with the counts: most queries need no second request
MAX_FETCH = 100_000  # postings fetched per request; the postings indices allow this window


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
    try:
        return Elasticsearch(url, request_timeout=timeout, max_retries=1, retry_on_timeout=False)
    except ValueError as exc:
        raise ConfigError(f"Elasticsearch URL {url!r} is unusable ({exc})") from None


def _fmt_params(params: FingerprintParams) -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "params": params.model_dump()}


def read_params(es: Elasticsearch, url: str, name: str) -> FingerprintParams:
    """The fingerprint parameters recorded in the store, or `IndexNotFoundError`."""
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
            f"reads {FORMAT_VERSION}; rebuild it"
        )
    return FingerprintParams(**meta["params"])


def docs_body(params: FingerprintParams, shards: int, replicas: int) -> dict[str, Any]:
    """Settings and mapping of ``NAME-docs``; ``_meta`` records the fingerprint parameters."""
    return {
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
            "_meta": _fmt_params(params),
            "dynamic": "strict",
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


def postings_body(fields: tuple[str, ...], shards: int, replicas: int) -> dict[str, Any]:
    """One tiny document per posting: ``k`` (key, searched and aggregated), ``d`` (document
    reference, searched when a document is replaced), the rest doc values only. No ``_source``:
    lookups read doc values, and the postings can always be rebuilt from the sources."""
    props: dict[str, Any] = {"k": {"type": "long"}, "d": {"type": "long"}}
    props.update({f: {"type": "long", "index": False} for f in fields})
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "max_result_window": MAX_FETCH,
            # Builders refresh when they finish; fewer refreshes while bulk loading mean
            # fewer tiny segments to merge (postings arrive in the tens of thousands).
            "refresh_interval": "30s",
        },
        "mappings": {"dynamic": "strict", "_source": {"enabled": False}, "properties": props},
    }
