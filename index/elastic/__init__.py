"""The Elasticsearch store: read with `ElasticIndex`, fill with `build_elastic`."""

from .build import build_elastic, ensure_indices
from .common import doc_ref, index_names
from .store import ElasticIndex

__all__ = ["ElasticIndex", "build_elastic", "doc_ref", "ensure_indices", "index_names"]
