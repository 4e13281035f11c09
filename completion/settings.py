"""Completion settings: one flat pydantic model per backend, chosen by the ``backend`` key.

``CompletionSettings.model_validate({"backend": "tgi", "url": ...})`` (or
``CompletionSettings(...)``) returns the subclass for that backend, so callers build settings
from a flat dict (LSP initializationOptions, a TOML table) and still get a discriminated union.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, Union, cast

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, model_validator

from completion.templates import CustomTemplateSpec, OrderSetting
from stacklens.errors import ConfigError

TOKEN_ENV = "STACKLENS_API_TOKEN"
log = logging.getLogger(__name__)


class CustomTemplate(BaseModel):
    """A FIM template given in configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fim_prefix: str
    fim_suffix: str
    fim_middle: str
    stop: list[str] = Field(default_factory=list)
    suffix_first: bool = False

    def spec(self) -> CustomTemplateSpec:
        return CustomTemplateSpec(
            self.fim_prefix, self.fim_suffix, self.fim_middle, tuple(self.stop), self.suffix_first
        )


def _token_from_env() -> SecretStr | None:
    value = os.environ.get(TOKEN_ENV)
    return SecretStr(value) if value else None


class BudgetSettings(BaseModel):
    """What the prompt builder (`completion.context.ContextBuilder`) reads: the token budget, its
    split and the cross-file snippets. Every backend's settings are these and more."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    context_window: int = Field(default=2048, ge=64, le=1_000_000)
    # 128: ends ~78% of stdlib function bodies (64 ended ~60%, cutting bodies off mid-expression);
    # a suggestion usually stops earlier, at the end of its block or max_lines.
    max_new_tokens: int = Field(default=128, ge=1, le=4096)
    prefix_ratio: float = Field(default=0.75, gt=0.0, lt=1.0)  # share of the in-file budget for the prefix
    crossfile_max_tokens: int = Field(default=512, ge=0)
    crossfile_max_snippets: int = Field(default=4, ge=0, le=32)
    crossfile_window_lines: int = Field(default=30, ge=4, le=400)
    repo_name: str = ""
    multiline: Literal["auto", "always", "never"] = "auto"


class CompletionSettings(BudgetSettings):
    """Settings common to every backend. Instantiating it dispatches on ``backend``."""

    # Unknown keys are ignored (editors send whole option blocks); load_settings warns of them.
    model_config = ConfigDict(extra="ignore", validate_default=True)
    requires_url: ClassVar[bool] = True

    backend: str = "transformers"  # each subclass narrows it to its own name (see BACKENDS)
    model: str = ""
    url: str | None = None
    api_token: SecretStr | None = Field(default_factory=_token_from_env, repr=False)
    template: str | CustomTemplate | None = None  # None or "auto": detect
    # "spm" puts the suffix before the prefix, so typing only appends to the prompt (KV reuse);
    # only for families trained that way. "auto": the family's usual order (PSM for most).
    fim_order: OrderSetting = "auto"
    tokenizer: str | None = None  # local dir/hub id for token-accurate budgets of remote models
    single_line_max_tokens: int = Field(default=32, ge=1, le=4096)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list)
    max_lines: int = Field(default=30, ge=1)
    timeout_s: float = Field(default=10.0, gt=0)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_s: float = Field(default=0.2, ge=0)
    cache_size: int = Field(default=512, ge=0)
    stream: bool = True

    def __new__(cls, *args: Any, **data: Any) -> CompletionSettings:
        if cls is CompletionSettings:
            cls = _backend_class(data.get("backend", "transformers"))
        return super().__new__(cls)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        if cls is CompletionSettings:
            if not isinstance(obj, dict):
                raise ConfigError("completion settings must be a mapping")
            obj = dict(obj)
            obj.setdefault("backend", "transformers")
            return cast(Self, _ADAPTER.validate_python(obj))
        return super().model_validate(obj, *args, **kwargs)

    @model_validator(mode="after")
    def _check_required(self) -> CompletionSettings:
        if self.requires_url and not self.url:
            raise ValueError(f"backend {self.backend!r} needs `url` (the server's base URL)")
        return self

    @property
    def token(self) -> str | None:
        return self.api_token.get_secret_value() if self.api_token else None


class TransformersSettings(CompletionSettings):
    requires_url: ClassVar[bool] = False
    backend: Literal["transformers"] = "transformers"
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda", "cuda:1"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    kv_reuse: bool = True
    trust_remote_code: bool = False
    # Static KV cache + CUDA graphs for n=1 requests (completion/backends/fast_decode.py);
    # "auto": on when the model runs on CUDA. "on" also works on CPU (no graphs; for tests).
    fast_path: Literal["auto", "on", "off"] = "auto"
    # Prompt-lookup drafts per step on the fast path (greedy only; 0 = off).
    prompt_lookup_tokens: int = Field(default=0, ge=0, le=32)

    @model_validator(mode="after")
    def _need_model(self) -> TransformersSettings:
        if not self.model:
            raise ValueError("backend 'transformers' needs `model` (a hub id or a local directory)")
        return self


class TGISettings(CompletionSettings):
    backend: Literal["tgi"] = "tgi"


class HuggingFaceSettings(CompletionSettings):
    requires_url: ClassVar[bool] = False
    backend: Literal["huggingface"] = "huggingface"
    url: str | None = "https://api-inference.huggingface.co"


class OpenAISettings(CompletionSettings):
    backend: Literal["openai"] = "openai"
    # "prompt": FIM tokens baked into the prompt; "suffix": prefix + `suffix`, server-side FIM.
    fim_mode: Literal["prompt", "suffix"] = "prompt"


class OllamaSettings(CompletionSettings):
    backend: Literal["ollama"] = "ollama"
    url: str | None = "http://127.0.0.1:11434"
    # "auto": use `suffix` when the model's template has .Suffix (asks /api/show), else raw.
    fim_mode: Literal["auto", "raw", "suffix"] = "auto"
    keep_alive: str = "30m"


class LlamaCppSettings(CompletionSettings):
    backend: Literal["llamacpp"] = "llamacpp"
    url: str | None = "http://127.0.0.1:8080"
    endpoint: Literal["infill", "completion"] = "infill"


class StacklensSettings(CompletionSettings):
    backend: Literal["stacklens"] = "stacklens"


@dataclass(frozen=True)
class Backend:
    """One entry of the backend registry: its settings model, and where its implementation lives
    (``module:Class``, imported only when chosen, so `import completion` never imports torch)."""

    settings: type[CompletionSettings]
    implementation: str
    llm_ls: bool  # an llm-ls client (llm-vscode, llm.nvim) may name it in its requests

    @property
    def name(self) -> str:
        return str(self.settings.model_fields["backend"].default)


# The one list of backends: the settings union, `make_backend`, the llm-ls mapping and the
# error for an unknown name all read it (the extension's enum is checked against it in a test).
_REGISTRY = [
    Backend(TransformersSettings, "completion.backends.transformers_backend:TransformersBackend", False),
    Backend(TGISettings, "completion.backends.tgi:TGIBackend", True),
    Backend(HuggingFaceSettings, "completion.backends.huggingface:HuggingFaceBackend", True),
    Backend(OpenAISettings, "completion.backends.openai:OpenAIBackend", True),
    Backend(OllamaSettings, "completion.backends.ollama:OllamaBackend", True),
    Backend(LlamaCppSettings, "completion.backends.llamacpp:LlamaCppBackend", True),
    Backend(StacklensSettings, "completion.backends.stacklens:StacklensBackend", False),
]
BACKENDS: dict[str, Backend] = {b.name: b for b in _REGISTRY}

_UNION: Any = Union[tuple(b.settings for b in _REGISTRY)]  # noqa: UP007 (built at run time)
_ADAPTER = cast(
    TypeAdapter[CompletionSettings], TypeAdapter(Annotated[_UNION, Field(discriminator="backend")])
)


def _backend_class(name: object) -> type[CompletionSettings]:
    try:
        return BACKENDS[str(name)].settings
    except KeyError:
        raise ConfigError(f"unknown completion backend {name!r}; use one of {', '.join(BACKENDS)}") from None


def load_settings(obj: Any) -> CompletionSettings:
    """``CompletionSettings.model_validate`` with errors turned into one readable ConfigError."""
    from pydantic import ValidationError

    try:
        settings = CompletionSettings.model_validate(obj)
        unknown = sorted(set(obj) - set(type(settings).model_fields)) if isinstance(obj, dict) else []
        if unknown:
            log.warning("completion settings: ignoring unknown keys %s", ", ".join(unknown))
        return settings
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0] if err["loc"] else "")
            parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
        raise ConfigError("invalid completion settings: " + "; ".join(parts)) from None
