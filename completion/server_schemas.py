"""Request bodies of the completion server (OpenAI- and TGI-compatible)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_NEW_TOKENS = 2048


class ExtraFile(BaseModel):
    filename: str = Field(default="", max_length=4096)
    text: str


class CompletionBody(BaseModel):
    """OpenAI legacy completions; ``suffix`` turns on FIM with the model's template.
    ``input_extra`` and ``filename`` (as llama.cpp's /infill) carry cross-file context."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    prompt: str | list[str]
    suffix: str | None = None
    max_tokens: int = Field(default=16, ge=1, le=MAX_NEW_TOKENS)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=8)
    stop: str | list[str] | None = None
    stream: bool = False
    input_extra: list[ExtraFile] = Field(default_factory=list, max_length=64)
    filename: str = Field(default="", max_length=4096)


class GenerateParameters(BaseModel):
    model_config = ConfigDict(extra="ignore")
    max_new_tokens: int = Field(default=20, ge=1, le=MAX_NEW_TOKENS)
    temperature: float | None = Field(default=None, gt=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, lt=1.0)
    do_sample: bool = False
    stop: list[str] = Field(default_factory=list, max_length=16)
    return_full_text: bool = False
    details: bool = False


class GenerateBody(BaseModel):
    """TGI /generate and /generate_stream."""

    model_config = ConfigDict(extra="ignore")
    inputs: str
    parameters: GenerateParameters = Field(default_factory=lambda: GenerateParameters())
    stream: bool = False
