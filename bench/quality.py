"""Membership quality on the multi-language corpora: every case is queried twice through the
product's Matcher, once with a file name (as editors send) and once without any language (as
stdin and HTTP users send), and scored beside the Data Portraits and Moss-style baselines."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from cases import KINDS, Case, CaseSet, make_cases
from corpora import LangCorpus, load
from dataportraits import Portrait
from winnow import Winnow

from index.builder import build
from index.config import BuildLimits, FingerprintParams
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from membership.query import Matcher
from membership.settings import QuerySettings

MODES = ("path", "guess")  # with the source's file name; with no language at all
GROUPS = (*KINDS, "negative")


@dataclass
class Outcome:
    detected: bool
    attributed: bool
    located: bool
    # The top match is a file that holds the copied span, if not the one it came from: for text
    # that many files share (licence headers) the definition counts that as a miss.
    to_holder: bool = False


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0


class Scorer:
    """Scores one case for the product and both baselines; keeps what the product missed."""

    def __init__(
        self, matcher: Matcher, portrait: Portrait, winnow: Winnow, texts: dict[str, dict[str, str]]
    ) -> None:
        self.matcher, self.portrait, self.winnow = matcher, portrait, winnow
        self.texts = texts  # language -> path -> text without whitespace
        self.digests = {p: hashlib.sha1(t.encode()).digest() for d in texts.values() for p, t in d.items()}
        self.misses: list[dict[str, Any]] = []

    def _holds(self, path: str, case: Case) -> bool:
        text = self.texts[case.lang].get(path)
        return text is not None and "".join(case.original.split()) in text

    def copies(self, case: Case) -> int:
        """Indexed files of the case's language that hold its copied span (whitespace aside):
        more than one means the copy is boilerplate that no file owns."""
        needle = "".join(case.original.split())
        return sum(needle in t for t in self.texts[case.lang].values())

    def _same(self, path: str, case: Case) -> bool:
        # Files with identical content are the same answer (the corpora are deduplicated, so
        # this only matters for a corpus that is not).
        return path == case.source_path or self.digests.get(path, b"x") == self.digests.get(case.source_path)

    def ours(self, case: Case, mode: str, name: str) -> Outcome:
        matches = (
            self.matcher.check(case.text, path=name) if mode == "path" else self.matcher.check(case.text)
        )
        span = case.span or (0, len(case.text))
        if not matches:
            out = Outcome(False, False, False)
        else:
            top = matches[0]
            tied = [m for m in matches if (m.matched_chars, m.score) == (top.matched_chars, top.score)]
            best = max(iou((m.query_span.start_char, m.query_span.end_char), span) for m in matches)
            out = Outcome(True, any(self._same(m.source.path, case) for m in tied), best >= 0.5)
            if case.source_path and not out.attributed:
                out.to_holder = any(self._holds(m.source.path, case) for m in tied)
        missed = out.detected if case.kind == "negative" else not out.attributed
        if missed or (case.kind == "embedded" and not out.located):
            self.misses.append(
                {
                    "kind": case.kind,
                    "lang": case.lang,
                    "mode": mode,
                    "true_file": case.source_path or None,
                    "copied_span": list(span) if case.source_path else None,
                    "files_holding_span": self.copies(case) if case.source_path else None,
                    "text": case.text,
                    "returned": [m.model_dump(mode="json") for m in matches[:5]],
                }
            )
        return out

    def moss(self, case: Case) -> Outcome:
        names, got = self.winnow.query(case.text)
        if not names or got is None:
            return Outcome(False, False, False)
        span = case.span or (0, len(case.text))
        return Outcome(True, any(self._same(n, case) for n in names), iou(got, span) >= 0.5)


def squeezed_texts(corpora: list[LangCorpus]) -> dict[str, dict[str, str]]:
    """Language -> path -> indexed text without whitespace (what Scorer compares copies with)."""
    texts: dict[str, dict[str, str]] = {}
    for c in corpora:
        for p in c.indexed:
            texts.setdefault(c.lang, {})[c.rel(p)] = "".join(p.read_text(encoding="utf-8").split())
    return texts


def case_sets(corpora: list[LangCorpus], quick: bool) -> dict[str, dict[str, Any]]:
    """The quality table's cases per language (the quick or the full counts) and the file name
    that cases are asked with."""
    per_kind, negatives = (40, 60) if quick else (150, 300)
    return {c.lang: {"set": make_cases(c, per_kind, negatives), "name": str(c.indexed[0])} for c in corpora}


def _tally(outcomes: list[Outcome]) -> dict[str, float]:
    n = len(outcomes) or 1
    return {
        "detected": sum(o.detected for o in outcomes) / n,
        "attributed": sum(o.attributed for o in outcomes) / n,
        "located": sum(o.located for o in outcomes) / n,
        "attributed_or_holder": sum(o.attributed or o.to_holder for o in outcomes) / n,
    }


def _score_language(scorer: Scorer, corpus: LangCorpus, cases: CaseSet) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    name = f"query{PurePath(corpus.indexed[0]).suffix}"
    for group in GROUPS:
        items = cases.negatives if group == "negative" else [c for c in cases.cases if c.kind == group]
        row: dict[str, Any] = {"n": len(items)}
        for mode in MODES:
            row[mode] = _tally([scorer.ours(c, mode, name) for c in items])
        row["moss"] = _tally([scorer.moss(c) for c in items])
        row["dataportraits_detected"] = sum(scorer.portrait.hits(c.text) > 0 for c in items) / (
            len(items) or 1
        )
        rows[group] = row
    return rows


def _build(corpora: list[LangCorpus], path: Path, params: FingerprintParams, jobs: int) -> dict[str, Any]:
    sources = [
        DirectorySource(c.root, BuildLimits(), paths=tuple(c.rel(p) for p in c.indexed)) for c in corpora
    ]
    t = time.perf_counter()
    build(path, sources, params=params, jobs=jobs, progress=False)
    seconds = time.perf_counter() - t
    with EmbeddedIndex(path) as idx:
        docs = [d for _, _, d in idx.iter_documents()]
        size = idx.size_bytes()
    indexed = {d["path"] for d in docs}
    corpus_bytes = sum(d["bytes"] for d in docs)
    # Files the product declines (generated, minified by its own rules) are not sampled.
    for c in corpora:
        c.indexed = [p for p in c.indexed if c.rel(p) in indexed]
    return {"build_s": seconds, "corpus_mb": corpus_bytes / 1e6, "index_mb": size / 1e6, "files": len(docs)}


def run(
    langs: tuple[str, ...],
    budget: int,
    per_kind: int,
    n_negatives: int,
    workdir: Path,
    params: FingerprintParams,
    jobs: int,
    dump_misses: Path | None = None,
) -> dict[str, Any]:
    corpora = [load(lang, budget) for lang in langs]
    for c in corpora:
        print(
            f"[quality] {c.lang}: {len(c.indexed)} files ({c.indexed_bytes / 1e6:.1f} MB) indexed, "
            f"{len(c.held_out)} ({c.held_out_bytes / 1e6:.1f} MB) held out; excluded {dict(c.excluded)}",
            flush=True,
        )
    index = _build(corpora, workdir / "quality-index", params, jobs)
    print(
        f"[quality] index: {index['index_mb']:.1f} MB for {index['corpus_mb']:.1f} MB, built in "
        f"{index['build_s']:.0f} s",
        flush=True,
    )
    portrait, winnow = Portrait(), Winnow()
    texts: dict[str, dict[str, str]] = {}
    for c in corpora:
        for p in c.indexed:
            text = p.read_text(encoding="utf-8")
            portrait.add(text)
            winnow.add(c.rel(p), text)
            texts.setdefault(c.lang, {})[c.rel(p)] = "".join(text.split())
    winnow.freeze()
    # max_matches: identical code sits in many files, and any of the tied sources is right.
    scorer = Scorer(
        Matcher(EmbeddedIndex(workdir / "quality-index"), QuerySettings(max_matches=200)),
        portrait,
        winnow,
        texts,
    )
    report: dict[str, Any] = {"index": index, "languages": {}}
    for c in corpora:
        t = time.perf_counter()
        cases = make_cases(c, per_kind, n_negatives)
        made = time.perf_counter() - t
        rows = _score_language(scorer, c, cases)
        report["languages"][c.lang] = {
            "corpus": {
                "indexed_files": len(c.indexed),
                "indexed_mb": c.indexed_bytes / 1e6,
                "held_out_files": len(c.held_out),
                "held_out_mb": c.held_out_bytes / 1e6,
                "excluded_files": dict(c.excluded),
                "packages": c.packages,
            },
            "excluded_cases": dict(cases.excluded),
            "misses_with_path": sum(m["lang"] == c.lang and m["mode"] == "path" for m in scorer.misses),
            "shared_span_misses": sum(
                m["lang"] == c.lang and m["mode"] == "path" and (m["files_holding_span"] or 0) >= 2
                for m in scorer.misses
            ),
            "rows": rows,
        }
        print(
            f"[quality] {c.lang}: cases made in {made:.1f} s, scored in "
            f"{time.perf_counter() - t - made:.1f} s",
            flush=True,
        )
    scorer.matcher.store.close()
    if dump_misses is not None:
        with dump_misses.open("w", encoding="utf-8") as f:
            for miss in scorer.misses:
                f.write(json.dumps(miss) + "\n")
        print(f"[quality] {len(scorer.misses)} misses written to {dump_misses}")
    return report
