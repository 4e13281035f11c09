"""`repo:DIR`: masked lines and blocks of the user's own files, the same for the same seed, with
the repository's other files open as cross-file context."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from eval_helpers import report, run_eval

from evaluation.completer import request_for
from evaluation.repo import load_repo

SHAPES = textwrap.dedent(
    """\
    import math


    class Circle:
        def __init__(self, radius):
            self.radius = radius

        def area(self):
            squared = self.radius ** 2
            return math.pi * squared

        def grow(self, factor):
            if factor <= 0:
                raise ValueError("factor must be positive")
            self.radius *= factor
            return self
    """
)
UTIL = textwrap.dedent(
    """\
    def clamp(value, low, high):
        if value < low:
            return low
        if value > high:
            return high
        return value


    function twice(x) {
      const y = x * 2;
      return y;
    }
    """
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "shapes.py").write_text(SHAPES)
    (root / "pkg" / "util.py").write_text(UTIL.split("\n\n\nfunction")[0] + "\n")
    (root / "web.js").write_text("function twice(x) {\n  const y = x * 2;\n  return y;\n}\n")
    (root / "generated.py").write_text("def ignored():\n    return 'ignored by .gitignore'\n")
    (root / ".gitignore").write_text("generated.py\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("function dep() {\n  return 1;\n}\n")
    return root


def test_masking_is_deterministic_for_a_seed(repo: Path) -> None:
    first = load_repo(str(repo), count=12, seed=7).tasks
    again = load_repo(str(repo), count=12, seed=7).tasks
    other = load_repo(str(repo), count=12, seed=8).tasks
    assert [(t.task_id, t.prompt, t.canonical_solution) for t in first] == [
        (t.task_id, t.prompt, t.canonical_solution) for t in again
    ]
    assert [t.task_id for t in first] != [t.task_id for t in other]


def test_tasks_are_lines_and_blocks_of_the_files(repo: Path) -> None:
    tasks = load_repo(str(repo), count=40, seed=0).tasks
    assert {t.path for t in tasks} <= {"pkg/shapes.py", "pkg/util.py", "web.js"}  # ignored files left out
    kinds = {t.task_id.rsplit(":", 1)[1] for t in tasks}
    assert kinds == {"line", "block"}
    for t in tasks:
        assert t.prompt + t.canonical_solution + t.suffix == (repo / t.path).read_text()
        lines = t.canonical_solution.splitlines()
        if t.single_line:
            assert len(lines) == 1 and lines[0].strip()
        else:
            opener = t.prompt.splitlines()[-1]
            indent = len(opener) - len(opener.lstrip())
            assert len(lines) >= 2 and opener.rstrip().endswith((":", "{"))
            assert all(len(ln) - len(ln.lstrip()) > indent for ln in lines if ln.strip())
        assert t.path not in {f.path for f in t.other_files}
        assert {f.path for f in t.other_files} == {"pkg/shapes.py", "pkg/util.py", "web.js"} - {t.path}
        assert t.test == ""


def test_the_other_files_are_open_beside_the_task(repo: Path) -> None:
    task = next(t for t in load_repo(str(repo), count=40, seed=0).tasks if t.path == "pkg/shapes.py")
    request = request_for(task, 0)
    first = request.other_documents[0]
    assert first.uri == "file:///workspace/pkg/util.py"  # the same folder first
    assert request.text[: request.offset] == task.prompt
    assert request.language_id == "python"


def test_git_checkouts_use_git_ls_files(repo: Path) -> None:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    tasks = load_repo(str(repo), count=40, seed=0).tasks
    assert {t.path for t in tasks} <= {"pkg/shapes.py", "pkg/util.py", "web.js"}


def test_oracle_on_a_repository_scores_exact_match(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_eval("--benchmark", f"repo:{repo}", "--oracle", "--limit", "10", "--out", str(out)) == 0
    got = report(out)["settings"]["oracle"]
    assert got["tasks"] == 10
    assert got["exact_match"] == 1.0 and got["edit_similarity"] == 1.0
    assert got["pass@1"] is None  # nothing runs on the user's code


def test_an_empty_or_missing_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o")
    assert run_eval("--benchmark", f"repo:{tmp_path / 'nope'}", "--oracle", "--out", out) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_eval("--benchmark", f"repo:{tmp_path / 'empty'}", "--oracle", "--out", out) == 2
    assert "no source files" in capsys.readouterr().err
