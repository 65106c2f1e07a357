"""The supervisor with a small worker (no TensorFlow) that speaks its events: exit codes passed on,
a limit enforced, a kill reported (the pipeline's own worker: tests/test_run_memory.py)."""

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline import configs
from runner import console, supervisor

WORKER = """
import os, signal, sys, time
from runner import supervisor
events = supervisor.Events.from_environ()
log, mode = sys.argv[1], sys.argv[2]
events.send(log=log)
if mode != "grow-first":
    events.send(start="Trainer")
    events.send(end="Trainer", state="ran", seconds=0.1, peak_bytes=1)
    events.send(start="RunReport" if mode == "grow-report" else "Evaluator")
if mode == "exit":
    sys.exit(3)
if mode == "term":
    os.kill(os.getpid(), signal.SIGTERM)
held = []
while len(held) < 32:  # 2 GiB at most
    held.append(bytearray(64 * 2**20))
    held[-1][::4096] = b"x" * (len(held[-1]) // 4096)
    time.sleep(0.05)
sys.exit(5)  # nobody stopped it
"""


def _supervise(tmp_path, mode, limit=None):
    log = tmp_path / "run.log"
    log.write_text("the worker's log\n")
    stream = io.StringIO()
    config = configs.PipelineConfig(data_dir=str(tmp_path), output_dir=str(tmp_path / "out"))
    code = supervisor.supervise([sys.executable, "-c", WORKER, str(log), mode], config,
                                memory_limit=limit, stream=stream)
    return code, stream.getvalue(), log.read_text()


def test_a_worker_that_ends_passes_its_exit_code_on_and_adds_nothing(tmp_path):
    assert _supervise(tmp_path, "exit") == (3, "", "the worker's log\n")


def test_a_worker_past_the_limit_is_stopped_and_the_component_named(tmp_path):
    code, text, log = _supervise(tmp_path, "grow", limit=400 * 2**20)
    assert code == console.EXIT_OUT_OF_MEMORY
    lines = text.strip().splitlines()
    assert lines[0].startswith("error: the run was stopped at --memory-limit 400 MiB during Evaluator "
                               "(exit code 137): it had reached 0.")
    assert "  exit code      137" in lines and "  verdict        no model pushed" in lines
    assert log.startswith("the worker's log\n") and lines[0] in log  # the lines go to the run's log too
    assert not (tmp_path / "out").exists()  # no ML Metadata to read: none made


def test_a_limit_below_what_a_run_needs_to_start_says_so_and_how_to_go_on(tmp_path):
    """Found following the docs: `--memory-limit 400M` stopped a run while it was starting, and the
    console named no component and advised more memory."""
    code, text, _ = _supervise(tmp_path, "grow-first", limit=400 * 2**20)
    lines = text.strip().splitlines()
    assert code == console.EXIT_OUT_OF_MEMORY
    assert lines[0].startswith("error: the run was stopped at --memory-limit 400 MiB before any component started "
                               "(exit code 137): it had reached 0.")
    assert lines[-1] == "  next           a higher --memory-limit or less data; finished components are cached"


def test_a_worker_killed_by_another_signal_is_a_failure_naming_it(tmp_path):
    code, text, _ = _supervise(tmp_path, "term")
    assert code == console.EXIT_FAILED
    assert text.strip().splitlines()[0] == "error: the run was killed by SIGTERM during Evaluator (exit code 1)"


def test_a_report_killed_for_memory_is_a_warning_and_the_code_is_what_was_pushed(tmp_path):
    """As a RunReport that fails otherwise (runner/console.py): the model's fate is decided."""
    code, text, _ = _supervise(tmp_path, "grow-report", limit=400 * 2**20)
    lines = text.strip().splitlines()
    assert lines[0].startswith("warning: the run report was stopped at --memory-limit 400 MiB (the run's "
                               "exit code is what was pushed): it had reached 0.")
    assert code == console.EXIT_FAILED and "  exit code      1" in lines  # nothing was pushed here


def test_what_reading_the_outcome_prints_on_stderr_goes_to_the_runs_log(tmp_path):
    """Found by exploratory testing: after a run stopped at --memory-limit, reading ML Metadata
    loaded TensorFlow in the supervisor, and its C++ start-up lines and Python warnings reached
    the console. Inside `_stderr_to` both go to the run's log."""
    import subprocess

    log = tmp_path / "run.log"
    log.write_text("the worker's log\n")
    program = ("import os, sys, warnings; from runner import supervisor\n"
               f"with supervisor._stderr_to({str(log)!r}):\n"
               "    os.write(2, b'I0000 a C++ line\\n'); warnings.warn('a library warning', FutureWarning)\n"
               "print('after', file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=configs.PROJECT_DIR,
                          timeout=120)
    assert done.returncode == 0 and done.stderr == "after\n", done.stderr
    text = log.read_text()
    assert text.startswith("the worker's log\nI0000 a C++ line\n") and "FutureWarning: a library warning" in text


STOPPABLE = """
import os, sys, time
from runner import supervisor
supervisor.follow_supervisor()
events = supervisor.Events.from_environ()
marker = sys.argv[1]
events.send(start="Trainer")
open(marker, "w").write("started")
try:
    time.sleep(120)
except KeyboardInterrupt:  # the run's Ctrl-C path: it says where it stopped, exit code 130
    open(marker, "w").write("interrupted")
    sys.exit(130)
sys.exit(5)
"""
SUPERVISOR = """
import sys
from pipeline import configs
from runner import supervisor
config = configs.PipelineConfig(data_dir=sys.argv[1], output_dir=sys.argv[1] + "/out")
sys.exit(supervisor.supervise([sys.executable, "-c", sys.argv[2], sys.argv[3]], config))
"""


def _stoppable_run(tmp_path, sigint=signal.SIG_DFL):
    """The supervisor and its worker, started with SIGINT `sigint` (SIG_IGN: as a script's `cmd &`
    starts them)."""
    marker = tmp_path / "worker"
    run = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(tmp_path), STOPPABLE, str(marker)],
                           cwd=configs.PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    deadline = time.time() + 60
    while not (marker.exists() and marker.read_text() == "started"):
        assert run.poll() is None and time.time() < deadline, run.communicate()
        time.sleep(0.05)
    return run, marker


def _wait_for(marker, text, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline and marker.read_text() != text:
        time.sleep(0.05)
    return marker.read_text()


@pytest.mark.parametrize("sig, started_with", [(signal.SIGINT, signal.SIG_DFL), (signal.SIGTERM, signal.SIG_DFL),
                                               (signal.SIGTERM, signal.SIG_IGN), (signal.SIGINT, signal.SIG_IGN)])
def test_a_stop_sent_to_the_supervisor_alone_stops_the_worker_as_a_ctrl_c(tmp_path, sig, started_with):
    """Found by exploratory testing: `kill -INT <pid>` of the supervisor (timeout -s INT, a
    scheduler's stop) was ignored, and the run went on to push; a SIGTERM killed the worker with
    no word of where it stopped; a run started with SIGINT ignored (a script's `make run &`) did not
    stop at all: its worker ignored the supervisor's SIGINT."""
    run, marker = _stoppable_run(tmp_path, started_with)
    try:
        os.kill(run.pid, sig)  # the supervisor's pid only, not its process group
        run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == console.EXIT_INTERRUPTED and marker.read_text() == "interrupted"


COUNTING = """
import signal, sys, time
from runner import supervisor
supervisor.follow_supervisor()
stops = []
signal.signal(signal.SIGINT, lambda *_: stops.append(1))
open(sys.argv[1], "w").write("started")
while not stops:
    time.sleep(0.02)
time.sleep(1.0)  # the stop path, where a second Ctrl-C would land
open(sys.argv[1], "w").write(str(len(stops)))
sys.exit(130)
"""


def test_stops_that_come_again_reach_the_worker_once(tmp_path):
    """A stop may come more than once (a second Ctrl-C; the parent-death signal of a replay killed
    outright, which Linux repeats as the run passes between the dying replay's threads): the
    worker gets one Ctrl-C, and its stop path runs to its end."""
    marker = tmp_path / "worker"
    run = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(tmp_path), COUNTING, str(marker)],
                           cwd=configs.PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (marker.exists() and marker.read_text() == "started"):
            assert run.poll() is None and time.time() < deadline, run.communicate()
            time.sleep(0.05)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
            os.kill(run.pid, sig)
            time.sleep(0.1)
        run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == console.EXIT_INTERRUPTED and marker.read_text() == "1"


def test_a_supervisor_killed_outright_stops_its_worker_as_a_ctrl_c(tmp_path):
    """Found by exploratory testing: a SIGKILLed supervisor left its worker running (holding the
    run lock), and it pushed a model a minute later."""
    run, marker = _stoppable_run(tmp_path)
    run.kill()
    run.communicate(timeout=60)
    assert _wait_for(marker, "interrupted") == "interrupted"  # the parent-death signal
