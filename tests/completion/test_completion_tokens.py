"""Token counting by pieces (completion/tokens.py): exact where the tokenizer's pretokenizer
allows it (GPT-2-style and Qwen-style regexes), and a fallback to whole windows where it does not
(SentencePiece-style prefixes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from completion.tokens import TokenizerCounter, piece_starts
from fixtures.tiny_model import make_tiny_tokenizer

QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SAMPLE = Path(__file__).resolve().parents[2].joinpath("completion", "context.py").read_text(encoding="utf-8")


def _trained(pre_tokenizer: object, decoder: object) -> object:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoder
    trainer = trainers.BpeTrainer(
        vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([SAMPLE], trainer=trainer)
    return tok


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from tokenizers import Regex, decoders, pre_tokenizers

    qwen = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return {
        "gpt2-style": make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), "starcoder", [SAMPLE]),
        "qwen-style": _trained(qwen, decoders.ByteLevel()),
        "sentencepiece-style": _trained(
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"), decoders.Metaspace()
        ),
    }


def _exact(tokenizer: object, text: str) -> int:
    raw = getattr(tokenizer, "backend_tokenizer", tokenizer)
    return len(raw.encode(text, add_special_tokens=False).ids)  # type: ignore[attr-defined]


_LINE = st.tuples(
    st.sampled_from(["", "    ", "        ", "\t", "  "]),
    st.text(alphabet=st.sampled_from(list("abc_xy(),:=+ 0123'\"#é😀")), max_size=30),
)
_CODE = st.lists(_LINE, max_size=40).map(lambda lines: "\n".join(i + t for i, t in lines))


@pytest.mark.parametrize("kind", ["gpt2-style", "qwen-style"])
@settings(deadline=None, max_examples=80)
@given(text=_CODE, budget=st.integers(1, 200))
def test_counts_by_pieces_are_exact(tokenizers: dict[str, object], kind: str, text: str, budget: int) -> None:
    tok = tokenizers[kind]
    counter = TokenizerCounter(tok)
    counter.count(SAMPLE)  # the start-up check
    assert counter._additive is True
    assert counter.count(text) == _exact(tok, text)
    head, n = counter.head_n(text, budget)
    # A cut inside a word may merge one token differently; a character split over several
    # tokens (an emoji's 4 bytes) is left out whole, so the count can only be over.
    assert text.startswith(head) and n <= budget
    assert -1 <= n - _exact(tok, head) <= 4
    tail, m = counter.tail_n(text, budget)
    assert text.endswith(tail) and m <= budget
    assert -1 <= m - _exact(tok, tail) <= 4
    if _exact(tok, text) <= budget:
        assert head == text and tail == text


def test_typing_re_encodes_only_the_changed_piece(tokenizers: dict[str, object]) -> None:
    counter = TokenizerCounter(tokenizers["qwen-style"])
    counter.tail_n(SAMPLE, 1500)
    cached = dict(counter._pieces)
    at = SAMPLE.index("    def build(")
    edited = SAMPLE[:at] + "    x = 1\n" + SAMPLE[at:]
    _, n = counter.tail_n(edited, 1500)
    new = set(counter._pieces) - set(cached)
    assert len(new) <= 2 and n == 1500
    assert counter.count(edited) == _exact(tokenizers["qwen-style"], edited)


def test_tokenizers_whose_pieces_do_not_add_up_count_whole_windows(tokenizers: dict[str, object]) -> None:
    tok = tokenizers["sentencepiece-style"]
    counter = TokenizerCounter(tok)
    assert counter.count(SAMPLE) == _exact(tok, SAMPLE)
    assert counter._additive is False
    head, n = counter.head_n(SAMPLE, 300)
    assert SAMPLE.startswith(head) and n == 300 and abs(_exact(tok, head) - 300) <= 1


def test_piece_boundaries() -> None:
    text = "a = 1\nb = 2\n\nc = 3\n    d\n\n    e\n"
    starts = piece_starts(text)
    pieces = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    # After a lone newline, before the last indentation character; none after a blank line.
    assert pieces == ["a = 1\n", "b = 2\n\nc = 3\n   ", " d\n\n   ", " e\n"]
