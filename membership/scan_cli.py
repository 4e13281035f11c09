"""The ``code-search scan`` command: targets from the arguments, the policy from ``--policy``
and the workspace allow-list, then human lines, ``--json`` and ``--sarif FILE``.

Exit status: 0 nothing the policy reports (at ``--fail-on`` level), 1 a reported match, 2 an
error (a file that could not be checked counts: a CI gate must not pass on a partial scan)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from index.config import BuildLimits
from index.names import printable
from stacklens.errors import InputError

from .allowlist import Allowlist
from .policy import MatchPolicy, PolicySettings, load_policy
from .sarif import to_sarif
from .scan import ScanResult, Target, diff_targets, file_targets, scan

EXIT_NONE, EXIT_MATCH, EXIT_ERROR = 0, 1, 2
_RANK = {"warn": 1, "block": 2}


def _version() -> str:
    try:
        return metadata.version("stacklens")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _write_json(path: str, data: Any) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


def _report(result: ScanResult, out: TextIO) -> None:
    for f in result.reported():
        url = f"  {f.match.source.url}" if f.match.source.url else ""
        line = f"{f.path}:{f.start_line}-{f.end_line}: {f.decision.verdict}: {f.match.describe()}{url}"
        out.write(printable(line) + "\n")


def _as_json(result: ScanResult) -> dict[str, Any]:
    return {
        "files": result.files,
        "checked": result.checked,
        "findings": [
            {
                "path": f.path,
                "region": {
                    "start_line": f.start_line,
                    "start_column": f.start_column,
                    "end_line": f.end_line,
                    "end_column": f.end_column,
                },
                "match": f.match.model_dump(),
                "decision": f.decision.model_dump(),
            }
            for f in result.findings
        ],
        "errors": result.errors,
    }


def run_scan(args: argparse.Namespace, open_checker: Callable[[], Any]) -> int:
    """Run ``code-search scan`` with parsed ``args``; ``open_checker`` opens the index."""
    if not args.diff and not args.paths:
        raise InputError("name what to scan: PATH... (files or directories), or --diff GIT_REV_RANGE")
    if args.json and args.sarif == "-":
        raise InputError("--json and --sarif - both print to standard output: write the SARIF to a file")
    settings = load_policy(args.policy) if args.policy else PolicySettings()
    policy = MatchPolicy(settings, Allowlist(Path(args.workspace)))
    result = ScanResult()
    targets = (
        diff_targets(args.diff, args.paths, result)
        if args.diff
        else file_targets(args.paths, BuildLimits(max_file_bytes=args.max_file_bytes), result)
    )
    listed: list[Target] = list(targets)  # path errors before the index is opened
    checker = open_checker()
    try:
        scan(iter(listed), checker, policy, result)
    finally:
        close = getattr(checker, "close", None)
        if close is not None:
            close()
    if args.sarif:
        _write_json(args.sarif, to_sarif(result, _version(), Path(args.workspace)))
    if args.json:
        json.dump(_as_json(result), sys.stdout)
        sys.stdout.write("\n")
    elif args.sarif != "-":
        _report(result, sys.stdout)
    for e in result.errors:
        sys.stderr.write(printable(f"code-search: {e}") + "\n")
    reported = result.reported()
    failing = [f for f in reported if _RANK[f.decision.verdict] >= _RANK[args.fail_on]]
    ignored = len(result.findings) - len(reported)
    sys.stderr.write(
        f"scanned {result.files:,} file(s): {len(reported)} match(es) reported"
        + (f", {ignored} ignored by the policy" if ignored else "")
        + (f", {len(result.errors)} error(s)" if result.errors else "")
        + "\n"
    )
    if result.errors:
        return EXIT_ERROR
    return EXIT_MATCH if failing else EXIT_NONE
