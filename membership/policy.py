"""What to do with a match: the licence policy, the commonness threshold and the allow-list.

One decision for every surface: the language server (diagnostics, hovers, blocked suggestions),
``code-search scan`` (exit status, SARIF levels) and the audit log all ask `MatchPolicy`.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from stacklens.errors import ConfigError

from .allowlist import Allowlist, source_key
from .match import Match

Action = Literal["off", "warn", "block"]
Verdict = Literal["ignore", "warn", "block"]
_RANK: dict[str, int] = {"off": 0, "ignore": 0, "warn": 1, "block": 2}

# Copyleft families: a suggestion copied from these may oblige the user to relicense their code.
DEFAULT_LICENSE_BLOCK = ["GPL*", "AGPL*", "LGPL*", "SSPL*", "EUPL*", "OSL*"]


class PolicySettings(BaseModel):
    """The policy keys of the ``stacklens.membership`` settings (camelCase or snake_case)."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_default=True
    )

    policy: Action = Field(default="warn", description="warn | block | off for suggestions with a match")
    license_block: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LICENSE_BLOCK),
        description="licences (SPDX ids, shell wildcards, any case) whose matches are blocked",
    )
    license_allow: list[str] = Field(default_factory=list, description="licences never reported")
    unknown_license: Action = Field(
        default="warn", description="action for sources without a licence (off: not reported)"
    )
    # Off by default: a GPL function stays GPL however many forks carry it, and the most forked
    # code is the most likely to be suggested; commonness is a choice a team makes knowingly.
    ignore_common_above: int | None = Field(
        default=None,
        ge=1,
        description="ignore matches found in more corpus files than this (boilerplate); null: never",
    )


class Decision(BaseModel):
    """What the policy does with one match, and why (shown in hovers, SARIF and the audit log)."""

    verdict: Verdict
    reason: str


def _matching(patterns: list[str], value: str) -> str | None:
    v = value.lower()
    return next((p for p in patterns if fnmatch.fnmatchcase(v, p.lower())), None)


class MatchPolicy:
    """Turns raw matches into the ones to report and the action they call for."""

    def __init__(self, settings: PolicySettings, allowlist: Allowlist | None = None) -> None:
        self.settings = settings
        self.allowlist = allowlist or Allowlist(None)

    def license_action(self, license: str | None) -> Action:
        """``block`` for a licence in ``licenseBlock``, the unknown-licence action without one."""
        if not license:
            return self.settings.unknown_license
        return "block" if _matching(self.settings.license_block, license) else "warn"

    def decide(self, m: Match, file: str | None = None) -> Decision:
        """The verdict on one match found in ``file`` (a path, for the per-file ignores)."""
        s = self.settings
        if s.policy == "off":
            return Decision(verdict="ignore", reason="the policy is off")
        if m.source.repo and m.source.repo in self.allowlist.repos:
            return Decision(verdict="ignore", reason=f"repository {m.source.repo} is allow-listed")
        if self.allowlist.hides(file, m):
            return Decision(verdict="ignore", reason=f"ignored here ({source_key(m)} in the allow-list)")
        lic = m.source.license
        allowed = _matching(s.license_allow, lic) if lic else None
        if allowed:
            return Decision(verdict="ignore", reason=f"licence {lic} is allowed ({allowed} in licenseAllow)")
        if s.ignore_common_above is not None and m.occurrences > s.ignore_common_above:
            return Decision(
                verdict="ignore",
                reason=f"found in {m.occurrences:,} files, more than ignoreCommonAbove "
                f"({s.ignore_common_above:,}): boilerplate",
            )
        if not lic:
            if s.unknown_license == "off":
                return Decision(verdict="ignore", reason="licence unknown (unknownLicense is off)")
            if s.unknown_license == "block":
                return Decision(verdict="block", reason="licence unknown (unknownLicense is block)")
        else:
            blocked = _matching(s.license_block, lic)
            if blocked:
                reason = f"licence {lic} is blocked ({blocked} in licenseBlock)"
                return Decision(verdict="block", reason=reason)
        if s.policy == "block":
            return Decision(verdict="block", reason="the policy blocks every match")
        return Decision(verdict="warn", reason=f"licence {lic or 'unknown'}: reported")

    def reportable(self, matches: list[Match], file: str | None) -> list[Match]:
        """Matches the policy does not ignore, in their order."""
        return [m for m in matches if self.decide(m, file).verdict != "ignore"]

    def action(self, matches: list[Match], file: str | None = None) -> Action:
        """The strongest action any of ``matches`` calls for (``off`` when none is reported)."""
        worst = max((_RANK[self.decide(m, file).verdict] for m in matches), default=0)
        return "block" if worst >= 2 else "warn" if worst == 1 else "off"


_POLICY_KEYS = set(PolicySettings.model_fields) | {to_camel(k) for k in PolicySettings.model_fields}


def _section(data: dict[str, Any]) -> dict[str, Any]:
    """The policy keys of a settings document, in one of three shapes: the keys themselves
    (every key must be one); nested under ``stacklens.membership`` or ``membership``; or VS
    Code's flat ``"stacklens.membership.X"`` (the other settings beside them are left alone)."""
    flat = {k.removeprefix("stacklens.membership."): v for k, v in data.items() if k.startswith("stacklens.")}
    if flat:
        return {k: v for k, v in flat.items() if k in _POLICY_KEYS}
    inner = data.get("stacklens", data)
    if isinstance(inner, dict) and isinstance(inner.get("membership"), dict):
        return {k: v for k, v in inner["membership"].items() if k in _POLICY_KEYS}
    return data


def load_policy(path: str | Path) -> PolicySettings:
    """Policy settings from a JSON file (the language server's keys); raises `ConfigError`."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the policy file {p}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"the policy file {p} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the policy file {p} must hold a JSON object of policy settings")
    section = _section(data)
    try:
        return PolicySettings.model_validate(section)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()[:5]
        )
        keys = ", ".join(sorted(map(to_camel, PolicySettings.model_fields)))
        raise ConfigError(f"invalid policy file {p}: {errors} (the keys: {keys})") from None
