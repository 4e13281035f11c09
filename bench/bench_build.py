"""Build speed per core, per stage, this checkout beside another one (``--base``) in the same run,
and a check that both produce the same tokens, fingerprints and band keys for every file.

The corpus is the membership benchmark's seven languages interleaved as in its multi-language
speed run (bench_membership.py ``--speed-corpus multi``) plus a share of the Linux kernel's C
files (``--linux``, as bench_gigabyte.py reads them), in an order fixed by a hash of the paths.
Builds run one worker in a child process that imports ``index`` from the checkout it measures,
so CPU seconds (process_time) are the per-core cost. The per-stage figures come from one child
that imports both checkouts and gives them each step's files in turn, so that a loaded machine
slows both alike; they time the stages inside the checkout's own ``prepare_document``.

    .venv/bin/python bench/bench_build.py --mb 30 --base /tmp/wt-build-base
    .venv/bin/python bench/bench_build.py --check 3000 --base /tmp/wt-build-base
    .venv/bin/python bench/bench_build.py --gigabyte-head --mb 100 --base /tmp/wt-build-base
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
_TOKEN_FIELDS = ("concrete", "abstract", "start", "end", "line", "end_line", "comment")
_STAGES = ("read", "sha1", "tokenize", "fingerprint", "minhash", "prepare_rest")


def _linux_files(root: Path) -> list[Path]:
    """C files of 200 B - 1 MB in a hash order of their paths, as bench_gigabyte.py takes them."""
    out = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        for n in names:
            p = Path(dirpath) / n
            if n.endswith((".c", ".h")) and not p.is_symlink() and 200 <= p.stat().st_size <= 1_000_000:
                out.append(p)
    return sorted(out, key=lambda p: hashlib.sha1(str(p.relative_to(root)).encode()).digest())


def corpus(mb: float, linux: Path | None, linux_share: float) -> list[tuple[str, str]]:
    """(root, relative path) of about ``mb`` MB: the multi-language corpora, then Linux C."""
    sys.path[:0] = [str(ROOT), str(BENCH)]
    from corpora import load
    from fetch_corpora import LANGS

    target = int(mb * 1e6)
    own = int(target * (1 - linux_share)) if linux else target
    corpora = [load(lang, 22_000_000) for lang in LANGS]
    keyed = sorted(
        (
            (hashlib.sha1(f"{c.lang}/{c.rel(p)}".encode()).digest(), c.root, p)
            for c in corpora
            for p in c.indexed
        ),
        key=lambda t: t[0],
    )
    out: list[tuple[str, str]] = []
    total = 0
    for _, root, p in keyed:
        if total >= own:
            break
        out.append((str(root), p.relative_to(root).as_posix()))
        total += p.stat().st_size
    if linux:
        for p in _linux_files(linux):
            if total >= target:
                break
            out.append((str(linux), p.relative_to(linux).as_posix()))
            total += p.stat().st_size
    return out


def gigabyte_head(mb: float, linux: Path) -> list[tuple[str, str]]:
    """(root, relative path) of the first ``mb`` MB of bench_gigabyte.py's corpus, as its
    one-worker build rate takes them (the quality halves, then Linux C)."""
    sys.path[:0] = [str(ROOT), str(BENCH)]
    from bench_gigabyte import corpus as gigabyte_corpus

    groups, _ = gigabyte_corpus(linux, 1_000_000_000, 8_000_000)
    out: list[tuple[str, str]] = []
    budget = mb * 1e6
    for root, paths in groups:
        for p in paths:
            if budget <= 0:
                break
            out.append((str(root), p.relative_to(root).as_posix()))
            budget -= p.stat().st_size
    return out


def _sources(files: list[tuple[str, str]], package: str = "index") -> list[Any]:
    config = importlib.import_module(f"{package}.config")
    sources = importlib.import_module(f"{package}.sources")
    by_root: dict[str, list[str]] = {}
    for root, rel in files:
        by_root.setdefault(root, []).append(rel)
    return [
        sources.DirectorySource(Path(r), config.BuildLimits(), paths=tuple(rels))
        for r, rels in by_root.items()
    ]


class _Tree:
    """One checkout's ``index`` package, imported under a name of its own (so that two trees
    share a process and the same moment's machine load), building as a one-worker build does (a
    step is as many files as its build prepares together), with the stages of its own
    ``prepare_document`` timed from inside."""

    def __init__(self, root: Path, alias: str, files: list[tuple[str, str]]) -> None:
        package = types.ModuleType(alias)
        package.__path__ = [str(root / "index")]
        sys.modules[alias] = package
        self.builder = importlib.import_module(f"{alias}.builder")
        self.params = importlib.import_module(f"{alias}.config").FingerprintParams()
        fingerprint = importlib.import_module(f"{alias}.fingerprint")
        fingerprint.minhash_permutations(self.params.num_perm)  # drawn once, outside the timings
        stats = importlib.import_module(f"{alias}.skip").SkipStats()
        self.files = (src for s in _sources(files, alias) for src in s.files(stats))
        self.cpu = dict.fromkeys(_STAGES, 0.0)
        self.bytes = 0
        for name, stage in (
            ("tokenize", "tokenize"),
            ("fingerprint", "fingerprint"),
            ("minhash_bands", "minhash"),
            ("fingerprint_many", "fingerprint"),  # a tree that prepares files together
            ("minhash_many", "minhash"),
        ):
            if hasattr(self.builder, name):
                setattr(self.builder, name, self._timed(getattr(self.builder, name), stage))
        # As many files a step as the tree's build prepares together.
        self.together = getattr(self.builder, "_PREPARED_TOGETHER", 1)

    def _timed(self, call: Any, stage: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                self.cpu[stage] += time.process_time() - t

        return timed

    def step(self, files: int) -> bool:
        """Prepare the next ``files`` files (the trees step alike), ``together`` at a time."""
        clock, cpu = time.process_time, self.cpu
        t = clock()
        srcs = list(itertools.islice(self.files, files))
        cpu["read"] += clock() - t
        if not srcs:
            return False
        t = clock()
        items = [
            (src, hashlib.sha1(src.text.encode("utf-8", "surrogatepass")).hexdigest(), self.params)
            for src in srcs
        ]
        t1 = clock()
        inside = cpu["tokenize"] + cpu["fingerprint"] + cpu["minhash"]
        for at in range(0, len(items), self.together):
            if self.together > 1:
                self.builder.prepare_documents(items[at : at + self.together])
            else:
                self.builder.prepare_document(items[at])
        t2 = clock()
        cpu["sha1"] += t1 - t
        cpu["prepare_rest"] += (t2 - t1) - (cpu["tokenize"] + cpu["fingerprint"] + cpu["minhash"] - inside)
        self.bytes += sum(len(src.text.encode("utf-8", "surrogatepass")) for src in srcs)
        return True


def child_stages(files: list[tuple[str, str]], roots: list[Path]) -> dict[str, Any]:
    """CPU seconds of each per-file stage for each tree, the trees taking turns a step of files
    at a time (which goes first alternates)."""
    trees = [_Tree(root, f"tree{i}_index", files) for i, root in enumerate(roots)]
    turn, step = 0, max(tree.together for tree in trees)
    while all([tree.step(step) for tree in (trees if turn % 2 == 0 else trees[::-1])]):
        turn += 1
    return {"mb": trees[0].bytes / 1e6, "cpu": [tree.cpu for tree in trees]}


def child_build(files: list[tuple[str, str]]) -> dict[str, Any]:
    from index.builder import build

    with tempfile.TemporaryDirectory() as tmp:
        t, c = time.perf_counter(), time.process_time()
        summary = build(Path(tmp) / "idx", _sources(files), jobs=1, progress=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"mb": summary.bytes / 1e6, "files": summary.files, "cpu_s": cpu, "wall_s": wall}


def _digest(a: Any) -> str:
    import numpy as np

    arr = np.ascontiguousarray(a)
    return hashlib.sha1(f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes()).hexdigest()[:16]


def child_outputs(files: list[tuple[str, str]]) -> dict[str, Any]:
    """A digest of every array tokenize, fingerprint, minhash_bands and prepare_document return."""
    from index.builder import prepare_document
    from index.config import FingerprintParams
    from index.fingerprint import fingerprint, minhash_bands
    from index.normalize import tokenize
    from index.skip import SkipStats

    out: dict[str, Any] = {}
    for params in (FingerprintParams(), FingerprintParams(kgram=8, window=4, minhash_lines=5)):
        for s in _sources(files):
            for src in s.files(SkipStats()):
                tok = tokenize(src.text, src.lang)
                fp = fingerprint(tok, params)
                row = {f: _digest(getattr(tok, f)) for f in _TOKEN_FIELDS}
                row |= {f"fp.{f}": _digest(getattr(fp, f)) for f in ("keys", "pos", "line", "meta")}
                for stride in (params.minhash_lines, 1, 3):
                    mh = minhash_bands(tok, params, stride=stride)
                    row |= {f"mh{stride}.keys": _digest(mh.keys), f"mh{stride}.window": _digest(mh.window)}
                    row[f"mh{stride}.ranges"] = hashlib.sha1(repr(mh.ranges).encode()).hexdigest()[:16]
                # builder.py's own work on them: the same when both trees share builder.py
                p = prepare_document((src, "0" * 40, params))
                parts = [] if p is None else [*p.fp, *p.mh]
                row |= {f"prepare.{i}": _digest(x) for i, x in enumerate(parts)}
                out[f"{params.kgram}:{src.key}"] = row
    return out


def run_child(roots: list[Path], mode: str, listing: Path) -> dict[str, Any]:
    roots_arg = os.pathsep.join(map(str, roots))
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--files", str(listing), "--roots", roots_arg],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _langs(files: list[tuple[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, rel in files:
        ext = Path(rel).suffix
        counts[ext] = counts.get(ext, 0) + 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=30.0)
    ap.add_argument("--linux", type=Path, default=Path("/work/bigcorpus/linux-source-6.1"))
    ap.add_argument("--linux-share", type=float, default=0.2, help="share of the corpus from Linux")
    ap.add_argument(
        "--gigabyte-head", action="store_true", help="the first --mb MB of bench_gigabyte.py's corpus instead"
    )
    ap.add_argument("--base", type=Path, help="another checkout measured beside this one")
    ap.add_argument("--check", type=int, default=0, help="compare outputs on this many files")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-build", action="store_true", help="per-stage figures only")
    ap.add_argument("--child", choices=("stages", "build", "outputs"))
    ap.add_argument("--files", type=Path)
    ap.add_argument("--roots", help="the checkouts a child measures, joined by os.pathsep")
    args = ap.parse_args()
    if args.child:
        measured = [Path(r) for r in args.roots.split(os.pathsep)]
        # `index` from the checkout measured; the stages child imports each under its own name.
        sys.path.insert(0, str(ROOT if args.child == "stages" else measured[0]))
        files = [tuple(f) for f in json.loads(args.files.read_text())]
        if args.child == "stages":
            print(json.dumps(child_stages(files, measured)))
        else:
            print(json.dumps({"build": child_build, "outputs": child_outputs}[args.child](files)))
        return
    linux = args.linux if args.linux.is_dir() else None
    if args.gigabyte_head:
        if linux is None:
            sys.exit(f"--gigabyte-head needs the Linux sources at {args.linux}")
        files = gigabyte_head(args.mb, linux)
    else:
        files = corpus(args.mb, linux, args.linux_share)
    roots = [("new", ROOT)] + ([("base", args.base)] if args.base else [])
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "files.json"
        if args.check:
            step = max(1, len(files) // args.check)
            checked = files[::step][: args.check]
            listing.write_text(json.dumps(checked))
            print(f"[check] {len(checked)} files: {_langs(checked)}", flush=True)
            new = run_child([ROOT], "outputs", listing)
            if args.base:
                old = run_child([args.base], "outputs", listing)
                bad = [k for k in old if old[k] != new.get(k)]
                print(f"[check] {len(old)} (file, params) outputs compared, {len(bad)} differ", flush=True)
                for k in bad[:20]:
                    print(f"  differs: {k}: {[f for f in old[k] if old[k][f] != new.get(k, {}).get(f)]}")
                if bad:
                    sys.exit(1)
            return
        listing.write_text(json.dumps(files))
        print(f"[build] {len(files)} files: {_langs(files)}", flush=True)
        for rep in range(args.repeat):
            st = run_child([root for _, root in roots], "stages", listing)
            for (label, _), cpu in zip(roots, st["cpu"], strict=True):
                total = sum(cpu.values())
                per = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
                print(
                    f"[stages {label} #{rep}] {st['mb']:.1f} MB, per-file CPU {total:.2f} s "
                    f"({st['mb'] / total:.2f} MB/s): {per}",
                    flush=True,
                )
            if args.no_build:
                continue
            for label, root in roots if rep % 2 == 0 else roots[::-1]:  # each goes first in turn
                b = run_child([root], "build", listing)
                print(
                    f"[build {label} #{rep}] {b['mb']:.1f} MB, {b['files']} files, "
                    f"CPU {b['cpu_s']:.2f} s: {b['mb'] / b['cpu_s']:.2f} MB/s per core "
                    f"(wall {b['wall_s']:.1f} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
