"""`make bench`: every benchmark in turn; each prints its figures beside its own baseline.

.venv/bin/python bench/run_all.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["membership", "completion", "prompt_reuse", "lsp", "service", "elastic"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", choices=BENCHES)
    args = ap.parse_args()
    failed = []
    for name in args.only or BENCHES:
        script = HERE / f"bench_{name}.py"
        if not script.exists():
            continue
        print(f"\n##### bench/{script.name}", flush=True)
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        if subprocess.run(cmd, cwd=HERE.parent).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
