"""A real ``chainrule serve`` process for the browser, command-line and load tests.

:func:`serving` starts ``chainrule serve --port 0`` (a free port on 127.0.0.1), reads the URL
it prints, yields it with the process, and stops it with Ctrl-C (SIGINT) at the end.
:func:`children` lists a process's child processes from ``/proc`` (Linux), to show that no
engine worker outlives the server. :func:`artifact_dir` is where screenshots and the load
report go: ``$CHAINRULE_TEST_ARTIFACTS`` when set, else pytest's temporary folder, with a copy
in ``test-artifacts/`` at the top of the repository (ignored by git).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 120


@contextlib.contextmanager
def serving(*args: str):
    """Run ``chainrule serve --port 0 *args``; yield (url, process)."""
    command = [sys.executable, "-m", "chainrule.cli", "serve", "--port", "0", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    try:
        url = _read_url(proc)
        yield url, proc
    finally:
        stop(proc)


def _read_url(proc) -> str:
    deadline = time.monotonic() + STARTUP_SECONDS
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if match:
            return match.group(1)
        if proc.poll() is not None:
            break
    stop(proc)
    pytest.fail(f"chainrule serve did not print its URL; stdout {line!r}, stderr "
                f"{proc.stderr.read()[-2000:]!r}")


def stop(proc, timeout: float = 60) -> int:
    """Ctrl-C the server and wait for it (kill it if it hangs, and fail)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"chainrule serve did not stop within {timeout} s of Ctrl-C")
    return proc.returncode


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (and that have not exited), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def still_alive(pids, timeout: float = 10.0) -> list[int]:
    """The processes of ``pids`` still running after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [pid for pid in left if alive(pid)]
    return left


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of ``pid`` in clock ticks (0 once it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def artifact_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("CHAINRULE_TEST_ARTIFACTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep(path: Path) -> Path:
    """Copy an artifact to test-artifacts/ in the repository (git-ignored); return the copy."""
    target = ROOT / "test-artifacts" / path.name
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, target)
    return target


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="process listing reads /proc (Linux)")
