"""The Elasticsearch store against a real server: resumable and sharded builds, updates, errors
when Elasticsearch is missing, down or silent, and the membership service on top of it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from es_corpus import STDLIB, copy_packages

import index.elastic.build as es_build
from index.config import BuildLimits, FingerprintParams
from index.elastic import ElasticIndex, build_elastic, doc_ref
from index.elastic.common import FORMAT_VERSION, connect, docs_body
from index.sources import SkipStats, SourceFile, open_source
from membership import Matcher
from membership.service import create_app, running
from stacklens.errors import BackendError, ConfigError, IndexCorruptError, IndexNotFoundError

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _code_search(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "membership", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_packages(tmp_path_factory.mktemp("small") / "src", ("json", "wsgiref"))[0].parent


class _Interrupted(Exception):
    pass


class _DyingSource:
    """A source that fails after ``n`` files, as a killed build would stop."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.n = inner, n

    def files(self, stats: SkipStats) -> Any:
        for i, f in enumerate(self.inner.files(stats)):
            if i == self.n:
                raise _Interrupted
            yield f


def test_interrupted_build_resumes_and_updates_replace_postings(
    es_url: str, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(es_build, "BATCH_DOCS", 4)  # several batches from a small corpus
    total = len(list(small_corpus.glob("*.py")))
    source = open_source(str(small_corpus), BuildLimits(), repo="py/std")
    with pytest.raises(_Interrupted):
        build_elastic(es_url, "resume", [_DyingSource(source, 9)], progress=False)
    with ElasticIndex(es_url, "resume") as idx:
        idx.es.indices.refresh(index="resume-*")  # the interrupted build did not get to it
        committed = idx.num_docs
    assert committed == 8, "two whole batches were written before the failure"

    again = build_elastic(es_url, "resume", [source], progress=False)
    assert again.unchanged == committed and again.files == total - committed
    assert again.index_docs == total

    # Change one file: its document is replaced and its old postings no longer match.
    target = small_corpus / "json_decoder.py"
    old_text = target.read_text()
    old_part = old_text[3000:5000]
    new_part = "".join(f"    value_{i} = compute_{i}(alpha, beta) + offset_{i} * {i}\n" for i in range(40))
    target.write_text(old_text.replace(old_part, new_part))
    try:
        updated = build_elastic(es_url, "resume", [source], progress=False)
        assert updated.updated == 1 and updated.files == 1 and updated.unchanged == total - 1
        with ElasticIndex(es_url, "resume") as idx:
            matcher = Matcher(idx)
            assert matcher.check(new_part)[0].source.path == "json_decoder.py"
            assert all(m.source.path != "json_decoder.py" for m in matcher.check(old_part))
    finally:
        target.write_text(old_text)


def test_file_changed_after_an_interrupted_write_leaves_no_stale_postings(
    es_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build stopped after a new file's postings went in but before its record did, then the
    file shrank: the next build must not keep the first attempt's extra chunks beside the new."""
    corpus = copy_packages(tmp_path / "src", ("json",))[0].parent
    target = corpus / "json_decoder.py"
    old_text = target.read_text()
    real_bulk = es_build.ElasticBuilder._bulk
    calls: list[int] = []

    def dying_bulk(self: Any, actions: Any) -> None:
        calls.append(1)
        if len(calls) == 3:  # PENDING records, then postings went in; the real records do not
            raise _Interrupted
        real_bulk(self, actions)

    monkeypatch.setattr(es_build.ElasticBuilder, "_bulk", dying_bulk)
    source = open_source(str(corpus), BuildLimits(), repo="py/std")
    with pytest.raises(_Interrupted):
        build_elastic(es_url, "pending", [source], progress=False)
    monkeypatch.undo()
    total = len(list(corpus.glob("*.py")))

    new_part = "".join(f"    value_{i} = compute_{i}(alpha, beta) + offset_{i} * {i}\n" for i in range(40))
    target.write_text(old_text[:1500] + new_part)
    again = build_elastic(es_url, "pending", [source], progress=False)
    assert again.files == total and again.updated == 0 and again.index_docs == total
    with ElasticIndex(es_url, "pending") as idx:
        matcher = Matcher(idx)
        assert matcher.check(new_part)[0].source.path == "json_decoder.py"
        stale = old_text[-3000:]
        assert all(m.source.path != "json_decoder.py" for m in matcher.check(stale))
        recovered = _chunk_counts(idx, doc_ref("py/std::json_decoder.py"))
    build_elastic(es_url, "pending-clean", [source], progress=False)
    with ElasticIndex(es_url, "pending-clean") as clean:
        assert recovered == _chunk_counts(clean, doc_ref("py/std::json_decoder.py"))


def test_a_file_twice_in_one_build_keeps_only_its_last_version(
    es_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same file (same key) in two consecutive batches, shorter the second time: the batch
    being fingerprinted must not check what is stored before the one in flight has written it,
    or the first version's extra chunks stay beside the second's."""
    monkeypatch.setattr(es_build, "BATCH_DOCS", 2)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for name in ("__init__.py", "decoder.py", "encoder.py"):  # batches: two files, then one
        (one / name).write_text((STDLIB / "json" / name).read_text())
    long_text = (one / "decoder.py").read_text()
    (two / "decoder.py").write_text(long_text[:1500])
    limits = BuildLimits()
    sources = [open_source(str(d), limits, repo="py/json") for d in (one, two)]
    build_elastic(es_url, "twice", sources, progress=False)
    build_elastic(es_url, "twice-clean", [sources[1]], progress=False)
    ref = doc_ref("py/json::decoder.py")
    with ElasticIndex(es_url, "twice") as idx, ElasticIndex(es_url, "twice-clean") as clean:
        assert _chunk_counts(idx, ref)[::2] == _chunk_counts(clean, ref)[::2]
        assert all(m.source.path != "decoder.py" for m in Matcher(idx).check(long_text[-3000:]))


def _chunk_counts(idx: ElasticIndex, ref: int) -> list[int]:
    """Postings chunks of one file and in all, in both postings indices."""
    queries = ({"term": {"d": ref}}, None)
    return [idx.es.count(index=i, query=q)["count"] for i in (idx.fp_index, idx.mh_index) for q in queries]


def test_parallel_shard_builds_fill_one_index(es_url: str, small_corpus: Path) -> None:
    total = len(list(small_corpus.glob("*.py")))
    base = ["build", "--es-url", es_url, "--es-index", "sharded", "--jobs", "1", str(small_corpus)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "membership", *base, "--shard", f"{i}/3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs
    build_elastic(
        es_url, "sharded-reference", [open_source(str(small_corpus), BuildLimits())], progress=False
    )
    # Snippets from every file, each found on the one-process build: the shards must give the
    # same answers, not just the same document count.
    queries = []
    for path in sorted(small_corpus.glob("*.py")):
        lines = path.read_text().splitlines(keepends=True)
        queries += ["".join(lines[at : at + 20]) for at in (len(lines) // 5, len(lines) // 2)]
    with ElasticIndex(es_url, "sharded") as idx, ElasticIndex(es_url, "sharded-reference") as ref:
        assert idx.num_docs == total
        found, expected = Matcher(idx), Matcher(ref)
        answered = 0
        for query in queries:
            want = [m.model_dump() for m in expected.check(query)]
            answered += bool(want)
            assert [m.model_dump() for m in found.check(query)] == want
        assert answered >= len(queries) * 3 // 4, f"only {answered} of {len(queries)} queries matched"
    rerun = _code_search(*base)
    assert rerun.returncode == 0 and f"{total} unchanged" in rerun.stderr


def test_other_fingerprint_parameters_are_refused(es_url: str, small_corpus: Path) -> None:
    source = open_source(str(small_corpus), BuildLimits())
    build_elastic(es_url, "params", [source], progress=False)
    other = FingerprintParams(kgram=12, window=8)
    with pytest.raises(IndexCorruptError, match="other fingerprint parameters"):
        build_elastic(es_url, "params", [source], params=other, progress=False)


def test_a_store_of_the_previous_format_asks_for_a_rebuild(es_url: str, small_corpus: Path) -> None:
    """Format 4 kept 20-byte rows, 32 per chunk, and no records in the chunks: neither reading
    nor adding to such a store may go on as if it were the current layout."""
    body = docs_body(FingerprintParams(), 1, 0)
    body["mappings"]["_meta"]["version"] = FORMAT_VERSION - 1
    with connect(es_url) as es:
        es.indices.create(index="oldformat-docs", **body)
    want = f"format version {FORMAT_VERSION - 1}, this stacklens reads {FORMAT_VERSION}; rebuild"
    with pytest.raises(IndexCorruptError, match=want):
        ElasticIndex(es_url, "oldformat")
    with pytest.raises(IndexCorruptError, match=want):
        build_elastic(es_url, "oldformat", [open_source(str(small_corpus), BuildLimits())], progress=False)
    done = _code_search(
        "query", "--es-url", es_url, "--es-index", "oldformat", str(small_corpus / "json_tool.py")
    )
    assert done.returncode != 0 and "rebuild" in done.stderr


def test_matched_files_come_with_the_chunks_of_a_lookup(
    es_url: str, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk carries its file's record: a query's matches need no request per file, and
    the record is the one the documents index holds."""
    build_elastic(
        es_url, "records", [open_source(str(small_corpus), BuildLimits(), repo="py/std")], progress=False
    )
    ref = doc_ref("py/std::json_decoder.py")
    with ElasticIndex(es_url, "records") as idx:
        stored = idx.es.get(index=idx.docs_index, id=str(ref))["_source"]
        gets: list[Any] = []
        monkeypatch.setattr(idx.es, "get", lambda **kw: gets.append(kw))
        text = (small_corpus / "json_decoder.py").read_text()[2000:4500]
        matches = Matcher(idx).check(text)
        assert matches and matches[0].source.path == "json_decoder.py" and gets == []
        assert matches[0].source.sha == stored["sha"] and idx.document(ref) == stored


def test_missing_index_down_and_silent_elasticsearch(es_url: str, small_corpus: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="code-search build --es-url"):
        ElasticIndex(es_url, "never-built")
    dead = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(BackendError, match="cannot reach Elasticsearch"):
        ElasticIndex(dead, "x")
    with pytest.raises(BackendError, match="cannot reach Elasticsearch"):
        build_elastic(dead, "x", [open_source(str(small_corpus), BuildLimits())], progress=False)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(BackendError, match="ConnectionTimeout"):
            ElasticIndex(f"http://127.0.0.1:{silent.getsockname()[1]}", "x", timeout=0.5)
    done = _code_search("query", "--es-url", dead, "--es-index", "x", str(small_corpus / "json_tool.py"))
    assert done.returncode == 2 and "cannot reach Elasticsearch" in done.stderr


def test_service_on_elasticsearch(es_url: str, small_corpus: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "stack.jsonl"
    licences = ["MIT", "GPL-3.0", "MIT", "Apache-2.0"]
    with jsonl.open("w") as f:
        for i, lic in enumerate(licences):
            row = {
                "content": "def frobnicate_widget(x):\n    return x * 42\n",
                "max_stars_repo_name": f"org/r{i}",
                "max_stars_repo_path": f"src/m{i}.py",
                "max_stars_repo_licenses": [lic],
                "lang": "Python",
            }
            f.write(json.dumps(row) + "\n")
    sources = [
        open_source(str(small_corpus), BuildLimits(), repo="py/std", license="PSF-2.0"),
        open_source(str(jsonl), BuildLimits()),
    ]
    build_elastic(es_url, "svc", sources, progress=False, content=True)
    text = (small_corpus / "json_decoder.py").read_text()[2000:4500]
    app = create_app(lambda: ElasticIndex(es_url, "svc"), token="es-token")
    auth = {"Authorization": "Bearer es-token"}
    with running(app) as url, ElasticIndex(es_url, "svc") as idx:
        health = httpx.get(f"{url}/healthz").json()
        assert health["status"] == "ok" and "Elasticsearch" in health["store"]
        r = httpx.post(f"{url}/v1/check", json={"snippets": [{"text": text}]}, headers=auth)
        assert r.status_code == 200
        assert r.json()["results"][0]["matches"] == [m.model_dump() for m in Matcher(idx).check(text)]

        def search(**body: Any) -> dict[str, Any]:
            resp = httpx.post(f"{url}/v1/search", json=body, headers=auth)
            assert resp.status_code == 200, resp.text
            return resp.json()  # type: ignore[no-any-return]

        found = search(query="frobnicate_widget(x)", phrase=True)
        assert found["total"] == 4
        assert {h["license"] for h in found["hits"]} == {"MIT", "GPL-3.0", "Apache-2.0"}
        assert search(query="frobnicate_widget", phrase=True, license=["MIT"])["total"] == 2
        assert (
            search(query="frobnicate_widget", phrase=True, repo=["org/r1"])["hits"][0]["path"] == "src/m1.py"
        )
        assert search(query="frobnicate_widget", phrase=True, lang=["rust"])["total"] == 0
        page1 = search(query="frobnicate_widget", phrase=True, size=2)
        page2 = search(query="frobnicate_widget", phrase=True, size=2, offset=2)
        paths = [h["path"] for h in page1["hits"] + page2["hits"]]
        assert sorted(paths) == [f"src/m{i}.py" for i in range(4)]
        assert search(query="frobnicate_widget(y)", phrase=True)["total"] == 0
        assert search(query="scanstring", repo=["py/std"])["hits"][0]["path"] == "json_decoder.py"
        bad = httpx.post(f"{url}/v1/search", json={"query": "ab"}, headers=auth)
        assert bad.status_code == 422


def test_the_content_index_is_off_unless_asked_for(es_url: str, small_corpus: Path) -> None:
    """Without --es-content the store keeps no trigram index (most of its size), /v1/search says
    how to get one, and a later --es-content build cannot add it to some files only."""
    source = open_source(str(small_corpus), BuildLimits())
    build_elastic(es_url, "lean", [source], progress=False)
    build_elastic(es_url, "full", [source], progress=False, content=True)
    with ElasticIndex(es_url, "lean") as lean, ElasticIndex(es_url, "full") as full:
        assert not lean.content and full.content
        sizes = {
            name: lean.es.indices.stats(index=f"{name}-docs", metric="store")["_all"]["primaries"]["store"][
                "size_in_bytes"
            ]
            for name in ("lean", "full")
        }
        assert sizes["lean"] * 2 < sizes["full"], sizes
        assert full.search("scanstring", phrase=True)["total"] >= 1
        with pytest.raises(ConfigError, match="--es-content"):
            lean.search("scanstring")
    app = create_app(lambda: ElasticIndex(es_url, "lean"))
    with running(app) as url:
        r = httpx.post(f"{url}/v1/search", json={"query": "scanstring"})
        assert r.status_code == 400 and "--es-content" in r.json()["detail"], r.text
    with pytest.raises(ConfigError, match="new --es-index with --es-content"):
        build_elastic(es_url, "lean", [source], progress=False, content=True)


def test_service_reports_elasticsearch_going_away(es_url: str, small_corpus: Path) -> None:
    """The store was opened, then its cluster vanished: 502 with the cause, 503 on /healthz."""
    build_elastic(es_url, "gone", [open_source(str(small_corpus), BuildLimits())], progress=False)
    store = ElasticIndex(es_url, "gone")
    app = create_app(lambda: store)
    text = (small_corpus / "json_decoder.py").read_text()[2000:4500]
    with running(app) as url:
        assert httpx.post(f"{url}/v1/check", json={"snippets": [{"text": text}]}).status_code == 200
        store.es.close()  # what a dead cluster looks like to the client: every request fails
        store.es = connect(f"http://127.0.0.1:{_free_port()}", 2.0)
        store._docs.clear()
        r = httpx.post(f"{url}/v1/check", json={"snippets": [{"text": text}]})
        assert r.status_code == 502 and "cannot reach Elasticsearch" in r.json()["detail"]
        assert httpx.get(f"{url}/healthz").status_code == 503


def test_sourcefile_keys_give_stable_references() -> None:
    from index.elastic import doc_ref

    a = SourceFile(key="repo::a.py", text="x", path="a.py")
    assert doc_ref(a.key) == doc_ref("repo::a.py") and 0 <= doc_ref(a.key) < 2**63
    assert doc_ref("repo::a.py") != doc_ref("repo::b.py")


def test_schemathesis_on_elasticsearch_service(es_url: str, tmp_path: Path) -> None:
    """Generated requests against the schema, /v1/search included: never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    jsonl = tmp_path / "rows.jsonl"
    rows = [{"content": f"def f{i}(x):\n    return x + {i}\n" * 8, "repo_name": f"o/r{i}"} for i in range(6)]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_elastic(es_url, "schema", [open_source(str(jsonl), BuildLimits())], progress=False)
    app = create_app(lambda: ElasticIndex(es_url, "schema"))
    with running(app) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        for op in [r.ok() for r in schema.get_all_operations()]:  # type: ignore[union-attr]

            @given(case=op.as_strategy())
            @settings(
                max_examples=20,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(checks=[not_a_server_error])

            run()
