"""The audit log's file handling (lsp_server/audit.py) and its settings (lsp_server/config.py);
the rows a real session writes are checked in test_lsp_evidence.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lsprotocol import types as T

from lsp_server.audit import AuditLog
from lsp_server.config import ConfigError, ConfigLayers, MembershipConfig
from membership import Match
from membership.policy import MatchPolicy, PolicySettings

MATCH = Match.model_validate(
    {
        "kind": "exact",
        "score": 1.0,
        "source": {"repo": "acme/ring", "path": "ring.py", "license": "GPL-3.0", "url": None},
        "source_span": {"start_line": 1, "end_line": 4},
        "query_span": {"start_line": 1, "end_line": 4, "start_char": 0, "end_char": 90},
        "matched_chars": 90,
        "occurrences": 3,
    }
)
HERE = T.Range(start=T.Position(line=2, character=0), end=T.Position(line=5, character=1))


def _log(tmp_path: Path, **extra: object) -> AuditLog:
    return AuditLog(
        MembershipConfig.model_validate({"auditLog": str(tmp_path / "a" / "audit.jsonl"), **extra}),
        lambda: MatchPolicy(PolicySettings()),
    )


def _record(log: AuditLog, code: str = "def secret(): pass") -> None:
    log.record("accepted", uri="file:///w/x.py", range=HERE, matches=[MATCH], code=code, request_id="r1")


def test_a_row_has_the_match_and_the_decision_but_not_the_code(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _record(log)
    log.close()
    (row,) = [json.loads(line) for line in (tmp_path / "a" / "audit.jsonl").read_text().splitlines()]
    assert row["event"] == "accepted" and row["uri"] == "file:///w/x.py" and row["requestId"] == "r1"
    assert row["range"] == {"start": {"line": 2, "character": 0}, "end": {"line": 5, "character": 1}}
    assert row["action"] == "block"
    assert row["matches"][0]["occurrences"] == 3
    assert row["matches"][0]["decision"] == {
        "verdict": "block",
        "reason": "licence GPL-3.0 is blocked (GPL* in licenseBlock)",
    }
    assert "code" not in row and "secret" not in (tmp_path / "a" / "audit.jsonl").read_text()
    assert row["time"].endswith("+00:00")


def test_the_code_only_when_asked_and_nothing_without_a_match(tmp_path: Path) -> None:
    log = _log(tmp_path, auditLogIncludeCode=True)
    _record(log)
    log.record("shown", uri="u", range=None, matches=[])
    log.close()
    rows = (tmp_path / "a" / "audit.jsonl").read_text().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["code"] == "def secret(): pass"


def test_each_row_is_decided_by_the_policy_in_force_for_the_uris_file(tmp_path: Path) -> None:
    """The log asks for the server's policy when it writes (an allow-list change replaces it) and
    decides for the file the URI names: the call sites pass neither."""
    policy = MatchPolicy(PolicySettings())
    log = AuditLog(
        MembershipConfig.model_validate({"auditLog": str(tmp_path / "audit.jsonl")}), lambda: policy
    )
    log.record("shown", uri="file:///w/x.py", range=None, matches=[MATCH])
    policy = MatchPolicy(PolicySettings(license_block=[]))
    log.record("shown", uri="file:///w/x.py", range=None, matches=[MATCH])
    log.close()
    rows = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["action"] for r in rows] == ["block", "warn"]


def test_the_log_rotates_by_size(tmp_path: Path) -> None:
    log = _log(tmp_path, auditLogMaxBytes=10_000, auditLogBackups=2)
    for _ in range(60):  # about 800 bytes a row
        _record(log)
    log.close()
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all((tmp_path / "a" / f).stat().st_size <= 10_000 for f in files)


def test_an_unwritable_log_costs_a_warning_not_the_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a").write_text("a file where the directory should be")
    log = _log(tmp_path)
    _record(log)
    _record(log)
    assert [r.message for r in caplog.records if "audit log" in r.message][:1]
    assert len([r for r in caplog.records if "audit log" in r.message]) == 1


def test_settings_are_validated_where_they_enter(tmp_path: Path) -> None:
    layers = ConfigLayers({})
    with pytest.raises(ConfigError, match="is relative; give an absolute path"):
        layers.update("push", {"membership": {"auditLog": "audit.jsonl"}})
    with pytest.raises(ConfigError, match="is a directory; name a file in it"):
        layers.update("push", {"membership": {"auditLog": str(tmp_path)}})
    with pytest.raises(ConfigError, match="audit_log_max_bytes"):
        layers.update("push", {"membership": {"auditLog": str(tmp_path / "x"), "auditLogMaxBytes": 10}})
    cfg = layers.update(
        "push", {"membership": {"auditLog": "~/stacklens-audit.jsonl", "auditLogIncludeCode": True}}
    )
    assert cfg.membership.audit_log == str(Path.home() / "stacklens-audit.jsonl")
    assert cfg.membership.audit_log_include_code is True
    assert layers.update("push", {"membership": {"auditLog": ""}}).membership.audit_log is None
