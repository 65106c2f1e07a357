"""What every harness task runs under, so that no task outlives a harness killed outright:

    python -m kubeflow_v2.harness_task COMMAND [ARG...]     (RECSYS_TASK_HARNESS: the harness's pid)

kubeflow_v2/harness.py starts each task in a process group of its own, and stops it on a Ctrl-C
or a failed task by the SIGINT of a Ctrl-C to that group (stop_tasks). A harness killed with
SIGKILL (the kernel's out-of-memory killer, `kill -9`) stops nothing: its tasks, and their Beam
workers, ran on to their end, writing outputs nobody reads. This small process leads the task's
group: it runs the task's compiled command, as it is, as its child, passes its exit on (its exit
code, or the signal it died of), and when the harness dies stops the group as the harness would
have: the SIGINT of a Ctrl-C to the group (the task and its children), SIGKILL to what is left
after STOP_SECONDS (a task busy in C code, or ignoring the SIGINT).

How it knows: Linux's parent-death signal, a SIGINT, set on itself at its start as the run's worker
does (runner/supervisor.py signal_on_parent_death; not a `preexec_fn`, which Python calls unsafe
in a process with threads, as the harness is), with the harness's pid checked, which also catches
a harness that died before the call. Linux sends it when the *thread* that started this process
ends, and makes another thread of the harness the parent: the pid is still the harness's then, and
the signal is ignored; it comes again when the harness itself ends. A SIGINT while the harness lives
is the harness's own stop, sent to the whole group: the task answers it, and its exit is passed on.
Linux only: elsewhere (no parent-death signal) a killed harness still leaves its tasks running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import List

HARNESS_ENV = "RECSYS_TASK_HARNESS"  # the harness's pid
STOP_SECONDS = 20.0  # how long a stopped task may take to end on its Ctrl-C before it is killed


class _HarnessGone(BaseException):
    """Raised by the SIGINT handler, out of the wait for the task, when the harness has died."""


def main(argv: List[str]) -> int:
    if not argv:
        print("usage: python -m kubeflow_v2.harness_task COMMAND [ARG...]", file=sys.stderr)
        return 2
    harness = os.environ.pop(HARNESS_ENV, "")
    if not harness:  # not started by the harness: nothing to watch
        os.execvp(argv[0], argv)
    from runner import supervisor

    if os.getpgrp() != os.getpid():  # the harness starts it so; a stop of the group must not reach another's
        os.setpgid(0, 0)
    gone: List[int] = []
    tasks: List[subprocess.Popen] = []

    def on_sigint(signum, frame):
        if gone or str(os.getppid()) == harness:  # the harness's own stop, or one of its threads ended
            return
        gone.append(signum)
        if tasks:
            raise _HarnessGone

    signal.signal(signal.SIGINT, on_sigint)  # a handler, not SIG_IGN: the task starts with Python's Ctrl-C
    try:
        supervisor.signal_on_parent_death(signal.SIGINT, harness)
        if not gone:
            tasks.append(subprocess.Popen(argv))
        if gone:
            raise _HarnessGone
        code = tasks[0].wait()
    except _HarnessGone:
        print(f"\n[harness-task] the harness (pid {harness}) has ended: the task is stopped as by a Ctrl-C",
              file=sys.stderr, flush=True)
        if tasks:  # the last SIGKILL, to the group, ends this process too
            supervisor.stop_groups({os.getpgrp(): tasks[0]}, STOP_SECONDS)
        return 130
    if code < 0:  # the signal it died of, for the harness to see as it would the task's
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
