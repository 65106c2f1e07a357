"""A local run in a child process, so that a run killed for memory still says so.

LocalDagRunner executes every component in one process. When the kernel runs out of memory it
kills the biggest process with SIGKILL, which no Python code can catch: in one process the run
vanished with exit code 137, no summary and no word of why. So `make run` is two processes:

- the **worker** (`local_runner.py` with RECSYS_RUN_EVENTS set) runs the pipeline behind the
  console exactly as before (runner/console.py), and tells the supervisor, through a pipe, where
  its log is and when each component starts and ends (`Events`);
- the **supervisor** (`supervise`: a small process, no TensorFlow) starts the worker and samples
  the resident memory of the worker and its children every 0.2 s. When the worker ends normally
  its exit code is the run's. When it is killed, the supervisor says which component was running
  and the memory it had reached, prints the run's summary from ML Metadata (what the components
  that finished did: a Pusher that ran has pushed) and ends with EXIT_OUT_OF_MEMORY (137, the
  code a shell gives a SIGKILLed command). With `--memory-limit` the supervisor kills the worker
  itself when the run passes the limit, before the kernel does (and before the machine's other
  work suffers).

The worker runs in its own process group, and every stop reaches it through the supervisor, as
the SIGINT of a Ctrl-C: the worker ends as it always did (exit code 130: where it stopped, nothing
half-pushed) and the supervisor passes its code on. So a Ctrl-C in the terminal, a SIGINT or
SIGTERM to the supervisor's pid alone (`timeout`, a scheduler's stop) and to its process group
all stop the run once and cleanly; and when the supervisor itself is killed (SIGKILL), the
kernel sends the worker that SIGINT (`follow_supervisor`: Linux's parent-death signal), so no
orphaned worker goes on to push a model nobody waits for. (Found by exploratory testing: a
SIGINT to the supervisor alone was ignored and the run pushed; a SIGKILLed supervisor left its
worker running, holding the run lock, and it pushed a minute later.)
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Dict, List, Optional

from runner import console, memory

EVENTS_ENV = "RECSYS_RUN_EVENTS"  # the worker's end of the pipe: a file descriptor number
SUPERVISOR_ENV = "RECSYS_RUN_SUPERVISOR"  # the supervisor's pid, for the worker's parent-death signal
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
SAMPLE_SECONDS = 0.2


def is_worker() -> bool:
    """Whether this process is a supervised run's worker."""
    return bool(os.environ.get(EVENTS_ENV))


def follow_supervisor() -> None:
    """In the worker: Python's Ctrl-C handler, and a SIGINT (a Ctrl-C: the run stops cleanly)
    when the supervisor dies, however it dies (Linux only; elsewhere no parent-death signal).

    The handler is set even when the worker was started with SIGINT ignored, as a script's
    `make run &` starts it: Python then installs none, and the SIGINT by which the supervisor
    stops the run would do nothing (found by exploratory testing: such a run could not be stopped
    but by SIGKILL). The worker has its own process group: only the supervisor sends it one."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal_on_parent_death(signal.SIGINT, os.environ.get(SUPERVISOR_ENV, ""))


def signal_on_parent_death(sig: int, parent_pid: str) -> None:
    """`sig` to this process when its parent dies, however it dies (SIGKILL too), and at once if
    the parent (`parent_pid`, as text) is already gone: Linux's parent-death signal, nothing
    elsewhere. Also a `preexec_fn`, for a child that must not outlive whoever started it (of a
    parent with no other Python thread: Python's rule for preexec_fn)."""
    try:  # nothing imported here: a preexec_fn runs between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent_pid:  # it died before the call above
        os.kill(os.getpid(), sig)


def interrupt(child: subprocess.Popen) -> None:
    """The SIGINT of a Ctrl-C to the process group of `child`, started with one of its own (the
    worker and its Beam workers; a compiled pipeline's task in kubeflow_v2/harness.py)."""
    try:
        os.killpg(child.pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        pass


def stop_groups(groups: Dict[int, subprocess.Popen], seconds: float) -> None:
    """Stops process groups as a Ctrl-C stops a run: the SIGINT of a Ctrl-C to each group, then
    SIGKILL to what is left after `seconds`, or at once on a second Ctrl-C (KeyboardInterrupt): to
    each group's process and its descendants, then to the group; returns once the processes ended.
    `groups`: {process group id: the process to wait for in it}. Used by the harness for its tasks
    (kubeflow_v2/harness.py stop_tasks) and by a task's own group when the harness died
    (kubeflow_v2/harness_task.py; its own process is in the group, and the last SIGKILL ends it)."""
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGINT)
    deadline = time.time() + seconds
    try:
        for process in groups.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
        logging.getLogger(__name__).warning("a second Ctrl-C: what is left is killed")
    for group, process in groups.items():
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):  # what it left behind in its group
            os.killpg(group, signal.SIGKILL)


class Events:
    """The worker's side: one JSON object a line into the supervisor's pipe. Never raises: a
    supervisor gone away must not stop the run."""

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()

    @classmethod
    def from_environ(cls) -> Optional["Events"]:
        value = os.environ.get(EVENTS_ENV, "")
        return cls(int(value)) if value.isdigit() else None

    def send(self, **fields) -> None:
        data = (json.dumps(fields) + "\n").encode()
        with self._lock:
            try:
                os.write(self._fd, data)
            except OSError:
                pass


class _RunState:
    """What the supervisor knows of the worker's run, from its events and its memory."""

    def __init__(self):
        self.log_path: Optional[str] = None
        self.current: Optional[str] = None
        self.current_peak = 0
        self.finished: List[Dict] = []
        self.lock = threading.Lock()

    def read(self, pipe: IO[bytes]) -> None:
        for line in pipe:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if "log" in event:
                    self.log_path = event["log"]
                elif "start" in event:
                    self.current, self.current_peak = event["start"], 0
                elif "end" in event:
                    self.finished.append(event)
                    self.current = None

    def sampled(self, rss: int) -> None:
        with self.lock:
            self.current_peak = max(self.current_peak, rss)


def supervise(command: List[str], config, *, memory_limit: Optional[int] = None,
              stream: Optional[IO[str]] = None) -> int:
    """Runs `command` (a worker: it runs the pipeline of `config` behind the console) in a child
    process; returns the run's exit code (see the module docstring)."""
    served_before = console._served_versions(config.serving_model_dir)
    since_ms = int(time.time() * 1000) - 1000
    oom_before = memory.oom_kills()
    read_fd, write_fd = os.pipe()
    state = _RunState()
    child = subprocess.Popen(command, pass_fds=(write_fd,), process_group=0,
                             env={**os.environ, EVENTS_ENV: str(write_fd), SUPERVISOR_ENV: str(os.getpid())})
    os.close(write_fd)
    reader = threading.Thread(target=state.read, args=(os.fdopen(read_fd, "rb"),), daemon=True)
    reader.start()
    # a stop, from wherever, is the worker's Ctrl-C (one that comes before this line ends the
    # supervisor, and the worker gets it as its parent-death signal)
    # once: a stop may come again (a second Ctrl-C; the replay's parent-death signal, which Linux
    # repeats as this process passes between the threads of a dying parent), and a Ctrl-C that
    # lands in the worker's stop path would cut it short
    stops: List[int] = []

    def stop(signum, frame):
        if not stops:
            interrupt(child)
        stops.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    peak, limited = 0, False
    try:
        while child.poll() is None:
            rss = memory.tree_rss(child.pid)
            peak = max(peak, rss)
            state.sampled(rss)
            if memory_limit and rss > memory_limit and not limited:
                limited = True
                kill_tree(child.pid)
            time.sleep(SAMPLE_SECONDS)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reader.join(timeout=5)
    code = child.returncode
    if code >= 0:
        return code
    killed = -code
    with state.lock:
        where, reached = state.current, state.current_peak or peak
        finished = [e["end"] for e in state.finished]
        log_path = state.log_path
    if killed == signal.SIGKILL:
        oom_after = memory.oom_kills()
        machine = memory.gib(memory.machine_memory())
        if limited:
            what = f"stopped at --memory-limit {memory.limit_gib(memory_limit)}"
        elif oom_before is not None and oom_after is not None and oom_after > oom_before:
            what = "killed by the kernel's out-of-memory killer"
        else:
            what = "killed (SIGKILL: most likely the kernel's out-of-memory killer)"
        detail = f": it had reached {memory.gib(reached)} (this machine has {machine})"
        exit_code = console.EXIT_OUT_OF_MEMORY
        advice = ("a higher --memory-limit" if limited else "more memory (a bigger machine, fewer other jobs)") + \
            " or less data; finished components are cached"
    else:
        what, detail = f"killed by {signal.Signals(killed).name}", ""
        exit_code = console.EXIT_FAILED
        advice = "run it again; finished components are cached"
    during = (f" during {where}" if where else f" after {finished[-1]}" if finished
              else " before any component started")
    with _stderr_to(log_path):  # reading ML Metadata loads TensorFlow: its start-up lines, warnings
        outcome = _outcome(config, since_ms, served_before)
    if where == console.REPORT_NODE and outcome is not None:
        # as when the report fails otherwise (runner/console.py): the model's fate is decided
        exit_code = outcome.exit_code
        lines = [f"\nwarning: the run report was {what} (the run's exit code is what was pushed){detail}"]
    else:
        lines = [f"\nerror: the run was {what}{during} (exit code {exit_code}){detail}"]
    if outcome is None:
        lines += ["", "summary", "  (ML Metadata could not be read: see the full log)",
                  f"  full log       {log_path or '-'}", f"  exit code      {exit_code}",
                  f"  next           {advice}"]
    else:  # its advice as the next step (a next row of more than one line left one behind)
        lines += console.summary_lines(outcome, None, log_path or "-", exit_code=exit_code, next_step=advice)
    out = stream if stream is not None else sys.stdout
    for line in lines:
        out.write(line + "\n")
    out.flush()
    if log_path:
        try:
            with open(log_path, "a") as log:
                log.write("\n".join(lines) + "\n")
        except OSError:
            pass
    return exit_code


@contextlib.contextmanager
def _stderr_to(log_path: Optional[str]):
    """File descriptor 2, and so TensorFlow's C++ lines and Python's warnings, into the run's log
    (found by exploratory testing: a run stopped at --memory-limit printed them on the console)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        target = os.open(log_path, os.O_WRONLY | os.O_APPEND) if log_path else os.open(os.devnull, os.O_WRONLY)
    except OSError:
        target = os.open(os.devnull, os.O_WRONLY)
    os.dup2(target, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


def kill_tree(pid: int) -> None:
    """SIGKILL to process `pid` and its descendants (the worker's Beam workers)."""
    import psutil

    try:
        process = psutil.Process(pid)
        family = [*process.children(recursive=True), process]
    except psutil.Error:
        return
    for p in family:
        try:
            p.kill()
        except psutil.Error:
            pass


def _outcome(config, since_ms: int, served_before: set) -> Optional[console.Outcome]:
    """What the run did as far as it got, from ML Metadata; None when that cannot be read."""
    if not os.path.exists(config.metadata_path):  # killed before the pipeline started
        return console.Outcome(rows={}, blessed=None, pushed=False, already_served=False,
                               pushed_version="", pushed_path="", report_uri=None)
    try:
        return console.read_outcome(config, since_ms, served_before)
    except Exception:  # noqa: BLE001  the summary must come whatever ML Metadata holds
        logging.exception("ML Metadata could not be read after the run was killed")
        return None
