"""Token counting for the context budget: the model's tokenizer when available, else an estimate."""

from __future__ import annotations

import bisect
import itertools
import logging
import re
from typing import Any, Protocol

log = logging.getLogger(__name__)


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
# Piece boundaries, in the whitespace before a line's first character: before the last
# indentation character, or after a lone newline. The pretokenizers of byte-level BPE families
# (GPT-2's regex, StarCoder's, Qwen's) end a token there ("\n   " | " def", "x\n" | "from"),
# also when the piece is encoded on its own; after blank lines they disagree (GPT-2 splits
# "\n\n" | "from", Qwen does not), so no boundary there. A text's count is then the sum of its
# pieces' counts, and a keystroke re-encodes one piece instead of the whole window. Checked
# against whole-window encodes at start and every _RECHECK calls; off for tokenizers that fail.
_RUN = re.compile(r"\s*\n\s*(?=\S)")
_RECHECK = 64
_RECHECK_CHARS = 1500
_MAX_PIECES = 50_000


def split_pieces(text: str) -> tuple[list[int], list[str]]:
    """The start offset and the text of each piece of ``text``."""
    starts = piece_starts(text)
    return starts, [text[a:b] for a, b in itertools.pairwise([*starts, len(text)])]


def piece_starts(text: str) -> list[int]:
    starts = [0]
    for m in _RUN.finditer(text):
        run = m.group()
        if run[-1] in " \t":
            cut = m.end() - 1
        elif run == "\n":
            cut = m.end()
        else:
            continue
        if cut > starts[-1]:
            starts.append(cut)
    return starts


class TokenizerCounter:
    """Exact counts from a `tokenizers.Tokenizer` (the fast backend of a HF tokenizer)."""

    def __init__(self, tokenizer: Any) -> None:
        # Accept a transformers PreTrainedTokenizerFast or a raw tokenizers.Tokenizer.
        self._tok = getattr(tokenizer, "backend_tokenizer", tokenizer)
        self._cpt = 4.0  # characters per token, learnt from what is encoded
        self._pieces: dict[str, tuple[int, ...]] = {}  # piece -> start offset of each token
        self._additive: bool | None = None  # pieces' counts add up (None: not checked yet)
        self._calls = 0

    def _width(self, max_tokens: int) -> int:
        return int(max_tokens * self._cpt * _SLACK) + 16

    def _learn(self, chars: int, tokens: int) -> None:
        if tokens >= 64:
            self._cpt = 0.8 * self._cpt + 0.2 * (chars / tokens)

    def _encode(self, text: str) -> Any:
        return self._tok.encode(text, add_special_tokens=False)

    def _split(self, window: str) -> list[tuple[int, tuple[int, ...]]]:
        """(start, token start offsets) of each piece of ``window``. New pieces come from one
        encode of the window when they are most of it (a file seen for the first time), else
        from one batch."""
        starts, texts = split_pieces(window)
        missing = [i for i, t in enumerate(texts) if t not in self._pieces]
        if len(self._pieces) + len(missing) > _MAX_PIECES:
            self._pieces.clear()
            missing = list(range(len(texts)))
        if missing and len(missing) * 2 > len(texts):
            token_starts = [start for start, _ in self._encode(window).offsets]
            for i in missing:
                a, b = starts[i], starts[i] + len(texts[i])
                lo, hi = bisect.bisect_left(token_starts, a), bisect.bisect_left(token_starts, b)
                self._pieces[texts[i]] = tuple(t - a for t in token_starts[lo:hi])
        elif missing:
            new = list(dict.fromkeys(texts[i] for i in missing))
            for text, enc in zip(new, self._tok.encode_batch(new, add_special_tokens=False), strict=True):
                self._pieces[text] = tuple(start for start, _ in enc.offsets)
        return [(a, self._pieces[t]) for a, t in zip(starts, texts, strict=True)]

    def _use_pieces(self, window: str) -> bool:
        """Whether counting by pieces is exact; checked on real windows now and then."""
        self._calls += 1
        if self._additive is False:
            return False
        if (self._additive is None and len(window) >= 200) or self._calls % _RECHECK == 0:
            # Later checks look at a part of the window: a whole one would cost this request
            # two tokenizer passes, and show in the latency percentiles.
            sample = window if self._additive is None else window[-_RECHECK_CHARS:]
            _, texts = split_pieces(sample)
            by_pieces = sum(len(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=False))
            self._additive = by_pieces == len(self._encode(sample).ids)
            if not self._additive:
                log.info("token counts by line do not add up for this tokenizer: counting windows")
                self._pieces.clear()
        return self._additive is True  # unchecked yet (only short texts so far): windows

    def count(self, text: str) -> int:
        if not text:
            return 0
        if not self._use_pieces(text):
            return len(self._encode(text).ids)
        return sum(len(offs) for _, offs in self._split(text))

    def head(self, text: str, max_tokens: int) -> str:
        return self.head_n(text, max_tokens)[0]

    def tail(self, text: str, max_tokens: int) -> str:
        return self.tail_n(text, max_tokens)[0]

    # A window a little larger than the budget should need (from the observed characters per
    # token), widened only for unusually sparse text.
    def head_n(self, text: str, max_tokens: int) -> tuple[str, int]:
        if max_tokens <= 0 or not text:
            return "", 0
        width = self._width(max_tokens)
        if not self._use_pieces(text[:width]):
            return self._head_window(text, max_tokens, width)
        while True:
            window = text[:width]
            complete = len(window) == len(text)
            pieces = self._split(window)
            total = 0
            for i, (a, offs) in enumerate(pieces):
                if not complete and i == len(pieces) - 1:
                    break  # the window cut this piece: widen
                if total + len(offs) > max_tokens:
                    # Before the first token left out: a character split over several tokens
                    # (an emoji's bytes) is left out whole.
                    return text[: a + offs[max_tokens - total]], max_tokens
                total += len(offs)
            else:
                self._learn(len(window), total)
                return window, total
            width *= 2

    def tail_n(self, text: str, max_tokens: int) -> tuple[str, int]:
        if max_tokens <= 0 or not text:
            return "", 0
        width = self._width(max_tokens)
        if not self._use_pieces(text[-width:]):
            return self._tail_window(text, max_tokens, width)
        while True:
            start = max(0, len(text) - width)
            window = text[start:]
            pieces = self._split(window)
            total = 0
            for i in range(len(pieces) - 1, -1, -1):
                if start > 0 and i == 0:
                    break  # the window cut this piece: widen
                a, offs = pieces[i]
                if total + len(offs) > max_tokens:
                    first = len(offs) - (max_tokens - total)  # the first token kept
                    while first < len(offs) and offs[first] == offs[first - 1]:
                        first += 1  # not from half a character
                    end = pieces[i + 1][0] if i + 1 < len(pieces) else len(window)
                    return window[a + offs[first] if first < len(offs) else end :], max_tokens
                total += len(offs)
            else:
                self._learn(len(window), total)
                return window, total
            width *= 2

    def _head_window(self, text: str, max_tokens: int, width: int) -> tuple[str, int]:
        while True:
            window = text[:width]
            enc = self._encode(window)
            self._learn(len(window), len(enc.ids))
            if len(enc.ids) > max_tokens:
                return text[: enc.offsets[max_tokens][0]], max_tokens
            if len(window) == len(text):
                return window, len(enc.ids)
            width *= 2

    def _tail_window(self, text: str, max_tokens: int, width: int) -> tuple[str, int]:
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
