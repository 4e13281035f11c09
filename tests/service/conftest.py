"""Fixtures for the membership service: a small real corpus (stdlib modules), its embedded
index, and the service running on a free loopback port."""

from __future__ import annotations

import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from index.builder import build
from index.config import BuildLimits
from index.sources import open_source
from index.store import EmbeddedIndex
from membership.limits import ServiceLimits
from membership.service import create_app, running
from tests.elastic.es_corpus import copy_packages

# Longer than the reach of a match past its hits (a winnowing window of tokens): never underlined.
PASTED_HEADER = "# pasted from a chat window, with a note of our own that no corpus file holds\n"

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TOKEN = "test-token-1234"


@pytest.fixture(scope="session")
def service_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("service_corpus")
    copy_packages(root, ("json", "email"))
    return root


@pytest.fixture(scope="session")
def service_index(service_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index") / "idx"
    source = open_source(str(service_corpus), BuildLimits(), repo="python/cpython", license="PSF-2.0")
    build(path, [source], progress=False)
    return path


@pytest.fixture(scope="session")
def query_text(service_corpus: Path) -> str:
    """About 40 lines copied verbatim from the middle of an indexed file, with a new header."""
    lines = (service_corpus / "json_decoder.py").read_text().splitlines(keepends=True)
    return PASTED_HEADER + "".join(lines[150:190])


@pytest.fixture
def serve(service_index: Path) -> Iterator[Callable[..., str]]:
    """Starts the service on the embedded index (with the given options); returns its URL."""
    with_stack: list[Any] = []

    def start(token: str | None = None, store: Callable[[], Any] | None = None, **limits: Any) -> str:
        app = create_app(
            store or (lambda: EmbeddedIndex(service_index)),
            limits=ServiceLimits(**limits),
            token=token,
        )
        ctx = running(app)
        with_stack.append(ctx)
        return ctx.__enter__()

    yield start
    for ctx in reversed(with_stack):
        ctx.__exit__(None, None, None)
