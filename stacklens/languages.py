"""The one table from file extension to language, in VS Code's language ids (what LSP clients
send as ``languageId``). The index maps these ids to its own names (`index.normalize`)."""

from __future__ import annotations

from pathlib import PurePosixPath

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".sh": "shellscript", ".bash": "shellscript",
    ".rb": "ruby", ".pl": "perl", ".pm": "perl", ".r": "r",
    ".yml": "yaml", ".yaml": "yaml", ".toml": "toml",
    ".mk": "makefile", ".cmake": "cmake",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".java": "java",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascriptreact",
    ".ts": "typescript", ".tsx": "typescriptreact",
    ".go": "go", ".rs": "rust", ".cs": "csharp", ".kt": "kotlin", ".kts": "kotlin",
    ".swift": "swift", ".scala": "scala", ".dart": "dart", ".php": "php",
    ".sql": "sql", ".lua": "lua", ".hs": "haskell",
    ".jl": "julia", ".ex": "elixir", ".clj": "clojure", ".erl": "erlang", ".el": "emacs-lisp",
}  # fmt: skip


def language_of_path(path: str) -> str:
    """The language id of a file name or path (or URI path); ``unknown`` when not in the table."""
    return EXTENSIONS.get(PurePosixPath(path.split("?", 1)[0]).suffix.lower(), "unknown")
