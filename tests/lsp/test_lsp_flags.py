"""Settings checked where they arrive: `stacklens lsp` flags are one layer (over the
environment, under the editor's settings; `stacklens lsp` exits 2 on a bad one, and none is
written into ``os.environ``), and the editor's completion settings are refused on arrival."""

from __future__ import annotations

import pytest

from lsp_server.config import ConfigError, ConfigLayers, check_flags


def test_flags_sit_between_the_environment_and_the_editor() -> None:
    env = {"STACKLENS_INDEX": "/from/env", "STACKLENS_MEMBERSHIP_TOKEN": "t"}
    layers = ConfigLayers(env, flags={"membership": {"index": "/from/flag", "url": None}})
    assert layers.current.membership.index == "/from/flag"  # the flag wins over the environment
    assert layers.current.membership.token == "t"  # what the flag does not name stays
    layers.update("push", {"membership": {"index": "/from/editor"}})
    assert layers.current.membership.index == "/from/editor"
    layers.update("push", {"membership": {"index": None}})  # cleared in the editor: back to the flag
    assert layers.current.membership.index == "/from/flag"


def test_an_invalid_flag_names_its_setting() -> None:
    with pytest.raises(ConfigError, match=r"stacklens\.membership\.min_chars"):
        check_flags({"membership": {"min_chars": 1}})


def test_completion_settings_are_refused_where_the_editor_sends_them() -> None:
    layers = ConfigLayers({})
    good = {"completion": {"backend": "openai", "url": "http://127.0.0.1:1", "model": "m"}}
    assert layers.update("push", good).completion == good["completion"]
    with pytest.raises(ConfigError, match=r"stacklens\.completion.*temperature"):
        layers.update("push", {"completion": {**good["completion"], "temperature": 7}})
    with pytest.raises(ConfigError, match="needs `url`"):
        layers.update("push", {"completion": {"backend": "tgi"}})
    assert layers.current.completion == good["completion"]  # the last valid settings stay
    # Tuning alone (no backend, model or url) is for the engines llm-ls clients describe.
    assert layers.update("push", {"completion": {"timeoutS": 30}}).completion == {"timeout_s": 30}
