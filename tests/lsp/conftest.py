"""Session fixtures for the language-server tests: a small corpus with a known licence, its
index, and a tiny local model trained to reproduce the corpus (so completions hit the index)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# tests/conftest.py puts tests/ on sys.path, where tests/membership/ etc. (no __init__.py) would
# shadow the real packages as namespace packages under `.venv/bin/pytest`; the repository root
# must come first.
_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)
from lsp_helpers import CORPUS_FILE, REPO, RING_FILE, RING_REPO  # noqa: E402


@pytest.fixture(scope="session")
def lsp_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("corpus") / "trees"
    d.mkdir()
    (d / "interval_tree.py").write_text(CORPUS_FILE, encoding="utf-8")
    (d / "LICENSE").write_text("GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n", encoding="utf-8")
    ring = d.parent / "ring"
    ring.mkdir()
    (ring / "ring.py").write_text(RING_FILE, encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def lsp_index(lsp_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from index.builder import build
    from index.config import BuildLimits
    from index.sources import DirectorySource

    path = tmp_path_factory.mktemp("index") / "idx"
    source = DirectorySource(
        lsp_corpus,
        BuildLimits(),
        repo=REPO,
        url_template="https://example.com/acme/trees/{path}",
    )
    ring = DirectorySource(
        lsp_corpus.parent / "ring",
        BuildLimits(),
        repo=RING_REPO,
        license="MIT",
        url_template="https://example.com/acme/ring/{path}",
    )
    build(path, [source, ring], progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_model(lsp_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny starcoder-family model that has memorised ring.py (a few seconds of training)."""
    pytest.importorskip("transformers", reason="transformers is missing: run `make install`")
    from fixtures.tiny_model import make_tiny_model

    cached = os.environ.get("STACKLENS_TEST_TINY_MODEL")
    if cached and Path(cached, "config.json").is_file():
        return Path(cached)
    out = tmp_path_factory.mktemp("model") / "tiny"
    return make_tiny_model(
        out,
        family="starcoder",
        train_files=[str(lsp_corpus.parent / "ring" / "ring.py")],
        train_steps=120,
    )


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workspace")
