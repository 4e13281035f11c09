"""How common a match is ("found in N files"), counted on a corpus with known duplicates, and
carried by the match object everywhere it goes: Python, CLI JSON, HTTP JSON (and the remote
client), LSP data (tests/lsp/test_lsp_evidence.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from index.builder import build
from index.config import BuildLimits
from index.sources import open_source
from index.store import EmbeddedIndex
from membership.cli import main
from membership.client import RemoteChecker
from membership.query import Matcher
from membership.service import create_app, running
from tests.conftest import STDLIB

COPIED, UNIQUE = "textwrap.py", "shlex.py"
FORKS = 3  # repositories that vendor textwrap.py unchanged


@pytest.fixture(scope="module")
def dup_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dups")
    sources = []
    for k in range(FORKS):
        repo = root / f"fork{k}"
        repo.mkdir()
        shutil.copy(STDLIB / COPIED, repo / COPIED)
        if k == 0:
            shutil.copy(STDLIB / UNIQUE, repo / UNIQUE)
        sources.append(open_source(str(repo), BuildLimits(), repo=f"acme/fork{k}", license="PSF-2.0"))
    path = root / "idx"
    build(path, sources, progress=False)
    return path


def _piece(rel: str) -> str:
    return "".join((STDLIB / rel).read_text().splitlines(keepends=True)[60:100])


def test_occurrences_count_the_files_holding_the_code(dup_index: Path) -> None:
    matcher = Matcher(EmbeddedIndex(dup_index))
    copied = matcher.check(_piece(COPIED))
    assert {m.source.repo for m in copied} == {f"acme/fork{k}" for k in range(FORKS)}
    assert {m.occurrences for m in copied} == {FORKS}
    assert f"found in {FORKS:,} files" in copied[0].describe()
    (unique,) = matcher.check(_piece(UNIQUE))
    assert unique.occurrences == 1 and "found in" not in unique.describe()
    assert len({m.source.sha for m in copied}) == 1  # one text, so one content hash


def test_occurrences_travel_in_cli_and_http_json(
    dup_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = tmp_path / "q.py"
    query.write_text(_piece(COPIED))
    assert main(["query", "--index", str(dup_index), "--json", str(query)]) == 1
    cli = json.loads(capsys.readouterr().out)["matches"]
    assert {m["occurrences"] for m in cli} == {FORKS} and all(len(m["source"]["sha"]) == 40 for m in cli)
    app = create_app(lambda: EmbeddedIndex(dup_index))
    with running(app) as url:
        body = httpx.post(f"{url}/v1/check", json={"snippets": [{"text": _piece(COPIED)}]}, timeout=30).json()
        http = body["results"][0]["matches"]
        assert {m["occurrences"] for m in http} == {FORKS}
        assert http[0]["source"]["sha"] == cli[0]["source"]["sha"]
        remote = RemoteChecker(url).check(_piece(COPIED))
        assert {m.occurrences for m in remote} == {FORKS}
