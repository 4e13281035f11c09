"""The language server's side of the match policy: the decision itself lives in
`membership.policy` (shared with ``code-search scan``); here it is bound to the server's
``membership`` settings and the workspace's allow-list."""

from __future__ import annotations

from membership.allowlist import ALLOWLIST_FILE, Allowlist, source_key
from membership.policy import Decision, MatchPolicy

from .config import MembershipConfig

__all__ = ["ALLOWLIST_FILE", "Allowlist", "Decision", "Policy", "source_key"]


class Policy(MatchPolicy):
    """`MatchPolicy` over the server's settings (`MembershipConfig` carries the policy keys)."""

    def __init__(self, cfg: MembershipConfig, allowlist: Allowlist) -> None:
        super().__init__(cfg, allowlist)
        self.cfg = cfg
