import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_is_generated_from_docs() -> None:
    res = subprocess.run(
        [sys.executable, "scripts/build_readme.py", "--check"], cwd=ROOT, capture_output=True
    )
    assert res.returncode == 0, res.stderr.decode()


def test_readme_names_the_two_commands_and_the_ci_runs_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
