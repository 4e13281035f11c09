"""``stacklens``: the language server (``stacklens lsp``) and the completion server
(``stacklens serve``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: stacklens {lsp,serve,eval} [options]   (stacklens COMMAND --help for details)\n"
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(usage)
        return 0 if args else 2
    if args[0] == "--stdio":
        # llm-vscode starts `<llm.lsp.binaryPath> --stdio`: let it point straight at this script.
        from lsp_server.main import main as lsp_main

        return lsp_main(args)
    command, rest = args[0], args[1:]
    if command == "serve":
        from completion.serve.cli import main as serve_main

        return serve_main(rest)
    if command == "eval":
        from evaluation.cli import main as eval_main

        return eval_main(rest)
    if command == "lsp":
        from lsp_server.main import main as lsp_main

        return lsp_main(rest)
    sys.stderr.write(f"stacklens: unknown command {command!r}\n{usage}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
