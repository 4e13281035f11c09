"""Index size against quality for the lossy levers of the fingerprint index, in one run on the
quick quality cases (bench/cases.py, the same seeds as bench_membership.py --quick): winnowing
window and k-gram length (rebuilds), the bits of the concrete hash kept, and the query's
thresholds (both on an index already built).

Each setting is comma-separated ``name=value`` pairs:
  kgram, window   fingerprint parameters (a build per pair; the first setting's pair is built first)
  conc            bits of the concrete hash the build keeps (index.segment.CONC_BITS; a build)
  keybits         stored key bits (index.packed.KEY_BITS; a build)
  qconc           bits of the concrete hash the query compares, on the 8-bit build: the same
                  answers as a build that keeps that many (the stored hash is its low bits),
                  whose size is the 8-bit build's less (8 - qconc) bits a fingerprint posting
  evidence, spread  membership.renamed.STRUCTURE_EVIDENCE(_SPREAD) (renamed-copy rarity rule)
  q.NAME          any other constant of membership.query or membership.renamed (a number)
  min_coverage, min_chars, max_postings   QuerySettings fields

Only the product is scored, with a file name (tokenisation ignores it, so the answers without
a language are the same); the baselines of bench_membership.py are left out. CPU seconds are
the process's (builds run with one worker).

    .venv/bin/python bench/bench_density.py kgram=14,window=11 kgram=12,window=13 \
        kgram=14,window=11,qconc=6 kgram=12,window=13,evidence=3 [--lang go] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path, PurePath
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality
from cases import KINDS
from corpora import LangCorpus, load
from fetch_corpora import LANGS

import index.builder
import index.merge
import index.segment
import index.store
import membership.query
import membership.renamed
from index.config import FingerprintParams
from index.packed import KEY_BITS
from index.store import EmbeddedIndex
from index.writer import IndexWriter
from membership.query import Matcher
from membership.settings import QuerySettings

BUILD_KEYS = ("kgram", "window", "conc", "keybits")
QUERY_CONSTANTS = {"evidence": "STRUCTURE_EVIDENCE", "spread": "STRUCTURE_EVIDENCE_SPREAD"}
SETTINGS_KEYS = ("min_coverage", "min_chars", "max_postings")
CONC_MODULES = (index.segment, index.builder, index.merge, index.store)


def parse(text: str) -> dict[str, float]:
    out: dict[str, float] = {"kgram": 14, "window": 11, "conc": 8, "keybits": KEY_BITS}
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        known = (*BUILD_KEYS, "qconc", *QUERY_CONSTANTS, *SETTINGS_KEYS)
        if name.startswith("q.") and value:  # any constant of membership.query
            out[name] = float(value)
            continue
        if name not in known or not value:
            raise SystemExit(f"setting {text!r}: {part!r} is not name=value with a name in {known}")
        out[name] = float(value)
    return out


def _set_conc(bits: int) -> None:
    for module in CONC_MODULES:
        module.CONC_BITS = bits  # type: ignore[attr-defined]


def build_index(corpora: list[LangCorpus], path: Path, s: dict[str, float]) -> dict[str, Any]:
    params = FingerprintParams(kgram=int(s["kgram"]), window=int(s["window"]))
    _set_conc(int(s["conc"]))
    try:
        IndexWriter(path, params, key_bits=int(s["keybits"]))
        cpu = time.process_time()
        info: dict[str, Any] = quality._build(corpora, path, params, 1)
        info["build_cpu_s"] = time.process_time() - cpu
    finally:
        _set_conc(8)
    with EmbeddedIndex(path) as idx:
        info["fp_postings"] = sum(len(seg.fp) for seg in idx.segments)
        info["band_postings"] = sum(len(seg.mh) for seg in idx.segments)
    return info


def _owner(constant: str) -> ModuleType:
    """The module whose query constant ``constant`` is (the renamed rule's or the matcher's)."""
    for module in (membership.renamed, membership.query):
        if hasattr(module, constant):
            return module
    raise SystemExit(f"bench_density: no constant {constant!r} in membership.query or membership.renamed")


def score(path: Path, s: dict[str, float], scorer: quality.Scorer, cases: dict[str, Any]) -> dict[str, Any]:
    """Attributed, located and detected per language and kind (and pooled: ``all``)."""
    patches = {c: s[n] for n, c in QUERY_CONSTANTS.items() if n in s}
    patches.update({n[2:]: int(v) if v.is_integer() else v for n, v in s.items() if n.startswith("q.")})
    owners = {c: _owner(c) for c in patches}
    saved = {c: getattr(owners[c], c) for c in patches}
    for constant, value in patches.items():
        setattr(owners[constant], constant, value)
    fields = {n: (int(s[n]) if n != "min_coverage" else s[n]) for n in SETTINGS_KEYS if n in s}
    store = EmbeddedIndex(path)
    # As a store of this build's CONC_BITS would read it (the module's is back at 8 here).
    store.concrete_mask = (1 << int(s.get("qconc", s["conc"]))) - 1
    scorer.matcher = Matcher(store, QuerySettings(max_matches=200, **fields))
    scorer.misses = []
    cpu = time.process_time()
    per: dict[str, dict[str, list[quality.Outcome]]] = {}
    try:
        for lang, cs in cases.items():
            name = f"query{PurePath(cs['name']).suffix}"
            for case in [*cs["set"].cases, *cs["set"].negatives]:
                per.setdefault(lang, {}).setdefault(case.kind, []).append(scorer.ours(case, "path", name))
    finally:
        for constant, value in saved.items():
            setattr(owners[constant], constant, value)
        store.close()
    rows: dict[str, Any] = {
        lang: {kind: {"n": len(o), **quality._tally(o)} for kind, o in kinds.items()}
        for lang, kinds in per.items()
    }
    pooled: dict[str, list[quality.Outcome]] = {}
    for kinds in per.values():
        for kind, outs in kinds.items():
            pooled.setdefault(kind, []).extend(outs)
    rows["all"] = {kind: {"n": len(o), **quality._tally(o)} for kind, o in pooled.items()}
    return {"rows": rows, "score_cpu_s": time.process_time() - cpu, "misses": list(scorer.misses)}


def figures(rows: dict[str, Any]) -> list[str]:
    cells = [f"{rows[k]['attributed']:.3f}" for k in KINDS if k != "embedded"]
    emb = rows["embedded"]
    cells.insert(list(KINDS).index("embedded"), f"{emb['attributed']:.3f} ({emb['located']:.3f})")
    return [*cells, f"{rows['negative']['detected']:.3f}"]


def markdown(runs: list[dict[str, Any]]) -> str:
    head = [
        "setting",
        "index MB",
        "index / corpus",
        "fp postings",
        *KINDS,
        "false pos.",
        "CPU build / score s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        lines.append(
            f"| {r['setting']} | {r['index_mb']:.2f} | {r['ratio']:.4f} | {r['fp_postings']:,} | "
            + " | ".join(figures(r["rows"]["all"]))
            + f" | {r['build_cpu_s']:.0f} / {r['score_cpu_s']:.0f} |"
        )
    langs = [lang for lang in runs[0]["rows"] if lang != "all"] if runs else []
    for lang in langs:
        lines += ["", f"#### {lang}", "", "| setting | " + " | ".join([*KINDS, "false pos."]) + " |"]
        lines.append("|" + "---|" * (len(KINDS) + 2))
        for r in runs:
            lines.append(f"| {r['setting']} | " + " | ".join(figures(r["rows"][lang])) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("settings", nargs="+", help="comma-separated name=value pairs, one setting each")
    ap.add_argument("--lang", nargs="+", choices=LANGS)
    ap.add_argument("--corpus-mb", type=float, default=8.0, help="source per language (half indexed)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    settings = [(text, parse(text)) for text in args.settings]
    langs = tuple(args.lang or LANGS)
    workdir = Path(tempfile.mkdtemp(prefix="stacklens-density-"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    built: dict[tuple[float, ...], tuple[Path, dict[str, Any]]] = {}
    runs: list[dict[str, Any]] = []
    try:
        corpora = [load(lang, int(args.corpus_mb * 1e6)) for lang in langs]
        cases: dict[str, Any] = {}
        scorer: quality.Scorer | None = None
        files: set[str] = set()
        for text, s in settings:
            key = tuple(s[k] for k in BUILD_KEYS)
            if key not in built:
                path = workdir / "-".join(f"{k}{int(s[k])}" for k in BUILD_KEYS)
                built[key] = (path, build_index(corpora, path, s))
                print(f"[density] built {text}: {built[key][1]}", flush=True)
                indexed = {c.rel(p) for c in corpora for p in c.indexed}
                if scorer is None:  # cases of the files the first build indexed, as bench_membership
                    files = indexed
                    cases = quality.case_sets(corpora, True)
                    scorer = quality.Scorer(None, None, None, quality.squeezed_texts(corpora))
                elif indexed != files:
                    raise SystemExit(f"{text}: the build indexed other files than the first one")
            path, info = built[key]
            assert scorer is not None
            result = score(path, s, scorer, cases)
            index_bytes = info["index_mb"] * 1e6
            if "qconc" in s:  # the build that keeps qconc bits: (8 - qconc) bits a posting fewer
                index_bytes -= (int(s["conc"]) - int(s["qconc"])) * info["fp_postings"] / 8
            run = {
                "setting": text,
                **{k: v for k, v in info.items() if k != "index_mb"},
                "index_mb": index_bytes / 1e6,
                "ratio": index_bytes / (info["corpus_mb"] * 1e6),
                "score_cpu_s": result["score_cpu_s"],
                "rows": result["rows"],
            }
            runs.append(run)
            print(
                f"[density] {text}: {run['ratio']:.4f}x; "
                + ", ".join(
                    f"{k} {v}" for k, v in zip([*KINDS, "fp"], figures(run["rows"]["all"]), strict=True)
                )
                + f"; CPU build {info['build_cpu_s']:.0f} s, score {result['score_cpu_s']:.0f} s",
                flush=True,
            )
            with (out / f"misses-{len(runs)}.jsonl").open("w", encoding="utf-8") as f:
                f.write(json.dumps({"setting": text}) + "\n")
                f.writelines(json.dumps(m) + "\n" for m in result["misses"])
            (out / "density.json").write_text(json.dumps(runs, indent=1))
            (out / "density.md").write_text(markdown(runs) + "\n")
        print("\n" + markdown(runs))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
