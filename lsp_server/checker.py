"""The membership check as the server uses it: an in-process index or the HTTP service, run off
the event loop so the server keeps answering while the CPU works."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace

from membership import Match, QuerySettings, QuerySpan
from membership.checker import Checker, Snippet
from membership.client import RemoteChecker
from membership.evidence import Evidence, SourceText, source_text
from membership.open import CheckerSettings, open_checker
from membership.windows import line_windows
from stacklens.errors import StacklensError

from .config import MembershipConfig

log = logging.getLogger(__name__)


@dataclass
class Region:
    """Matches found over ``[start, end)`` of a checked document (str offsets)."""

    start: int
    end: int
    matches: list[Match] = field(default_factory=list)


def checker_settings(cfg: MembershipConfig) -> CheckerSettings:
    """Where the language server's membership settings say to check, for `open_checker`. Each
    layer may name a place (an index in the environment, a service in the editor): the service
    wins, then Elasticsearch, then the embedded index."""
    url = cfg.url or None
    es_url = None if url else cfg.es_url or None
    index = None if url or es_url else cfg.index or None
    return CheckerSettings(
        index=index, url=url, es_url=es_url, es_index=cfg.es_index, token=cfg.token,
        timeout_s=cfg.timeout_s, query=QuerySettings.model_validate({"min_chars": cfg.min_chars}),
    )  # fmt: skip


def relocate(m: Match, text: str, start: int, end: int) -> Match:
    """``m`` with its query span expressed in the whole document instead of one chunk."""
    first = text.count("\n", 0, start) + 1
    last = first + text.count("\n", start, max(start, end - 1))
    span = QuerySpan(start_line=first, end_line=last, start_char=start, end_char=end)
    return m.model_copy(update={"query_span": span})


def group(found: list[tuple[int, int, Match]]) -> list[Region]:
    """Overlapping spans become one region; duplicate sources from overlapping chunks collapse."""
    regions: list[Region] = []
    for s, e, m in sorted(found, key=lambda t: (t[0], -t[1])):
        if regions and s < regions[-1].end:
            r = regions[-1]
            r.end = max(r.end, e)
            same = [x for x in r.matches if x.source == m.source]
            if same:
                if m.matched_chars > same[0].matched_chars:
                    r.matches[r.matches.index(same[0])] = m
                continue
            r.matches.append(m)
        else:
            regions.append(Region(s, e, [m]))
    for r in regions:
        r.matches.sort(key=lambda x: (-x.score, -x.matched_chars))
    return regions


class MembershipGate:
    """Opens the configured checker on first use and serialises access to it."""

    def __init__(self, cfg: MembershipConfig) -> None:
        self.cfg = cfg
        self._checker: Checker | None = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stacklens-check")
        self.checks = 0

    @property
    def configured(self) -> bool:
        return bool(self.cfg.index or self.cfg.url or self.cfg.es_url) and self.cfg.policy != "off"

    def describe(self) -> str:
        if self.cfg.url:
            return f"membership service {self.cfg.url}"
        if self.cfg.es_url:
            return f"Elasticsearch store {self.cfg.es_index} at {self.cfg.es_url}"
        if self.cfg.index:
            return f"index {self.cfg.index}"
        return "no membership index"

    def check_sync(self, text: str, lang: str | None, path: str | None, focus_start: int = 0) -> list[Match]:
        """Blocking check; raises `StacklensError` when the index or service is unusable."""
        return self._checked([text], lang, path, focus_start)[0]

    def _checked(
        self, texts: list[str], lang: str | None, path: str | None, focus_start: int
    ) -> list[list[Match]]:
        with self._lock:
            if self._checker is None:
                self._checker = open_checker(checker_settings(self.cfg))
            checker = self._checker
            self.checks += len(texts)
            try:
                # In process, the context before focus_start cannot fill the chaining budget; over
                # HTTP, the batch is one request.
                if len(texts) == 1:
                    return [checker.check(texts[0], lang, path, focus_start=focus_start)]
                snippets: list[Snippet] = [{"text": t, "lang": lang, "path": path} for t in texts]
                return checker.check_many(snippets, focus_start=focus_start)
            except StacklensError:
                raise
            except Exception as exc:  # a broken index must cost a message, not the server
                raise StacklensError(f"membership check failed: {exc}") from exc

    async def check(self, text: str, lang: str | None = None, path: str | None = None) -> list[Match]:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, self.check_sync, text, lang, path)
        return await asyncio.wait_for(fut, self.cfg.timeout_s)

    async def check_many(
        self, texts: list[str], lang: str | None = None, path: str | None = None, focus_start: int = 0
    ) -> list[list[Match]]:
        """``check`` of each text in one trip to the worker thread (a completion's candidates):
        each hand-off costs the event loop a wake-up and the GIL a switch. Text before
        ``focus_start`` is context (see `Matcher.check`)."""
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, self._checked, texts, lang, path, focus_start)
        return await asyncio.wait_for(fut, self.cfg.timeout_s)

    async def scan(self, text: str, lang: str | None, path: str | None) -> list[Region]:
        """Whole-document check, chunk by chunk; cancelling the task stops between chunks."""
        started = time.perf_counter()
        limit = min(len(text), self.cfg.max_document_chars)
        if limit < len(text):
            log.info("document %s: checking the first %d of %d chars", path, limit, len(text))
        found: list[tuple[int, int, Match]] = []
        windows = line_windows(text[:limit], self.cfg.chunk_chars, min(1000, self.cfg.chunk_chars // 4))
        for start, end in windows:
            for m in await self.check(text[start:end], lang, path):
                s = start + m.query_span.start_char
                e = start + m.query_span.end_char
                found.append((s, e, relocate(m, text, s, e)))
        regions = group(found)
        log.info(
            "scan %s: %d chunks, %d regions, %.0f ms",
            path, len(windows), len(regions), (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        return regions

    def remote_evidence(self, text: str, m: Match, lang: str | None, path: str | None) -> Evidence | str:
        """``m``'s evidence from the membership service (``POST /v1/evidence`` on ``text``, the
        lines it covers), or why there is none."""
        with self._lock:
            if self._checker is None:
                self._checker = open_checker(checker_settings(self.cfg))
            checker = self._checker
        if not isinstance(checker, RemoteChecker):
            return "not a membership service"
        found = checker.evidence(text, lang, path)
        same = [data for x, data in found if m.source.sha and x.source.sha == m.source.sha]
        same = same or [
            data for x, data in found if (x.source.repo, x.source.path) == (m.source.repo, m.source.path)
        ]
        if not same:
            return "the membership service no longer finds this match in these lines"
        return Evidence.from_json(same[0])

    def source_text(self, m: Match) -> SourceText:
        """The text of ``m``'s source document, for its evidence (`membership.evidence`)."""
        if self.cfg.url:
            return SourceText(None, reason="the membership service sends evidence, not source text")
        store = getattr(self._checker, "store", None)
        if store is None and self.cfg.index:  # no check ran yet: the packs are found by path
            store = SimpleNamespace(path=self.cfg.index)
        return source_text(store, m)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        checker, self._checker = self._checker, None
        if checker is not None:
            try:
                checker.close()
            except Exception:  # closing is best effort at shutdown
                log.debug("closing the index failed", exc_info=True)
