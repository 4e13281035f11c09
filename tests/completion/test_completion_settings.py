"""CompletionSettings: flat dicts in, one class per backend out; tokens stay secret."""

from __future__ import annotations

import logging

import pytest

from completion.settings import (
    CompletionSettings,
    LlamaCppSettings,
    OllamaSettings,
    OpenAISettings,
    TransformersSettings,
    load_settings,
)
from stacklens.errors import ConfigError


def test_dispatch_on_backend_from_dict_and_constructor() -> None:
    s = CompletionSettings.model_validate({"backend": "transformers", "model": "/path/to/dir"})
    assert isinstance(s, TransformersSettings) and s.kv_reuse and s.model == "/path/to/dir"
    # The constructor dispatches too (mypy sees only the base class).
    o = CompletionSettings(backend="openai", url="http://127.0.0.1:1", fim_mode="suffix")  # type: ignore[call-arg]
    assert isinstance(o, OpenAISettings) and o.fim_mode == "suffix"
    assert isinstance(CompletionSettings.model_validate({"backend": "ollama"}), OllamaSettings)
    assert isinstance(load_settings({"backend": "llamacpp"}), LlamaCppSettings)


def test_token_from_env_is_secret(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("STACKLENS_API_TOKEN", "sekret-123")
    s = load_settings({"backend": "tgi", "url": "http://127.0.0.1:1"})
    assert s.token == "sekret-123"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("settings: %s %r", s, s)
    assert "sekret-123" not in caplog.text
    assert "sekret-123" not in s.model_dump_json()
    explicit = load_settings({"backend": "tgi", "url": "http://x", "api_token": "other"})
    assert explicit.token == "other"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"backend": "tgi"}, "needs `url`"),
        ({"backend": "transformers"}, "needs `model`"),
        ({"backend": "nope"}, "backend"),
        ({"backend": "openai", "url": "http://x", "temperature": 9}, "temperature"),
    ],
)
def test_invalid_settings_say_what_to_fix(data: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings(data)


def test_custom_template_in_settings() -> None:
    s = load_settings(
        {
            "backend": "openai",
            "url": "http://x",
            "template": {"fim_prefix": "<P>", "fim_suffix": "<S>", "fim_middle": "<M>"},
        }
    )
    assert not isinstance(s.template, str) and s.template is not None
    assert s.template.spec().build().render("a", "b") == "<P>a<S>b<M>"


def test_unknown_keys_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        s = load_settings({"backend": "tgi", "url": "http://x", "max_new_token": 5})
    assert s.max_new_tokens == CompletionSettings.model_fields["max_new_tokens"].default
    assert "max_new_token" in caplog.text


def test_one_registry_names_every_backend() -> None:
    """The settings union, `make_backend` and the extension's setting all follow BACKENDS."""
    import importlib
    import json
    from pathlib import Path

    from completion.settings import BACKENDS

    for name, entry in BACKENDS.items():
        data = {"backend": name, "model": "m", "url": "http://127.0.0.1:1"}
        assert type(CompletionSettings.model_validate(data)) is entry.settings
        module, cls = entry.implementation.split(":")
        assert getattr(importlib.import_module(module), cls).name == name
    package = json.loads((Path(__file__).parents[2] / "extension" / "package.json").read_text())
    props = package["contributes"]["configuration"]["properties"]
    assert sorted(props["stacklens.completion.backend"]["enum"]) == sorted(BACKENDS)
    with pytest.raises(ConfigError, match="use one of transformers, tgi"):
        CompletionSettings(backend="nope")
