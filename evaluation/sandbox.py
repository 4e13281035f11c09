"""Runs generated code: one subprocess per task, in a fresh temporary directory, with CPU, memory,
process and file-size limits, a wall-clock timeout, no inherited environment, and output capped.
Whatever the code does (loops, forks, allocates, exits, floods stdout), the task fails and the
run goes on.

Not a security boundary against a hostile author: there is no network or filesystem isolation
beyond the temporary working directory. It keeps a model's mistakes from hurting the run or the
machine."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["passed", "failed", "timeout", "killed"]

# Runs before the task's code, inside the child: the limits first, then the calls that start or
# signal processes are disabled. As root, RLIMIT_NPROC is not enforced (the kernel exempts uid 0),
# so disabling fork in the interpreter is what stops a fork bomb there; the rlimit covers code that
# reaches fork some other way (ctypes) for other users. The limits are set here rather than in
# Popen's preexec_fn, which the Python docs call unsafe when the parent has threads (the runner
# has several).
_BOOT = """\
import os, resource, runpy, sys
def _limit(name, soft):
    res = getattr(resource, name)
    hard = resource.getrlimit(res)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(res, (soft, soft if hard == resource.RLIM_INFINITY else hard))
_limit("RLIMIT_CPU", {cpu_s})
_limit("RLIMIT_AS", {memory_bytes})
_limit("RLIMIT_NPROC", {processes})
_limit("RLIMIT_FSIZE", {file_bytes})
_limit("RLIMIT_CORE", 0)
def _denied(*args, **kwargs):
    raise PermissionError("starting or signalling processes is disabled in the stacklens eval sandbox")
for _name in ("fork", "forkpty", "system", "popen", "kill", "killpg", "setsid", "setpgid",
              "posix_spawn", "posix_spawnp", "execv", "execve", "execvp", "execvpe", "execl",
              "execle", "execlp", "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "putenv"):
    if hasattr(os, _name):
        setattr(os, _name, _denied)
import _posixsubprocess, subprocess
_posixsubprocess.fork_exec = _denied
subprocess.Popen = _denied
del _limit, _denied, _name
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
# Reached only when the script ran to its end: sys.exit(0) or os._exit(0) before the tests is
# not a pass.
with open({marker!r}, "w") as _f:
    _f.write("done")
"""


class Limits(BaseModel):
    """What one task may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(default=10.0, gt=0, le=3600, description="wall clock")
    cpu_s: int = Field(default=10, ge=1, le=3600)
    memory_mb: int = Field(default=1024, ge=64, description="address space")
    processes: int = Field(default=16, ge=1)
    file_mb: int = Field(default=16, ge=1, description="largest file written, stdout included")
    output_chars: int = Field(default=2000, ge=0, description="tail of stdout/stderr kept")


@dataclass(frozen=True)
class Execution:
    verdict: Verdict
    returncode: int | None
    error: str  # "" when passed; else the last line of stderr, or why it was stopped
    stdout: str
    stderr: str
    duration_ms: float

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


_active: set[int] = set()
_active_lock = threading.Lock()


def kill_all() -> None:
    """Kill every task's process group still running (the run was interrupted)."""
    with _active_lock:
        groups = list(_active)
    for pgid in groups:
        _killpg(pgid)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _env(workdir: str) -> dict[str, str]:
    # Nothing inherited: API tokens and cloud credentials live in the environment.
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _tail(path: str, chars: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars * 4))
            data = f.read()
    except OSError:
        return ""
    return data.decode("utf-8", "replace")[-chars:] if chars else ""


def _why(returncode: int, stderr: str, limits: Limits) -> tuple[Verdict, str]:
    if returncode < 0:
        sig = -returncode
        reasons: dict[int, str] = {
            int(signal.SIGXCPU): f"CPU limit of {limits.cpu_s} s",
            int(signal.SIGXFSZ): f"output over {limits.file_mb} MB",
            int(signal.SIGKILL): "killed",
            int(signal.SIGSEGV): "crashed (SIGSEGV)",
        }
        return "killed", reasons.get(sig, f"killed by signal {signal.Signals(sig).name}")
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if "MemoryError" in stderr:
        return "failed", f"MemoryError (address space limited to {limits.memory_mb} MB)"
    if lines:
        return "failed", lines[-1][:300]
    return "failed", f"exit status {returncode}"


def run_python(code: str, limits: Limits | None = None) -> Execution:
    """Run ``code`` as a script under ``limits``; passed means exit status 0."""
    limits = limits or Limits()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stacklens-eval-") as workdir:
        prog, boot = os.path.join(workdir, "prog.py"), os.path.join(workdir, "_boot.py")
        out_path, err_path = os.path.join(workdir, "stdout"), os.path.join(workdir, "stderr")
        marker = os.path.join(workdir, f".done-{secrets.token_hex(8)}")
        with open(prog, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(code)
        with open(boot, "w", encoding="utf-8") as f:
            f.write(
                _BOOT.format(
                    cpu_s=limits.cpu_s,
                    memory_bytes=limits.memory_mb << 20,
                    processes=limits.processes,
                    file_bytes=limits.file_mb << 20,
                    marker=marker,
                )
            )
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", boot, prog],
                cwd=workdir,
                env=_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: one killpg reaches its children
                close_fds=True,
            )
            with _active_lock:
                _active.add(proc.pid)
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                # Always: children it left behind die with it.
                _killpg(proc.pid)
                proc.wait()
                with _active_lock:
                    _active.discard(proc.pid)
        stdout, stderr = _tail(out_path, limits.output_chars), _tail(err_path, limits.output_chars)
        finished = os.path.exists(marker)
    ms = (time.perf_counter() - started) * 1000
    if timed_out:
        return Execution("timeout", None, f"timed out after {limits.timeout_s:g} s", stdout, stderr, ms)
    rc = proc.returncode
    if rc == 0 and finished:
        return Execution("passed", 0, "", stdout, stderr, ms)
    if rc == 0:
        return Execution("failed", 0, "exited before the tests finished (sys.exit?)", stdout, stderr, ms)
    verdict, error = _why(rc, stderr, limits)
    return Execution(verdict, rc, error, stdout, stderr, ms)
