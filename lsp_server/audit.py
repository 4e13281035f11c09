"""The opt-in audit log (``membership.auditLog``): one JSON line per suggestion with a match that
was shown, blocked or accepted, with the matches and the policy's decision on each.

The user's code is never written unless ``membership.auditLogIncludeCode`` is set: a row holds
the document URI, the range and the match objects (source, spans, licence, score, commonness).
Files rotate by size (``auditLogMaxBytes``; ``auditLogBackups`` older files kept as PATH.1 ...).
One server process writes one log; several editor windows should name several files.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from lsprotocol import types

from membership import Match
from membership.policy import MatchPolicy

from .config import MembershipConfig
from .documents import path_hint

log = logging.getLogger(__name__)
Event = Literal["shown", "blocked", "accepted"]


def _range(r: types.Range | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


class AuditLog:
    """Appends rows to the configured file; a no-op when the setting is unset. ``policy`` gives
    the policy in force when a row is written (the server's changes with the allow-list)."""

    def __init__(self, cfg: MembershipConfig, policy: Callable[[], MatchPolicy]) -> None:
        self.policy = policy
        self.path = Path(cfg.audit_log) if cfg.audit_log else None
        self.include_code = cfg.audit_log_include_code
        self._handler: logging.handlers.RotatingFileHandler | None = None
        self._lock = threading.Lock()
        self._failed = False
        self._max_bytes, self._backups = cfg.audit_log_max_bytes, cfg.audit_log_backups

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def _open(self) -> logging.handlers.RotatingFileHandler | None:
        if self._handler is None and self.path is not None and not self._failed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handler = logging.handlers.RotatingFileHandler(
                    self.path, maxBytes=self._max_bytes, backupCount=self._backups, encoding="utf-8"
                )
            except OSError as exc:  # one warning, then the server carries on without the log
                self._failed = True
                log.warning("cannot open the audit log %s: %s", self.path, exc)
        return self._handler

    def record(
        self,
        event: Event,
        *,
        uri: str,
        range: types.Range | None,
        matches: list[Match],
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """One row, with the policy's decision on each match for the file ``uri`` names;
        ``code`` (the suggestion's text) is dropped unless the setting asks for it."""
        if not self.enabled or not matches:
            return
        policy, file = self.policy(), path_hint(uri)
        decided = [(m, policy.decide(m, file)) for m in matches]
        row: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            "uri": uri,
            "range": _range(range),
            "action": policy.action(matches, file),
            "matches": [{**m.model_dump(mode="json"), "decision": d.model_dump()} for m, d in decided],
        }
        if request_id:
            row["requestId"] = request_id
        if self.include_code and code is not None:
            row["code"] = code
        line = json.dumps(row, ensure_ascii=False)
        with self._lock:
            handler = self._open()
            if handler is None:
                return
            try:
                handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
            except Exception as exc:  # a full disk costs the log, never the suggestion
                log.warning("cannot write the audit log %s: %s", self.path, exc)

    def close(self) -> None:
        with self._lock:
            if self._handler is not None:
                self._handler.close()
                self._handler = None
