"""FIM templates: exact prompt strings and token ids per family, detection, custom templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from completion.settings import CustomTemplate
from completion.templates import (
    TEMPLATES,
    CustomTemplateSpec,
    SourceFile,
    detect_from_model_id,
    detect_from_tokens,
    get_template,
    resolve_template,
)
from fixtures.tiny_model import FAMILIES, make_tiny_tokenizer
from stacklens.errors import ConfigError

PRE, SUF = "def f(x):\n    return ", "\n\nprint(f(2))\n"

EXPECTED = {
    "starcoder": f"<fim_prefix>{PRE}<fim_suffix>{SUF}<fim_middle>",
    "starcoder2": f"<fim_prefix>{PRE}<fim_suffix>{SUF}<fim_middle>",
    "granite": f"<fim_prefix>{PRE}<fim_suffix>{SUF}<fim_middle>",
    "santacoder": f"<fim-prefix>{PRE}<fim-suffix>{SUF}<fim-middle>",
    "codellama": f"<PRE> {PRE} <SUF>{SUF} <MID>",
    "deepseek": f"<｜fim▁begin｜>{PRE}<｜fim▁hole｜>{SUF}<｜fim▁end｜>",
    "qwen": f"<|fim_prefix|>{PRE}<|fim_suffix|>{SUF}<|fim_middle|>",
    "codegemma": f"<|fim_prefix|>{PRE}<|fim_suffix|>{SUF}<|fim_middle|>",
    "codestral": f"[SUFFIX]{SUF}[PREFIX]{PRE}",
}


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_prompt_string_per_family(family: str) -> None:
    assert TEMPLATES[family].render(PRE, SUF) == EXPECTED[family]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_token_ids_per_family(family: str, tmp_path: Path) -> None:
    """The sentinels are single special tokens at the expected places; the code in between is
    tokenized exactly as on its own."""
    tok = make_tiny_tokenizer(tmp_path, family)
    t = TEMPLATES[FAMILIES[family].template]
    ids = tok(t.render(PRE, SUF), add_special_tokens=False)["input_ids"]

    def one(token: str) -> int:
        enc = tok(token, add_special_tokens=False)["input_ids"]
        assert len(enc) == 1, f"{token!r} is not a single token"
        return int(enc[0])

    def enc(text: str) -> list[int]:
        return list(tok(text, add_special_tokens=False)["input_ids"])

    if t.order == "codestral":
        expected = [one(t.fim_suffix), *enc(SUF), one(t.fim_prefix), *enc(PRE)]
    else:
        sep = t.prefix_sep
        expected = [
            one(t.fim_prefix),
            *enc(sep + PRE + sep),
            one(t.fim_suffix),
            *enc(SUF + t.middle_sep),
            one(t.fim_middle),
        ]
    assert ids == expected
    if FAMILIES[family].add_bos:
        assert tok(t.render(PRE, SUF))["input_ids"][0] == tok.bos_token_id


def test_codellama_spaces_matter() -> None:
    prompt = TEMPLATES["codellama"].render("a = ", "\nb = 2")
    assert prompt == "<PRE> a =  <SUF>\nb = 2 <MID>"


def test_repo_level_formats() -> None:
    files = [SourceFile("util.py", "def helper():\n    pass")]
    qwen = TEMPLATES["qwen"].render("x = ", "\n", files, "main.py", "proj")
    assert qwen == (
        "<|repo_name|>proj\n<|file_sep|>util.py\ndef helper():\n    pass\n"
        "<|file_sep|>main.py\n<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>"
    )
    sc2 = TEMPLATES["starcoder2"].render("x = ", "\n", files, "main.py", "proj")
    assert sc2 == (
        "<repo_name>proj<file_sep>util.py\ndef helper():\n    pass<file_sep>"
        "<fim_prefix>main.py\nx = <fim_suffix>\n<fim_middle>"
    )
    ds = TEMPLATES["deepseek"].render("x = ", "\n", files, "main.py")
    assert ds.startswith("#util.py\ndef helper():\n    pass\n#main.py\n<｜fim▁begin｜>x = ")
    cs = TEMPLATES["codestral"].render("x = ", "\n", files, "main.py")
    assert cs == "[SUFFIX]\n[PREFIX]+++++ util.py\ndef helper():\n    pass\n\n+++++ main.py\nx = "
    assert not TEMPLATES["starcoder"].has_repo_format


def test_empty_suffix_becomes_newline() -> None:
    assert TEMPLATES["qwen"].render("x = ", "") == "<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_detect_from_tokenizer(family: str, tmp_path: Path) -> None:
    tok = make_tiny_tokenizer(tmp_path, family)
    expected = "starcoder" if family == "granite" else FAMILIES[family].template
    assert detect_from_tokens(tok.get_vocab()) == expected


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        ("Qwen/Qwen2.5-Coder-1.5B", "qwen"),
        ("bigcode/starcoder2-3b", "starcoder2"),
        ("bigcode/starcoderbase-1b", "starcoder"),
        ("bigcode/santacoder", "santacoder"),
        ("codellama/CodeLlama-7b-hf", "codellama"),
        ("deepseek-ai/deepseek-coder-1.3b-base", "deepseek"),
        ("google/codegemma-2b", "codegemma"),
        ("mistralai/Codestral-22B-v0.1", "codestral"),
        ("ibm-granite/granite-3b-code-base", "granite"),
        ("qwen2.5-coder:1.5b-base", "qwen"),
        ("gpt2", None),
    ],
)
def test_detect_from_model_id(model_id: str, family: str | None) -> None:
    assert detect_from_model_id(model_id) == family


def test_resolution_order_and_errors() -> None:
    # A configured name wins over detection; granite's id wins over its starcoder-like tokens.
    assert resolve_template("qwen", model_id="bigcode/starcoder").name == "qwen"
    assert resolve_template(None, model_id="granite-8b-code", tokens=["<fim_prefix>"]).name == "granite"
    assert resolve_template("auto", tokens=["<fim_prefix>", "<file_sep>"]).name == "starcoder2"
    with pytest.raises(ConfigError, match="set `template`"):
        resolve_template(None, model_id="gpt2", tokens=["hello"])
    with pytest.raises(ConfigError, match="unknown FIM template"):
        get_template("nope")


def test_custom_template_from_config() -> None:
    cfg = CustomTemplate(fim_prefix="<P>", fim_suffix="<S>", fim_middle="<M>", stop=["<E>"])
    t = resolve_template(cfg.spec())
    assert t.render("a", "b") == "<P>a<S>b<M>"
    assert "<E>" in t.special_tokens
    spm = CustomTemplateSpec("<P>", "<S>", "<M>", suffix_first=True).build()
    assert spm.render("a", "b") == "<P><S>b<M>a"


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("starcoder", f"<fim_prefix><fim_suffix>{SUF}<fim_middle>{PRE}"),
        ("santacoder", f"<fim-prefix><fim-suffix>{SUF}<fim-middle>{PRE}"),
        ("codellama", f"<PRE> <SUF>{SUF} <MID> {PRE}"),
        ("deepseek", f"<｜fim▁begin｜><｜fim▁hole｜>{SUF}<｜fim▁end｜>{PRE}"),
    ],
)
def test_suffix_first_order_per_family(family: str, expected: str) -> None:
    """SPM as each family was trained with it (reference: fim-performance.md's table)."""
    t = TEMPLATES[family].ordered("spm")
    assert t.render(PRE, SUF) == expected
    assert TEMPLATES[family].ordered("auto") is TEMPLATES[family]
    assert t.ordered("psm").render(PRE, SUF) == EXPECTED[family]


def test_suffix_first_refused_where_not_trained() -> None:
    for family in ("qwen", "codegemma", "granite"):
        with pytest.raises(ConfigError, match="not trained with suffix-first"):
            TEMPLATES[family].ordered("spm")
    with pytest.raises(ConfigError, match="suffix-first already"):
        TEMPLATES["codestral"].ordered("psm")
    assert TEMPLATES["codestral"].ordered("auto").render(PRE, SUF) == EXPECTED["codestral"]
