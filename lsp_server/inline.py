"""Inline completions: debounce, ask the engine, check every candidate against the corpus, apply
the policy. Shared by `textDocument/inlineCompletion` and `llm-ls/getCompletions`."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types

from completion.types import CompletionRequest
from membership import Match

from .audit import Event
from .documents import path_hint
from .engines import LLM_LS_ENV
from .highlights import match_data
from .state import StacklensServer

log = logging.getLogger(__name__)
ACCEPT_COMMAND = "stacklens.accept"
NO_INDEX_LSP = "set stacklens.membership.index or .url"
# llm-vscode has no stacklens.* settings: the index comes from the server's environment.
NO_INDEX_LLM_LS = (
    "set STACKLENS_INDEX=/abs/path/to/index or STACKLENS_MEMBERSHIP_URL=http://... " + LLM_LS_ENV
)


@dataclass
class Candidate:
    """A suggestion that passed the policy, with the matches to warn about."""

    text: str
    matches: list[Match] = field(default_factory=list)


@dataclass
class Outcome:
    request_id: str
    uri: str
    offset: int
    position: types.Position
    context_chars: int  # document chars before the cursor included in the membership check
    candidates: list[Candidate]


def _overlaps_candidate(m: Match, context_chars: int) -> bool:
    return m.query_span.end_char > context_chars


def _warn_unchecked(ls: StacklensServer, client: str) -> None:
    """Once, at the first request: without an index nothing is checked."""
    if not ls.gate.configured and ls.config.membership.policy != "off":
        ls.show_once(
            "stacklens: no membership index configured, suggestions are not checked "
            f"({NO_INDEX_LLM_LS if client == 'llm-ls' else NO_INDEX_LSP})",
            types.MessageType.Warning,
        )


async def _gate(
    ls: StacklensServer,
    texts: list[str],
    before: str,
    lang: str,
    path: str | None,
    blocked: list[tuple[str, list[Match]]] | None = None,
) -> list[Candidate] | None:
    """Candidates allowed by the policy; None when they could not be checked (fail closed).
    The candidates the policy blocks are added to ``blocked``, with their matches."""
    if not ls.gate.configured:
        return [Candidate(t) for t in texts]
    try:
        found_all = await ls.gate.check_many(
            [before + text for text in texts], lang, path, focus_start=len(before)
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        ls.membership_unavailable(exc)
        return None
    out: list[Candidate] = []
    for text, found in zip(texts, found_all, strict=True):
        matches = ls.policy.reportable([m for m in found if _overlaps_candidate(m, len(before))], path)
        action = ls.policy.action(matches)
        if action == "block":
            log.info("candidate blocked: %s", matches[0].describe())
            if blocked is not None:
                blocked.append((text, matches))
            continue
        out.append(Candidate(text, matches if action == "warn" else []))
    return out


async def generate(
    ls: StacklensServer,
    uri: str,
    position: types.Position,
    *,
    explicit: bool,
    settings: dict[str, Any] | None = None,
    strip: tuple[str, ...] = (),
    client: str = "lsp",
) -> Outcome | None:
    """Debounced, cancellable completion at ``position``; a newer call for ``uri`` cancels this
    one (`asyncio.CancelledError`). None when there is nothing to complete. ``client``
    "llm-ls": messages name the settings such a client can reach (its own and the environment)."""
    rid = uuid.uuid4().hex[:12]
    previous = ls.inflight.get(uri)
    if previous is not None and not previous.done():
        previous.cancel()
    me = asyncio.current_task()
    if me is not None:
        ls.inflight[uri] = me
    started = time.perf_counter()
    try:
        if not explicit and ls.config.debounce_ms:
            await asyncio.sleep(ls.config.debounce_ms / 1000)
        snap = ls.snapshot(uri)
        if snap is None:
            log.info("[%s] %s: unknown document, no completion", rid, uri)
            return None
        doc, lang = snap
        offset = doc.offset_at(position)
        request = CompletionRequest(
            uri=uri,
            text=doc.text,
            offset=offset,
            language_id=lang,
            other_documents=ls.other_documents(uri),
            explicit=explicit,
            max_candidates=ls.config.max_candidates,
            strip=strip,
        )
        _warn_unchecked(ls, client)
        t0 = time.perf_counter()
        completions = await ls.engines.complete(request, settings, client)
        t1 = time.perf_counter()
        texts: list[str] = []
        for c in completions:  # what is shown: each distinct non-blank suggestion once
            if c.text.strip() and c.text not in texts:
                texts.append(c.text)
        before = doc.text[max(0, offset - ls.config.membership.context_chars) : offset]
        blocked: list[tuple[str, list[Match]]] = []
        checked = await _gate(ls, texts, before, lang, path_hint(uri), blocked) if texts else []
        _audit(ls, uri, doc.position_at(offset), rid, checked or [], blocked)
        t2 = time.perf_counter()
        ls.completions_served += 1
        ms = {"engine": (t1 - t0) * 1000, "check": (t2 - t1) * 1000, "total": (t2 - started) * 1000}
        ls.timings.append(ms)
        log.info(
            "[%s] %s %d:%d: %d candidates, %d shown; engine %.1f ms, check %.1f ms, total %.1f ms",
            rid, uri, position.line, position.character, len(texts), len(checked or []),
            ms["engine"], ms["check"], ms["total"],
        )  # fmt: skip
        return Outcome(rid, uri, offset, doc.position_at(offset), len(before), checked or [])
    except asyncio.CancelledError:
        log.info("[%s] %s: cancelled after %.0f ms", rid, uri, (time.perf_counter() - started) * 1000)
        raise
    finally:
        if ls.inflight.get(uri) is me:
            ls.inflight.pop(uri, None)


def _audit(
    ls: StacklensServer,
    uri: str,
    at: types.Position,
    rid: str,
    shown: list[Candidate],
    blocked: list[tuple[str, list[Match]]],
) -> None:
    """Audit-log rows for the suggestions with a match: shown (with a warning) and blocked."""
    if not ls.audit.enabled:
        return
    here = types.Range(start=at, end=at)
    rows: list[tuple[Event, str, list[Match]]] = [("shown", c.text, c.matches) for c in shown]
    rows += [("blocked", text, matches) for text, matches in blocked]
    for event, text, matches in rows:
        ls.audit.record(event, uri=uri, range=here, matches=matches, code=text, request_id=rid)


def accept_arguments(out: Outcome, index: int) -> dict[str, Any]:
    """The arguments of candidate ``index``'s `stacklens.accept`: the request and the candidate,
    which the server looks up in what it showed; the rest informs the client (its matches)."""
    c = out.candidates[index]
    return {
        "index": index,
        "uri": out.uri,
        "text": c.text,
        "requestId": out.request_id,
        "matches": match_data(c.matches),
    }


def register(ls: StacklensServer) -> None:
    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: StacklensServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        explicit = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        out = await generate(ls, params.text_document.uri, params.position, explicit=explicit)
        if out is None:
            return types.InlineCompletionList(items=[])
        ls.remember(out.request_id, {"outcome": out})
        items = []
        for index, c in enumerate(out.candidates):
            title = "stacklens: accepted (found in the corpus)" if c.matches else "stacklens: accepted"
            items.append(
                types.InlineCompletionItem(
                    insert_text=c.text,
                    range=types.Range(start=out.position, end=out.position),
                    command=types.Command(
                        title=title, command=ACCEPT_COMMAND, arguments=[accept_arguments(out, index)]
                    ),
                )
            )
        return types.InlineCompletionList(items=items)
