"""The settings a run uses, from the same places as the language server's: ``STACKLENS_CONFIG``
and the ``STACKLENS_*`` variables (lsp_server.config's layers), then the command's flags. The
completion settings are validated by the engine's own model (completion.settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stacklens.errors import ConfigError, InputError

from .memorise import MembershipOptions

# Completion settings never shown in a report or run.json.
_SECRET = {"api_token"}


def _layers() -> Any:
    from lsp_server.config import ConfigLayers

    layers = ConfigLayers()
    if layers.env_error:
        raise ConfigError(layers.env_error)
    return layers.current


def completion_settings(
    *, backend: str | None, model: str | None, url: str | None, temperature: float | None, benchmark: str
) -> dict[str, Any]:
    """The completion settings of the main setting, validated; raises `ConfigError`."""
    from completion.settings import load_settings

    merged: dict[str, Any] = dict(_layers().completion or {})
    merged.update({k: v for k, v in {"backend": backend, "model": model, "url": url}.items() if v})
    if temperature is not None:
        merged["temperature"] = temperature
    # Every sample asks the model: a cached answer would make k samples one, and its latency zero.
    merged["cache_size"] = 0
    if benchmark == "single-line":
        merged.setdefault("multiline", "never")  # one line is the answer; stop the model there
    if not merged.get("backend") and not merged.get("model") and not merged.get("url"):
        raise ConfigError(
            "no completion backend: give --backend/--model/--url (or STACKLENS_CONFIG), "
            "or --oracle to check the harness itself"
        )
    load_settings(merged)  # one readable ConfigError now, not a failure per task later
    return merged


def compare_settings(base: dict[str, Any], path: str) -> dict[str, Any]:
    """``base`` with the settings of a ``--compare`` file over it: a flat completion-settings
    object or ``{"completion": {...}}``, camelCase or snake_case keys."""
    from completion.settings import load_settings
    from lsp_server.config import normalise

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read --compare {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--compare {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"--compare {path}: expected a JSON object of completion settings")
    data = normalise(data.get("completion", data))
    if not isinstance(data, dict):
        raise InputError(f"--compare {path}: `completion` must be an object")
    merged = {**base, **data, "cache_size": 0}
    try:
        load_settings(merged)
    except ConfigError as exc:
        raise ConfigError(f"--compare {path}: {exc}") from None
    return merged


def shown(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as a report may show them (no tokens)."""
    return {k: v for k, v in sorted(settings.items()) if k not in _SECRET}


def membership_options(
    *, index: str | None, url: str | None, token: str | None, min_chars: int | None
) -> MembershipOptions | None:
    """Where the memorisation check looks, or None when nowhere is configured."""
    env = _layers().membership
    values: dict[str, Any] = {
        "index": index or (None if url else env.index),
        "url": url or (None if index else env.url),
        "token": token or env.token,
        "min_chars": min_chars if min_chars is not None else env.min_chars,
        "context_chars": env.context_chars,
    }
    opts = MembershipOptions.model_validate(values)
    return opts if opts.configured else None
