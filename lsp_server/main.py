"""``stacklens lsp``: run the language server on stdio (default) or TCP."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import BinaryIO

log = logging.getLogger("lsp_server")


def _protect_stdout() -> BinaryIO:
    """The JSON-RPC channel, with fd 1 and ``sys.stdout`` pointed at stderr so a stray print
    (ours, a library's, or a C extension's) cannot corrupt the protocol stream."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stacklens lsp",
        description="stacklens language server: inline completions checked against the training corpus.",
    )
    p.add_argument("--stdio", action="store_true", help="talk JSON-RPC on stdin/stdout (default)")
    p.add_argument("--tcp", action="store_true", help="listen on TCP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="TCP address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    p.add_argument("--index", help="membership index path (over STACKLENS_INDEX)")
    p.add_argument("--membership-url", help="membership service URL (over STACKLENS_MEMBERSHIP_URL)")
    p.add_argument(
        "--log-level", default=os.environ.get("STACKLENS_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )  # fmt: skip
    p.add_argument("--log-file", help="also append logs to this file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``stacklens lsp``; returns the exit status."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from stacklens.errors import ConfigError

    from .config import check_flags

    # The flags are one more settings layer (over the environment, under the editor's settings),
    # checked here, where a mistake is one line and exit 2 rather than a message in the editor.
    flags = {"membership": {"index": args.index, "url": args.membership_url}}
    try:
        check_flags(flags)
    except ConfigError as exc:
        sys.stderr.write(f"stacklens lsp: {exc}\n")
        return 2
    channel = None if args.tcp else _protect_stdout()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file, encoding="utf-8"))
    fmt = logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    for h in handlers:
        h.setFormatter(fmt)
    logging.basicConfig(level=args.log_level.upper(), handlers=handlers, force=True)
    # pygls logs every message at debug/info; keep it quieter than ours.
    logging.getLogger("pygls").setLevel(max(logging.WARNING, logging.getLogger().level))

    from .server import create_server
    from .transport import serve_stdio, serve_tcp

    server = create_server(flags)
    if args.tcp:
        log.info("stacklens lsp listening on %s:%d", args.host, args.port)
        serve_tcp(server, args.host, args.port)
    else:
        log.info("stacklens lsp on stdio (pid %d)", os.getpid())
        assert channel is not None
        serve_stdio(server, sys.stdin.buffer, channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
