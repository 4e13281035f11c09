"""How a completion fills a task's hole, and how close it is to the canonical middle."""

from __future__ import annotations

from rapidfuzz import fuzz

from .datasets import Task


def editor_text(task: Task) -> tuple[str, int]:
    """The document and cursor the editor would have. A hole of whole lines is a blank line at
    the cursor (the user asks for the missing lines there); a span is a cursor inside the text."""
    if task.shape == "lines":
        return task.prompt + "\n" + task.suffix, len(task.prompt)
    return task.prompt + task.suffix, len(task.prompt)


def middle(task: Task, completion: str) -> str:
    """The text between prompt and suffix once ``completion`` is inserted at the cursor. In a
    one-line task only its first line counts (what the editor's one-line mode would show)."""
    text = completion
    if task.single_line:
        text = text.lstrip("\n").split("\n", 1)[0]
    if task.shape == "lines":
        # Inserted on the blank line, which ends with the newline the editor already has.
        return text.rstrip("\n") + "\n"
    return text


def oracle_completion(task: Task) -> str:
    """What a perfect model would insert at the cursor of `editor_text`."""
    mid = task.canonical_solution
    return mid[:-1] if task.shape == "lines" else mid


def _normal(text: str) -> str:
    # Trailing spaces and blank lines at either end are invisible in the editor: not a miss.
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n")).rstrip()


def exact_match(task: Task, filled: str) -> bool:
    return _normal(filled) == _normal(task.canonical_solution)


def edit_similarity(task: Task, filled: str) -> float:
    """1 - normalised Indel distance (rapidfuzz's ratio), as CrossCodeEval reports it."""
    return float(fuzz.ratio(_normal(filled), _normal(task.canonical_solution))) / 100.0
