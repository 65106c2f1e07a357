"""One run at a time per output directory.

Two runs on one output directory would share ML Metadata, the pipeline root and the serving
directory: both would train and both would push a version. `hold(output_dir)` takes an exclusive
`flock` on `<output_dir>/.run.lock` for the length of the run; the kernel releases it when the
process ends, however it ends, so a crashed run never leaves a stale lock behind. The holder's
pid and start time are written into the file so that the second run can say who holds it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import time
from typing import Callable, Iterable, Iterator, Optional

LOCK_FILE = ".run.lock"


class OutputDirBusy(RuntimeError):
    """Another run holds the output directory."""


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        text = ""
    return text or "another process"


def unwritable(output_dir: str) -> Optional[str]:
    """Why a run could not make or write `output_dir` (a file on its path, no permission, a
    read-only file system), as far as can be told without creating anything; None when nothing
    says so. For the first checks of a run, before the data is read (and maybe downloaded):
    `check_writable` is the real test."""
    path = os.path.abspath(output_dir)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    if not os.path.isdir(path):
        return f"{path} is a file, not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} cannot be written (permission or a read-only file system)"
    return None


def check_writable(output_dir: str) -> None:
    """Raises OSError saying why a run cannot write into `output_dir` (a file on its path, no
    permission, a read-only file system), creating it if needed."""
    os.makedirs(output_dir, exist_ok=True)
    probe = os.path.join(output_dir, f".write-test-{os.getpid()}")
    with open(probe, "w"):
        pass
    os.remove(probe)


RUN_HINT = "wait for it to finish, pass --wait to queue behind it, or use another --output-dir"


def _busy(output_dir: str, hint: str) -> OutputDirBusy:
    path = os.path.join(output_dir, LOCK_FILE)
    return OutputDirBusy(f"another run is using {os.path.abspath(output_dir)} ({_holder(path)}); {hint}")


def refuse_if_busy(output_dir: str, hint: str = RUN_HINT) -> None:
    """OutputDirBusy, as `hold` would raise it, when a run holds the output directory's lock now;
    creates nothing. For the first checks of a run (found by exploratory testing: a second run
    read the data before it was refused)."""
    path = os.path.join(output_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(output_dir, hint) from None
    finally:
        os.close(fd)


def orphaned_outputs(metadata_path: str, pipeline_root: str, kept: Iterable[str] = ()) -> Optional[str]:
    """Why a local run must not start: its ML Metadata store is gone while the pipeline root still
    holds earlier runs' outputs. ML Metadata would number the executions from 1 again, and TFX
    write the new outputs into the old ones' directories (found by exploratory testing: a run
    after `rm -rf outputs/metadata` rewrote the first run's model and report). None when not.
    `kept`: names under the pipeline root that are no component's outputs."""
    if os.path.exists(metadata_path) or not os.path.isdir(pipeline_root):
        return None
    components = sorted(n for n in os.listdir(pipeline_root)
                        if n not in set(kept) and os.path.isdir(os.path.join(pipeline_root, n)))
    if not components:
        return None
    return (f"the ML Metadata store {metadata_path} is missing, but {pipeline_root} holds the outputs of "
            f"earlier runs ({', '.join(components[:3])}{', ...' if len(components) > 3 else ''}): this run would "
            "write over them. Put the store back, or move that directory away to start afresh (the served "
            "versions under serving_model/ are not in it)")


@contextlib.contextmanager
def hold(output_dir: str, wait_seconds: Optional[float] = 0, poll_seconds: float = 1.0,
         on_wait: Optional[Callable[[str], None]] = None, hint: str = RUN_HINT) -> Iterator[str]:
    """Holds the output directory's run lock; yields the lock file's path. `hint`: what the
    refusal tells the person to do (the caller's flags).

    wait_seconds: 0 refuses at once when the lock is held, None waits as long as it takes,
    a number waits that long. Raises OutputDirBusy naming the holder. on_wait(holder) is called
    once when the lock is held and the wait begins."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise _busy(output_dir, hint) from None
                if on_wait is not None:
                    on_wait(_holder(path))
                    on_wait = None
                time.sleep(poll_seconds)
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {started}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
