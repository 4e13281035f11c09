"""Query settings enter once: ``code-search`` reads STACKLENS_* and its flags; nothing else does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from membership import QuerySettings
from membership.limits import ServiceLimits
from membership.limits import from_environment as limits_from_environment
from membership.settings import from_environment
from stacklens.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_variables_then_flags() -> None:
    env = {"STACKLENS_MIN_CHARS": "90", "STACKLENS_MAX_MATCHES": "3", "STACKLENS_NEAR_DUPLICATES": "false"}
    s = from_environment(env, max_matches=7)
    assert (s.min_chars, s.max_matches, s.near_duplicates) == (90, 7, False)
    assert from_environment({}) == QuerySettings()


def test_an_invalid_value_names_where_it_came_from() -> None:
    with pytest.raises(InputError, match=r"STACKLENS_MIN_CHARS='abc'.*valid integer.*unset"):
        from_environment({"STACKLENS_MIN_CHARS": "abc"})
    with pytest.raises(InputError, match=r"--max-matches=0"):
        from_environment({}, max_matches=0)


def test_the_model_itself_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The language server and the library build settings from what they were given, whatever
    # the process's environment holds.
    monkeypatch.setenv("STACKLENS_MIN_CHARS", "90")
    assert QuerySettings().min_chars == 150
    with pytest.raises(ValueError, match="min_chars_typo"):
        QuerySettings.model_validate({"min_chars_typo": 1})


def test_code_search_reports_a_bad_variable_and_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "membership", "query", "--index", str(tmp_path / "none"), "-"],
        input=b"def f():\n    return 1\n",
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "STACKLENS_MIN_CHARS": "abc"},
        timeout=120,
    )
    assert proc.returncode == 2
    assert b"STACKLENS_MIN_CHARS='abc'" in proc.stderr and b"Traceback" not in proc.stderr


def test_service_limits_from_their_variables() -> None:
    limits = limits_from_environment({"STACKLENS_SERVICE_MAX_SNIPPETS": "5", "STACKLENS_MIN_CHARS": "1"})
    assert limits.max_snippets == 5 and limits == ServiceLimits(max_snippets=5)
    with pytest.raises(InputError, match=r"STACKLENS_SERVICE_MAX_SNIPPETS='abc'"):
        limits_from_environment({"STACKLENS_SERVICE_MAX_SNIPPETS": "abc"})
