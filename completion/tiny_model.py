"""Tiny random-weight FIM models for tests and the demo, built offline.

``make_tiny_model(path, family="qwen", arch="llama")`` trains a byte-level BPE tokenizer (with the
family's FIM tokens) on a few files, builds a 2-layer GPTBigCode or Llama model and saves both with
``save_pretrained``, so they load through the real ``from_pretrained`` path. With ``train_steps``
the model is trained for a few seconds on ``train_files`` until it reproduces them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from completion.templates import TEMPLATES

_SAMPLE_CODE = '''
import os
import sys
from dataclasses import dataclass


@dataclass
class Point:
    x: float
    y: float

    def distance(self, other: "Point") -> float:
        return ((self.x - other.x) ** 2 + (self.y - other.y) ** 2) ** 0.5


def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def read_lines(path):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\\n") for line in handle]


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()


function add(a, b) {
  return a + b;
}

const items = [1, 2, 3].map((x) => x * 2);
for (let i = 0; i < items.length; i++) {
  console.log(items[i]);
}

if __name__ == "__main__":
    print(fibonacci(10), sys.argv, os.getcwd())
'''


@dataclass(frozen=True)
class _Family:
    template: str
    specials: tuple[str, ...]
    bos: str
    eos: str
    pad: str
    add_bos: bool = False


_SC = ("<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<filename>")
FAMILIES: dict[str, _Family] = {
    "starcoder": _Family("starcoder", _SC, "<|endoftext|>", "<|endoftext|>", "<fim_pad>"),
    "starcoder2": _Family(
        "starcoder2",
        (*_SC, "<file_sep>", "<repo_name>"),
        "<|endoftext|>",
        "<|endoftext|>",
        "<fim_pad>",
    ),
    "granite": _Family("granite", (*_SC, "<reponame>"), "<|endoftext|>", "<|endoftext|>", "<fim_pad>"),
    "santacoder": _Family(
        "santacoder",
        ("<|endoftext|>", "<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<fim-pad>"),
        "<|endoftext|>",
        "<|endoftext|>",
        "<fim-pad>",
    ),
    "codellama": _Family(
        "codellama",
        ("<unk>", "<s>", "</s>", "<PRE>", "<SUF>", "<MID>", "<EOT>"),
        "<s>",
        "</s>",
        "</s>",
        add_bos=True,
    ),
    "deepseek": _Family(
        "deepseek",
        (
            "<｜begin▁of▁sentence｜>",
            "<｜end▁of▁sentence｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁begin｜>",
            "<｜fim▁end｜>",
            "<|EOT|>",
        ),
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        add_bos=True,
    ),
    "qwen": _Family(
        "qwen",
        (
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
        ),
        "<|endoftext|>",
        "<|endoftext|>",
        "<|fim_pad|>",
    ),
    "codegemma": _Family(
        "codegemma",
        (
            "<pad>",
            "<eos>",
            "<bos>",
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|file_separator|>",
            "<end_of_turn>",
        ),
        "<bos>",
        "<eos>",
        "<pad>",
        add_bos=True,
    ),
    "codestral": _Family(
        "codestral",
        ("<unk>", "<s>", "</s>", "[PREFIX]", "[SUFFIX]", "[MIDDLE]"),
        "<s>",
        "</s>",
        "</s>",
        add_bos=True,
    ),
}


def make_tiny_tokenizer(
    path: str | Path, family: str = "starcoder", texts: Sequence[str] = (), vocab_size: int = 1024
) -> Any:
    """Train and save a byte-level BPE tokenizer with ``family``'s special tokens; returns it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    fam = FAMILIES[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(fam.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_SAMPLE_CODE, *texts], trainer=trainer)
    if fam.add_bos:
        bos_id = tok.token_to_id(fam.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{fam.bos} $A", pair=f"{fam.bos} $A $B", special_tokens=[(fam.bos, bos_id)]
        )
    others = [t for t in fam.specials if t not in (fam.bos, fam.eos, fam.pad)]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=fam.bos,
        eos_token=fam.eos,
        pad_token=fam.pad,
        additional_special_tokens=others,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.save_pretrained(str(path))
    return fast


def make_tiny_model(
    path: str | Path,
    family: str = "starcoder",
    arch: str = "gpt_bigcode",
    train_files: list[str] | None = None,
    train_steps: int = 0,
    seed: int = 0,
    *,
    hidden: int = 64,
    layers: int = 2,
) -> Path:
    """Build (and optionally train) a tiny FIM model offline; returns its directory."""
    import torch
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM, LlamaConfig, LlamaForCausalLM

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    texts = [Path(f).read_text(encoding="utf-8", errors="replace") for f in train_files or []]
    tokenizer = make_tiny_tokenizer(out, family, texts)
    fam = FAMILIES[family]
    ids = {k: tokenizer.convert_tokens_to_ids(getattr(fam, k)) for k in ("bos", "eos", "pad")}
    torch.manual_seed(seed)
    common = {"bos_token_id": ids["bos"], "eos_token_id": ids["eos"], "pad_token_id": ids["pad"]}
    model: Any
    cfg: Any
    if arch == "gpt_bigcode":
        cfg = GPTBigCodeConfig(
            vocab_size=len(tokenizer),
            n_positions=2048,
            n_embd=hidden,
            n_layer=layers,
            n_head=4,
            multi_query=True,
            **common,
        )
        model = GPTBigCodeForCausalLM(cfg)
    elif arch == "llama":
        cfg = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            tie_word_embeddings=False,
            **common,
        )
        model = LlamaForCausalLM(cfg)
    else:
        raise ValueError(f"unknown arch {arch!r}; use 'gpt_bigcode' or 'llama'")
    if train_steps > 0 and texts:
        _train(model, tokenizer, family, texts, train_steps, seed)
    model.generation_config.pad_token_id = ids["pad"]
    model.save_pretrained(str(out), safe_serialization=True)
    return out


def _fim_examples(family: str, text: str, rng: random.Random, n: int) -> list[str]:
    """Whole files plus FIM examples cut at random points, as the engine will prompt: half with
    an empty suffix (typing at the end of a file), half with a suffix."""
    template = TEMPLATES[FAMILIES[family].template]
    eos = FAMILIES[family].eos
    out = [text + eos]
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    for _ in range(n):
        # Cursors sit mostly at a line start or after the indentation, sometimes anywhere.
        a = rng.choice(starts)
        roll = rng.random()
        if roll < 0.35:
            a += len(text[a:]) - len(text[a:].lstrip(" \t"))
        elif roll < 0.65:
            a = rng.randrange(0, len(text))
        if rng.random() < 0.5:
            pre, mid, suf = text[:a], text[a:], ""
        else:
            b = text.find("\n", min(len(text), a + rng.randrange(1, 200)))
            b = len(text) if b < 0 else b + 1
            pre, mid, suf = text[:a], text[a:b], text[b:]
        out.append(template.render(pre, suf) + mid + eos)
    return out


def _train(model: Any, tokenizer: Any, family: str, texts: list[str], steps: int, seed: int) -> None:
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)
    longest = max(len(tokenizer(t)["input_ids"]) for t in texts)
    length = min(1024, 2 * longest + 16)  # a FIM example holds the file plus a few sentinels
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps, pct_start=0.1)
    batch = 8
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add contention
    model.train()
    for _ in range(steps):
        # Fresh cut points every step (the model must complete from any cursor), padded to one
        # fixed shape: CPU kernels are fastest when every step looks the same.
        per_file = max(1, batch // len(texts))
        examples = [e for t in texts for e in _fim_examples(family, t, rng, per_file)]
        examples = rng.sample(examples, min(batch, len(examples)))
        enc = tokenizer(
            examples, padding="max_length", truncation=True, max_length=length, return_tensors="pt"
        )
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
    model.eval()
    torch.set_num_threads(threads)
