"""A real single-node Elasticsearch for the session (scripts/elasticsearch.sh), plus corpora.

Not provisioned: the tests skip, saying how to provision, except with CI=true, where that is a
failure (CI provisions first: scripts/test.sh runs scripts/provision/*.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from es_corpus import CORPUS_PACKAGES, copy_packages

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "elasticsearch.sh"
NOT_PROVISIONED = 3  # scripts/elasticsearch.sh's exit status when the install is missing


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    """URL of a fresh Elasticsearch on a free loopback port, stopped after the session."""
    run_dir = Path(tempfile.mkdtemp(prefix="stacklens-es-"))
    os.chmod(run_dir, 0o755)
    # scripts/teardown/elasticsearch.sh stops leftovers whose owner is gone, never ours.
    (run_dir / "owner.pid").write_text(str(os.getpid()))
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), "start", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=240,
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(SCRIPT), "stop", str(run_dir)], timeout=60)
        shutil.rmtree(run_dir, ignore_errors=True)
        pytest.fail("Elasticsearch did not start within 240 s")
    if done.returncode == NOT_PROVISIONED and os.environ.get("CI") != "true":
        shutil.rmtree(run_dir, ignore_errors=True)
        pytest.skip("Elasticsearch is not provisioned: run `bash scripts/provision/elasticsearch.sh`")
    if done.returncode != 0:
        shutil.rmtree(run_dir, ignore_errors=True)
        pytest.fail(f"scripts/elasticsearch.sh start failed ({done.returncode}): {done.stderr[-3000:]}")
    url = done.stdout.strip().splitlines()[-1]
    try:
        with Elasticsearch(url, request_timeout=60) as es:
            health = es.cluster.health(wait_for_status="yellow", timeout="60s")
            assert health["status"] in ("green", "yellow"), health
        yield url
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(run_dir)], timeout=60)
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def parity_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_packages(tmp_path_factory.mktemp("parity") / "src", CORPUS_PACKAGES)[0].parent
