"""`code-search build` on a full disk (issue 13, item 20): a real, small tmpfs, mounted in a
private mount namespace (``unshare -m`` as root, ``unshare -rm`` otherwise) that disappears with
the process, so nothing is left mounted whatever happens."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
STDLIB = Path(sysconfig.get_paths()["stdlib"])

# Runs inside the namespace: mounts the tmpfs, builds, reports what the disk holds afterwards.
DRIVER = r"""
import json, os, subprocess, sys
mnt, size, first, *second = sys.argv[1:]
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt], check=True)
idx = os.path.join(mnt, "idx")
def cli(*args):
    p = subprocess.run([sys.executable, "-m", "membership", *args], capture_output=True, text=True)
    return {"rc": p.returncode, "stderr": p.stderr, "stdout": p.stdout}
def used():
    st = os.statvfs(mnt)
    return (st.f_blocks - st.f_bfree) * st.f_frsize
report = {"first": cli("build", "--index", idx, "--jobs", "1", first)}
report["used_first"] = used()
report["second"] = cli("build", "--index", idx, "--jobs", "1", *second)
report["files"] = sorted(os.listdir(idx))
report["info"] = cli("info", "--index", idx)
report["used"] = used()
print(json.dumps(report))
"""


def _namespace() -> list[str]:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a small tmpfs")
    prefix = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")
    return prefix


def test_a_full_disk_is_a_clear_error_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(STDLIB / "bisect.py", small / "bisect.py")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # 160 KiB: the first index (a few KB) fits, that of ~1 MB of source does not.
    big = [str(STDLIB / p) for p in ("email", "logging", "http")]
    cmd = [*_namespace(), sys.executable, "-c", DRIVER, str(mnt), "160k", str(small), *big]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["first"]["rc"] == 0, report["first"]["stderr"]
    second = report["second"]
    assert second["rc"] == 2, second["stderr"]
    assert second["stderr"].startswith("code-search: error: disk full: cannot write the index at")
    assert "free some space" in second["stderr"] and "internal error" not in second["stderr"]
    # Only the committed index is left: no .tmp-* segment, no stray manifest, no orphan segment.
    files = report["files"]
    assert not [f for f in files if f.startswith(".tmp-") or f.endswith(".tmp")], files
    assert len([f for f in files if f.startswith("seg-")]) == 1, files
    # The failed build gave back all the space it took, its content pack too, measured against
    # the first index's (a tmpfs page or two per file, so it grows with the files of a segment).
    assert report["used"] <= report["used_first"], "the space the failed build took is given back"
    # The previous index is still there and usable.
    assert report["info"]["rc"] == 0, report["info"]["stderr"]
    assert json.loads(report["info"]["stdout"])["documents"] == 1
