"""A run killed for memory says so (issue 19): the component that was running, the memory it had
reached, the summary and exit code 137, whether the supervisor stopped it at --memory-limit or
it was SIGKILLed from outside as the kernel's out-of-memory killer does. The worker runs a real
pipeline through the console (tests/memory_hog.py: a component that takes memory); it was one
process before, and such a run ended with exit code 137 and nothing else."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pipeline import configs
from runner import console

pytestmark = pytest.mark.e2e
WORKER = "import sys; from tests import memory_hog; sys.exit(memory_hog.command(sys.argv[1:]))"


def _summary(text):
    lines = text[text.index("\nsummary\n"):].splitlines()[2:]
    return {line[2:17].strip(): line[17:].strip() for line in lines if line.startswith("  ")}


def _log_of(summary):
    with open(summary["full log"]) as f:
        return f.read()


def test_a_run_past_its_memory_limit_names_the_component_and_ends_with_the_summary(tmp_path, fake_data_dir):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", WORKER, str(out), fake_data_dir, "--memory-limit", "2G"],
                          cwd=configs.PROJECT_DIR, capture_output=True, text=True, timeout=600)
    assert done.returncode == console.EXIT_OUT_OF_MEMORY == 137, done.stdout + done.stderr
    text = done.stdout
    assert re.search(r"^  Warmup +ran ", text, re.M)  # the worker's console, until the kill
    [error] = [line for line in text.splitlines() if line.startswith("error:")]
    found = re.fullmatch(r"error: the run was stopped at --memory-limit 2\.0 GiB during MemoryHog "
                         r"\(exit code 137\): it had reached (\d+\.\d) GiB \(this machine has .* GiB\)", error)
    assert found and float(found.group(1)) >= 2.0, error
    summary = _summary(text)
    assert summary["exit code"] == "137" and summary["verdict"] == "no model pushed"
    assert summary["next"].startswith("a higher --memory-limit")
    assert os.path.dirname(summary["full log"]) == str(out / "logs")
    log = _log_of(summary)
    assert error in log and "Component MemoryHog is running." in log  # the worker's log, and ours


def test_a_run_sigkilled_as_the_kernel_kills_says_where_and_ends_with_the_summary(tmp_path, fake_data_dir):
    out, pid_file = tmp_path / "out", tmp_path / "hog.pid"
    run = subprocess.Popen([sys.executable, "-c", WORKER, str(out), fake_data_dir, "--hold", "512",
                            "--pid-file", str(pid_file)],
                           cwd=configs.PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not pid_file.exists() or not pid_file.read_text():
            assert run.poll() is None and time.time() < deadline, "the hog never took its memory"
            time.sleep(0.2)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)  # what the out-of-memory killer sends
        text, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == console.EXIT_OUT_OF_MEMORY, text + err
    [error] = [line for line in text.splitlines() if line.startswith("error:")]
    found = re.fullmatch(r"error: the run was killed \(SIGKILL: most likely the kernel's out-of-memory "
                         r"killer\) during MemoryHog \(exit code 137\): it had reached (\d+\.\d) GiB "
                         r"\(this machine has .* GiB\)", error)
    assert found and float(found.group(1)) >= 0.5, error  # the hog's 512 MiB at least
    summary = _summary(text)
    assert summary["exit code"] == "137" and summary["verdict"] == "no model pushed"
    assert error in _log_of(summary)
