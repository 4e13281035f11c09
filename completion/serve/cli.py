"""`stacklens serve --model PATH_OR_ID`: run the completion server."""

from __future__ import annotations

import argparse
import logging
import os
import sys

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOKEN_ENV = "STACKLENS_SERVE_TOKEN"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stacklens serve",
        description="Serve a FIM code model over OpenAI-compatible /v1/completions and "
        "TGI-compatible /generate, /generate_stream.",
    )
    p.add_argument("--model", required=True, help="hub id or local directory (save_pretrained)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", default=None, help=f"bearer token clients must send (or ${TOKEN_ENV})")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000)
    p.add_argument("--template", default=None, help="FIM template name (default: detect)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.host not in LOOPBACK and not token:
        logging.getLogger(__name__).warning(
            "binding %s without --token: anyone who can reach this port can use the model",
            args.host,
        )
    import uvicorn

    from stacklens.errors import StacklensError

    from .app import ServerConfig, create_app

    config = ServerConfig(args.model, token, args.max_body_bytes, args.template, args.device, args.dtype)
    try:
        app = create_app(config)
        # Before uvicorn: a model that does not load is one line and exit 2 here, where in the
        # lifespan uvicorn would print a traceback and exit 3.
        app.state.service.load()
    except StacklensError as exc:
        message = " ".join(str(exc).split())  # transformers' messages span lines
        sys.stderr.write(f"stacklens serve: {message}\n")
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
