"""
upgrade_util.py - following a binary upgrade (SIGUSR2) from the tests.

The new moat is started by the old one, not by the harness, so the
harness's Moat does not know it. `Successors` tracks such processes by PID
and stops them at teardown (use the `successors` fixture of each module,
which depends on make_moat so that it is torn down first: a sanitizer
report of the new process lands in the same stderr file that Moat.finish
then checks).

The test process makes itself a child subreaper (prctl), so that a new
moat whose parent (the old one) exited becomes its child: its exit status
can then be read with waitpid instead of guessed from /proc.
"""

import ctypes
import os
import signal
import time
from pathlib import Path

from harness import SANITIZER_EXIT, t, wait_for

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Orphaned descendants become children of this process. True on success."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def read_pid(path):
    """The pid in a pid file, or None (missing, empty, not a number)."""
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def pid_running(pid):
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return data.rsplit(")", 1)[1].split()[0] != "Z"


def proc_status(pid, tid=None):
    """/proc/PID/status (or one thread's) as {field: value}."""
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


class Successors:
    """New moat processes started by binary upgrades."""

    def __init__(self):
        self.pids = []
        self.rcs = {}

    def add(self, pid):
        if pid not in self.pids:
            self.pids.append(pid)
        return pid

    def _reap(self, pid):
        """Exit code if it exited (None when it is not our child), or False
        while it runs."""
        if pid in self.rcs:
            return self.rcs[pid]
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            if pid_running(pid):
                return False
            self.rcs[pid] = None
            return None
        if got == 0:
            return False
        self.rcs[pid] = os.waitstatus_to_exitcode(status)
        return self.rcs[pid]

    def wait_exit(self, pid, timeout=None):
        """Waits for pid to exit; returns its exit code (None if unknown)."""
        timeout = timeout or t(10)
        deadline = time.monotonic() + timeout
        while True:
            rc = self._reap(pid)
            if rc is not False:
                return rc
            if time.monotonic() > deadline:
                raise AssertionError(f"moat pid {pid} did not exit within {timeout:.0f}s")
            time.sleep(0.01)

    def stop(self, pid, sig=signal.SIGTERM, timeout=None):
        if self._reap(pid) is False:
            os.kill(pid, sig)
        try:
            return self.wait_exit(pid, timeout or t(15))
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            self.wait_exit(pid, 5)
            raise

    def finish(self):
        problems = []
        for pid in self.pids:
            try:
                rc = self.stop(pid)
            except AssertionError as e:
                problems.append(str(e))
                continue
            if rc == SANITIZER_EXIT:
                problems.append(f"new moat pid {pid} exited with the sanitizer exit code")
            elif rc not in (0, None):
                problems.append(f"new moat pid {pid} exited with {rc} on SIGTERM at teardown")
        return problems


def upgrade(m, pid_file, successors, timeout=None):
    """SIGUSR2 to moat `m`; waits until the pid file names another process
    that runs; returns its pid (tracked by `successors`)."""
    old = m.pid
    os.kill(old, signal.SIGUSR2)
    new = wait_for(lambda: (lambda p: p if p not in (None, old) and pid_running(p) else None)(read_pid(pid_file)),
                   timeout or t(10), what=f"a new pid in {pid_file}:\n{m.errlog[-2000:]}")
    return successors.add(new)
