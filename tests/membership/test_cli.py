"""`code-search` as users run it: a real process, real files, exit codes 0/1/2."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS_FILES, STDLIB

ROOT = Path(__file__).parents[2]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "membership", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )
    out = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert "Traceback" not in out.stderr, out.stderr
    return out


def copied_snippet() -> str:
    lines = (STDLIB / CORPUS_FILES[0]).read_text().splitlines(keepends=True)
    return "".join(lines[30:70])


@pytest.fixture(scope="module")
def cli_index(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "idx"
    res = run("build", "--index", str(path), "--repo", "acme/corpus", "--jobs", "2", str(corpus_dir))
    assert res.returncode == 0, res.stderr
    assert f"indexed {len(CORPUS_FILES)} files" in res.stderr
    return path


def test_query_file_reports_source_lines_and_licence_exit_1(cli_index: Path, tmp_path: Path) -> None:
    query = tmp_path / "generated.py"
    query.write_text("import sys\n\n" + copied_snippet())
    res = run("query", "--index", str(cli_index), str(query))
    assert res.returncode == 1
    first = res.stdout.splitlines()[0]
    assert first.startswith(f"{query}:")
    assert f"acme/corpus/src/{CORPUS_FILES[0]}:" in first
    assert "GPL-3.0" in first and "exact" in first


def test_query_json_and_stdin(cli_index: Path) -> None:
    res = run("query", "--index", str(cli_index), "--json", "-", stdin=copied_snippet().encode())
    assert res.returncode == 1
    data = json.loads(res.stdout)
    assert data["matches"][0]["source"]["path"] == f"src/{CORPUS_FILES[0]}"
    assert data["matches"][0]["kind"] == "exact"


def test_unseen_code_exits_0(cli_index: Path) -> None:
    text = (STDLIB / "csv.py").read_text()[2000:4000]
    res = run("query", "--index", str(cli_index), "-", stdin=text.encode())
    assert res.returncode == 0 and res.stdout == ""
    assert "no match" in res.stderr


def test_batch_mode_keeps_order_and_reports_bad_rows(cli_index: Path, tmp_path: Path) -> None:
    rows = [
        json.dumps({"id": "a", "query": copied_snippet()}),
        json.dumps({"id": 2, "query": "print('hello')"}),
        "{this is not json",
        json.dumps({"id": "c", "query": ""}),
        json.dumps({"id": "d", "query": copied_snippet(), "path": "x.py"}),
        json.dumps({"id": "e", "query": 5}),
        json.dumps({"id": "f", "query": "x = 1", "lang": 5}),
    ]
    batch = tmp_path / "q.jsonl"
    batch.write_text("\n".join(rows) + "\n")
    res = run("query", "--index", str(cli_index), "--batch", str(batch))
    out = [json.loads(line) for line in res.stdout.splitlines()]
    # a row that is an object keeps its id on an error, so the caller can match it up
    assert [o["id"] for o in out] == ["a", 2, None, "c", "d", "e", "f"]
    assert out[0]["matches"] and not out[1]["matches"] and out[4]["matches"]
    assert "error" in out[2] and "empty" in out[3]["error"]
    assert "query" in out[5]["error"] and '"lang" must be a string' in out[6]["error"]
    assert res.returncode == 2  # some rows were unusable
    assert "q.jsonl:3" in res.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x7fELF\x00\x00binary", "binary"),
        (b"caf\xe9 = 1\n", "UTF-8"),
        (b"   \n", "empty"),
    ],
)
def test_bad_queries_exit_2_with_a_message(
    cli_index: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    query = tmp_path / "q.py"
    query.write_bytes(content)
    res = run("query", "--index", str(cli_index), str(query))
    assert res.returncode == 2
    assert message in res.stderr and res.stderr.startswith("code-search: error:")


def test_ten_megabyte_query_is_refused_clearly(cli_index: Path, tmp_path: Path) -> None:
    query = tmp_path / "huge.py"
    query.write_bytes(b"x = 1\n" * (10 * 1024 * 1024 // 6))
    res = run("query", "--index", str(cli_index), str(query))
    assert res.returncode == 2 and "limit" in res.stderr and "--max-query-bytes" in res.stderr


def test_missing_and_corrupt_index_exit_2(cli_index: Path, tmp_path: Path) -> None:
    res = run("query", "--index", str(tmp_path / "none"), "-", stdin=b"x = 1")
    assert res.returncode == 2 and "code-search build" in res.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("garbage")
    res = run("query", "--index", str(broken), "-", stdin=b"x = 1")
    assert res.returncode == 2 and "damaged" in res.stderr
    res = run("query", "--index", str(cli_index), str(tmp_path / "missing.py"))
    assert res.returncode == 2 and "no such file" in res.stderr


def test_verify_and_info(cli_index: Path) -> None:
    res = run("verify", "--index", str(cli_index))
    assert res.returncode == 0 and "checksums match" in res.stderr
    info = json.loads(run("info", "--index", str(cli_index)).stdout)
    assert info["documents"] == len(CORPUS_FILES)


def test_build_from_jsonl_with_stack_metadata(tmp_path: Path) -> None:
    rows = tmp_path / "stack.jsonl"
    rows.write_text(
        json.dumps(
            {
                "content": (STDLIB / CORPUS_FILES[1]).read_text(),
                "max_stars_repo_name": "octo/enc",
                "max_stars_repo_path": "lib/enc.py",
                "max_stars_repo_licenses": ["MIT"],
                "lang": "Python",
            }
        )
        + "\n"
    )
    idx = tmp_path / "idx"
    assert run("build", "--index", str(idx), str(rows)).returncode == 0
    snippet = "".join((STDLIB / CORPUS_FILES[1]).read_text().splitlines(keepends=True)[40:80])
    res = run("query", "--index", str(idx), "--json", "-", stdin=snippet.encode())
    src = json.loads(res.stdout)["matches"][0]["source"]
    # The document's SHA-1 lets evidence find its text (index content, or the unchanged file).
    content = (STDLIB / CORPUS_FILES[1]).read_text()
    assert src.pop("sha") == hashlib.sha1(content.encode()).hexdigest()
    assert src == {
        "repo": "octo/enc",
        "path": "lib/enc.py",
        "license": "MIT",
        "url": "https://github.com/octo/enc/blob/HEAD/lib/enc.py",
    }


def test_bad_build_arguments_exit_2(tmp_path: Path) -> None:
    res = run("build", "--index", str(tmp_path / "i"), str(tmp_path / "missing-dir"))
    assert res.returncode == 2 and "does not exist" in res.stderr
    res = run("build", "--index", str(tmp_path / "i"), "--shard", "5/2", str(tmp_path))
    assert res.returncode == 2 and "--shard" in res.stderr


def test_query_path_never_imports_torch(cli_index: Path) -> None:
    code = (
        "import sys, io\n"
        "from membership.cli import main\n"
        "sys.stdin = io.TextIOWrapper(io.BytesIO(b'x = 1\\n' * 50))\n"
        f"main(['query', '--index', {str(cli_index)!r}, '-'])\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={**os.environ}
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("size", [1_000_001, 2_500_000])
def test_an_over_large_query_is_told_its_size(cli_index: Path, tmp_path: Path, size: int) -> None:
    query = tmp_path / "big.py"
    query.write_bytes(b"x" * size)
    for args, stdin in (((str(query),), None), (("-",), query.read_bytes())):  # a file, a pipe
        res = run("query", "--index", str(cli_index), *args, stdin=stdin)
        assert res.returncode == 2
        assert f"the query is {size:,} bytes; the limit is 1,000,000" in res.stderr, res.stderr


def _damage_manifest(manifest: dict[str, Any], how: str) -> None:
    if how == "no params":
        del manifest["params"]
    elif how == "segments null":
        manifest["segments"] = None
    elif how == "string version":
        manifest["version"] = "1"
    elif how == "segment without files":
        del manifest["segments"][0]["files"]
    elif how == "segment name a path":
        manifest["segments"][0]["name"] = "../elsewhere"
    elif how == "deleted not a map":
        manifest["deleted"] = [1, 2]
    elif how == "bad params":
        manifest["params"]["kgram"] = "fourteen"


@pytest.mark.parametrize(
    "how",
    [
        "no params",
        "segments null",
        "string version",
        "segment without files",
        "segment name a path",
        "deleted not a map",
        "bad params",
    ],
)
def test_a_manifest_of_the_wrong_shape_is_a_corrupt_index(
    cli_index: Path, corpus_dir: Path, tmp_path: Path, how: str
) -> None:
    idx = tmp_path / "idx"
    shutil.copytree(cli_index, idx)
    manifest = json.loads((idx / "manifest.json").read_text())
    _damage_manifest(manifest, how)
    (idx / "manifest.json").write_text(json.dumps(manifest))
    for args in (("query", "--index", str(idx), "-"), ("build", "--index", str(idx), str(corpus_dir))):
        res = run(*args, stdin=b"x = 1\n")
        assert res.returncode == 2, res.stderr
        assert "manifest of the index" in res.stderr and "is damaged" in res.stderr, res.stderr
        assert "rebuild the index" in res.stderr and "internal error" not in res.stderr


@pytest.mark.parametrize("damage", [b"\xff\xfe", b"}}", b'{"x":1}\n'])
def test_a_damaged_document_table_stops_build_and_merge_clearly(
    cli_index: Path, corpus_dir: Path, tmp_path: Path, damage: bytes
) -> None:
    idx = tmp_path / "idx"
    shutil.copytree(cli_index, idx)
    (docs,) = idx.glob("seg-*/docs.z")
    with docs.open("r+b") as f:  # in place: the size recorded in segment.json still matches
        f.write(damage)
    for args in (("build", "--index", str(idx), str(corpus_dir)), ("merge", "--index", str(idx))):
        res = run(*args)
        assert res.returncode == 2, res.stderr
        assert f"the document table {docs} is damaged" in res.stderr, res.stderr
        assert "code-search verify" in res.stderr and "internal error" not in res.stderr


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[:-64])


def _flip(f: Path) -> None:
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    f.write_bytes(bytes(data))


def _tables(seg: Path) -> list[Path]:
    """The segment's data files, largest first (their names belong to the index format)."""
    files = [f for f in seg.iterdir() if f.name != "segment.json"]
    return sorted(files, key=lambda f: (-f.stat().st_size, f.name))


@pytest.mark.parametrize(
    ("damage", "pick"),
    [
        (_truncate, 0),
        (_flip, 0),
        (_flip, 1),
        (_flip, -1),
        (Path.unlink, 0),
        (Path.unlink, -1),
    ],
    ids=["truncated", "flipped-1st", "flipped-2nd", "flipped-last", "deleted-1st", "deleted-last"],
)
def test_verify_on_a_damaged_index_names_the_file_and_exits_2(
    cli_index: Path, tmp_path: Path, damage: Any, pick: int
) -> None:
    idx = tmp_path / "idx"
    shutil.copytree(cli_index, idx)
    (seg,) = idx.glob("seg-*")
    target = _tables(seg)[pick]
    damage(target)
    res = run("verify", "--index", str(idx))
    assert res.returncode == 2, res.stderr
    assert target.name in res.stderr and "rebuild" in res.stderr, res.stderr
    assert "internal error" not in res.stderr and "checksums match" not in res.stderr
