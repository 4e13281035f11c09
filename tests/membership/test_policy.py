"""The match policy shared by the language server and `code-search scan`: licences, the
commonness threshold, the allow-list, and policy files in the language server's shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from membership import Match
from membership.allowlist import Allowlist
from membership.policy import MatchPolicy, PolicySettings, load_policy
from stacklens.errors import ConfigError


def match(license: str | None = "MIT", occurrences: int = 1, repo: str | None = "acme/x") -> Match:
    return Match.model_validate(
        {
            "kind": "exact",
            "score": 0.9,
            "source": {"repo": repo, "path": "a.py", "license": license, "url": None},
            "source_span": {"start_line": 3, "end_line": 9},
            "query_span": {"start_line": 1, "end_line": 7, "start_char": 0, "end_char": 200},
            "matched_chars": 200,
            "occurrences": occurrences,
        }
    )


def test_commonness_threshold_ignores_boilerplate_and_says_why() -> None:
    policy = MatchPolicy(PolicySettings(ignore_common_above=100))
    common, rare = match(license="GPL-3.0", occurrences=2140), match(license="GPL-3.0", occurrences=100)
    decision = policy.decide(common)
    assert decision.verdict == "ignore"
    assert "2,140 files" in decision.reason and "ignoreCommonAbove" in decision.reason
    assert policy.decide(rare).verdict == "block"  # at the threshold: still reported
    assert policy.reportable([common, rare], None) == [rare]
    assert policy.action([common]) == "off" and policy.action([common, rare]) == "block"


def test_commonness_is_off_by_default() -> None:
    assert PolicySettings().ignore_common_above is None
    assert MatchPolicy(PolicySettings()).decide(match(occurrences=10**6)).verdict == "warn"
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        PolicySettings.model_validate({"ignoreCommonAbove": 0})


def test_licences_allow_block_and_unknown() -> None:
    policy = MatchPolicy(PolicySettings(license_allow=["apache-*"]))
    blocked = policy.decide(match("GPL-2.0-or-later"))
    assert blocked.reason == "licence GPL-2.0-or-later is blocked (GPL* in licenseBlock)"
    assert policy.decide(match("Apache-2.0")).verdict == "ignore"
    assert policy.decide(match("MIT")).verdict == "warn"
    assert policy.decide(match(None)).verdict == "warn"
    off = MatchPolicy(PolicySettings(unknown_license="off"))
    assert off.reportable([match(None)], None) == []
    assert MatchPolicy(PolicySettings(unknown_license="block")).decide(match(None)).verdict == "block"
    assert MatchPolicy(PolicySettings(policy="block")).action([match("MIT")]) == "block"
    assert MatchPolicy(PolicySettings(policy="off")).reportable([match("GPL-3.0")], None) == []


def test_allowlist_hides_repositories_and_single_matches(tmp_path: Path) -> None:
    allow = Allowlist(tmp_path)
    allow.allow_repo("me/mine")
    allow.ignore(str(tmp_path / "src" / "f.py"), match(repo="other/x"))
    policy = MatchPolicy(PolicySettings(), Allowlist(tmp_path))  # read back from the file
    assert "allow-listed" in policy.decide(match(repo="me/mine")).reason
    assert policy.decide(match(repo="other/x"), str(tmp_path / "src" / "f.py")).verdict == "ignore"
    assert policy.decide(match(repo="other/x"), str(tmp_path / "g.py")).verdict == "warn"


@pytest.mark.parametrize(
    "document",
    [
        {"licenseBlock": ["MIT"], "ignoreCommonAbove": 50},
        {"license_block": ["MIT"], "ignore_common_above": 50},
        {"stacklens": {"membership": {"licenseBlock": ["MIT"], "ignoreCommonAbove": 50, "index": "x"}}},
        {"membership": {"licenseBlock": ["MIT"], "ignoreCommonAbove": 50, "minChars": 80}},
        {  # VS Code's .vscode/settings.json
            "stacklens.membership.licenseBlock": ["MIT"],
            "stacklens.membership.ignoreCommonAbove": 50,
            "stacklens.membership.index": "corpus-index",
            "editor.fontSize": 14,
        },
    ],
)
def test_policy_file_shapes(tmp_path: Path, document: dict[str, object]) -> None:
    f = tmp_path / "policy.json"
    f.write_text(json.dumps(document))
    settings = load_policy(f)
    assert settings.license_block == ["MIT"] and settings.ignore_common_above == 50


def test_bad_policy_files_say_what_to_fix(tmp_path: Path) -> None:
    f = tmp_path / "policy.json"
    with pytest.raises(ConfigError, match="cannot read the policy file"):
        load_policy(f)
    f.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_policy(f)
    f.write_text(json.dumps({"licenceBlock": ["MIT"]}))  # misspelt: an error, not ignored
    with pytest.raises(ConfigError, match=r"licenceBlock.*licenseBlock"):
        load_policy(f)
    f.write_text(json.dumps({"unknownLicense": "sometimes"}))
    with pytest.raises(ConfigError, match="unknownLicense"):
        load_policy(f)
