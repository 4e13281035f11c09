"""`code-search scan` as CI runs it: a real process on a directory and on a git diff, SARIF
validated against the vendored OASIS 2.1.0 schema, exit codes 0/1/2."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from membership.scan import Target, locate, parse_added
from tests.conftest import STDLIB

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "schema" / "sarif-schema-2.1.0.json").read_text())


def own(*numbers: int) -> str:
    return "".join(f"def own_{i}(value):\n    return value * {i} + len(str(value))\n\n" for i in numbers)


OWN = own(*range(12))


def function(rel: str, name: str) -> str:
    """The source of function ``name`` in a corpus file, up to the next top-level statement."""
    lines = (STDLIB / rel).read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
    end = next(i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ", "\n", "#"))
    return "".join(lines[start:end]).rstrip() + "\n"


SIFTUP = function("heapq.py", "_siftup")  # in the corpus as src/heapq.py (GPL-3.0)
DEDENT = function("textwrap.py", "dedent")


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "membership", "scan", *args], capture_output=True, text=True, cwd=cwd,
        env=env, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def valid_sarif(path: Path) -> dict[str, Any]:
    log = json.loads(path.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    return log


def region_text(path: Path, region: dict[str, int]) -> str:
    lines = path.read_text().splitlines(keepends=True)
    return "".join(lines[region["startLine"] - 1 : region["endLine"]])


def git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=60)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "own.py").write_text(OWN)
    (ws / "src" / "vendored.py").write_text(own(0, 1) + SIFTUP + "\n\n" + own(2, 3))
    (ws / "build").mkdir()
    (ws / "build" / "copy.py").write_text(SIFTUP)  # gitignored: not scanned
    (ws / ".gitignore").write_text("build/\n")
    return ws


def test_scan_directory_reports_the_copy_with_a_valid_sarif(index_path: Path, workspace: Path) -> None:
    res = run(workspace, "--index", str(index_path), "--sarif", "out.sarif", ".")
    assert res.returncode == 1, res.stderr
    assert "src/vendored.py:" in res.stdout and "build/" not in res.stdout
    log = valid_sarif(workspace / "out.sarif")
    copy_at = own(0, 1).count("\n") + 1  # the file line of `def _siftup`
    run_ = log["runs"][0]
    assert run_["tool"]["driver"]["rules"][0]["id"] == "corpus-match"
    assert run_["invocations"][0]["executionSuccessful"] is True
    results = run_["results"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert results and uris == {"src/vendored.py"}
    for r in results:
        assert r["ruleId"] == "corpus-match" and r["level"] == "error"  # GPL-3.0: blocked by default
        props = r["properties"]
        assert props["repository"] == "example/corpus" and props["path"] == "src/heapq.py"
        assert props["license"] == "GPL-3.0" and props["url"].startswith("https://example.invalid/")
        assert props["occurrences"] == 1 and 0 < props["score"] <= 1
        region = r["locations"][0]["physicalLocation"]["region"]
        assert {"startLine", "startColumn", "endLine", "endColumn"} <= set(region)
        # the copy, give or take the two lines a match may infer past its hits
        assert copy_at - 2 <= region["startLine"] <= region["endLine"] <= copy_at + SIFTUP.count("\n") + 2
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert "def _siftup" in region_text(workspace / "src" / "vendored.py", region)


def test_policy_file_allows_the_licence(index_path: Path, workspace: Path) -> None:
    (workspace / "policy.json").write_text(json.dumps({"stacklens.membership.licenseAllow": ["gpl-*"]}))
    res = run(workspace, "--index", str(index_path), "--policy", "policy.json", "--json", "src")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["findings"] and all(f["decision"]["verdict"] == "ignore" for f in out["findings"])
    assert "licenseAllow" in out["findings"][0]["decision"]["reason"]
    # --fail-on block: a match the policy only warns about passes the gate
    (workspace / "policy.json").write_text(json.dumps({"licenseBlock": []}))
    res = run(workspace, "--index", str(index_path), "--policy", "policy.json", "--fail-on", "block", "src")
    assert res.returncode == 0 and "warn: example/corpus/src/heapq.py" in res.stdout, res.stderr


def test_scan_diff_checks_only_added_lines(index_path: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text(OWN + DEDENT)  # an old copy: not in the diff, never reported
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", "first")
    before = OWN.count("\n")
    (repo / "app.py").write_text(OWN + "\n" + SIFTUP + "\n" + DEDENT)
    (repo / "notes.py").write_text("x = 1\n")
    git(repo, "add", "app.py", "notes.py")
    git(repo, "commit", "-q", "-m", "copy a function")
    res = run(repo, "--index", str(index_path), "--diff", "HEAD~1..HEAD", "--sarif", "diff.sarif")
    assert res.returncode == 1, res.stderr
    results = valid_sarif(repo / "diff.sarif")["runs"][0]["results"]
    assert results
    added = range(before + 1, before + 2 + SIFTUP.count("\n") + 1)
    for r in results:
        region = r["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] in added and region["endLine"] in added, region
        assert r["properties"]["path"] == "src/heapq.py"
        assert region_text(repo / "app.py", region).strip() in SIFTUP
    # the whole file has both copies
    whole = run(repo, "--index", str(index_path), "--json", "app.py")
    paths = {f["match"]["source"]["path"] for f in json.loads(whole.stdout)["findings"]}
    assert paths == {"src/heapq.py", "src/textwrap.py"}
    # what pre-commit runs: `--diff HEAD` sees staged changes, a new file included
    (repo / "staged.py").write_text(own(50) + SIFTUP)
    git(repo, "add", "staged.py")
    staged = run(repo, "--index", str(index_path), "--diff", "HEAD", "--json")
    assert staged.returncode == 1, staged.stderr
    assert {f["path"] for f in json.loads(staged.stdout)["findings"]} == {"staged.py"}
    git(repo, "rm", "-q", "--cached", "staged.py")
    (repo / "staged.py").unlink()
    # a diff that adds nothing copied passes
    (repo / "notes.py").write_text("x = 2\n")
    git(repo, "commit", "-q", "-am", "note")
    assert run(repo, "--index", str(index_path), "--diff", "HEAD~1..HEAD").returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--diff", "no-such-rev..HEAD"], "git diff"),
        (["--diff=--output=x"], "revision range"),
        (["missing.py"], "no such file"),
        ([], "name what to scan"),
        (["--json", "--sarif", "-", "."], "standard output"),
        (["--policy", "nope.json", "."], "cannot read the policy file"),
    ],
)
def test_errors_exit_2_with_a_message(
    index_path: Path, workspace: Path, args: list[str], message: str
) -> None:
    git(workspace, "init", "-q")
    res = run(workspace, "--index", str(index_path), *args)
    assert res.returncode == 2 and message in res.stderr, res.stderr


def test_parse_added_hunks() -> None:
    patch = (
        b"diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,0 +2,2 @@\n+a\n+b\n"
        b"@@ -9 +10,0 @@\n-gone\n"
        b'diff --git "a/\\303\\251.py" "b/\\303\\251.py"\n--- /dev/null\n+++ "b/\\303\\251.py"\n'
        b"@@ -0,0 +1 @@\n+c\n\\ No newline at end of file\n"
        b"diff --git a/d.py b/d.py\n--- a/d.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-d\n"
    )
    assert list(parse_added(patch)) == [(b"x.py", 2, [b"a", b"b"]), ("é.py".encode(), 1, [b"c"])]


def test_locate_moves_lines_and_counts_columns() -> None:
    from membership import Match

    text = "ab\n  cdef\nxyz\n"
    m = Match.model_validate(
        {
            "kind": "exact", "score": 1.0, "source": {"path": "p"},
            "source_span": {"start_line": 1, "end_line": 1}, "matched_chars": 5,
            "query_span": {"start_line": 2, "end_line": 3, "start_char": 5, "end_char": 14},
        }
    )  # fmt: skip
    assert locate(Target("f.py", text, first_line=40), m) == (41, 3, 42, 4)


def test_windows_cover_every_line_and_overlap() -> None:
    from membership.scan import windows

    text = "".join(f"line_{i} = {i}\n" for i in range(5000))
    parts = list(windows(Target("f.py", text, first_line=7), size=10_000, overlap=800))
    assert len(parts) > 5 and all(len(p.text) <= 10_000 for p in parts)
    covered: set[int] = set()
    for p in parts:
        lines = p.text.splitlines()
        assert lines[0] == f"line_{p.first_line - 7} = {p.first_line - 7}"  # first_line is the file's
        covered |= set(range(p.first_line, p.first_line + len(lines)))
    assert covered == set(range(7, 5007))
    for a, b in itertools.pairwise(parts):
        assert b.first_line < a.first_line + a.text.count("\n")  # overlapping


def test_windows_start_on_their_file_line_past_form_feeds() -> None:
    """A form feed (^L, common in Python sources) is inside a line: windows after one start on
    the file line that `locate` counts (str.splitlines made them one line off per ^L)."""
    from membership.scan import windows

    text = "".join(f"line_{i} = {i}\n" + ("\x0c\n" if i % 50 == 0 else "") for i in range(3000))
    parts = list(windows(Target("f.py", text, first_line=1), size=5_000, overlap=400))
    assert len(parts) > 5
    at = 0
    for p in parts:
        at = text.index(p.text, at)
        assert p.first_line == text.count("\n", 0, at) + 1, p.text[:20]


def test_a_copy_across_a_window_boundary_is_reported_once(index_path: Path, tmp_path: Path) -> None:
    from membership.scan import WINDOW_CHARS

    filler = own(*range(2000))
    head = filler[: filler.rindex("def ", 0, WINDOW_CHARS - len(SIFTUP) // 2)]  # the copy straddles
    (tmp_path / "big.py").write_text(head + SIFTUP + "\n\n" + filler[len(head) :])
    assert len((tmp_path / "big.py").read_text()) > 2 * WINDOW_CHARS
    res = run(tmp_path, "--index", str(index_path), "--json", "big.py")
    assert res.returncode == 1, res.stderr
    findings = json.loads(res.stdout)["findings"]
    copy_at = head.count("\n") + 1
    hits = [f for f in findings if f["region"]["start_line"] <= copy_at + 3 <= f["region"]["end_line"]]
    assert len(hits) == 1, findings
    assert hits[0]["match"]["source"]["path"] == "src/heapq.py"


def test_scan_through_the_membership_service_with_a_token(index_path: Path, workspace: Path) -> None:
    from index.store import EmbeddedIndex
    from membership.service import create_app, running

    app = create_app(lambda: EmbeddedIndex(index_path), token="scan-token")
    with running(app) as url:
        res = run(workspace, "--url", url, "--token", "scan-token", "--sarif", "-", "src")
        assert res.returncode == 1, res.stderr
        results = json.loads(res.stdout)["runs"][0]["results"]
        assert results and results[0]["properties"]["path"] == "src/heapq.py"
        denied = run(workspace, "--url", url, "--token", "wrong", "src")
    assert denied.returncode == 2 and denied.stderr.count("bearer token") == 1, denied.stderr  # one stop
