"""Request bodies of the completion server (OpenAI- and TGI-compatible)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_NEW_TOKENS = 2048


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); no tokenizer can encode them.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode text (a lone surrogate at {exc.start}): send UTF-8") from exc
    return value


Text = Annotated[str, AfterValidator(_encodable)]


class ExtraFile(BaseModel):
    filename: Text = Field(default="", max_length=4096)
    text: Text


class CompletionBody(BaseModel):
    """OpenAI legacy completions; ``suffix`` turns on FIM with the model's template.
    ``input_extra`` and ``filename`` (as llama.cpp's /infill) carry cross-file context."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    prompt: Text | list[Text]
    suffix: Text | None = None
    max_tokens: int = Field(default=16, ge=1, le=MAX_NEW_TOKENS)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=8)
    stop: Text | Annotated[list[Text], Field(max_length=16)] | None = None
    stream: bool = False
    input_extra: list[ExtraFile] = Field(default_factory=list, max_length=64)
    filename: Text = Field(default="", max_length=4096)


class GenerateParameters(BaseModel):
    model_config = ConfigDict(extra="ignore")
    max_new_tokens: int = Field(default=20, ge=1, le=MAX_NEW_TOKENS)
    temperature: float | None = Field(default=None, gt=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, lt=1.0)
    do_sample: bool = False
    stop: list[Text] = Field(default_factory=list, max_length=16)
    return_full_text: bool = False
    details: bool = False


class GenerateBody(BaseModel):
    """TGI /generate and /generate_stream."""

    model_config = ConfigDict(extra="ignore")
    inputs: Text
    parameters: GenerateParameters = Field(default_factory=lambda: GenerateParameters())
    stream: bool = False
