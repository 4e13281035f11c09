"""Token counting for the context budget: the model's tokenizer when available, else an estimate."""

from __future__ import annotations

from typing import Any, Protocol


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...

    def head(self, text: str, max_tokens: int) -> str:
        """The longest start of ``text`` within ``max_tokens``."""
        ...

    def tail(self, text: str, max_tokens: int) -> str:
        """The longest end of ``text`` within ``max_tokens``."""
        ...


class EstimatingCounter:
    """No tokenizer at hand: code averages ~3 characters per BPE token; err on the short side."""

    def __init__(self, chars_per_token: float = 3.0) -> None:
        self.cpt = chars_per_token

    def count(self, text: str) -> int:
        return int(len(text) / self.cpt + 0.999)

    def head(self, text: str, max_tokens: int) -> str:
        return text[: max(0, int(max_tokens * self.cpt))]

    def tail(self, text: str, max_tokens: int) -> str:
        n = max(0, int(max_tokens * self.cpt))
        return text[len(text) - n :] if n else ""


class TokenizerCounter:
    """Exact counts from a `tokenizers.Tokenizer` (the fast backend of a HF tokenizer)."""

    def __init__(self, tokenizer: Any) -> None:
        # Accept a transformers PreTrainedTokenizerFast or a raw tokenizers.Tokenizer.
        self._tok = getattr(tokenizer, "backend_tokenizer", tokenizer)

    def _encode(self, text: str) -> Any:
        return self._tok.encode(text, add_special_tokens=False)

    def count(self, text: str) -> int:
        return len(self._encode(text).ids) if text else 0

    def head(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0 or not text:
            return ""
        # Tokenize a generous window only: keeps long documents cheap.
        enc = self._encode(text[: max_tokens * 8])
        if len(enc.ids) <= max_tokens:
            return text[: max_tokens * 8]
        return text[: enc.offsets[max_tokens][0]]

    def tail(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0 or not text:
            return ""
        start = max(0, len(text) - max_tokens * 8)
        window = text[start:]
        enc = self._encode(window)
        if len(enc.ids) <= max_tokens:
            return window
        return window[enc.offsets[len(enc.ids) - max_tokens][0] :]


def make_counter(tokenizer: Any | None) -> TokenCounter:
    return TokenizerCounter(tokenizer) if tokenizer is not None else EstimatingCounter()
