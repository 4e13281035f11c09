"""llm-ls compatibility: `llm-ls/getCompletions`, `acceptCompletion`, `rejectCompletion` with
llm-ls's shapes (camelCase params, snake_case result), so llm-vscode, llm.nvim and llm-intellij
can use this server unchanged. Config rides on every request, as in llm-ls."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from completion.settings import BACKENDS

from .commands import audit_accept, highlight_inserted
from .engines import client_settings
from .inline import generate
from .state import StacklensServer

log = logging.getLogger(__name__)
GET_COMPLETIONS = "llm-ls/getCompletions"
ACCEPT = "llm-ls/acceptCompletion"
REJECT = "llm-ls/rejectCompletion"
MAX_UINT = 2**31 - 1  # LSP's uinteger
_BACKENDS = {name for name, b in BACKENDS.items() if b.llm_ls}
_PARAMS = {"max_new_tokens": "max_new_tokens", "temperature": "temperature", "top_p": "top_p",
           "stop": "stop", "num_predict": "max_new_tokens", "n_predict": "max_new_tokens",
           "max_tokens": "max_new_tokens"}  # fmt: skip


def settings_from(params: dict[str, Any]) -> dict[str, Any] | None:
    """Completion settings from an llm-ls request, or None if it names no usable backend."""
    backend = str(params.get("backend") or "").lower().replace(".", "").replace("-", "")
    backend = {"llamacpp": "llamacpp", "hf": "huggingface"}.get(backend, backend)
    if backend not in _BACKENDS:
        return None
    out: dict[str, Any] = {"backend": backend}
    if params.get("model"):
        out["model"] = str(params["model"])
    if params.get("url"):
        out["url"] = str(params["url"])
    if params.get("apiToken"):
        out["api_token"] = str(params["apiToken"])
    if isinstance(params.get("contextWindow"), int) and params["contextWindow"] >= 64:
        out["context_window"] = params["contextWindow"]
    fim = params.get("fim") or {}
    if isinstance(fim, dict) and fim.get("enabled") and fim.get("prefix") and fim.get("middle"):
        out["template"] = {
            "fim_prefix": fim["prefix"],
            "fim_suffix": fim.get("suffix") or "",
            "fim_middle": fim["middle"],
            "stop": [t for t in params.get("tokensToClear") or [] if isinstance(t, str)],
        }
    tok = params.get("tokenizerConfig")
    if isinstance(tok, dict) and (tok.get("path") or tok.get("repository")):
        out["tokenizer"] = tok.get("path") or tok.get("repository")
    body = params.get("requestBody") or {}
    for group in ("parameters", "options"):
        inner = body.get(group) if isinstance(body, dict) else None
        for key, value in inner.items() if isinstance(inner, dict) else ():
            if key in _PARAMS and value is not None:
                out[_PARAMS[key]] = value
    return out


def use_client_backend(ls: StacklensServer, params: dict[str, Any]) -> bool:
    mode = ls.config.llm_ls_client_backend
    if mode != "auto":
        return mode == "always"
    # llm-vscode sends its defaults (huggingface, bigcode/starcoder, no url) on every request:
    # they only mean something when no backend is configured on this side.
    return bool(params.get("url")) or ls.engines.configured is None


def _uint(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UINT:
        raise JsonRpcInvalidParams(f"{name} must be an integer from 0 to 2^31-1, not {value!r:.40}")
    return value


def _dict(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise JsonRpcInvalidParams(f"params must be an object, not {type(params).__name__}")
    return params


def _position(p: dict[str, Any]) -> tuple[str, types.Position]:
    """The request's document and position, as llm-ls (serde) would accept them."""
    doc = p.get("textDocument")
    if not isinstance(doc, dict) or not isinstance(doc.get("uri"), str):
        raise JsonRpcInvalidParams("textDocument must be {uri: string}")
    pos = p.get("position")
    if not isinstance(pos, dict):
        raise JsonRpcInvalidParams("position must be {line, character}")
    line = _uint(pos.get("line"), "position.line")
    return doc["uri"], types.Position(line=line, character=_uint(pos.get("character"), "position.character"))


def register(ls: StacklensServer) -> None:
    @ls.feature(GET_COMPLETIONS)
    async def get_completions(ls: StacklensServer, params: Any) -> dict[str, Any]:
        p = _dict(params)
        uri, position = _position(p)
        settings = None
        if use_client_backend(ls, p):
            request = settings_from(p)
            settings = client_settings(ls.config.completion, request) if request else None
        clear = p.get("tokensToClear")
        strip = tuple(t for t in clear if isinstance(t, str) and t) if isinstance(clear, list) else ()
        # The client debounces already (llm.requestDelay); a manual trigger is explicit.
        out = await generate(
            ls, uri, position, explicit=True, settings=settings, strip=strip, client="llm-ls"
        )
        if out is None:
            return {"request_id": "", "completions": []}
        ls.remember(out.request_id, {"outcome": out})
        return {
            "request_id": out.request_id,
            "completions": [{"generated_text": c.text} for c in out.candidates],
        }

    @ls.feature(ACCEPT)
    def accept(ls: StacklensServer, params: Any) -> None:
        p = _dict(params)
        index = _uint(p.get("acceptedCompletion", 0), "acceptedCompletion")
        entry = ls.results.pop(str(p.get("requestId", "")), None)
        if entry is None:
            log.info("acceptCompletion for an unknown request %s", p.get("requestId"))
            return None
        out = entry["outcome"]
        if not 0 <= index < len(out.candidates):
            return None
        c = out.candidates[index]
        ls.engines.accept(out.uri, c.text)
        log.info("[%s] accepted completion %d", out.request_id, index)
        if c.matches:
            audit_accept(ls, out.uri, out.offset, c.text, c.matches, out.request_id)
            highlight_inserted(ls, out.uri, out.offset, c.text, out.context_chars, c.matches)
        return None

    @ls.feature(REJECT)
    def reject(ls: StacklensServer, params: Any) -> None:
        p = _dict(params)
        ls.results.pop(str(p.get("requestId", "")), None)
        log.info("[%s] completions rejected", p.get("requestId"))
        return None
