"""The key space at a terabyte: quality and latency of 48-bit keys (format 3) beside the 32-bit
keys of format 2 at the key density of a 1 TB and a 3 TB corpus, measured in the same run on
the cases of the membership quality benchmark (bench/cases.py, the same seeds).

A corpus of ``B`` bytes holds ``B * f`` fingerprints (``f``: fingerprints per byte of this
index), and with hashed keys the unrelated fingerprints that share one stored key of ``b`` bits
are Poisson-distributed with mean ``B * f / 2^b``. Queries only ever look up their own keys, so
an index that carries that many random postings on every key the cases look up is, for these
cases, indistinguishable from one of ``B * f`` fingerprints: the benchmark injects them (random
documents among 2^18 synthetic ones, interleaved with the real ones; random positions and
concrete hashes) into the one segment, so the budget and sampling rules see them as they would.
Not modelled: the *real* near-copies and boilerplate that a larger corpus adds, and page-cache
misses of a table larger than memory.

    .venv/bin/python bench/bench_scale.py [--quick] [--lang go rust] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path, PurePath
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality
from cases import KINDS
from corpora import load
from fetch_corpora import LANGS
from timing import timed

from index.config import FingerprintParams
from index.fingerprint import code_stream, minhash_bands, structure_hashes
from index.linetable import encode_lines
from index.normalize import tokenize
from index.packed import KEY_BITS, key_of
from index.segment import CONC_BITS, FIELDS, doc_starts
from index.store import EmbeddedIndex
from index.writer import IndexWriter
from membership.query import Matcher
from membership.settings import QuerySettings

FAKE_DOCS = 1 << 18
FAKE_TOKENS, FAKE_LINE = 1 << 16, 256
DENSITIES = {"as built": 0.0, "1 TB": 1e12, "3 TB": 3e12}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else 0.0


def query_keys(texts: list[str], params: FingerprintParams) -> tuple[np.ndarray, np.ndarray]:
    """Every fingerprint and band key the Matcher looks up for ``texts`` (as its ``_exact`` and
    ``_near`` compute them)."""
    fp, mh = [], []
    for text in texts:
        tokens = tokenize(text)
        fp.append(structure_hashes(tokens, params.kgram))
        cs = code_stream(tokens, params.kgram)
        if cs is not None:
            fp.append(cs.structure[cs.bridge])
        mh.append(minhash_bands(tokens, params, stride=1).keys)
    return np.unique(np.concatenate(fp)), np.unique(np.concatenate(mh))


def inject(
    src: Path, dst: Path, keys: dict[str, np.ndarray], lam: dict[str, float], seed: int
) -> dict[str, int]:
    """A copy of the one-segment index ``src`` at ``dst`` with Poisson(``lam``) random postings
    on the stored key of each of ``keys`` (per table); returns how many were added."""
    rng = np.random.default_rng(seed)
    with EmbeddedIndex(src) as idx:
        (seg,) = idx.segments
        bits, params = idx.key_bits, idx.params
        docs = list(seg.iter_docs())
        blobs = [seg.lines.blob(i) for i in range(seg.num_docs)]
        old_starts = seg.starts.copy()
        real = {}
        for name in FIELDS:
            table = getattr(seg, name)
            every = np.arange(len(table))
            real[name] = (table.all_keys(), table.columns(every), seg.doc_pos(name, every))
    # Real documents keep their order but sit at random places among the synthetic ones, so
    # that a sample of a key's first postings (in document order) is not biased towards them.
    total = len(docs) + FAKE_DOCS
    real_ids = np.sort(rng.choice(total, len(docs), replace=False)).astype(np.int64)
    is_real = np.zeros(total, dtype=bool)
    is_real[real_ids] = True
    fake_ids = np.flatnonzero(~is_real).astype(np.int64)
    # A synthetic document: FAKE_TOKENS tokens, FAKE_LINE of them a line (its line table).
    fake_line = np.arange(FAKE_TOKENS) // FAKE_LINE + 1
    fake_blob = encode_lines(fake_line, fake_line, np.empty(0), np.empty(0))
    table_docs: list[dict[str, Any]] = []
    table_lines: list[bytes] = []
    tokens = np.full(total, FAKE_TOKENS, dtype=np.int64)
    tokens[real_ids] = np.diff(old_starts)
    real_iter = iter(zip(docs, blobs, strict=True))
    for i in range(total):
        if is_real[i]:
            doc, blob = next(real_iter)
            table_docs.append(doc)
            table_lines.append(blob)
        else:
            table_docs.append({"key": f"synthetic/{i}", "sha": "0", "path": f"synthetic/{i}.txt", "lines": 1})
            table_lines.append(fake_blob)
    starts = doc_starts(tokens)
    tables = {}
    added = {}
    for name in FIELDS:
        stored = np.unique(key_of(keys[name], bits))
        counts = rng.poisson(lam[name], len(stored))
        noise = np.repeat(stored, counts)
        n = len(noise)
        added[name] = n
        rk, rc, (old_doc, old_pos) = real[name]
        # Random positions early enough that a band window of minhash_lines lines fits after.
        pos = rng.integers(0, FAKE_TOKENS - FAKE_LINE * (params.minhash_lines + 1), n, dtype=np.int64)
        at = np.concatenate([starts[real_ids[old_doc]] + old_pos, starts[rng.choice(fake_ids, n)] + pos])
        cols = {"at": at.astype(np.uint64)}
        if name == "fp":
            cols["flag"] = np.concatenate([rc["flag"], np.zeros(n, dtype=np.uint64)])
            conc = rng.integers(0, 1 << CONC_BITS, n, dtype=np.uint64)
            cols["conc"] = np.concatenate([rc["conc"], conc])
        tables[name] = (np.concatenate([rk, noise]), cols)
        del real[name]
    IndexWriter(dst, params, key_bits=bits).commit_segment(tables, table_docs, table_lines, starts)
    return added


def score(path: Path, scorer: quality.Scorer, cases: dict[str, Any]) -> dict[str, Any]:
    """Attributed (located for embedded, detected for negatives) per kind, and latency."""
    scorer.matcher = Matcher(EmbeddedIndex(path), QuerySettings(max_matches=200))
    scorer.misses = []
    rows: dict[str, Any] = {}
    asked = [
        (c, f"query{PurePath(cs['name']).suffix}")
        for cs in cases.values()
        for c in [*cs["set"].cases, *cs["set"].negatives]
    ]
    outcomes, lat, cpu = timed(lambda job: scorer.ours(job[0], "path", job[1]), asked)
    per_kind: dict[str, list[quality.Outcome]] = {g: [] for g in quality.GROUPS}
    for (c, _), out in zip(asked, outcomes, strict=True):
        per_kind[c.kind].append(out)
    for group, outs in per_kind.items():
        rows[group] = {"n": len(outs), **quality._tally(outs)}
    scorer.matcher.store.close()
    return {
        "rows": rows,
        "query_ms_p50": statistics.median(lat),
        "query_ms_p99": pct(lat, 99),
        "query_cpu_ms_p50": statistics.median(cpu),
        "query_cpu_ms_p99": pct(cpu, 99),
    }


def old_format_bytes(path: Path) -> int:
    """What format 2 took for the same tables: 4-byte keys, 12-byte fingerprint values and
    8-byte band values, .npy headers, and the same document table."""
    with EmbeddedIndex(path) as idx:
        total = 0
        for seg in idx.segments:
            # Format 2's document table: the records as JSON lines, uncompressed.
            docs = sum(
                len(json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode()) + 1
                for d in seg.iter_docs()
            )
            total += 16 * len(seg.fp) + 12 * len(seg.mh) + docs
            total += 8 * (seg.num_docs + 1) + 5 * 128
        return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 cases per kind and language, 60 negatives")
    ap.add_argument("--lang", nargs="+", choices=LANGS)
    ap.add_argument("--corpus-mb", type=float, default=8.0, help="source per language (half indexed)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument(
        "--key-bits", type=int, nargs="+", default=[32, KEY_BITS], help="key widths built and compared"
    )
    ap.add_argument("--kgram", type=int, default=FingerprintParams().kgram)
    ap.add_argument("--window", type=int, default=FingerprintParams().window)
    ap.add_argument(
        "--corpus-tb", type=float, nargs="+", help="simulated corpus sizes in TB (default: 1 and 3)"
    )
    args = ap.parse_args()
    widths = tuple(args.key_bits)
    densities = DENSITIES
    if args.corpus_tb:
        densities = {"as built": 0.0, **{f"{tb:g} TB": tb * 1e12 for tb in args.corpus_tb}}
    langs = tuple(args.lang or LANGS)
    params = FingerprintParams(kgram=args.kgram, window=args.window)
    workdir = Path(tempfile.mkdtemp(prefix="stacklens-scale-"))
    report: dict[str, Any] = {"densities": densities, "fake_docs": FAKE_DOCS, "runs": []}
    try:
        corpora = [load(lang, int(args.corpus_mb * 1e6)) for lang in langs]
        built = {}
        for bits in widths:
            path = workdir / f"k{bits}"
            IndexWriter(path, params, key_bits=bits)
            built[bits] = quality._build(corpora, path, params, args.jobs)
            print(f"[scale] {bits}-bit keys: {built[bits]}", flush=True)
        widest = max(widths)  # the densities are those of this build's fingerprints per byte
        path48 = workdir / f"k{widest}"
        with EmbeddedIndex(path48) as idx:
            n_fp = sum(len(s.fp) for s in idx.segments)
            n_mh = sum(len(s.mh) for s in idx.segments)
            size = idx.size_bytes()
        corpus_bytes = built[widest]["corpus_mb"] * 1e6
        report["index"] = {
            "corpus_mb": corpus_bytes / 1e6,
            "fingerprints": n_fp,
            "band_keys": n_mh,
            "fingerprints_per_byte": n_fp / corpus_bytes,
            "index_mb": size / 1e6,  # the current format's size
            "ratio": size / corpus_bytes,
            "format2_mb": old_format_bytes(path48) / 1e6,
            "format2_ratio": old_format_bytes(path48) / corpus_bytes,
        }
        print(f"[scale] {report['index']}", flush=True)
        scorer = quality.Scorer(None, None, None, quality.squeezed_texts(corpora))  # type: ignore[arg-type]
        cases = quality.case_sets(corpora, args.quick)
        all_texts = [c.text for cs in cases.values() for c in [*cs["set"].cases, *cs["set"].negatives]]
        fp_keys, mh_keys = query_keys(all_texts, params)
        print(f"[scale] {len(all_texts)} cases look up {len(fp_keys)} fingerprint, {len(mh_keys)} band keys")
        report["index"]["mb_by_key_bits"] = {bits: built[bits]["index_mb"] for bits in widths}
        for label, corpus in densities.items():
            for bits in widths:
                lam = {
                    "fp": corpus * n_fp / corpus_bytes / 2.0**bits,
                    "mh": corpus * n_mh / corpus_bytes / 2.0**bits,
                }
                path = workdir / f"k{bits}"
                added = {"fp": 0, "mh": 0}
                if corpus:
                    path = workdir / f"k{bits}-{label.replace(' ', '')}"
                    t = time.perf_counter()
                    added = inject(workdir / f"k{bits}", path, {"fp": fp_keys, "mh": mh_keys}, lam, seed=bits)
                    print(f"[scale] injected {added} in {time.perf_counter() - t:.0f} s", flush=True)
                result = score(path, scorer, cases)
                run = {"density": label, "key_bits": bits, "lambda": lam, "injected": added, **result}
                report["runs"].append(run)
                r = result["rows"]
                print(
                    f"[scale] {label:>8} {bits}-bit: random postings per key {lam['fp']:.3g}; "
                    + ", ".join(f"{k} {r[k]['attributed']:.3f}" for k in KINDS)
                    + f", embedded located {r['embedded']['located']:.3f}"
                    + f", false positives {r['negative']['detected']:.3f}; "
                    + f"CPU p50 {result['query_cpu_ms_p50']:.2f} ms p99 {result['query_cpu_ms_p99']:.2f} ms "
                    + f"(wall p99 {result['query_ms_p99']:.2f})",
                    flush=True,
                )
                if corpus:
                    shutil.rmtree(path, ignore_errors=True)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        name = "scale" + ("_quick" if args.quick else "")
        name += "" if args.lang is None else "_" + "-".join(langs)
        (out / f"{name}.json").write_text(json.dumps(report, indent=1))
        print(f"results written to {out / name}.json")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
