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

    def head_n(self, text: str, max_tokens: int) -> tuple[str, int]:
        """``head`` and its token count, in one pass."""
        ...

    def tail_n(self, text: str, max_tokens: int) -> tuple[str, int]:
        """``tail`` and its token count, in one pass."""
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

    def head_n(self, text: str, max_tokens: int) -> tuple[str, int]:
        out = self.head(text, max_tokens)
        return out, self.count(out)

    def tail_n(self, text: str, max_tokens: int) -> tuple[str, int]:
        out = self.tail(text, max_tokens)
        return out, self.count(out)


_SLACK = 1.15  # window = budget x observed chars per token x slack


class TokenizerCounter:
    """Exact counts from a `tokenizers.Tokenizer` (the fast backend of a HF tokenizer)."""

    def __init__(self, tokenizer: Any) -> None:
        # Accept a transformers PreTrainedTokenizerFast or a raw tokenizers.Tokenizer.
        self._tok = getattr(tokenizer, "backend_tokenizer", tokenizer)
        self._cpt = 4.0  # characters per token, learnt from what is encoded

    def _width(self, max_tokens: int) -> int:
        return int(max_tokens * self._cpt * _SLACK) + 16

    def _learn(self, chars: int, tokens: int) -> None:
        if tokens >= 64:
            self._cpt = 0.8 * self._cpt + 0.2 * (chars / tokens)

    def _encode(self, text: str) -> Any:
        return self._tok.encode(text, add_special_tokens=False)

    def count(self, text: str) -> int:
        return len(self._encode(text).ids) if text else 0

    def head(self, text: str, max_tokens: int) -> str:
        return self.head_n(text, max_tokens)[0]

    def tail(self, text: str, max_tokens: int) -> str:
        return self.tail_n(text, max_tokens)[0]

    # One encode of a window a little larger than the budget should need (from the observed
    # characters per token); widened only for unusually sparse text, so each side costs one
    # tokenizer pass of about the budget's size.
    def head_n(self, text: str, max_tokens: int) -> tuple[str, int]:
        if max_tokens <= 0 or not text:
            return "", 0
        width = self._width(max_tokens)
        while True:
            window = text[:width]
            enc = self._encode(window)
            self._learn(len(window), len(enc.ids))
            if len(enc.ids) > max_tokens:
                return text[: enc.offsets[max_tokens][0]], max_tokens
            if len(window) == len(text):
                return window, len(enc.ids)
            width *= 2

    def tail_n(self, text: str, max_tokens: int) -> tuple[str, int]:
        if max_tokens <= 0 or not text:
            return "", 0
        width = self._width(max_tokens)
        while True:
            start = max(0, len(text) - width)
            window = text[start:]
            enc = self._encode(window)
            n = len(enc.ids)
            self._learn(len(window), n)
            if n > max_tokens:
                # Drop the first token too: the window may have cut it in half.
                return window[enc.offsets[n - max_tokens + 1][0] :], max_tokens - 1
            if start == 0:
                return window, n
            width *= 2


def make_counter(tokenizer: Any | None) -> TokenCounter:
    return TokenizerCounter(tokenizer) if tokenizer is not None else EstimatingCounter()
