"""Fixtures for the `stacklens eval` tests: a corpus with a known source and licence, its index,
and a tiny model trained to reproduce it (so a completion is found in the index)."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

# tests/conftest.py puts tests/ on sys.path; the repository root must come first so the real
# packages win over same-named test folders.
_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# The file the tiny model memorises; a task's prompt is its first line.
MEMORISED = textwrap.dedent(
    """\
    def ledger_balance(entries, opening):
        balance = opening
        for kind, amount in entries:
            if kind == "credit":
                balance += amount
            elif kind == "debit":
                balance -= amount
            else:
                raise ValueError(kind)
        return balance
    """
)
MEMORISED_REPO = "acme/ledger"
MEMORISED_TEST = "\n\ndef check(candidate):\n    assert candidate([('credit', 5), ('debit', 2)], 10) == 13\n"


@pytest.fixture(scope="session")
def memorised_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("corpus") / "ledger"
    d.mkdir()
    (d / "ledger.py").write_text(MEMORISED, encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def memorised_index(memorised_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from index.builder import build
    from index.config import BuildLimits
    from index.sources import DirectorySource

    path = tmp_path_factory.mktemp("index") / "idx"
    source = DirectorySource(
        memorised_corpus,
        BuildLimits(),
        repo=MEMORISED_REPO,
        license="MIT",
        url_template="https://example.com/acme/ledger/{path}",
    )
    build(path, [source], progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_model(memorised_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny StarCoder-family model that has memorised ledger.py (seconds of training)."""
    pytest.importorskip("transformers", reason="pip install -e '.[model]' (torch==2.13.0 on CPU)")
    from fixtures.tiny_model import make_tiny_model

    out = tmp_path_factory.mktemp("model") / "tiny"
    return Path(
        make_tiny_model(
            out, family="starcoder", train_files=[str(memorised_corpus / "ledger.py")], train_steps=300
        )
    )
