"""SARIF 2.1.0 for ``code-search scan``: one rule, ``corpus-match``; one result per reported
match, located in the scanned file, with the corpus source in its properties (and as a related
location when it has a URL). GitHub code scanning reads it through ``upload-sarif``."""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from pathlib import Path
from typing import Any

from .allowlist import source_key
from .scan import Finding, ScanResult

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
RULE_ID = "corpus-match"
_LEVEL = {"block": "error", "warn": "warning"}

_RULE: dict[str, Any] = {
    "id": RULE_ID,
    "name": "CorpusMatch",
    "shortDescription": {"text": "Code found in the model's training corpus"},
    "fullDescription": {
        "text": "This code, or a near copy of it, is in the corpus the code model was trained on. "
        "It may have been generated from that source: check its licence before keeping it."
    },
    "help": {
        "text": "Keep it with attribution if its licence allows, rewrite it, or accept it: allow-list "
        "the repository (.stacklens/allowlist.json) or allow its licence in the policy file.",
        "markdown": "Keep it **with attribution** if its licence allows, rewrite it, or accept it: "
        "allow-list the repository (`.stacklens/allowlist.json`) or add its licence to "
        "`licenseAllow` in the policy file (`code-search scan --policy FILE`).",
    },
    "defaultConfiguration": {"level": "warning"},
    "properties": {"tags": ["licence", "provenance", "training-data"], "precision": "high"},
}


def _uri(path: str) -> str:
    return urllib.parse.quote(path, safe="/")


def _fingerprint(f: Finding) -> str:
    # Stable across commits that move the code: the file, the source and its lines, not ours.
    m = f.match
    key = f"{f.path}\0{source_key(m)}\0{m.source_span.start_line}\0{m.source_span.end_line}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _result(f: Finding) -> dict[str, Any]:
    m, src = f.match, f.match.source
    text = f"Found in the training corpus: {m.describe()}. {f.decision.reason}."
    result: dict[str, Any] = {
        "ruleId": RULE_ID,
        "ruleIndex": 0,
        "level": _LEVEL[f.decision.verdict],
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(f.path), "uriBaseId": "SRCROOT"},
                    "region": {
                        "startLine": f.start_line,
                        "startColumn": f.start_column,
                        "endLine": f.end_line,
                        "endColumn": f.end_column,
                    },
                }
            }
        ],
        "partialFingerprints": {"corpusMatch/v1": _fingerprint(f)},
        "properties": {
            "repository": src.repo,
            "path": src.path,
            "license": src.license,
            "url": src.url,
            "score": round(m.score, 4),
            "occurrences": m.occurrences,
            "kind": m.kind,
            "matchedChars": m.matched_chars,
            "sourceStartLine": m.source_span.start_line,
            "sourceEndLine": m.source_span.end_line,
            "policy": f.decision.verdict,
            "policyReason": f.decision.reason,
        },
    }
    if src.url:
        result["relatedLocations"] = [
            {
                "id": 1,
                "message": {"text": f"the corpus source, {source_key(m)}"},
                "physicalLocation": {
                    "artifactLocation": {"uri": src.url},
                    "region": {"startLine": m.source_span.start_line, "endLine": m.source_span.end_line},
                },
            }
        ]
    return result


def to_sarif(result: ScanResult, version: str, root: Path | None = None) -> dict[str, Any]:
    """The SARIF log of ``result``; paths are relative to ``root`` (default: the working dir)."""
    base = (root or Path(os.getcwd())).resolve().as_uri() + "/"
    notifications = [
        {"level": "error", "message": {"text": e}, "descriptor": {"id": "check-failed"}}
        for e in result.errors
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "stacklens code-search",
                        "semanticVersion": version,
                        "rules": [_RULE],
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": base}},
                "columnKind": "unicodeCodePoints",
                "invocations": [
                    {"executionSuccessful": not result.errors, "toolExecutionNotifications": notifications}
                ],
                "results": [_result(f) for f in result.reported()],
            }
        ],
    }
