"""The extension's TypeScript unit tests (`npm test` in extension/: tsc, then node's test runner), run
from pytest so `make test` covers them. Offline; needs the node modules from
scripts/provision/vscode-e2e.sh (skipped locally without them, failing with CI=true)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.e2e.extension_build import EXTENSION, compile_extension

pytestmark = pytest.mark.integration


def test_extension_unit_tests() -> None:
    if not shutil.which("npm") or not (EXTENSION / "node_modules" / ".bin" / "tsc").exists():
        message = "extension node modules missing: run scripts/provision/vscode-e2e.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    r = subprocess.run(
        ["npm", "test", "--silent"], cwd=EXTENSION, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"npm test failed:\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}"
    # node's TAP summary: every test written in extension/test/ ran and passed (a runner that
    # found no files, or skipped some, also reports "fail 0").
    summary = dict(re.findall(r"^# (tests|pass|fail|skipped|todo|cancelled) (\d+)$", r.stdout, re.M))
    sources = (EXTENSION / "test").glob("*.test.ts")
    written = sum(len(re.findall(r"^\s*(?:test|it)\(", f.read_text(), re.M)) for f in sources)
    assert written > 0 and summary == {
        "tests": str(written),
        "pass": str(written),
        "fail": "0",
        "skipped": "0",
        "todo": "0",
        "cancelled": "0",
    }, (written, summary)


# Settings as users write them, turned into the server's configuration by the extension's own code
# (extension/src/settings.ts); the server must accept every one of them.
SETTINGS_CASES = {
    "defaults": {},
    "in-process model": {"completion.model": "/models/tiny", "completion.device": "cpu"},
    "remote model": {
        "completion.backend": "openai",
        "completion.url": "http://gpu:8000",
        "completion.model": "starcoder2",
        "completion.template": "starcoder",
        "membership.url": "http://127.0.0.1:8700",
        "membership.policy": "block",
        "membership.licenseAllow": ["MIT"],
    },
}
MAPPER = """
const { toServerConfig } = require('./out/src/settings');
const pkg = require('./package.json');
const cases = JSON.parse(process.argv[1]);
const out = {};
for (const [name, values] of Object.entries(cases)) {
  const d = {};
  for (const [k, v] of Object.entries(pkg.contributes.configuration.properties)) d[k.slice(10)] = v.default;
  Object.assign(d, values);
  out[name] = toServerConfig((k) => d[k], { completion: 'tok', membership: 'mtok' });
}
console.log(JSON.stringify(out));
"""


def test_extension_settings_are_valid_server_configuration() -> None:
    import json

    from completion.settings import load_settings
    from lsp_server.config import ConfigLayers

    compile_extension()
    r = subprocess.run(
        ["node", "-e", MAPPER, json.dumps(SETTINGS_CASES)],
        cwd=EXTENSION, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    configs = json.loads(r.stdout)
    for name, cfg in configs.items():
        layers = ConfigLayers({})
        server = layers.update("init", cfg)  # raises ConfigError on any unknown or invalid key
        if name == "defaults":
            assert server.completion is None  # nothing configured: the server's own defaults rule
            continue
        assert server.completion is not None
        settings = load_settings(server.completion)
        assert settings.token == "tok", name
        assert server.membership.token == "mtok"
    assert configs["remote model"]["membership"]["policy"] == "block"
