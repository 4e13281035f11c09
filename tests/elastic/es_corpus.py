"""Corpora for the Elasticsearch tests: modules of Python's standard library (real code that
every machine running the tests has)."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Indexed in the parity corpus; NEGATIVE packages are not, and give the negative queries.
CORPUS_PACKAGES = ("json", "logging", "urllib", "xml/dom", "wsgiref")
NEGATIVE_PACKAGES = ("asyncio", "unittest")


def copy_packages(dest: Path, packages: tuple[str, ...]) -> list[Path]:
    """The packages' modules copied flat into ``dest`` (names prefixed by package), sorted."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for pkg in packages:
        for f in sorted((STDLIB / pkg).glob("*.py")):
            target = dest / f"{pkg.replace('/', '_')}_{f.name}"
            shutil.copy(f, target)
            out.append(target)
    return out
