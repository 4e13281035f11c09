"""`open_checker`: the one way to open a membership checker, for the CLI, the HTTP service and
the language server alike. The settings name one place: an embedded index, an Elasticsearch
store or a running membership service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from index.protocol import IndexStore
from stacklens.errors import ConfigError

from .checker import Checker, StoreChecker
from .settings import QuerySettings


class CheckerSettings(BaseModel):
    """Where a checker finds the corpus, and how it decides what counts as a match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: str | None = Field(default=None, description="path of an embedded index")
    url: str | None = Field(default=None, description="a running membership service (`code-search serve`)")
    es_url: str | None = Field(default=None, description="an Elasticsearch store (with es_index)")
    es_index: str = Field(default="stacklens", min_length=1, description="store name in Elasticsearch")
    token: str | None = Field(default=None, description="bearer token for the membership service")
    timeout_s: float = Field(default=30.0, gt=0, description="per request to the membership service")
    query: QuerySettings = Field(default_factory=QuerySettings)

    @model_validator(mode="after")
    def _one_place(self) -> CheckerSettings:
        named = [n for n in ("index", "url", "es_url") if getattr(self, n)]
        if len(named) > 1:
            raise ValueError(f"name one place to check against, not {' and '.join(named)}")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.index or self.url or self.es_url)

    def describe(self) -> str:
        if self.url:
            return f"membership service {self.url}"
        if self.es_url:
            return f"Elasticsearch store {self.es_index} at {self.es_url}"
        if self.index:
            return f"index {self.index}"
        return "no membership index"


def open_store(settings: CheckerSettings) -> IndexStore:
    """The embedded index or the Elasticsearch store ``settings`` name (not a service URL)."""
    if settings.es_url:
        # Imported lazily: the Elasticsearch client costs start-up time the embedded index does not.
        from index.elastic import ElasticIndex

        return ElasticIndex(settings.es_url, settings.es_index)
    if settings.index:
        from index.store import EmbeddedIndex

        return EmbeddedIndex(settings.index)
    raise ConfigError("name the index: --index PATH, or --es-url URL --es-index NAME")


def store_checker(store: IndexStore, settings: QuerySettings | None = None) -> StoreChecker:
    """An in-process checker over an opened ``store``, serialised when the store needs it."""
    from index.store import EmbeddedIndex

    return StoreChecker(store, settings, serialise=isinstance(store, EmbeddedIndex))


def open_checker(settings: CheckerSettings) -> Checker:
    """The checker ``settings`` name; raises `ConfigError` when they name none, and the store's
    or client's own `StacklensError` when it cannot be opened."""
    if settings.url:
        from .client import RemoteChecker

        return RemoteChecker(
            settings.url, settings=settings.query, token=settings.token, timeout=settings.timeout_s
        )
    if not settings.configured:
        raise ConfigError(
            "no membership index configured: set stacklens.membership.index, .esUrl or .url "
            "(code-search: --index, --es-url or --url)"
        )
    return store_checker(open_store(settings), settings.query)
