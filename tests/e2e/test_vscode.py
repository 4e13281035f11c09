"""End to end in a real VS Code: the stacklens extension (.vsix built from extension/) installed in
code-server 4.100.3 (VS Code 1.100), driven by Debian's chromium through playwright-core.

The workspace points the extension at a tiny local model trained for about a minute on a corpus
file (so it reproduces it) and at an index of that corpus, by a path relative to the workspace. It
also holds files named like the server's dependencies (attr.py, json.py, logging.py ...) that raise
when imported: the server must not see them (it runs isolated, outside the workspace). The node driver
(tests/e2e/driver/run.js) types a line, waits for ghost text from our server, accepts it with Tab,
and checks the match highlight (underline + gutter mark), its hover (source, licence), the status
bar, the "show matches", "search selection" and "toggle" commands, and that the server is
restarted after it is killed.
Screenshots of every step: artifacts/e2e/*.png. Set STACKLENS_E2E_UPDATE_DOCS_IMAGE=1 to refresh
docs/images/vscode-match-hover.png from the hover screenshot.

Needs scripts/provision/vscode-e2e.sh; skips locally when its results are missing, fails with CI=true.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PROVISION = "scripts/provision/vscode-e2e.sh"
EXTENSION = ROOT / "extension"
DRIVER = ROOT / "tests" / "e2e" / "driver"
ARTIFACTS = ROOT / "artifacts" / "e2e"
DOCS_IMAGE = ROOT / "docs" / "images" / "vscode-match-hover.png"
CACHE = Path(os.environ.get("STACKLENS_E2E_CACHE", Path.home() / ".cache" / "stacklens"))
CODE_SERVER_DIR = Path(os.environ.get("STACKLENS_CODE_SERVER_DIR", CACHE / "code-server"))
DRIVER_TIMEOUT_S = 420  # the driver's own watchdog; subprocess timeout is a little longer

# The corpus file the tiny model memorises; the typed line is its first line, the suggestion its body
# (VS Code's suggestion ends with the function, so the body alone must exceed minChars).
RING_FILE = textwrap.dedent(
    """\
    def ring_buffer_push(ring, head, capacity, value):
        if capacity <= 0:
            raise ValueError("ring buffer capacity must be positive")
        ring[head % capacity] = value
        head = (head + 1) % capacity
        if len(ring) > capacity:
            del ring[capacity:]
        return head


    def ring_buffer_items(ring, head, capacity, size):
        start = (head - size) % capacity
        return [ring[(start + i) % capacity] for i in range(size)]
    """
)
TYPED = RING_FILE.splitlines()[0]
# Workspace files that would shadow the server's own imports if it ran in, or imported from, the
# workspace; importing any of them leaves a mark and raises.
SHADOWING = ("attr", "json", "typing", "logging", "numpy")
REPO = "acme/ring"
TRAIN_STEPS = 300


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _tools() -> dict[str, str]:
    """Paths of everything provisioning installs; skip (fail in CI) naming the script when absent."""
    found = {
        "code_server": CODE_SERVER_DIR / "node_modules" / ".bin" / "code-server",
        "chromium": Path(shutil.which("chromium") or "/usr/bin/chromium"),
        "vsce": EXTENSION / "node_modules" / ".bin" / "vsce",
        "playwright": DRIVER / "node_modules" / "playwright-core" / "package.json",
    }
    missing = [name for name, p in found.items() if not p.exists()]
    if not shutil.which("node"):
        missing.append("node")
    if missing:
        _missing(f"VS Code end-to-end prerequisites missing ({', '.join(missing)}): run {PROVISION}")
    return {k: str(v) for k, v in found.items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from index.builder import build
    from index.config import BuildLimits
    from index.sources import DirectorySource

    corpus = tmp_path_factory.mktemp("corpus") / "ring"
    corpus.mkdir()
    (corpus / "ring.py").write_text(RING_FILE, encoding="utf-8")
    path = tmp_path_factory.mktemp("index") / "idx"
    source = DirectorySource(
        corpus,
        BuildLimits(),
        repo=REPO,
        license="MIT",
        url_template="https://example.com/acme/ring/{path}",
    )
    build(path, [source], progress=False)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny starcoder-family model that has memorised RING_FILE. Cached by content (corpus,
    steps, the model builder's source) under ~/.cache/stacklens, because training takes ~a minute."""
    pytest.importorskip("transformers", reason="transformers is missing: run `make install`")
    import fixtures.tiny_model as tm

    key = hashlib.sha256(
        (RING_FILE + str(TRAIN_STEPS) + Path(tm.__file__).read_text(encoding="utf-8")).encode()
    ).hexdigest()[:8]
    cached = CACHE / "e2e-model" / f"tiny-starcoder-{key}"  # the status bar shows this name
    if (cached / "config.json").is_file():
        return cached
    train = tmp_path_factory.mktemp("train") / "ring.py"
    train.write_text(RING_FILE, encoding="utf-8")
    tmp = cached.with_name(cached.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tm.make_tiny_model(tmp, family="starcoder", train_files=[str(train)], train_steps=TRAIN_STEPS)
    shutil.rmtree(cached, ignore_errors=True)
    tmp.rename(cached)  # atomic: an interrupted run never leaves a half-written cache entry
    return cached


@pytest.fixture(scope="module")
def vsix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .vsix built from the current sources (compile + vsce package)."""
    tools = _tools()
    out = tmp_path_factory.mktemp("vsix") / "stacklens.vsix"
    for cmd in (["npm", "run", "--silent", "compile"], [tools["vsce"], "package", "--out", str(out)]):
        r = subprocess.run(cmd, cwd=EXTENSION, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    return out


def test_ghost_text_accept_highlight_and_hover_in_vscode(
    vsix: Path, tiny_model: Path, corpus_index: Path, tmp_path: Path
) -> None:
    tools = _tools()
    workspace = tmp_path / "workspace"
    (workspace / ".vscode").mkdir(parents=True)
    (workspace / "ring.py").write_text("", encoding="utf-8")
    marker = tmp_path / "workspace-code-ran"
    for name in SHADOWING:
        (workspace / f"{name}.py").write_text(
            f"open({str(marker)!r}, 'a').write('{name} ')\n"
            f"raise RuntimeError('the workspace file {name}.py was imported by the server')\n",
            encoding="utf-8",
        )
    # Relative: the extension resolves it against the workspace folder (the server runs elsewhere).
    (workspace / "corpus-index").symlink_to(corpus_index, target_is_directory=True)
    settings = {
        "stacklens.pythonPath": sys.executable,
        "stacklens.completion.backend": "transformers",
        "stacklens.completion.model": str(tiny_model),
        "stacklens.completion.device": "cpu",
        "stacklens.completion.temperature": 0,
        "stacklens.membership.index": "corpus-index",
        "stacklens.membership.minChars": 100,
        "stacklens.debounceMs": 50,
        "stacklens.logLevel": "debug",
    }
    (workspace / ".vscode" / "settings.json").write_text(json.dumps(settings, indent=1))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    env = {
        **os.environ,
        "CODE_SERVER": tools["code_server"],
        "CHROMIUM": tools["chromium"],
        "VSIX": str(vsix),
        "WORKSPACE": str(workspace),
        "FILE": "ring.py",
        "TYPE_TEXT": TYPED,
        "EXPECT": "return head",
        "EXPECT_SOURCE": f"{REPO}/ring.py",
        "EXPECT_MODEL": tiny_model.name,
        "ARTIFACTS": str(ARTIFACTS),
        "STATE": str(tmp_path / "state"),
        "PORT": str(_free_port()),
        "TIMEOUT_S": str(DRIVER_TIMEOUT_S),
        # The tiny model was trained without cross-file context; the server would add some.
        "STACKLENS_CONFIG": json.dumps({"completion": {"crossfileMaxSnippets": 0}}),
    }
    if os.environ.get("STACKLENS_E2E_UPDATE_DOCS_IMAGE") == "1":
        env["DOCS_IMAGE"] = str(DOCS_IMAGE)
    try:
        r = subprocess.run(
            ["node", str(DRIVER / "run.js")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=DRIVER_TIMEOUT_S + 60,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the VS Code driver did not finish: {exc.stdout!r:.4000}")
    lines = r.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    failed = [s for s in summary.get("steps", []) if not s["ok"]]
    assert r.returncode == 0 and summary.get("ok"), (
        f"VS Code e2e failed (screenshots in {ARTIFACTS}): {failed or summary.get('error')}\n"
        f"{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    )
    names = [s["name"] for s in summary["steps"]]
    assert names[-1] == "10-restart-after-crash", names
    assert (ARTIFACTS / "06-match-hover.png").is_file()
    assert not marker.exists(), f"workspace code ran in the server: {marker.read_text()}"
