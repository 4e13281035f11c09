"""Language-server benchmark: what the server adds to each inline completion beyond model time,
what the membership check of the candidates costs on a large index, and memory after many
requests. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_lsp.py [--index PATH] [--requests 1000] [--corpus-mb 0]

The model is an instant loopback OpenAI-compatible server returning three ~500-character
candidates copied from the indexed corpus, so every check does real work. Without --index, an
index of the Python standard library is built once and cached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsprotocol import types as T  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

CANDIDATE_CHARS = 500
DOCUMENT = "import os\n\n\ndef handler(request):\n    "  # the edited file; the cursor at its end
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stacklens"


def stdlib_corpus(corpus_mb: float) -> list[Path]:
    from corpus import python_files, stdlib_root, take_bytes

    files = python_files(stdlib_root())
    return take_bytes(files, int(corpus_mb * 1e6)) if corpus_mb else files


def build_stdlib_index(corpus_mb: float, files: list[Path]) -> Path:
    from corpus import stdlib_root

    from index.builder import build
    from index.config import BuildLimits
    from index.sources import DirectorySource

    path = CACHE / f"bench-lsp-stdlib-{corpus_mb or 'all'}"
    if (path / "manifest.json").exists():
        print(f"index: reusing {path}")
        return path
    print(f"index: building {path} from {len(files)} stdlib files (once; cached)...")
    started = time.perf_counter()
    source = _FileList(stdlib_root(), files, DirectorySource(stdlib_root(), BuildLimits()))
    build(path, [source], jobs=os.cpu_count() or 1, progress=sys.stderr.isatty())
    print(f"index: built in {time.perf_counter() - started:.1f} s")
    return path


class _FileList:
    """A directory source restricted to the chosen files."""

    def __init__(self, root: Path, files: list[Path], inner: Any) -> None:
        self.keep = {p.relative_to(root).as_posix() for p in files}
        self.inner = inner

    def files(self, stats: Any) -> Any:
        return (f for f in self.inner.files(stats) if f.path in self.keep)


def snippets(files: list[Path], n: int, seed: int = 0) -> list[str]:
    """~500-char windows of corpus files: with the default index, every candidate is found."""
    rng = random.Random(seed)
    files = list(files)
    rng.shuffle(files)
    out: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(text) > 4 * CANDIDATE_CHARS:
            start = text.find("\n", rng.randrange(0, len(text) - 2 * CANDIDATE_CHARS)) + 1
            out.append(text[start : start + CANDIDATE_CHARS])
        if len(out) >= n:
            break
    return out


class FakeModel:
    """OpenAI-compatible /v1/completions answering at once with fixed candidates."""

    def __init__(self, candidates: list[str]) -> None:
        self.candidates = candidates
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                n = int(body.get("n", 1))
                choices = [{"index": i, "text": outer.candidates[i % len(outer.candidates)],
                            "finish_reason": "stop"} for i in range(n)]  # fmt: skip
                data = json.dumps({"choices": choices}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def drive(options: dict[str, Any], requests: int, workdir: Path) -> dict[str, Any]:
    """Start the real server, complete ``requests`` times, report latency and memory."""
    client = LanguageClient("bench", "1")

    @client.feature(T.WINDOW_SHOW_MESSAGE)
    def show(ls: LanguageClient, params: T.ShowMessageParams) -> None:
        print(f"server says: {params.message}", file=sys.stderr)

    await client.start_io(sys.executable, "-m", "lsp_server.cli", "lsp", "--log-level", "warning")
    pid = client._server.pid  # type: ignore[attr-defined]
    await client.initialize_async(
        T.InitializeParams(
            capabilities=T.ClientCapabilities(),
            root_uri=workdir.as_uri(),
            initialization_options=options,
        )
    )
    client.initialized(T.InitializedParams())
    uri = (workdir / "bench.py").as_uri()
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri, language_id="python", version=1, text=DOCUMENT)
        )
    )
    await asyncio.sleep(0.5)
    rss_start = rss_mb(pid)
    times: list[float] = []
    shown = matched = 0
    for i in range(requests):
        # A different prompt each time, so no cache answers for the model.
        text = f"# request {i}\n" + DOCUMENT
        client.text_document_did_change(
            T.DidChangeTextDocumentParams(
                text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=i + 2),
                content_changes=[T.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        t = time.perf_counter()
        result = await client.text_document_inline_completion_async(
            T.InlineCompletionParams(
                text_document=T.TextDocumentIdentifier(uri=uri),
                position=T.Position(line=5, character=4),
                context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
            )
        )
        times.append((time.perf_counter() - t) * 1000)
        items = result.items if isinstance(result, T.InlineCompletionList) else result or []
        shown += len(items)
        matched += sum(1 for it in items if it.command and it.command.arguments[0]["matches"])
    rss_end = rss_mb(pid)
    status = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.status", arguments=[{"timings": True}])
    )
    server = status["timingsMs"][-requests:]
    # Beyond model time: the round trip minus the engine call the server timed (context
    # building, the HTTP call to the instant model, post-processing).
    beyond = [rt - s["engine"] for rt, s in zip(times, server, strict=False)]
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {
        "ms": times,
        "beyond": beyond,
        "engine": [s["engine"] for s in server],
        "check": [s["check"] for s in server],
        "shown": shown,
        "matched": matched,
        "rss_start": rss_start,
        "rss_end": rss_end,
    }


def check_cost(index: Path, candidates: list[str], rounds: int) -> list[float]:
    """The membership check of 3 candidates as the server runs it (the code before the cursor
    in front of each, one hand-off to the checking thread), without the server around it."""
    from lsp_server.checker import MembershipGate
    from lsp_server.config import MembershipConfig

    gate = MembershipGate(MembershipConfig.model_validate({"index": str(index)}))
    gate.check_sync("warm up", None, None)
    before = "# request 0\n" + DOCUMENT  # what the server has before the cursor
    texts = [before + c for c in candidates[:3]]

    async def run() -> list[float]:
        out = []
        for _ in range(rounds):
            t = time.perf_counter()
            await gate.check_many(texts, "python", "bench.py", focus_start=len(before))
            out.append((time.perf_counter() - t) * 1000)
        return out

    try:
        return asyncio.run(run())
    finally:
        gate.close()


def line(name: str, values: list[float]) -> str:
    return (
        f"{name:<44} p50 {statistics.median(values):7.2f} ms   p99 {pct(values, 99):7.2f} ms"
        f"   (n={len(values)})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", type=Path, help="an existing index (default: build the stdlib)")
    ap.add_argument("--corpus-mb", type=float, default=0, help="cap the stdlib corpus (0 = all)")
    ap.add_argument("--requests", type=int, default=1000, help="inline completions per run")
    ap.add_argument("--quick", action="store_true", help="20 MB of the stdlib, 200 completions")
    args = ap.parse_args()
    if args.quick:
        args.corpus_mb, args.requests = args.corpus_mb or 20, 200

    files = stdlib_corpus(args.corpus_mb)
    index = args.index or build_stdlib_index(args.corpus_mb, files)
    from index.store import EmbeddedIndex

    with EmbeddedIndex(index) as store:
        print(f"index: {store.describe()}")
    candidates = snippets(files, 3)
    model = FakeModel(candidates)
    completion = {"backend": "openai", "url": model.url, "model": "instant", "stream": False,
                  "template": "starcoder",
                  "retries": 0, "crossfile_max_snippets": 0}  # fmt: skip
    common = {"debounceMs": 0, "maxCandidates": 3, "completion": completion}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        off = asyncio.run(drive({**common, "membership": {"policy": "off"}}, args.requests, work))
        on = asyncio.run(
            drive(
                {**common, "membership": {"index": str(index), "background": False}},
                args.requests,
                work,
            )
        )
    check = check_cost(index, candidates, 200)
    print()
    print(f"candidates: 3 x {CANDIDATE_CHARS} chars copied from the index; {args.requests} requests")
    for name, run in (("membership off", off), ("membership on", on)):
        print(f"-- {name}")
        print(line("inline completion round trip (client)", run["ms"]))
        print(line("engine call incl. instant model (server)", run["engine"]))
        print(line("membership check in the server", run["check"]))
        print(line("server overhead beyond model time", run["beyond"]))
    print(line("the same check outside the server", check))
    print(
        f"server RSS: {on['rss_start']:.0f} MB after start, {on['rss_end']:.0f} MB after "
        f"{args.requests} requests (membership on); {off['rss_end']:.0f} MB with it off"
    )
    print(
        f"items shown with membership on (warn): {on['shown']} of {3 * args.requests} candidates, "
        f"{on['matched']} carrying a match"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
