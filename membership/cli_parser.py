"""The command line of ``code-search``: subcommands, flags and their help."""

from __future__ import annotations

import argparse
import os

from index.config import BuildLimits, FingerprintParams


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="code-search",
        description="Find where code comes from in a training corpus (exit 0: no match, 1: match, 2: error).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="index sources (adds to an existing index)")
    b.add_argument("--index", help="index directory (created if missing)")
    b.add_argument("--es-url", help="build into Elasticsearch at this URL instead of --index")
    b.add_argument("--es-index", default="stacklens", help="store name in Elasticsearch")
    b.add_argument(
        "--es-content",
        action="store_true",
        help="also index the text as trigrams for /v1/search (a new store only; about 1.3x the corpus)",
    )
    b.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="directory, git checkout, .jsonl[.gz] or .parquet"
    )
    b.add_argument("--shard", help="i/N: index only the i-th of N parts (run N workers, then `merge`)")
    b.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)), help="worker processes")
    b.add_argument("--repo", help="repository name for directory sources (git checkouts are detected)")
    b.add_argument("--license", help="licence for directory sources (else read from a LICENSE file)")
    b.add_argument(
        "--url-template", help="source URL for directory sources, e.g. https://host/blob/main/{path}"
    )
    b.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="gitignore-style pattern to skip (repeatable)",
    )
    b.add_argument("--max-file-bytes", type=int, default=BuildLimits().max_file_bytes)
    b.add_argument(
        "--skip-generated",
        action="store_true",
        help="skip generated files (a marker such as 'Code generated ... DO NOT EDIT' or '@generated' "
        "in the file's leading comment), lock files and minified files in directories",
    )
    b.add_argument(
        "--store-content",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the files' text in the index (compressed, about a third of their size) so that "
        "matches show their source side by side; default: on for .jsonl/.parquet, off for directories",
    )
    b.add_argument(
        "--list-skipped",
        action="store_true",
        help="print every skipped file: reason, source, path, details (tab-separated, on stdout)",
    )
    b.add_argument(
        "--kgram", type=int, default=FingerprintParams().kgram, help="tokens per fingerprint (new index only)"
    )
    b.add_argument(
        "--window", type=int, default=FingerprintParams().window, help="winnowing window (new index only)"
    )
    b.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal)",
    )

    q = sub.add_parser("query", help="look code up in the index")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", help="index directory")
    where.add_argument("--url", help="a running membership service (`code-search serve`)")
    where.add_argument("--es-url", help="an Elasticsearch store (with --es-index)")
    q.add_argument("--es-index", default="stacklens", help="store name in Elasticsearch")
    q.add_argument("file", nargs="?", default="-", help="file to check, or - for standard input")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.add_argument(
        "--batch", metavar="FILE.jsonl", help='rows {"id", "query"} in; rows {"id", "matches"} out'
    )
    q.add_argument("--lang", help="language of the query (default: from the file name, else guessed)")
    q.add_argument("--min-chars", type=int, help="minimum matched normalised characters (default 150)")
    q.add_argument("--max-matches", type=int, help="matches per query (default 10)")
    q.add_argument("--max-query-bytes", type=int, help="refuse larger queries (default 1,000,000)")
    q.add_argument("--token", default=os.environ.get("STACKLENS_TOKEN"), help="bearer token for --url")

    sc = sub.add_parser(
        "scan",
        help="check files, or the lines a git diff adds, against the policy (CI; SARIF 2.1.0)",
        description="Exit 0: nothing reported, 1: a match the policy reports, 2: an error.",
    )
    where = sc.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", help="index directory")
    where.add_argument("--url", help="a running membership service (`code-search serve`)")
    where.add_argument("--es-url", help="an Elasticsearch store (with --es-index)")
    sc.add_argument("--es-index", default="stacklens", help="store name in Elasticsearch")
    sc.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories; with --diff, limit the diff"
    )
    sc.add_argument(
        "--diff",
        metavar="GIT_REV_RANGE",
        help="check only the lines `git diff RANGE` adds, e.g. origin/main...HEAD",
    )
    sc.add_argument("--sarif", metavar="FILE", help="write SARIF 2.1.0 to FILE (- for standard output)")
    sc.add_argument("--json", action="store_true", help="print one JSON object (ignored matches too)")
    sc.add_argument(
        "--policy",
        metavar="FILE",
        help="JSON with the language server's policy keys (policy, licenseBlock, licenseAllow, "
        "unknownLicense, ignoreCommonAbove); a .vscode/settings.json works too",
    )
    sc.add_argument(
        "--fail-on", choices=["warn", "block"], default="warn", help="exit 1 from this level (default warn)"
    )
    sc.add_argument("--workspace", default=".", help="root of .stacklens/allowlist.json and SARIF paths")
    sc.add_argument("--min-chars", type=int, help="minimum matched normalised characters (default 150)")
    sc.add_argument("--max-matches", type=int, help="matches per file or hunk (default 10)")
    sc.add_argument("--max-query-bytes", type=int, help="refuse larger files (default 1,000,000)")
    sc.add_argument(
        "--max-file-bytes", type=int, default=BuildLimits().max_file_bytes, help="skip larger files"
    )
    sc.add_argument("--token", default=os.environ.get("STACKLENS_TOKEN"), help="bearer token for --url")

    m = sub.add_parser("merge", help="merge segments (and other indexes built with --shard) into one")
    m.add_argument("--index", required=True)
    m.add_argument("parts", nargs="*", help="other index directories to merge in")

    v = sub.add_parser("verify", help="checksum every file of an index")
    v.add_argument("--index", required=True)

    i = sub.add_parser("info", help="describe an index")
    i.add_argument("--index", required=True)

    s = sub.add_parser("serve", help="run the membership HTTP service")
    store = s.add_mutually_exclusive_group(required=True)
    store.add_argument("--index", help="embedded index directory")
    store.add_argument("--es-url", help="Elasticsearch URL (with --es-index)")
    s.add_argument("--es-index", default="stacklens", help="Elasticsearch store name")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8400)
    s.add_argument("--token", default=os.environ.get("STACKLENS_TOKEN"), help="token to require")
    s.add_argument(
        "--policy", metavar="FILE", help="policy file (as for `scan`) whose verdicts the search page shows"
    )
    return p
