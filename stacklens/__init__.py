"""The base layer every stacklens package may import: the one error hierarchy
(`stacklens.errors`), the bearer-token check (`stacklens.auth`), what both HTTP services share
(`stacklens.http`), the extension-to-language table (`stacklens.languages`) and settings from
the environment and flags (`stacklens.environment`). It imports no other stacklens package."""
