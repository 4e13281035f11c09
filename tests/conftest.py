"""Fixtures shared by every layer: a small real corpus and an index built from it."""

from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import Generator
from pathlib import Path

import pytest

from index.builder import build
from index.config import BuildLimits
from index.sources import DirectorySource

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Real code that every CPython install carries; the tests compute expectations from the text.
CORPUS_FILES = ["json/decoder.py", "json/encoder.py", "textwrap.py", "shlex.py", "heapq.py", "bisect.py"]
UNSEEN_FILES = ["csv.py", "fnmatch.py", "colorsys.py"]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for rel in CORPUS_FILES:
        dest = root / "src" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STDLIB / rel, dest)
    (root / "LICENSE").write_text("GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007\n")
    return root


@pytest.fixture(scope="session")
def index_path(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index") / "idx"
    source = DirectorySource(
        corpus_dir,
        BuildLimits(),
        repo="example/corpus",
        url_template="https://example.invalid/example/corpus/blob/main/{path}",
    )
    build(path, [source], progress=False)
    return path


@pytest.fixture(scope="session")
def unseen_texts() -> list[str]:
    return [(STDLIB / rel).read_text() for rel in UNSEEN_FILES]


# Under CI=true every prerequisite is provisioned (scripts/test.sh runs scripts/provision/*.sh
# first), so a skip there means something is missing that should not be: it fails the run
# instead of hiding it. The one exception is CUDA, which a CI runner may lack. This hook catches
# every kind of skip (pytest.skip, importorskip at module level, skipif marks) in one place, so a
# new test cannot forget it.
def _fail_a_skip_in_ci(report: pytest.CollectReport | pytest.TestReport) -> None:
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if "CUDA" in reason:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where every prerequisite is provisioned: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    _fail_a_skip_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report: pytest.CollectReport = yield
    _fail_a_skip_in_ci(report)
    return report
