"""Building the prompt context: prefix/suffix under a token budget plus cross-file snippets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from completion.crossfile import SnippetIndex, as_comment_block, comment_mark
from completion.mode import CursorLine, Mode, cursor_line, decide_mode
from completion.settings import BudgetSettings
from completion.templates import FimTemplate, SourceFile
from completion.tokens import TokenCounter
from completion.types import CompletionRequest

_TEMPLATE_OVERHEAD_TOKENS = 16  # sentinels, path lines, slack for BPE merges at the seams
# A cut prefix starts on a line number that is a multiple of this (counted from the top of the
# file), and a cut suffix ends on one counted from the bottom. Without it the cut moves with
# every line typed, and the KV cache keeps nothing of the prompt after a moved start.
CUT_GRID_LINES = 8


@dataclass(frozen=True)
class PromptContext:
    """Everything a backend may need; text is LF-normalised (``crlf`` says to restore)."""

    prompt: str  # rendered with the template: for backends fed raw prompts
    prefix: str  # in-file prefix kept under the budget
    suffix: str  # in-file suffix kept under the budget ("" stays "")
    commented_prefix: str  # prefix with cross-file snippets as comment blocks
    files: tuple[SourceFile, ...]  # cross-file snippets, for repo-level formats and /infill
    path: str
    mode: Mode
    line: CursorLine
    crlf: bool


def uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme in ("file", ""):
        return unquote(parsed.path) or uri
    return unquote(parsed.path or parsed.netloc or uri)


def relative_paths(uris: Sequence[str]) -> dict[str, str]:
    """Paths relative to the open documents' common folder (what repo-level formats expect)."""
    paths = {u: uri_to_path(u) for u in uris}
    dirs = [os.path.dirname(p) for p in paths.values() if os.path.isabs(p)]
    try:
        root = os.path.commonpath(dirs) if dirs else ""
    except ValueError:
        root = ""
    out = {}
    for uri, p in paths.items():
        rel = os.path.relpath(p, root) if root and os.path.isabs(p) else os.path.basename(p)
        out[uri] = rel.replace(os.sep, "/")
    return out


class ContextBuilder:
    """Prompts under ``budget`` (an engine passes its `CompletionSettings`, which are one).
    ``cut_grid_lines``: 1 cuts at the first whole line (no grid), for comparisons."""

    def __init__(
        self,
        template: FimTemplate,
        counter: TokenCounter,
        budget: BudgetSettings,
        cut_grid_lines: int = CUT_GRID_LINES,
    ) -> None:
        self.template = template
        self.counter = counter
        self.config = budget
        self.cut_grid_lines = cut_grid_lines
        self.window_lines = budget.crossfile_window_lines
        self.snippets = SnippetIndex(self.window_lines)
        self._cuts: dict[tuple[str, int], tuple[str, int]] = {}

    def mode_for(self, request: CompletionRequest) -> tuple[Mode, CursorLine]:
        text, offset = normalised(request)
        line = cursor_line(text, offset)
        mark = comment_mark(request.language_id)
        return decide_mode(
            line, explicit=request.explicit, setting=self.config.multiline, comment_mark=mark
        ), line

    def build(self, request: CompletionRequest, mode: Mode | None = None) -> PromptContext:
        text, offset = normalised(request)
        crlf = "\r\n" in request.text
        line = cursor_line(text, offset)
        if mode is None:
            mode = decide_mode(
                line,
                explicit=request.explicit,
                setting=self.config.multiline,
                comment_mark=comment_mark(request.language_id),
            )
        cfg, counter = self.config, self.counter
        full_prefix, full_suffix = text[:offset], text[offset:]
        paths = relative_paths([request.uri, *(d.uri for d in request.other_documents)])
        path = paths[request.uri]
        budget = cfg.context_window - cfg.max_new_tokens - _TEMPLATE_OVERHEAD_TOKENS
        budget -= len(path) // 3 + 2 if self.template.has_repo_format else 0
        budget = max(budget, 16)

        files, blocks, used = self._crossfile(request, full_prefix, full_suffix, paths, budget)
        budget -= used

        pre_budget = int(budget * cfg.prefix_ratio)
        suf_budget = budget - pre_budget
        # One tokenizer pass per side; the unused share of one side goes to the other.
        suffix, suf_used = counter.head_n(full_suffix, suf_budget)
        prefix, pre_used = counter.tail_n(full_prefix, budget - suf_used)
        if pre_used < budget - suf_used and len(suffix) < len(full_suffix):
            suffix, suf_used = counter.head_n(full_suffix, budget - pre_used)
        if len(prefix) < len(full_prefix) and "\n" in prefix:
            prefix = snap_prefix(full_prefix, prefix, self.cut_grid_lines)
        if len(suffix) < len(full_suffix) and "\n" in suffix:
            suffix = snap_suffix(full_suffix, suffix, self.cut_grid_lines)

        commented = "".join(blocks) + prefix
        if self.template.has_repo_format:
            prompt = self.template.render(prefix, suffix, files, path, cfg.repo_name)
        else:
            prompt = self.template.render(commented, suffix)
        return PromptContext(prompt, prefix, suffix, commented, files, path, mode, line, crlf)

    def _cut(self, text: str, max_tokens: int) -> tuple[str, int]:
        """Snippet windows repeat across keystrokes: remember their cuts."""
        key = (text, max_tokens)
        hit = self._cuts.get(key)
        if hit is None:
            hit = self.counter.head_n(text, max_tokens)
            if len(self._cuts) > 512:
                self._cuts.clear()
            self._cuts[key] = hit
        return hit

    def _crossfile(
        self,
        request: CompletionRequest,
        prefix: str,
        suffix: str,
        paths: dict[str, str],
        budget: int,
    ) -> tuple[tuple[SourceFile, ...], list[str], int]:
        cfg = self.config
        if not request.other_documents or cfg.crossfile_max_snippets <= 0:
            return (), [], 0
        lines = self.window_lines
        around = "\n".join(prefix.rsplit("\n", lines)[-lines:]) + suffix[:400]
        ranked = self.snippets.rank(
            around, request.other_documents, cfg.crossfile_max_snippets, exclude_uri=request.uri
        )
        remaining = min(cfg.crossfile_max_tokens, budget * 2 // 5)
        files: list[SourceFile] = []
        blocks: list[str] = []
        used = 0
        for snip in ranked:
            if remaining < 16:
                break
            spath = paths.get(snip.uri, snip.uri)
            path_cost = len(spath) // 3 + 2
            # A fixed cap per snippet keeps cuts cacheable across keystrokes.
            cap = max(64, cfg.crossfile_max_tokens // 2) - path_cost
            body, n = self._cut(snip.text, cap)
            lines = body.count("\n") + 1
            extra = 0 if self.template.has_repo_format else 2 * lines  # a comment mark per line
            if n + path_cost + extra > remaining:
                body, n = self.counter.head_n(body, (remaining - path_cost) * 2 // 3)
                extra = 0 if self.template.has_repo_format else 2 * (body.count("\n") + 1)
            cost = n + path_cost + extra
            if not body.strip() or cost > remaining:
                continue
            if not self.template.has_repo_format:
                blocks.append(as_comment_block(spath, body, request.language_id))
            # Backends that take snippets separately (llama.cpp /infill, our server) get them too.
            files.append(SourceFile(spath, body))
            remaining -= cost
            used += cost
        # Most relevant closest to the cursor: it is read last.
        return tuple(reversed(files)), list(reversed(blocks)), used


def snap_prefix(full: str, kept: str, grid: int) -> str:
    """``kept`` (a tail of ``full`` holding a newline) cut to start on a whole line whose number
    is a multiple of ``grid``. The grid halves until that drops at most an eighth of it."""
    first = full.index("\n", len(full) - len(kept)) + 1  # the first whole line
    line = full.count("\n", 0, first)
    while grid > 1:
        snapped = first
        for _ in range(-line % grid):
            snapped = full.find("\n", snapped) + 1
            if snapped == 0 or (snapped - first) * 8 > len(full) - first:
                break
        else:
            return full[snapped:]
        grid //= 2
    return full[first:]


def snap_suffix(full: str, kept: str, grid: int) -> str:
    """``kept`` (a head of ``full`` holding a newline) cut to end on a whole line, so that the
    lines below the cut are a multiple of ``grid`` (halved as in ``snap_prefix``)."""
    end = kept.rindex("\n") + 1
    below = full.count("\n", end) + (not full.endswith("\n"))
    while grid > 1:
        snapped = end
        for _ in range(-below % grid):
            snapped = full.rfind("\n", 0, snapped - 1) + 1
            if snapped == 0 or (end - snapped) * 8 > end:
                break
        else:
            return full[:snapped]
        grid //= 2
    return full[:end]


def normalised(request: CompletionRequest) -> tuple[str, int]:
    text, offset = request.text, max(0, min(request.offset, len(request.text)))
    if "\r\n" in text:
        before = text[:offset]
        offset -= before.count("\r\n")
        text = text.replace("\r\n", "\n")
    return text, offset
