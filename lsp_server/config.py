"""The server's typed settings and how the layers that set them are merged.

Layers, lowest first: built-in defaults, ``STACKLENS_*`` environment variables,
``initializationOptions``, then the editor's configuration section (``stacklens``), whether it was
pushed with ``workspace/didChangeConfiguration`` or pulled with ``workspace/configuration``. Keys
may be camelCase (editor settings) or snake_case.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from membership.policy import DEFAULT_LICENSE_BLOCK, Action, PolicySettings
from stacklens.errors import ConfigError

from .search_page import HttpUrlText

__all__ = ["DEFAULT_LICENSE_BLOCK", "Action", "ConfigError", "MembershipConfig", "ServerConfig"]
Severity = Literal["error", "warning", "information", "hint"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_default=True
    )


class MembershipConfig(PolicySettings, _Model):
    """Where matches come from and what happens to them (the policy keys: `PolicySettings`)."""

    index: str | None = Field(default=None, description="path of an embedded index")
    url: str | None = Field(default=None, description="membership HTTP service (instead of an index)")
    token: str | None = Field(default=None, description="bearer token for the membership service")
    es_url: str | None = Field(default=None, description="an Elasticsearch store (instead of an index)")
    es_index: str = Field(default="stacklens", min_length=1, description="store name in Elasticsearch")
    search_page_url: HttpUrlText = Field(
        default=None,
        description="a `code-search serve` page that opens sources without a URL (default: `url`)",
    )
    min_chars: int = Field(default=150, ge=20, description="minimum matched characters")
    context_chars: int = Field(
        default=300, ge=0, le=5000, description="document text checked before a suggestion"
    )
    background: bool = Field(default=True, description="check whole documents on open and save")
    background_debounce_ms: int = Field(default=750, ge=0, le=60_000)
    chunk_chars: int = Field(default=4000, ge=500, le=200_000)
    max_document_chars: int = Field(default=400_000, ge=1000)
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    audit_log: str | None = Field(
        default=None,
        description="JSONL file: one row per shown, blocked or accepted suggestion with a match (opt-in)",
    )
    audit_log_include_code: bool = Field(
        default=False, description="write the suggestion's text into the audit log too"
    )
    audit_log_max_bytes: int = Field(default=10_000_000, ge=10_000, description="rotate the log past this")
    audit_log_backups: int = Field(default=3, ge=0, le=100, description="rotated files kept (PATH.1 ...)")

    @field_validator("audit_log")
    @classmethod
    def _audit_log_file(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        path = Path(value.strip()).expanduser()
        if not path.is_absolute():
            # The server's working directory is not the workspace (the extension resolves paths).
            raise ValueError(
                f"{value!r} is relative; give an absolute path such as /var/log/stacklens/audit.jsonl"
            )
        if path.is_dir():
            raise ValueError(f"{path} is a directory; name a file in it, such as {path / 'audit.jsonl'}")
        return str(path)


def has_backend(settings: Mapping[str, Any] | None) -> bool:
    """Whether completion ``settings`` name an engine; without backend, model or url they only
    tune the engines llm-ls clients describe (an engine with no model could never start)."""
    return settings is not None and any(settings.get(k) for k in ("backend", "model", "url"))


class ServerConfig(_Model):
    """Everything the language server can be told."""

    completion: dict[str, Any] | None = Field(
        default=None,
        description="completion engine settings (backend, model, ...); None = no completions",
    )
    membership: MembershipConfig = Field(default_factory=lambda: MembershipConfig.model_validate({}))
    debounce_ms: int = Field(default=100, ge=0, le=10_000, description="wait before asking the model")
    max_candidates: int = Field(default=3, ge=1, le=10)
    completion_timeout_s: float = Field(default=30.0, gt=0, le=600)
    llm_ls_client_backend: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="use the backend an llm-ls client sends: auto = when it sends a url or "
        "no completion backend is configured here",
    )
    log_level: Literal["debug", "info", "warning", "error"] | None = Field(
        default=None, description="overrides --log-level when set"
    )
    # Editors that draw their own match highlights (the VS Code extension) ask for "hint", so the
    # editor's squiggle does not underline the same text a second time.
    diagnostic_severity: Severity = Field(default="warning", description="severity of match diagnostics")
    blocked_diagnostic_severity: Severity = Field(
        default="error", description="severity of matches whose licence the policy blocks"
    )

    @field_validator("completion")
    @classmethod
    def _engine_settings(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Checked here, where the editor's layer arrives (a bad value is refused with a message
        # and the previous settings stay), not when the engine starts. Kept as the mapping: the
        # engines merge it with what llm-ls clients send.
        if has_backend(value):
            from completion.settings import load_settings

            try:
                load_settings(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """Defaults from ``STACKLENS_*``: a JSON document in STACKLENS_CONFIG, then single keys."""
    layer: dict[str, Any] = {}
    raw = environ.get("STACKLENS_CONFIG")
    if raw:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"STACKLENS_CONFIG is not valid JSON: {exc}") from None
        if isinstance(parsed, dict):
            layer = parsed
    membership: dict[str, Any] = {}
    env_keys = {
        "STACKLENS_INDEX": "index",
        "STACKLENS_MEMBERSHIP_URL": "url",
        "STACKLENS_MEMBERSHIP_TOKEN": "token",
        "STACKLENS_MIN_CHARS": "min_chars",
        "STACKLENS_POLICY": "policy",
    }
    for env, key in env_keys.items():
        if environ.get(env):
            membership[key] = environ[env]
    for env, key in (
        ("STACKLENS_LICENSE_BLOCK", "license_block"),
        ("STACKLENS_LICENSE_ALLOW", "license_allow"),
    ):
        if env in environ:
            membership[key] = [p.strip() for p in environ[env].split(",") if p.strip()]
    completion: dict[str, Any] = {}
    for env, key in (
        ("STACKLENS_BACKEND", "backend"),
        ("STACKLENS_MODEL", "model"),
        ("STACKLENS_COMPLETION_URL", "url"),
    ):
        if environ.get(env):
            completion[key] = environ[env]
    if membership:
        layer = merge(layer, {"membership": membership})
    if completion:
        layer = merge(layer, {"completion": completion})
    if environ.get("STACKLENS_DEBOUNCE_MS"):
        layer = merge(layer, {"debounce_ms": environ["STACKLENS_DEBOUNCE_MS"]})
    return layer


def _norm_key(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def normalise(data: Any) -> Any:
    """snake_case keys throughout (editors write camelCase), values untouched."""
    if not isinstance(data, dict):
        return data
    return {_norm_key(str(key)): normalise(value) for key, value in data.items()}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def merge(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge; ``None`` in a layer means "not set here" (editors send null for unset keys),
    at every depth, so the result holds no nulls from the layer."""
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, Mapping):
            out[key] = merge(_mapping(out.get(key)), value)
        elif value is not None:
            out[key] = value
    return out


def overlay(base: Mapping[str, Any], defaults: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of the editor's section, where ``None`` means "unset": the key goes back to
    ``defaults`` (the environment layer, else the built-in default), not to ``base``. The VS Code
    extension sends its whole configuration in ``initializationOptions`` too, so falling back to
    ``base`` would bring back the value the user just cleared."""
    out = dict(base)
    for key, value in layer.items():
        if value is None:
            if key in defaults:
                out[key] = defaults[key]
            else:
                out.pop(key, None)
        elif isinstance(value, Mapping):
            out[key] = overlay(_mapping(out.get(key)), _mapping(defaults.get(key)), value)
        else:
            out[key] = value
    return out


def unwrap_section(settings: Any) -> dict[str, Any]:
    """Clients send either ``{"stacklens": {...}}`` or the section itself."""
    if isinstance(settings, dict):
        inner = settings.get("stacklens")
        if isinstance(inner, dict):
            return inner
        if "stacklens" in settings:
            return {}
        return settings
    return {}


def check_flags(flags: Mapping[str, Any]) -> None:
    """Raises `ConfigError` naming the flag's setting when command-line flags are invalid."""
    try:
        ServerConfig.model_validate(normalise(dict(flags)))
    except ValidationError as exc:
        raise ConfigError(f"invalid option: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """One line per invalid setting, in the user's dotted key names."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"stacklens.{where}: {err['msg']}")
    return "; ".join(parts)


# Pushed and pulled sections are two deliveries of the same editor settings: the latest replaces
# the other, so a key the user removed cannot survive in the older copy.
_SECTION_LAYERS = {"push": "section", "pull": "section"}


class ConfigLayers:
    """Keeps each layer so a later bad layer can be rejected without losing earlier ones.

    The settings are always rebuilt from the layers (defaults, environment, init, the latest
    section), never patched onto the previous result: a removed key goes back to its default.
    """

    def __init__(
        self, environ: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        self.env_error: str | None = None
        try:
            self.env = normalise(_env_layer(env))
        except ConfigError as exc:
            self.env, self.env_error = {}, str(exc)
        # Command-line flags (`stacklens lsp --index`): over the environment, under the editor;
        # `check_flags` has validated them where they were given.
        self.env = merge(self.env, normalise(dict(flags or {})))
        self.layers: dict[str, dict[str, Any]] = {}
        try:
            self.current = self._validate(self.env)
        except ValidationError as exc:
            self.env_error = f"STACKLENS_* environment ignored: {describe_errors(exc)}"
            self.env, self.current = {}, ServerConfig.model_validate({})

    @staticmethod
    def _validate(data: dict[str, Any]) -> ServerConfig:
        return ServerConfig.model_validate(data)

    def merged(self) -> dict[str, Any]:
        data = merge(self.env, self.layers.get("init", {}))
        return overlay(data, self.env, self.layers.get("section", {}))

    def update(self, name: str, raw: Any) -> ServerConfig:
        """Apply one layer ("init", "push" or "pull"); raises `ConfigError` (and keeps the old
        settings) when invalid."""
        name = _SECTION_LAYERS.get(name, name)
        layer = normalise(unwrap_section(raw))
        previous = self.layers.get(name)
        self.layers[name] = layer
        try:
            self.current = self._validate(self.merged())
        except ValidationError as exc:
            if previous is None:
                self.layers.pop(name)
            else:
                self.layers[name] = previous
            raise ConfigError(f"invalid settings ignored: {describe_errors(exc)}") from None
        return self.current
