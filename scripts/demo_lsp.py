"""`make demo`, step 6: a completion and a highlighted match through the language server.

Usage: ``python scripts/demo_lsp.py INDEX_PATH`` (scripts/demo.py passes its stdlib index).

A tiny model is trained on one short stdlib module until it reproduces it (about a minute of CPU
on the first run, then cached under .stacklens/demo/):
exactly the memorisation stacklens warns about. The real server (``python -m lsp_server.cli lsp``)
runs over stdio with that model and the stdlib index; this script plays the editor with pygls's
client: it asks for an inline completion, shows the match the item carries, accepts it, and shows
the diagnostic and hover that follow. Last, it opens a copied snippet and shows the highlight
from the background check. Every wait is bounded; any failure exits non-zero with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".stacklens" / "demo"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
LOG = WORK / "lsp-server.log"

# antigravity.py is short (500 bytes) yet holds a distinctive 10-line function, so a tiny model
# memorises it in about a minute of CPU and the function alone passes the 150-char minimum.
TRAIN_FILE = STDLIB / "antigravity.py"
FUNCTION = "def geohash("
# hidden=128: with the default 64 the model garbles the docstring after 120 steps.
MODEL_ARGS: dict[str, Any] = {
    "family": "starcoder",
    "arch": "gpt_bigcode",
    "train_steps": 120,
    "seed": 0,
    "hidden": 128,
    "layers": 2,
}
# A snippet copied from the corpus for the background check (step 4).
COPIED_FILE, COPIED_FUNCTION, COPIED_LINES = STDLIB / "textwrap.py", "def dedent(", 30

TRAIN_TIMEOUT_S = 300.0
ENGINE_TIMEOUT_S = 120.0  # the server loads torch and the model in the background
REQUEST_TIMEOUT_S = 60.0
DIAGNOSTIC_TIMEOUT_S = 30.0


class DemoError(Exception):
    """A step failed; the message says which and why."""


def heading(text: str) -> None:
    print(f"\n  \033[1m-- {text}\033[0m", flush=True)


def show(text: str, indent: str = "      ") -> None:
    print(textwrap.indent(text.rstrip("\n"), indent, lambda _: True), flush=True)


# -- the model ---------------------------------------------------------------------------------


def _model_key() -> str:
    """Everything that changes the trained weights: the training text, the arguments, the
    trainer's source and the library versions."""
    h = hashlib.sha256()
    h.update(TRAIN_FILE.read_bytes())
    h.update(json.dumps(MODEL_ARGS, sort_keys=True).encode())
    h.update((ROOT / "fixtures" / "tiny_model.py").read_bytes())
    for dist in ("torch", "transformers", "tokenizers"):
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=missing".encode())
    return h.hexdigest()[:16]


_TRAIN = """\
import json, sys
from fixtures.tiny_model import make_tiny_model
make_tiny_model(sys.argv[1], train_files=[sys.argv[2]], **json.loads(sys.argv[3]))
"""


def ensure_model() -> Path:
    """The cached model directory, trained on first use (in a subprocess, so it is bounded)."""
    out = WORK / f"tiny-model-{_model_key()}"
    done = out / ".complete"
    if done.is_file():
        print(f"    model: {out.relative_to(ROOT)} (cached)", flush=True)
        return out
    for stale in WORK.glob("tiny-model-*"):  # earlier keys: the inputs changed since
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"    training a tiny model on {TRAIN_FILE.name} ({MODEL_ARGS['train_steps']} steps, "
        "first run only) ...",
        flush=True,
    )
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _TRAIN, str(tmp), str(TRAIN_FILE), json.dumps(MODEL_ARGS)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TRAIN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"training did not finish in {TRAIN_TIMEOUT_S:.0f} s") from exc
    if proc.returncode != 0:
        raise DemoError(f"training failed:\n{proc.stderr[-2000:]}")
    done_tmp = tmp / ".complete"
    done_tmp.write_text("ok\n")
    tmp.rename(out)  # atomic: an interrupted run never leaves a half-written cache
    print(f"    model: {out.relative_to(ROOT)} (trained in {time.monotonic() - started:.0f} s)")
    return out


# -- the editor --------------------------------------------------------------------------------


class Editor:
    """The client side: records diagnostics and messages the server pushes."""

    def __init__(self) -> None:
        self.client = LanguageClient("stacklens-demo", "1")
        self.diagnostics: dict[str, list[T.Diagnostic]] = {}
        self.messages: list[str] = []
        self.versions: dict[str, int] = {}

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(params: T.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)

        @self.client.feature(T.WINDOW_SHOW_MESSAGE)
        def _message(params: T.ShowMessageParams) -> None:
            self.messages.append(params.message)

    async def request(self, what: str, awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, REQUEST_TIMEOUT_S)
        except TimeoutError as exc:
            raise DemoError(f"{what}: no answer in {REQUEST_TIMEOUT_S:.0f} s") from exc
        except DemoError:
            raise
        except Exception as exc:  # the server answered with an error, or exited
            raise DemoError(f"{what} failed: {exc}") from exc

    async def command(self, name: str, *args: Any) -> Any:
        return await self.request(
            name,
            self.client.workspace_execute_command_async(
                T.ExecuteCommandParams(command=name, arguments=list(args) or None)
            ),
        )

    def open(self, uri: str, text: str) -> None:
        self.versions[uri] = 1
        self.client.text_document_did_open(
            T.DidOpenTextDocumentParams(
                text_document=T.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
            )
        )

    def insert(self, uri: str, at: T.Position, text: str) -> None:
        """An incremental didChange, as an editor sends when ghost text is accepted."""
        self.versions[uri] += 1
        self.client.text_document_did_change(
            T.DidChangeTextDocumentParams(
                text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[
                    T.TextDocumentContentChangePartial(range=T.Range(start=at, end=at), text=text)
                ],
            )
        )

    async def until(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                extra = f" (server said: {self.messages[-1]})" if self.messages else ""
                raise DemoError(f"{what}: nothing after {timeout:.0f} s{extra}")
            await asyncio.sleep(0.05)

    async def wait_diagnostics(self, uri: str, origin: str) -> list[T.Diagnostic]:
        """Diagnostics for ``uri`` from ``origin`` ("accepted" or "scan"): a document can get
        both, and the demo shows each where it comes from."""

        def found() -> list[T.Diagnostic]:
            return [
                d
                for d in self.diagnostics.get(uri, [])
                if isinstance(d.data, dict) and d.data.get("origin") == origin
            ]

        name = uri.rsplit("/", 1)[-1]
        await self.until(f"{origin} diagnostics for {name}", lambda: bool(found()), DIAGNOSTIC_TIMEOUT_S)
        return found()


def capabilities() -> T.ClientCapabilities:
    # No workspace.configuration: initializationOptions are the whole configuration here.
    return T.ClientCapabilities(
        text_document=T.TextDocumentClientCapabilities(
            synchronization=T.TextDocumentSyncClientCapabilities(did_save=True),
            inline_completion=T.InlineCompletionClientCapabilities(),
            hover=T.HoverClientCapabilities(content_format=[T.MarkupKind.Markdown]),
            publish_diagnostics=T.PublishDiagnosticsClientCapabilities(),
        ),
        window=T.WindowClientCapabilities(show_document=T.ShowDocumentClientCapabilities(True)),
        general=T.GeneralClientCapabilities(position_encodings=[T.PositionEncodingKind.Utf16]),
    )


def options(index: Path, model: Path) -> dict[str, Any]:
    return {
        "completion": {
            "backend": "transformers",
            "model": str(model),
            "device": "cpu",
            "temperature": 0,  # greedy: the memorised text, the same every run
            "maxNewTokens": 160,
            "crossfileMaxSnippets": 0,  # the tiny model never saw cross-file context
        },
        "membership": {"index": str(index), "policy": "warn"},
        "debounceMs": 0,
        "maxCandidates": 1,
    }


def describe_range(r: T.Range) -> str:
    return f"lines {r.start.line + 1}:{r.start.character + 1} to {r.end.line + 1}:{r.end.character + 1}"


def show_match(m: dict[str, Any]) -> None:
    src, span = m["source"], m["source_span"]
    show(
        f"{src['repo']}/{src['path']} lines {span['start_line']}-{span['end_line']} "
        f"({src.get('license') or 'licence unknown'}), {m['kind']}, score {m['score']:.2f}, "
        f"{m['matched_chars']} chars\n{src.get('url') or ''}"
    )


def end_position(text: str) -> T.Position:
    lines = text.split("\n")
    return T.Position(line=len(lines) - 1, character=len(lines[-1]))  # ASCII: UTF-16 == str


async def run(index: Path, model: Path) -> None:
    editor = Editor()
    client = editor.client
    workspace = WORK / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    # stderr carries the server's log; a file keeps an unread pipe from ever filling up.
    cmd = [sys.executable, "-m", "lsp_server.cli", "lsp", "--log-level", "info"]
    # The path travels as $0, so no quoting of it inside the shell text is needed.
    await client.start_io("/bin/sh", "-c", 'exec "$@" 2>>"$0"', str(LOG), *cmd, cwd=str(ROOT))
    try:
        started = time.monotonic()
        await editor.request(
            "initialize",
            client.initialize_async(
                T.InitializeParams(
                    capabilities=capabilities(),
                    root_uri=workspace.as_uri(),
                    initialization_options=options(index, model),
                )
            ),
        )
        client.initialized(T.InitializedParams())
        state: dict[str, Any] = {}

        async def engine_state() -> str:
            # quiet: polled, so no window/showMessage each time
            status = await editor.command("stacklens.status", {"quiet": True})
            state.update(status["completion"]["configured"] or {})
            return str(state.get("state"))

        deadline = time.monotonic() + ENGINE_TIMEOUT_S
        while (s := await engine_state()) == "starting" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if s != "ready":
            raise DemoError(f"the completion engine is {s}: {state.get('error') or 'timed out'}")
        print(
            f"    server: stacklens lsp on stdio, model loaded in {time.monotonic() - started:.1f} s",
            flush=True,
        )

        # 1. A completion at the start of a memorised function.
        source = TRAIN_FILE.read_text(encoding="utf-8")
        # The cursor ends the `def` line, as after typing it: the ghost text is the whole body.
        head = source[: source.index("\n", source.index(FUNCTION))]
        uri = (workspace / "geo.py").as_uri()
        editor.open(uri, head)
        cursor = end_position(head)
        heading(f"The editor holds the start of {TRAIN_FILE.name}; inline completion at the cursor")
        show(head + "█")
        result = await editor.request(
            "textDocument/inlineCompletion",
            client.text_document_inline_completion_async(
                T.InlineCompletionParams(
                    text_document=T.TextDocumentIdentifier(uri=uri),
                    position=cursor,
                    context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
                )
            ),
        )
        items = result.items if isinstance(result, T.InlineCompletionList) else result or []
        if not items:
            said = "; ".join(editor.messages) or "no message"
            raise DemoError(f"the server offered no completion (server said: {said})")
        item = items[0]
        ghost = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        heading("Ghost text suggested by the model")
        show(ghost.lstrip("\n"))

        # 2. The membership check rides on the item's accept command.
        heading("Membership check of the suggestion (policy warn: shown, with its source)")
        if item.command is None or not item.command.arguments:
            raise DemoError("the item carries no stacklens.accept command")
        accept_args: dict[str, Any] = item.command.arguments[0] or {}
        matches = accept_args.get("matches") or []
        if not matches:
            raise DemoError("the suggestion was not found in the corpus: the model did not memorise it")
        for m in matches[:2]:
            show_match(m)

        # 3. Accept: the edit first, then the item's command, in the order VS Code sends them.
        at = item.range.start if item.range else cursor
        editor.insert(uri, at, ghost)
        await editor.command(item.command.command, *item.command.arguments)
        diag = (await editor.wait_diagnostics(uri, "accepted"))[0]
        heading("Accepted: the inserted code is highlighted")
        show(f"{describe_range(diag.range)}  [{diag.source} {diag.code}]\n{diag.message}")
        hover = await editor.request(
            "textDocument/hover",
            client.text_document_hover_async(
                T.HoverParams(text_document=T.TextDocumentIdentifier(uri=uri), position=diag.range.start)
            ),
        )
        if hover is None:
            raise DemoError("no hover on the highlighted range")
        heading("Hover on the highlight")
        show(hover.contents.value if isinstance(hover.contents, T.MarkupContent) else str(hover.contents))

        # 4. A pasted snippet: the background check on open highlights it.
        lines = COPIED_FILE.read_text(encoding="utf-8").splitlines(keepends=True)
        first = next(i for i, line in enumerate(lines) if line.startswith(COPIED_FUNCTION))
        snippet = "import re\n\n" + "".join(lines[first : first + COPIED_LINES])
        pasted = (workspace / "pasted.py").as_uri()
        heading(f"A file with {COPIED_FILE.name}'s {COPIED_FUNCTION[4:-1]}() pasted in, opened")
        show("".join(snippet.splitlines(keepends=True)[:6]) + "    ...")
        editor.open(pasted, snippet)
        diags = await editor.wait_diagnostics(pasted, "scan")
        heading("Background check on open")
        for d in diags:
            show(f"{describe_range(d.range)}  [{d.source} {d.code}]\n{d.message}")
        status = await editor.command("stacklens.status", {"quiet": True})
        p50 = status["p50Ms"]
        print(
            f"\n    completion: model {p50['engine']:.0f} ms, membership check {p50['check']:.0f} ms"
            f"; server log: {LOG.relative_to(ROOT)}",
            flush=True,
        )
        await editor.request("shutdown", client.shutdown_async(None))
        client.exit(None)
    finally:
        # Already gone, or stuck: the lines below kill it either way.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.stop(), 10)
        proc = getattr(client, "_server", None)  # pygls keeps the process here
        if proc is not None and proc.returncode is None:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("index", type=Path, help="embedded index of the stdlib (scripts/demo.py builds it)")
    args = p.parse_args(argv)
    started = time.monotonic()
    LOG.unlink(missing_ok=True)  # a failure must not show an earlier run's log
    try:
        if not (args.index / "manifest.json").is_file():
            raise DemoError(f"{args.index} is not an index (run scripts/demo.py)")
        WORK.mkdir(parents=True, exist_ok=True)
        model = ensure_model()
        asyncio.run(run(args.index.resolve(), model))
    except DemoError as exc:
        print(f"\n    demo step failed: {exc}", file=sys.stderr)
        if LOG.is_file() and LOG.stat().st_size:
            tail = LOG.read_text(errors="replace").splitlines()[-15:]
            print("    server log (last lines):", file=sys.stderr)
            print(textwrap.indent("\n".join(tail), "      "), file=sys.stderr)
        return 1
    print(f"    ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
