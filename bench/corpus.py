"""Corpora the benchmarks build from what every machine has: the Python standard library and
the installed site-packages (real code, not generated)."""

from __future__ import annotations

import random
import sys
import sysconfig
from pathlib import Path

_SKIP_PARTS = {"__pycache__", "site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo"}


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def site_roots() -> list[Path]:
    roots = {Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()}
    roots.add(Path(sysconfig.get_paths()["purelib"]))
    return sorted(r for r in roots if r.is_dir())


def python_files(root: Path, skip_site: bool = True, max_bytes: int = 1_000_000) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).parts
        if skip_site and any(part in _SKIP_PARTS for part in rel):
            continue
        try:
            size = p.stat().st_size
            if not (200 <= size <= max_bytes) or p.is_symlink():
                continue
            p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        out.append(p)
    return out


def split(files: list[Path], seen_share: float, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Deterministic split into indexed ("seen") and held-out ("unseen") files."""
    shuffled = list(files)
    random.Random(seed).shuffle(shuffled)
    cut = int(len(shuffled) * seen_share)
    return sorted(shuffled[:cut]), sorted(shuffled[cut:])


def take_bytes(files: list[Path], limit: int) -> list[Path]:
    out, total = [], 0
    for p in files:
        if total >= limit:
            break
        out.append(p)
        total += p.stat().st_size
    return out
