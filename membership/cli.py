"""``code-search``: build an index and ask it whether code is in the corpus.

Exit status: 0 no match, 1 match found, 2 error (message on stderr). Imports stay light (no torch,
no web framework) so the command starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from index.config import BuildLimits, FingerprintParams
from index.names import printable
from stacklens.errors import InputError, StacklensError

from .checker import Checker
from .cli_parser import parser
from .match import Match
from .open import CheckerSettings, open_checker
from .query import decode_query
from .settings import QuerySettings, from_environment

EXIT_NONE, EXIT_MATCH, EXIT_ERROR = 0, 1, 2


def _settings(args: argparse.Namespace) -> QuerySettings:
    overrides = {
        k: v
        for k, v in {
            "min_chars": args.min_chars,
            "max_matches": args.max_matches,
            "max_query_bytes": args.max_query_bytes,
        }.items()
        if v is not None
    }
    return from_environment(**overrides)


def _open_checker(args: argparse.Namespace, settings: QuerySettings) -> Checker:
    try:
        where = CheckerSettings(
            index=args.index, url=args.url, es_url=args.es_url, es_index=args.es_index,
            token=args.token, query=settings,
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"invalid option: {exc}") from None
    return open_checker(where)


# How far past the limit a pipe is read to tell the query's size; beyond, "more than" it.
_MEASURE_BYTES = 1 << 30


def _size_of(f: BinaryIO, read: int) -> tuple[int, bool]:
    """The size of the input ``f`` that ``read`` bytes were read from, and whether it is exact."""
    with contextlib.suppress(OSError):
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode):
            return st.st_size, True
    while read < _MEASURE_BYTES:
        chunk = f.read(1 << 20)
        if not chunk:
            return read, True
        read += len(chunk)
    return read, False


def _read_input(name: str, limit: int) -> str:
    if name == "-":
        f, close = sys.stdin.buffer, False
    else:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"cannot read {name}: no such file")
        f, close = path.open("rb"), True
    try:
        data = f.read(limit + 1)
        if len(data) > limit:  # read no further than one byte past the limit, then measure
            size, exact = _size_of(f, len(data))
            raise InputError(
                f"the query is {'' if exact else 'more than '}{size:,} bytes; the limit is {limit:,} "
                "(check a smaller part, or raise it with --max-query-bytes / STACKLENS_MAX_QUERY_BYTES)"
            )
    finally:
        if close:
            f.close()
    return decode_query(data, limit)


def _print_human(name: str, matches: list[Match], out: TextIO) -> None:
    # Corpus paths are anyone's file names: a newline or an escape sequence in one is shown,
    # never acted on by the terminal (index/names.py).
    for m in matches:
        qs = m.query_span
        url = f"  {m.source.url}" if m.source.url else ""
        out.write(printable(f"{name}:{qs.start_line}-{qs.end_line}: {m.describe()}{url}") + "\n")


def _query(args: argparse.Namespace) -> int:
    settings = _settings(args)
    checker = _open_checker(args, settings)
    if args.batch:
        return _batch(checker, args, settings)
    text = _read_input(args.file, settings.max_query_bytes)
    path = None if args.file == "-" else args.file
    matches = checker.check(text, lang=args.lang, path=path)
    if args.json:
        json.dump({"matches": [m.model_dump() for m in matches]}, sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_human("(stdin)" if args.file == "-" else args.file, matches, sys.stdout)
        if not matches:
            sys.stderr.write("no match in the corpus\n")
    return EXIT_MATCH if matches else EXIT_NONE


def _batch(checker: Checker, args: argparse.Namespace, settings: QuerySettings) -> int:
    found = errors = 0
    source = sys.stdin if args.batch == "-" else None
    try:
        f = source or open(args.batch, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot read {args.batch}: {exc.strerror}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row_id: Any = None
            try:
                row = json.loads(line)
                if isinstance(row, dict):
                    row_id = row.get("id")  # echoed on an error row too, so it can be matched up
                if not isinstance(row, dict) or not isinstance(row.get("query"), str):
                    raise InputError('expected {"id": ..., "query": "..."}')
                for key in ("lang", "path"):
                    if not isinstance(row.get(key), str | None):
                        raise InputError(f'"{key}" must be a string or null')
                text = decode_query(row["query"].encode("utf-8", "surrogatepass"), settings.max_query_bytes)
                matches = checker.check(text, lang=row.get("lang") or args.lang, path=row.get("path"))
                out: dict[str, Any] = {"id": row_id, "matches": [m.model_dump() for m in matches]}
                found += bool(matches)
            except (ValueError, StacklensError) as exc:
                msg = str(exc) if isinstance(exc, StacklensError) else f"malformed JSON: {exc}"
                sys.stderr.write(printable(f"code-search: {args.batch}:{lineno}: {msg}") + "\n")
                out = {"id": row_id, "matches": [], "error": msg}
                errors += 1
            sys.stdout.write(json.dumps(out) + "\n")
    if errors:
        return EXIT_ERROR
    return EXIT_MATCH if found else EXIT_NONE


def _build(args: argparse.Namespace) -> int:
    from index.builder import build, parse_shard
    from index.sources import open_source

    if bool(args.index) == bool(args.es_url):
        raise InputError("build into one place: --index PATH or --es-url URL [--es-index NAME]")
    limits = BuildLimits(max_file_bytes=args.max_file_bytes)
    try:
        params = FingerprintParams(kgram=args.kgram, window=args.window)
    except ValueError as exc:
        raise InputError(f"invalid fingerprint parameters: {exc}") from None
    meta = {"repo": args.repo, "license": args.license, "url_template": args.url_template}
    sources = [
        open_source(
            s,
            limits,
            tuple(args.exclude),
            skip_generated=args.skip_generated,
            store_content=args.store_content,
            **meta,
        )
        for s in args.sources
    ]
    defaults = FingerprintParams()
    explicit = (params.kgram, params.window) != (defaults.kgram, defaults.window)
    if args.es_url:
        from index.elastic import build_elastic

        summary = build_elastic(
            args.es_url,
            args.es_index,
            sources,
            params=params if explicit else None,
            shard=parse_shard(args.shard),
            jobs=args.jobs,
            progress=args.progress,
            content=args.es_content,
        )
        _report(summary, args.list_skipped)
        return EXIT_NONE
    summary = build(
        args.index,
        sources,
        params=params if explicit or not (Path(args.index) / "manifest.json").exists() else None,
        limits=limits,
        shard=parse_shard(args.shard),
        jobs=args.jobs,
        progress=args.progress,
    )
    _report(summary, args.list_skipped)
    return EXIT_NONE


def _report(summary: Any, list_skipped: bool) -> None:
    if list_skipped:
        for s in summary.skipped.listed:
            fields = [s.reason, s.source, s.path, *([s.detail] if s.detail else [])]
            sys.stdout.write("\t".join(printable(f) for f in fields) + "\n")
        if summary.skipped.unlisted:
            sys.stdout.write(f"not-listed\t\t\t{summary.skipped.unlisted:,} more\n")
    sys.stderr.write(summary.render() + "\n")


def _merge(args: argparse.Namespace) -> int:
    from index.compact import compact_index

    docs = compact_index(args.index, args.parts)
    sys.stderr.write(f"merged into {args.index}: {docs} documents in one segment\n")
    return EXIT_NONE


def _verify(args: argparse.Namespace) -> int:
    from index.store import EmbeddedIndex

    with EmbeddedIndex(args.index) as idx:
        bad = idx.verify()
    if bad:
        sys.stderr.write(
            "damaged index files (rebuild the index):\n" + "".join(printable(b) + "\n" for b in bad)
        )
        return EXIT_ERROR
    sys.stderr.write(f"{args.index}: all checksums match\n")
    return EXIT_NONE


def _info(args: argparse.Namespace) -> int:
    from index.skiplist import read_skip_list
    from index.store import EmbeddedIndex

    with EmbeddedIndex(args.index) as idx:
        info = {
            "path": str(idx.path),
            "documents": idx.num_docs,
            "segments": len(idx.segments),
            "bytes": idx.size_bytes(),
            "params": idx.params.model_dump(),
            "skipped": len(read_skip_list(idx.path)),
        }
    json.dump(info, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return EXIT_NONE


def _serve(args: argparse.Namespace) -> int:
    from .limits import from_environment as limits_from_environment
    from .policy import load_policy
    from .service import serve, store_opener

    policy = load_policy(args.policy) if args.policy else None
    opener = store_opener(args.index, args.es_url, args.es_index)
    # The service's match settings (STACKLENS_MIN_CHARS, ...) and limits (STACKLENS_SERVICE_*).
    settings, limits = from_environment(), limits_from_environment()
    where = {"host": args.host, "port": args.port, "token": args.token}
    serve(opener, **where, settings=settings, limits=limits, policy=policy)
    return EXIT_NONE


def _scan(args: argparse.Namespace) -> int:
    from .scan_cli import run_scan

    settings = _settings(args)
    return run_scan(args, lambda: _open_checker(args, settings))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    handlers = {"build": _build, "query": _query, "merge": _merge, "verify": _verify, "info": _info}
    handlers["serve"] = _serve
    handlers["scan"] = _scan
    try:
        return handlers[args.command](args)
    except StacklensError as exc:
        sys.stderr.write(f"code-search: error: {printable(str(exc))}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("code-search: interrupted; the index keeps everything committed before\n")
        return 130
    except BrokenPipeError:
        return EXIT_NONE
    except Exception as exc:  # the last line of defence: a message, never a traceback
        if os.environ.get("STACKLENS_DEBUG"):
            raise
        sys.stderr.write(
            f"code-search: internal error: {type(exc).__name__}: {printable(str(exc))} "
            "(set STACKLENS_DEBUG=1 for a traceback and please report it)\n"
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
