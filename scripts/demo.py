"""`make demo`: the main job on a default every machine has.

The local Python standard library plays the model's training corpus. The demo indexes it (once;
later runs only check for changes), then asks `code-search` about three snippets: one copied
from the corpus, one renamed and reformatted, and one written fresh. Later steps show the same
index behind the language server.
"""

from __future__ import annotations

import builtins
import keyword
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from index.manifest import FORMAT_VERSION

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".stacklens" / "demo"
BIN = Path(sys.executable).parent
STDLIB = Path(sysconfig.get_paths()["stdlib"])
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def code_search(*args: str, stdin: str | None = None) -> int:
    cmd = [str(BIN / "code-search"), *args]
    print(
        "$ " + " ".join(c if " " not in c else repr(c) for c in cmd) + (" < snippet" if stdin else ""),
        flush=True,
    )
    proc = subprocess.run(cmd, input=stdin, text=True)
    print(f"(exit status {proc.returncode})", flush=True)
    return proc.returncode


def copied_snippet() -> str:
    lines = (STDLIB / "heapq.py").read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("def merge("))
    return "".join(lines[start : start + 45])


def renamed_and_reformatted(text: str) -> str:
    keep = set(keyword.kwlist) | set(dir(builtins)) | {"self"}
    names: dict[str, str] = {}

    def rename(m: re.Match[str]) -> str:
        word = m.group()
        return word if word in keep else names.setdefault(word, f"v{len(names)}")

    out = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped.startswith("#"):
            continue  # comments dropped
        depth = (len(line) - len(stripped)) // 4
        out.append("  " * depth + re.sub(r"\b[A-Za-z_]\w*\b(?![\"'])", rename, stripped))
    return "\n".join(out) + "\n"


UNSEEN = textwrap.dedent(
    '''
    def rolling_checksum(blocks, window=16):
        """Adler-style rolling sums over fixed windows, written for this demo."""
        low, high, sums = 1, 0, []
        for index, block in enumerate(blocks):
            low = (low + block) % 65521
            high = (high + low) % 65521
            if index >= window:
                sums.append((high << 16) | low)
        return sums
    '''
)


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    # One folder per index format: an index left by an older stacklens would refuse the update
    # ("rebuild it"), so a new format builds afresh beside it instead of failing the demo.
    index = WORK / f"stdlib-index-v{FORMAT_VERSION}"
    banner(f"1. Index the Python {VERSION} standard library as the training corpus")
    rc = code_search(
        "build",
        "--index",
        str(index),
        str(STDLIB),
        "--exclude",
        "site-packages/",
        "--exclude",
        "dist-packages/",
        "--repo",
        "python/cpython",
        "--license",
        "PSF-2.0",
        "--url-template",
        f"https://github.com/python/cpython/blob/{VERSION}/Lib/{{path}}",
    )
    if rc != 0:
        return rc
    snippet = copied_snippet()
    banner("2. A snippet copied from the corpus (heapq.merge): attributed, exit status 1")
    print(textwrap.indent(snippet[:300] + "...", "    "))
    code_search("query", "--index", str(index), "--lang", "python", "-", stdin=snippet)

    banner("3. The same code renamed, re-indented and without comments: still attributed, as near")
    changed = renamed_and_reformatted(snippet)
    print(textwrap.indent(changed[:300] + "...", "    "))
    code_search("query", "--index", str(index), "--lang", "python", "-", stdin=changed)

    banner("4. Code that is not in the corpus: cleared, exit status 0")
    print(textwrap.indent(UNSEEN.strip(), "    "))
    code_search("query", "--index", str(index), "--lang", "python", "-", stdin=UNSEEN)

    banner("5. The same answer as JSON, as the language server and HTTP service carry it")
    code_search(
        "query", "--index", str(index), "--json", "--max-matches", "1", "--lang", "python", "-", stdin=snippet
    )

    extra = ROOT / "scripts" / "demo_lsp.py"
    if extra.exists() and os.environ.get("STACKLENS_DEMO_SKIP_LSP") != "1":
        banner("6. Completion and a highlighted match through the language server")
        return subprocess.run([sys.executable, str(extra), str(index)]).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
