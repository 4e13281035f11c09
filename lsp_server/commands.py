"""`workspace/executeCommand`: accepting a suggestion, searching the corpus, status, and the
commands behind the code actions."""

from __future__ import annotations

import logging
import statistics
from typing import Any

from lsprotocol import types

from membership import Match

from .documents import STATS, path_hint
from .highlights import Highlight, match_data
from .inline import ACCEPT_COMMAND
from .state import VERSION, StacklensServer

log = logging.getLogger(__name__)
SEARCH_COMMAND = "stacklens.searchSelection"
STATUS_COMMAND = "stacklens.status"
OPEN_SOURCE_COMMAND = "stacklens.openSource"
IGNORE_COMMAND = "stacklens.ignoreMatch"
ALLOW_REPO_COMMAND = "stacklens.allowRepository"


def _arg(args: tuple[Any, ...]) -> dict[str, Any]:
    """Commands take one JSON object argument (pygls spreads ``arguments`` over the handler)."""
    return args[0] if args and isinstance(args[0], dict) else {}


def highlight_inserted(
    ls: StacklensServer,
    uri: str,
    start: int,
    text: str,
    context_chars: int,
    matches: list[Match],
    retry: bool = True,
) -> Highlight | None:
    """Highlight the part of freshly inserted ``text`` (at offset ``start``) that the matches
    cover; their query spans count from ``context_chars`` before ``start``."""
    snap = ls.snapshot(uri)
    if snap is None or not matches or not text:
        return None
    doc = snap[0]
    if doc.text[start : start + len(text)] != text:
        # The client may report the position before a line was re-indented: look nearby.
        found = doc.text.find(text, max(0, start - 200))
        if found < 0:
            if retry:
                # Some clients run the item's command before they send the edit: try again on
                # the document's next change.
                ls.pending_accepts[uri] = (start, text, context_chars, matches)
                log.info("accepted text not in %s yet; will highlight after the edit", uri)
            else:
                log.info("accepted text not found in %s; no highlight", uri)
            return None
        start = found
    base = start - context_chars
    lo = max(start, min(base + m.query_span.start_char for m in matches))
    hi = min(start + len(text), max(base + m.query_span.end_char for m in matches))
    if hi <= lo:
        lo, hi = start, start + len(text)
    blocked = any(ls.policy.license_action(m.source.license) == "block" for m in matches)
    h = Highlight(lo, hi, doc.text[lo:hi], matches, "accepted", blocked)
    ls.highlights.add(uri, h)
    ls.publish(uri)
    return h


def audit_accept(
    ls: StacklensServer, uri: str, start: int, text: str, matches: list[Match], request_id: str | None
) -> None:
    """The audit-log row of an accepted suggestion with matches (``start``: its document offset)."""
    if not ls.audit.enabled or not matches:
        return
    snap = ls.snapshot(uri)
    rng = None
    if snap is not None:
        doc = snap[0]
        end = start + len(text) if doc.text[start : start + len(text)] == text else start
        rng = doc.range_of(min(start, len(doc.text)), min(end, len(doc.text)))
    ls.audit.record("accepted", uri=uri, range=rng, matches=matches, code=text, request_id=request_id)


def _p50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def status(ls: StacklensServer, timings: bool = False) -> dict[str, Any]:
    """What the server runs with; ``timings`` adds the per-request timings of recent requests."""
    cfg = ls.config
    recent = list(ls.timings)
    out = {
        "version": VERSION,
        "membership": ls.gate.describe(),
        "policy": cfg.membership.policy,
        "debounceMs": cfg.debounce_ms,
        "maxCandidates": cfg.max_candidates,
        "licenseBlock": cfg.membership.license_block,
        "checks": ls.gate.checks,
        "completion": ls.engines.status(),
        "completionsServed": ls.completions_served,
        "openDocuments": len(ls.workspace.text_documents),
        # Large documents must be edited without re-splitting them (see documents.STATS).
        "documentLines": {"fullSplits": STATS["full_splits"], "incrementalEdits": STATS["incremental_edits"]},
        "allowlist": str(ls.allowlist.file) if ls.allowlist.file else None,
        "allowedRepositories": sorted(ls.allowlist.repos),
        "p50Ms": {k: _p50([t[k] for t in recent]) for k in ("engine", "check", "total")},
    }
    if timings:
        out["timingsMs"] = recent
    return out


def register(ls: StacklensServer) -> None:
    @ls.command(ACCEPT_COMMAND)
    def accept(ls: StacklensServer, *args: Any) -> dict[str, Any]:
        """Arguments: ``{"requestId", "index"}`` of a shown item. The matches, offsets and text
        are the server's record of what it showed, not what the client sends back."""
        arg = _arg(args)
        entry = ls.results.get(str(arg.get("requestId", "")))
        index = arg.get("index")
        out = entry["outcome"] if entry else None
        if out is None or type(index) is not int or not 0 <= index < len(out.candidates):
            log.info("stacklens.accept for a request this server did not show: no highlight")
            return {"highlighted": False}
        c = out.candidates[index]
        ls.engines.accept(out.uri, c.text)
        if not c.matches:
            return {"highlighted": False}
        audit_accept(ls, out.uri, out.offset, c.text, c.matches, out.request_id)
        h = highlight_inserted(ls, out.uri, out.offset, c.text, out.context_chars, c.matches)
        return {"highlighted": h is not None}

    @ls.command(SEARCH_COMMAND)
    async def search(ls: StacklensServer, *args: Any) -> dict[str, Any]:
        """Arguments: ``{"text"}``, or ``{"uri", "range"}`` for the editor's selection; ``quiet``
        when the client shows the result itself (no ``window/showMessage``)."""
        arg = _arg(args)
        quiet = bool(arg.get("quiet"))
        text = arg.get("text")
        uri = arg.get("uri")
        lang = None
        if text is None and uri:
            snap = ls.snapshot(str(uri))
            if snap is None:
                return {"matches": [], "error": f"unknown document {uri}"}
            doc, lang = snap
            rng = arg.get("range")
            if rng:
                r = types.Range(start=types.Position(**rng["start"]), end=types.Position(**rng["end"]))
                text = doc.text[doc.offset_at(r.start) : doc.offset_at(r.end)]
            else:
                text = doc.text
        if not text or not str(text).strip():
            return {"matches": [], "error": "nothing selected"}
        try:
            found = await ls.gate.check(str(text), lang, path_hint(str(uri)) if uri else None)
        except Exception as exc:
            if quiet:
                log.warning("search failed: %s", exc)  # the client reports the returned error
            else:
                ls.show_error(f"stacklens: search failed: {exc}")
            return {"matches": [], "error": str(exc)}
        if not quiet:
            message = f"{len(found)} match(es) in the corpus" + (
                f"; best: {found[0].describe()}" if found else ""
            )
            ls.show(message, types.MessageType.Info)
        return {"matches": match_data(found), "query": text}

    @ls.command(STATUS_COMMAND)
    def show_status(ls: StacklensServer, *args: Any) -> dict[str, Any]:
        st = status(ls, timings=bool(_arg(args).get("timings")))
        if _arg(args).get("quiet"):
            return st  # polled by the VS Code extension's status bar: no message each time
        engine = (st["completion"]["configured"] or {}).get("engine", "none")
        ls.show(
            f"stacklens {VERSION}: {st['membership']}, policy {st['policy']}, engine {engine}",
            types.MessageType.Info,
        )
        return st

    @ls.command(OPEN_SOURCE_COMMAND)
    async def open_source(ls: StacklensServer, *args: Any) -> bool:
        url = _arg(args).get("url") or ""
        caps = ls.client_capabilities.window
        if not url:
            return False
        if caps and caps.show_document and caps.show_document.support:
            result = await ls.window_show_document_async(types.ShowDocumentParams(uri=url, external=True))
            return bool(result.success)
        ls.show(f"source: {url}", types.MessageType.Info)
        return False

    @ls.command(IGNORE_COMMAND)
    def ignore(ls: StacklensServer, *args: Any) -> bool:
        arg = _arg(args)
        uri = str(arg.get("uri", ""))
        hid = int(arg.get("id", 0))
        for h in ls.highlights.get(uri):
            if h.id == hid:
                for m in h.matches:
                    ls.allowlist.ignore(path_hint(uri) or uri, m)
                ls.highlights.remove(uri, hid)
                ls.publish(uri)
                return True
        return False

    @ls.command(ALLOW_REPO_COMMAND)
    def allow_repo(ls: StacklensServer, *args: Any) -> bool:
        repo = str(_arg(args).get("repo") or "")
        if not repo:
            return False
        ls.allowlist.allow_repo(repo)
        for uri in list(ls.workspace.text_documents):
            changed = False
            for h in list(ls.highlights.get(uri)):
                h.matches = [m for m in h.matches if m.source.repo != repo]
                if not h.matches:
                    ls.highlights.remove(uri, h.id)
                changed = True
            if changed:
                ls.publish(uri)
        return True
