"""Model backends behind one small interface (`Backend`); each lives in its own module and is
imported only when chosen, so `import completion` never pulls in torch."""

from __future__ import annotations

import importlib

from completion.backends.base import Backend, BackendInfo, Generation, GenerationRequest
from completion.settings import BACKENDS, CompletionSettings


def make_backend(settings: CompletionSettings) -> Backend:
    """The backend ``settings`` name, its module imported now (see `completion.settings.BACKENDS`)."""
    module, cls = BACKENDS[settings.backend].implementation.split(":")
    backend: Backend = getattr(importlib.import_module(module), cls)(settings)
    return backend


__all__ = ["Backend", "BackendInfo", "Generation", "GenerationRequest", "make_backend"]
