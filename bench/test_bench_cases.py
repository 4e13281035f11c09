"""Checks of the benchmark's own case generation and baselines (not part of the product suite):

.venv/bin/pytest bench/test_bench_cases.py
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import windows
from transforms import edit_lines, nonspace, reindent, rename, strip_comments, tokens
from winnow import Winnow

C_FILE = """/* Copy a buffer.
   The caller owns dest and src.  */
#include <string.h>

static int copy (char *dest, const char *src, int len)
{
  // count the bytes
  memcpy (dest, src, len);
  return len;
}
"""


def test_a_span_starting_inside_a_comment_is_lexed_as_the_file_has_it() -> None:
    lines = C_FILE.splitlines(keepends=True)
    span = "".join(lines[1:])  # starts inside the block comment
    renamed = rename(tokens(span, "x.c", lines[0]))
    assert "The caller owns dest and src." in renamed
    assert "memcpy (v" not in renamed and "static int v" in renamed


def test_renaming_is_consistent_and_never_touches_strings_comments_or_builtins() -> None:
    code = 'import os\ndef f(path):\n    """path doc"""\n    return os.path.join(path, len(path))  # path\n'
    out = rename(tokens(code, "x.py"))
    assert '"""path doc"""' in out and "# path" in out and "len(" in out and "import os" in out
    name = out.split("def ")[1].split("(")[1].split(")")[0]
    # by text, as the lexer cannot tell os.path from the parameter: 4 occurrences
    assert (
        name != "path"
        and out.count(name) == 4
        and "path" not in out.replace("path doc", "").replace("# path", "")
    )


def test_comment_removal_keeps_preprocessor_lines_and_code() -> None:
    out = strip_comments(tokens(C_FILE, "x.c"), "c")
    assert "#include <string.h>" in out and "memcpy (dest, src, len);" in out
    assert "caller" not in out and "count the bytes" not in out and "\n\n\n" not in out


def test_rust_doc_comments_are_comments_and_python_docstrings_are_not() -> None:
    assert "docs" not in strip_comments(tokens("/// docs\nfn f() {}\n", "x.rs"), "rust")
    assert "docs" in strip_comments(tokens('def f():\n    """docs"""\n', "x.py"), "python")


def test_reindent_changes_the_unit_and_edits_change_every_third_line() -> None:
    go = "func f() {\n\tif x {\n\t\treturn y\n\t}\n}\n"
    out = reindent(go, random.Random(1))
    assert "\t" not in out and "    return y" in out and nonspace(out) == nonspace(go)
    edited = edit_lines(tokens(go, "x.go"), random.Random(1)).split("\n")
    assert "_changed" in edited[1] and "_changed" not in edited[0] + edited[2]


def test_windows_ignore_whitespace() -> None:
    assert windows("a = 1\n\n  b = 2\nc  = 3\n") == windows("a=1\nb=2\nc=3")


def test_winnowing_attributes_a_copy_and_rejects_new_text() -> None:
    rng = random.Random(0)
    docs = {f"f{i}.c": " ".join(f"w{rng.randrange(10**6)}" for _ in range(400)) for i in range(5)}
    w = Winnow()
    for name, text in docs.items():
        w.add(name, text)
    w.freeze()
    copy = docs["f3.c"][500:1500]
    names, span = w.query("int x;\n" + copy)
    assert names == ["f3.c"] and span is not None and span[0] >= 7
    assert w.query(" ".join(f"z{rng.randrange(10**6)}" for _ in range(300))) == ([], None)


def test_a_span_ending_inside_a_comment_is_lexed_as_the_file_has_it() -> None:
    js = "function f(a) {\n  return a;\n}\n/**\n * Count the lines of a function\n */\n"
    head, tail = js.split(" */\n")
    renamed = rename(tokens(head, "x.js", "", " */\n" + tail))
    assert "Count the lines of a function" in renamed and "function v" in renamed
