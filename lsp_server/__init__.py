"""stacklens package."""
