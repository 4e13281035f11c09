"""Settings from ``PREFIX_<FIELD>`` environment variables and command-line flags, read once where
a command starts: a bad value names the variable or flag it came from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from .errors import InputError

M = TypeVar("M", bound=BaseModel)


def settings_from_environment(
    model: type[M], prefix: str, environ: Mapping[str, str] | None = None, **flags: object
) -> M:
    """``model`` from ``prefix + FIELD`` variables, then ``flags`` (which win). An invalid value
    is an `InputError` that names the variable (or ``--flag``) and the value."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    origin: dict[str, str] = {}
    for name in model.model_fields:
        var = prefix + name.upper()
        if var in env:
            values[name], origin[name] = env[var], var
    for name, value in flags.items():
        values[name], origin[name] = value, "--" + name.replace("_", "-")
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:5]:
            name = str(err["loc"][0]) if err["loc"] else ""
            parts.append(f"{origin.get(name, name)}={err.get('input')!r}: {err['msg']}")
        raise InputError("invalid setting " + "; ".join(parts) + " (fix or unset it)") from None
