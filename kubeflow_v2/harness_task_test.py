"""What a harness task runs under (kubeflow_v2/harness_task.py): the task's exit passed on, the
task stopped when the harness is already gone, and not stopped when only the harness's thread
that started it ends. A harness killed outright: kubeflow_v2/harness_test.py."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil

from kubeflow_v2 import harness, harness_task


def _task(command, harness_pid=None, **kwargs):
    env = dict(os.environ, **{harness_task.HARNESS_ENV: str(harness_pid or os.getpid())})
    return subprocess.Popen([sys.executable, "-m", "kubeflow_v2.harness_task", sys.executable, "-c", command],
                            cwd=harness.PROJECT_DIR, env=env, process_group=0, **kwargs)


def test_the_tasks_exit_is_passed_on():
    assert _task("import sys; sys.exit(3)").wait(timeout=60) == 3
    assert _task("import os, signal; os.kill(os.getpid(), signal.SIGTERM)").wait(timeout=60) == -signal.SIGTERM
    # the harness's stop (the SIGINT of a Ctrl-C to the group) is the task's to answer
    started = _task("import sys, time\ntry:\n    print('ready', flush=True); time.sleep(60)\n"
                    "except KeyboardInterrupt:\n    sys.exit(130)\n", stdout=subprocess.PIPE, text=True)
    assert started.stdout.readline() == "ready\n"
    os.killpg(started.pid, signal.SIGINT)
    assert started.wait(timeout=60) == 130


def test_a_task_whose_harness_is_already_gone_does_not_start(tmp_path):
    """The harness died before the task set its parent-death signal: the pid it was given is not
    its parent's."""
    marker = tmp_path / "started"
    started = _task(f"open({str(marker)!r}, 'w')", harness_pid=1, stderr=subprocess.PIPE, text=True)
    _, err = started.communicate(timeout=60)
    assert started.returncode == 130 and not marker.exists()
    assert "[harness-task] the harness (pid 1) has ended: the task is stopped as by a Ctrl-C" in err


# A harness: starts the task from a thread that ends once the task runs (Linux's parent-death
# signal comes then, the harness alive), then sleeps.
HARNESS = """
import os, subprocess, sys, threading, time
marker = sys.argv[1]
def start():
    subprocess.Popen([sys.executable, "-m", "kubeflow_v2.harness_task", sys.executable, "-c",
                      "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)",
                      marker], env=dict(os.environ, RECSYS_TASK_HARNESS=str(os.getpid())), process_group=0)
    while not os.path.exists(marker) or not open(marker).read():
        time.sleep(0.05)
thread = threading.Thread(target=start)
thread.start()
thread.join()
print("thread ended", flush=True)
time.sleep(300)
"""


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_end_of_the_harness_thread_that_started_the_task_does_not_stop_it(tmp_path):
    marker = tmp_path / "task"
    started = subprocess.Popen([sys.executable, "-c", HARNESS, str(marker)], cwd=harness.PROJECT_DIR,
                               stdout=subprocess.PIPE, text=True)
    task = None
    try:
        assert started.stdout.readline() == "thread ended\n"
        task = int(marker.read_text())
        time.sleep(1.0)
        assert _alive(task)  # the parent-death signal came; the harness lives
        started.kill()
        started.wait(timeout=60)
        deadline = time.time() + 5
        while _alive(task) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(task)  # and when it dies, the task stops
    finally:
        if started.poll() is None:
            started.kill()
        if task:
            with contextlib.suppress(ProcessLookupError):
                os.kill(task, signal.SIGKILL)
