"""`stacklens lsp` flags are one settings layer: over the environment, under the editor's
settings, validated where they are given (`stacklens lsp` exits 2), never written into
``os.environ``."""

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
