"""Fixtures for the completion tests: tiny local models (built once per session, offline) and
real servers on loopback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

# tests/completion has no __init__.py: once tests/ is on sys.path (tests/conftest.py puts it
# there) this folder could pass for the `completion` package. The repository root on the path
# lets the real (regular) package win; drop a shadow imported before this ran.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
if getattr(sys.modules.get("completion"), "__file__", "") is None:
    for _name in [n for n in sys.modules if n == "completion" or n.startswith("completion.")]:
        del sys.modules[_name]

import pytest  # noqa: E402
from completion_helpers import CORPUS_CODE, serve_app  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"  # the Offline rule: nothing may be downloaded
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "greet.py"
    path.write_text(CORPUS_CODE, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def starcoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained GPTBigCode with a StarCoder tokenizer."""
    from fixtures.tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("starcoder"), "starcoder", "gpt_bigcode")


@pytest.fixture(scope="session")
def qwen_trained_dir(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> Path:
    """Llama-architecture model with Qwen2.5-Coder FIM tokens, trained to reproduce the corpus."""
    from fixtures.tiny_model import make_tiny_model

    return make_tiny_model(
        tmp_path_factory.mktemp("qwen"), "qwen", "llama", [str(corpus_file)], train_steps=300
    )


@pytest.fixture(scope="session")
def stacklens_url(qwen_trained_dir: Path) -> Iterator[str]:
    """Our own `stacklens serve` app, for real, on loopback (no token)."""
    from completion.serve import ServerConfig, create_app

    with serve_app(create_app(ServerConfig(str(qwen_trained_dir), max_body_bytes=200_000))) as url:
        yield url
