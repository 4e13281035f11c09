"""FIM prompt templates per model family, their stop tokens, detection from a tokenizer or id."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from stacklens.errors import ConfigError

Order = Literal["psm", "spm", "codestral"]
OrderSetting = Literal["auto", "psm", "spm"]


@dataclass(frozen=True)
class SourceFile:
    """A file given to the model as cross-file context."""

    path: str
    text: str


@dataclass(frozen=True)
class FimTemplate:
    """How one model family lays out prefix, suffix and cross-file context in its prompt."""

    name: str
    fim_prefix: str
    fim_suffix: str
    fim_middle: str
    stop: tuple[str, ...] = ()
    order: Order = "psm"
    # Code Llama's sentinels carry spaces: "<PRE> {pre} <SUF>{suf} <MID>".
    prefix_sep: str = ""
    middle_sep: str = ""
    # Repo-level format: tokens present when the family was trained with it.
    repo_name: str | None = None
    file_sep: str | None = None
    repo_style: Literal["starcoder2", "qwen", "deepseek", "codestral", "none"] = "none"
    empty_suffix: str = "\n"
    # Trained on suffix-prefix-middle too, so `fim_order: spm` may be used (see ordered()).
    spm_trained: bool = False

    @property
    def has_repo_format(self) -> bool:
        return self.repo_style != "none"

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """Every sentinel this template may emit; stripped from generated text."""
        toks = [self.fim_prefix, self.fim_suffix, self.fim_middle, *self.stop]
        toks += [t for t in (self.repo_name, self.file_sep) if t]
        return tuple(dict.fromkeys(t for t in toks if t))

    def render(
        self,
        prefix: str,
        suffix: str,
        files: Sequence[SourceFile] = (),
        path: str = "",
        repo: str = "",
    ) -> str:
        """The prompt string. ``files`` must already be in the repo-level format's scope: callers
        render them as comments for families without one."""
        suf = suffix if suffix else self.empty_suffix
        if self.order == "codestral":
            # Suffix first, no middle token: generation continues the prefix.
            pre = self._repo_block(files, path, repo) + prefix
            return f"{self.fim_suffix}{suf}{self.fim_prefix}{pre}"
        head = self._repo_block(files, path, repo)
        if self.order == "spm":
            return (
                f"{head}{self.fim_prefix}{self.prefix_sep}{self.fim_suffix}{suf}"
                f"{self.middle_sep}{self.fim_middle}{self.prefix_sep}{prefix}"
            )
        if self.repo_style == "starcoder2" and head:
            return f"{head}{self.fim_prefix}{path}\n{prefix}{self.fim_suffix}{suf}{self.fim_middle}"
        return (
            f"{head}{self.fim_prefix}{self.prefix_sep}{prefix}{self.prefix_sep}"
            f"{self.fim_suffix}{suf}{self.middle_sep}{self.fim_middle}"
        )

    def ordered(self, order: OrderSetting) -> FimTemplate:
        """This template with the prompt order ``order`` ("auto": the family's usual one)."""
        if order == "auto" or order == self.order:
            return self
        if self.order == "codestral":
            raise ConfigError("the codestral template is suffix-first already: set `fim_order: auto`")
        if order == "spm" and not self.spm_trained:
            trained = ", ".join(sorted(n for n, t in TEMPLATES.items() if t.spm_trained))
            raise ConfigError(
                f"the {self.name} family was not trained with suffix-first (SPM) prompts: set "
                f"`fim_order: auto` (SPM is available for {trained}, or a custom template with "
                "suffix_first: true)"
            )
        return replace(self, order=order)

    def _repo_block(self, files: Sequence[SourceFile], path: str, repo: str) -> str:
        if not files or self.repo_style == "none":
            return ""
        if self.repo_style == "starcoder2":
            body = "".join(f"{self.file_sep}{f.path}\n{f.text}" for f in files)
            return f"{self.repo_name}{repo}{body}{self.file_sep}"
        if self.repo_style == "qwen":
            body = "".join(f"{self.file_sep}{f.path}\n{f.text}\n" for f in files)
            return f"{self.repo_name}{repo}\n{body}{self.file_sep}{path}\n"
        if self.repo_style == "deepseek":
            body = "".join(f"#{f.path}\n{f.text}\n" for f in files)
            return f"{body}#{path}\n"
        # codestral: Continue's "+++++ path" blocks inside the prefix.
        body = "".join(f"+++++ {f.path}\n{f.text}\n\n" for f in files)
        return f"{body}+++++ {path}\n"


_SC_STOP = ("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>")
_QWEN_STOP = (
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<|im_end|>",
)

TEMPLATES: dict[str, FimTemplate] = {
    t.name: t
    for t in (
        FimTemplate(
            "santacoder",
            "<fim-prefix>",
            "<fim-suffix>",
            "<fim-middle>",
            stop=("<|endoftext|>", "<fim-prefix>", "<fim-suffix>", "<fim-middle>", "<fim-pad>"),
            spm_trained=True,
        ),
        FimTemplate(
            "starcoder",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            stop=(*_SC_STOP, "<filename>"),
            spm_trained=True,
        ),
        FimTemplate(
            "starcoder2",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            stop=(*_SC_STOP, "<file_sep>", "<repo_name>"),
            repo_name="<repo_name>",
            file_sep="<file_sep>",
            repo_style="starcoder2",
            spm_trained=True,
        ),
        FimTemplate(
            "codellama",
            "<PRE>",
            "<SUF>",
            "<MID>",
            stop=("<EOT>", "</s>"),
            prefix_sep=" ",
            middle_sep=" ",
            spm_trained=True,
        ),
        FimTemplate(
            "deepseek",
            "<｜fim▁begin｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁end｜>",
            stop=(
                "<｜end▁of▁sentence｜>",
                "<|EOT|>",
                "<｜fim▁begin｜>",
                "<｜fim▁hole｜>",
                "<｜fim▁end｜>",
            ),
            repo_style="deepseek",
            spm_trained=True,
        ),
        FimTemplate(
            "qwen",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            stop=_QWEN_STOP,
            repo_name="<|repo_name|>",
            file_sep="<|file_sep|>",
            repo_style="qwen",
        ),
        FimTemplate(
            "codegemma",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            stop=(
                "<|file_separator|>",
                "<eos>",
                "<end_of_turn>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
                "<|fim_middle|>",
            ),
        ),
        FimTemplate(
            "codestral",
            "[PREFIX]",
            "[SUFFIX]",
            "",
            stop=("</s>", "[PREFIX]", "[SUFFIX]"),
            order="codestral",
            repo_style="codestral",
        ),
        FimTemplate(
            "granite",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            stop=(*_SC_STOP, "<filename>", "<reponame>"),
        ),
    )
}


def get_template(name: str) -> FimTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise ConfigError(
            f"unknown FIM template {name!r}; use one of {known} or a custom template "
            '({"fim_prefix": ..., "fim_suffix": ..., "fim_middle": ..., "stop": [...]})'
        ) from None


@dataclass(frozen=True)
class CustomTemplateSpec:
    """A user-defined template (from configuration)."""

    fim_prefix: str
    fim_suffix: str
    fim_middle: str
    stop: tuple[str, ...] = field(default_factory=tuple)
    suffix_first: bool = False
    name: str = "custom"

    def build(self) -> FimTemplate:
        order: Order = "spm" if self.suffix_first else "psm"
        return FimTemplate(
            self.name, self.fim_prefix, self.fim_suffix, self.fim_middle, tuple(self.stop), order
        )


# Order matters: the most specific signature first.
_TOKEN_SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("codegemma", ("<|fim_prefix|>", "<|file_separator|>")),
    ("qwen", ("<|fim_prefix|>",)),
    ("deepseek", ("<｜fim▁begin｜>",)),
    ("santacoder", ("<fim-prefix>",)),
    ("starcoder2", ("<fim_prefix>", "<file_sep>")),
    ("starcoder", ("<fim_prefix>",)),
    ("codellama", ("<PRE>",)),
    ("codellama", ("▁<PRE>",)),
    ("codestral", ("[SUFFIX]", "[PREFIX]")),
)

_ID_PATTERNS: tuple[tuple[str, str], ...] = (
    ("codegemma", r"codegemma"),
    ("qwen", r"qwen.*coder|codeqwen"),
    ("deepseek", r"deepseek"),
    ("codellama", r"code-?llama"),
    ("codestral", r"codestral"),
    ("granite", r"granite"),
    ("starcoder2", r"starcoder2"),
    ("santacoder", r"santacoder"),
    ("starcoder", r"starcoder|starchat|gpt.?bigcode"),
)


def detect_from_tokens(tokens: Iterable[str]) -> str | None:
    """The family whose FIM sentinels are all in ``tokens`` (a vocabulary or special tokens)."""
    vocab = set(tokens)
    for name, needed in _TOKEN_SIGNATURES:
        if all(t in vocab for t in needed):
            return name
    return None


def detect_from_model_id(model_id: str) -> str | None:
    low = model_id.lower()
    for name, pattern in _ID_PATTERNS:
        if re.search(pattern, low):
            return name
    return None


def resolve_template(
    setting: str | CustomTemplateSpec | None,
    *,
    model_id: str = "",
    tokens: Iterable[str] | None = None,
) -> FimTemplate:
    """The template to use: the configured one, else detected from tokens, else from the id."""
    if isinstance(setting, CustomTemplateSpec):
        return setting.build()
    if setting and setting != "auto":
        return get_template(setting)
    # A granite id wins over its starcoder-like tokens: the stop list differs.
    by_id = detect_from_model_id(model_id) if model_id else None
    if by_id == "granite":
        return TEMPLATES["granite"]
    by_tokens = detect_from_tokens(tokens) if tokens is not None else None
    name = by_tokens or by_id
    if name is None:
        raise ConfigError(
            f"cannot tell the FIM template of model {model_id!r}: set `template` to one of "
            f"{', '.join(sorted(TEMPLATES))} or give a custom template"
        )
    return TEMPLATES[name]
