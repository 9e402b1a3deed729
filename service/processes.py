"""Process hygiene: child processes that die with their parent, and the open-file limit.

``die_with_parent()`` is called at the start of every child process the service starts (uvicorn
workers, training processes), so that no child outlives its parent, whatever signal ended the
parent (SIGKILL included) and a restart never finds the port held by orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import resource
import signal
import sys
import threading
import time

log = logging.getLogger("service.processes")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_INTERVAL_S = 0.5
# After SIGTERM, the child gets this long to shut down gracefully before it is ended at once.
EXIT_GRACE_S = 30.0
# Descriptors kept back from the connection cap: the database, logs, pipes to training
# processes, dataset and model files, the listening socket.
RESERVED_FILES = 64


def _set_parent_death_signal(sig: int) -> bool:
    """Linux: the kernel sends ``sig`` to this process when the thread that started it ends."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _end_self() -> None:
    """SIGTERM to this process (a graceful shutdown), then an immediate exit after a grace."""
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(EXIT_GRACE_S)
    os._exit(1)


def _watch_parent(parent: int, interval_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval_s)
    log.warning("parent process %d is gone: exiting", parent)
    _end_self()


def die_with_parent(
    parent: int | None = None,
    *,
    death_signal: bool = True,
    interval_s: float = WATCH_INTERVAL_S,
) -> None:
    """End this process when its parent process ends.

    Two mechanisms: the kernel's parent-death signal (SIGTERM, Linux ``prctl``), immediate but
    tied to the parent *thread* that started this process, so ``death_signal=False`` where that
    thread may end before the parent does (training processes are started from job threads);
    and a daemon thread that polls ``os.getppid()`` (any POSIX system): when the parent is gone
    this process is re-parented, and it sends itself SIGTERM (exiting at once ``EXIT_GRACE_S``
    later if that did not end it). ``parent``: the expected parent pid (default: the current
    one); if it is already gone, the process ends at once.
    """
    expected = os.getppid() if parent is None else parent
    if death_signal:
        _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != expected:  # the parent died before the signal was armed
        _end_self()
        return
    threading.Thread(
        target=_watch_parent, args=(expected, interval_s), name="parent-watch", daemon=True
    ).start()


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:  # Linux refuses more than fs.nr_open
        try:
            with open("/proc/sys/fs/nr_open", encoding="ascii") as file:
                target = int(file.read())
        except (OSError, ValueError):
            target = soft
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


def connection_cap(wanted: int, open_files: int) -> int:
    """The most connections a process may hold with ``open_files`` descriptors to use."""
    if open_files == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, open_files - RESERVED_FILES))
