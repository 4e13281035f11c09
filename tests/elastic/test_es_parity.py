"""Parity: on the same corpus, the Elasticsearch store gives the same matches as the embedded one.

Both stores are built from the same sources (a directory of stdlib modules plus a JSONL file in
The Stack's columns that repeats some of them under another repository and licence), and a few
hundred generated queries are run through the same `Matcher`: verbatim spans, spans with
identifiers renamed, and negatives (unindexed modules, shuffled lines)."""

from __future__ import annotations

import json
import random
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from es_corpus import NEGATIVE_PACKAGES, STDLIB

import index.elastic.store as es_store
from index.builder import build
from index.config import BuildLimits
from index.elastic import ElasticIndex, build_elastic
from index.fingerprint import minhash_bands, structure_hashes
from index.normalize import tokenize
from index.sources import open_source
from index.store import EmbeddedIndex
from membership import Match, Matcher
from stacklens.errors import BackendError

pytestmark = pytest.mark.integration

_IDENT = re.compile(r"\b[a-z_][a-z0-9_]{3,}\b")
_KEEP = {"self", "return", "import", "from", "class", "def", "while", "with", "lambda", "yield"}
_KEEP |= {"raise", "except", "finally", "else", "elif", "pass", "break", "continue", "assert"}
_KEEP |= {"none", "true", "false", "global", "nonlocal", "async", "await", "print"}


def _sources(corpus: Path, jsonl: Path) -> list[Any]:
    limits = BuildLimits()
    return [
        open_source(str(corpus), limits, repo="python/cpython", license="PSF-2.0"),
        open_source(str(jsonl), limits),
    ]


def _windows(text: str, rng: random.Random, lo: int = 8, hi: int = 40) -> str:
    lines = text.splitlines(keepends=True)
    n = rng.randint(lo, hi)
    start = rng.randrange(0, max(1, len(lines) - n))
    return "".join(lines[start : start + n])


def _rename(text: str, rng: random.Random) -> str:
    names = sorted({m for m in _IDENT.findall(text) if m.lower() not in _KEEP})
    chosen = set(rng.sample(names, min(4, len(names))))
    return _IDENT.sub(lambda m: f"{m[0]}_x" if m[0] in chosen else m[0], text)


def _queries(corpus: Path, seed: int = 6) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    files = sorted(corpus.glob("*.py"))
    texts = [f.read_text() for f in files]
    queries = [("verbatim", _windows(rng.choice(texts), rng)) for _ in range(160)]
    queries += [("renamed", _rename(_windows(rng.choice(texts), rng), rng)) for _ in range(80)]
    negatives = [f.read_text() for p in NEGATIVE_PACKAGES for f in sorted((STDLIB / p).glob("*.py"))]
    queries += [("negative", _windows(rng.choice(negatives), rng)) for _ in range(50)]
    for _ in range(30):
        lines = _windows(rng.choice(texts), rng, 15, 40).splitlines(keepends=True)
        rng.shuffle(lines)
        queries.append(("shuffled", "".join(lines)))
    return queries


def _canonical(matches: list[Match]) -> list[str]:
    # Equal-weight matches (the same file in two repositories) may come in either order: the
    # stores number documents differently. Everything else about them must be identical.
    return sorted(json.dumps(m.model_dump(), sort_keys=True) for m in matches)


@pytest.fixture(scope="module")
def stores(es_url: str, parity_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("parity-stores")
    jsonl = work / "stack.jsonl"
    with jsonl.open("w") as f:
        for p in sorted(parity_corpus.glob("json_*.py")) + sorted(parity_corpus.glob("wsgiref_*.py")):
            row = {
                "content": p.read_text(),
                "max_stars_repo_name": "someone/vendored",
                "max_stars_repo_path": f"third_party/{p.name}",
                "max_stars_repo_licenses": ["MIT"],
                "lang": "Python",
            }
            f.write(json.dumps(row) + "\n")
    embedded_path = work / "embedded"
    build(embedded_path, _sources(parity_corpus, jsonl), progress=False)
    summary = build_elastic(es_url, "parity", _sources(parity_corpus, jsonl), jobs=2, progress=False)
    embedded, elastic = EmbeddedIndex(embedded_path), ElasticIndex(es_url, "parity")
    assert summary.index_docs == embedded.num_docs == elastic.num_docs
    yield embedded, elastic
    embedded.close()
    elastic.close()


def test_same_matches_on_generated_queries(stores: Any, parity_corpus: Path) -> None:
    embedded, elastic = stores
    local, remote = Matcher(embedded), Matcher(elastic)
    queries = _queries(parity_corpus)
    assert len(queries) >= 300
    found: dict[str, int] = {}
    differ = []
    for i, (kind, text) in enumerate(queries):
        want = local.check(text, path="q.py")
        got = remote.check(text, path="q.py")
        found[kind] = found.get(kind, 0) + bool(want)
        if _canonical(want) != _canonical(got):
            differ.append((i, kind, [m.describe() for m in want], [m.describe() for m in got]))
    assert differ == [], f"{len(differ)} of {len(queries)} queries differ, e.g. {differ[:3]}"
    # The comparison is not vacuous: positives mostly match, negatives mostly do not.
    assert found["verbatim"] >= 0.8 * 160, found
    assert found["renamed"] >= 0.5 * 80, found
    # (seed 6: 153 of 160, 69 of 80, 0 of 50, 0 of 30)
    assert found["negative"] <= 0.1 * 50 and found["shuffled"] <= 0.2 * 30, found


def test_same_documents_and_lookups(stores: Any, parity_corpus: Path) -> None:
    embedded, elastic = stores
    text = (parity_corpus / "json_decoder.py").read_text()[1500:4000]
    local, remote = Matcher(embedded).check(text), Matcher(elastic).check(text)
    assert local and _canonical(local) == _canonical(remote)
    licences = {m.source.license for m in remote}
    assert licences == {"PSF-2.0", "MIT"}, "the file is in both sources, under both licences"
    assert all(m.kind == "exact" for m in remote)


def test_same_matches_when_lookups_count_and_split(
    stores: Any, parity_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup paths a small corpus rarely takes: more chunks than the first request fetches
    (counted, boilerplate dropped, the rest fetched in requests of bounded size), and keys split
    over several requests, where one chunk can come back twice."""
    embedded, elastic = stores
    monkeypatch.setattr(es_store, "FIRST_FETCH", 3)
    monkeypatch.setattr(es_store, "TERMS_PER_REQUEST", 7)
    monkeypatch.setattr(es_store, "MAX_FETCH", 600)  # still above max_postings (512)
    counted: list[int] = []
    real_counts = es_store.ElasticIndex._counts

    def counts(self: es_store.ElasticIndex, index: str, keys: list[int]) -> dict[int, int]:
        counted.append(len(keys))
        return real_counts(self, index, keys)

    monkeypatch.setattr(es_store.ElasticIndex, "_counts", counts)
    local, remote = Matcher(embedded), Matcher(elastic)
    differ = []
    for i, (kind, text) in enumerate(_queries(parity_corpus)[::4]):
        want, got = local.check(text, path="q.py"), remote.check(text, path="q.py")
        if _canonical(want) != _canonical(got):
            differ.append((i, kind, [m.describe() for m in want], [m.describe() for m in got]))
    assert differ == [], f"{len(differ)} queries differ, e.g. {differ[:3]}"
    assert len(counted) > 20, "the counting path ran"


def test_fingerprints_and_bands_are_looked_up_in_one_request(
    stores: Any, parity_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query that finds no exact copy looks up its bands too: Elasticsearch gets both lookups
    in one ``_msearch`` and answers them as it answers each alone."""
    embedded, elastic = stores
    negatives = [text for kind, text in _queries(parity_corpus) if kind == "negative"]
    negatives = [t for t in negatives if len(minhash_bands(tokenize(t), elastic.params, stride=1).keys)]
    paths: list[str] = []
    perform = elastic.es.perform_request

    def counted(method: str, path: str, **kwargs: Any) -> Any:
        paths.append(path)
        return perform(method, path, **kwargs)

    monkeypatch.setattr(elastic.es, "perform_request", counted)
    remote = Matcher(elastic)
    for text in negatives[:5]:
        paths.clear()
        assert remote.check(text, path="q.py") == Matcher(embedded).check(text, path="q.py") == []
        assert paths == ["/_msearch"]
    # Both answered as each alone, on a copy from the corpus (it has fingerprint and band hits).
    tokens = tokenize((parity_corpus / "json_decoder.py").read_text()[1500:4000])
    keys = structure_hashes(tokens, elastic.params.kgram)
    band_keys = minhash_bands(tokens, elastic.params, stride=1).keys
    found, bands = elastic.lookup_with_bands(keys, band_keys, 512)
    for got, want in [
        (found, elastic.lookup_fingerprints(keys, 512)),
        (bands(), elastic.lookup_bands(band_keys, 512)),
    ]:
        for field in fields(want):
            assert np.array_equal(getattr(got, field.name), getattr(want, field.name)), field.name
    assert len(found.qi) and len(bands().qi), "not vacuous"


def test_an_error_in_one_of_the_joint_lookups_is_reported(es_url: str, stores: Any) -> None:
    with ElasticIndex(es_url, "parity") as elastic:
        elastic.mh_index = "parity-missing"
        keys = np.array([1, 2, 3], dtype=np.uint64)
        with pytest.raises(BackendError, match="answered 404 to a lookup"):
            elastic.lookup_with_bands(keys, keys, 512)
