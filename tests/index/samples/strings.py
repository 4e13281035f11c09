"""A module docstring that spans lines,
with 'quotes' that don't pair and a # that is not a comment.
"""

import re

PATTERN = re.compile(r"""
    (?P<key>\w+)   # a key
    \s*=\s*
    (?P<value>.*)  # the rest
""", re.X)


def parse(text: str) -> dict[str, str]:
    '''Parse key = value lines; it's forgiving.'''
    out = {}
    for line in text.splitlines():  # one pair per line
        m = PATTERN.match(line)
        if m:
            out[m["key"]] = m["value"].strip()
    return out
