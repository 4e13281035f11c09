"""Model backends behind one small interface (`Backend`); each lives in its own module and is
imported only when chosen, so `import completion` never pulls in torch."""

from __future__ import annotations

import importlib

from completion.backends.base import Backend, BackendInfo, Generation, GenerationRequest
from completion.settings import CompletionSettings

_MODULES = {
    "transformers": ("completion.backends.transformers_backend", "TransformersBackend"),
    "tgi": ("completion.backends.tgi", "TGIBackend"),
    "huggingface": ("completion.backends.huggingface", "HuggingFaceBackend"),
    "openai": ("completion.backends.openai", "OpenAIBackend"),
    "ollama": ("completion.backends.ollama", "OllamaBackend"),
    "llamacpp": ("completion.backends.llamacpp", "LlamaCppBackend"),
    "stacklens": ("completion.backends.stacklens", "StacklensBackend"),
}


def make_backend(settings: CompletionSettings) -> Backend:
    module, cls = _MODULES[settings.backend]
    backend: Backend = getattr(importlib.import_module(module), cls)(settings)
    return backend


__all__ = ["Backend", "BackendInfo", "Generation", "GenerationRequest", "make_backend"]
