"""The completion server for remote GPUs (`stacklens serve`): app, routes, micro-batching, CLI.

Importing it imports FastAPI, never torch: the model loads in the app's lifespan."""

from .app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
