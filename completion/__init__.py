"""Completion engine: FIM templates, context building, model backends, post-processing, caching.

Heavy dependencies (torch, transformers) load only when the transformers backend starts.
"""

from completion.engine import CompletionEngine
from completion.settings import CompletionSettings, load_settings
from completion.types import Completion, CompletionRequest, OpenDocument

__all__ = [
    "Completion",
    "CompletionEngine",
    "CompletionRequest",
    "CompletionSettings",
    "OpenDocument",
    "load_settings",
]
