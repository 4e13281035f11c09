"""The base layer every stacklens package may import: the one error hierarchy
(`stacklens.errors`), the bearer-token check (`stacklens.auth`) and the HTTP body limit
(`stacklens.http`). It imports no other stacklens package."""
