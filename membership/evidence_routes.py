"""``POST /v1/evidence``: check one text and return each match with its side-by-side evidence
(the stack search page's one call; any client may use it). Same token, size and time limits as
``/v1/check``."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from .api import ErrorBody, Text
from .evidence import Evidence, evidence, for_match
from .match import Match
from .policy import Decision, MatchPolicy
from .routes import ServiceState

TIMED_OUT = "not aligned: the request reached its {:g} s limit; search for this match alone"
evidence_api = APIRouter(responses={code: {"model": ErrorBody} for code in (400, 401, 408, 413, 422)})


class EvidenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="code to look for")
    lang: Text | None = Field(None, description="language id (default: from path, else guessed)")
    path: Text | None = Field(None, description="file name, used to tell the language")


class MarkBody(BaseModel):
    start: int = Field(description="first column (0-based) of the line's text that differs")
    end: int = Field(description="one past the last column")
    kind: Literal["renamed", "changed"]


class SideBody(BaseModel):
    line: int
    text: str
    marks: list[MarkBody]


class RowBody(BaseModel):
    status: Literal["same", "renamed", "changed", "query-only", "source-only"]
    query: SideBody | None
    source: SideBody | None


class EvidenceBody(BaseModel):
    rows: list[RowBody]
    renames: dict[str, str] = Field(description="source identifier -> the query's spelling")
    origin: str | None = Field(description="where the source text came from: index or file")
    reason: str | None = Field(description="why the source side is missing, when it is")
    truncated: bool


class EvidenceResult(BaseModel):
    match: Match
    evidence: EvidenceBody
    decision: Decision = Field(description="the service's policy on this match (serve --policy)")


class EvidenceResponse(BaseModel):
    results: list[EvidenceResult] = Field(description="the matches, best first, each with its evidence")


def _body(ev: Evidence) -> EvidenceBody:
    return EvidenceBody.model_validate(ev.to_json())


@evidence_api.post(
    "/v1/evidence", response_model=EvidenceResponse, summary="Matches with side-by-side evidence"
)
def check_with_evidence(body: EvidenceRequest, request: Request) -> EvidenceResponse:
    state: ServiceState = request.app.state.service
    policy: MatchPolicy = request.app.state.policy
    limits = state.limits
    if len(body.text) > limits.max_snippet_chars:
        raise HTTPException(
            413, f"the text has {len(body.text):,} characters; the limit is {limits.max_snippet_chars:,}"
        )
    if not body.text.strip():
        return EvidenceResponse(results=[])
    deadline = time.monotonic() + limits.max_request_seconds
    matches = state.checker.check(body.text, lang=body.lang, path=body.path)
    results = []
    for m in matches:
        if time.monotonic() <= deadline:
            ev = evidence(state.store, m, body.text)
        else:  # every match is still listed; the rest of the evidence would overrun the limit
            ev = for_match(m, body.text, None, reason=TIMED_OUT.format(limits.max_request_seconds))
        results.append(EvidenceResult(match=m, evidence=_body(ev), decision=policy.decide(m, body.path)))
    return EvidenceResponse(results=results)
