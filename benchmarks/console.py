"""A benchmark's console is its figures. Imported first by the benchmark scripts (before
TensorFlow loads), it sends what no setting turns off to `outputs/logs/benchmarks.log`, for the
rest of the process: what C++ writes on file descriptor 2 (TensorFlow's start-up lines, cuInit)
and Python's logging (TensorFlow's deprecation warnings, Beam's, the Trainer's epochs). print()
and Python's own stderr (tracebacks, warnings) keep the console.

Only when a script of benchmarks/ is the program run: a test importing a benchmark module keeps
its console as it was.
"""

import logging
import os
import sys

from pipeline import configs

LOG_PATH = os.path.join(configs.DEFAULT_OUTPUT_DIR, "logs", "benchmarks.log")


def send_to_log(path: str = LOG_PATH) -> None:
    """fd 2 and the root logger to `path` (appended); sys.stderr stays the console."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stderr.flush()
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if sys.stderr is sys.__stderr__:  # the process's own stream, on fd 2: move it off fd 2
        sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
    os.dup2(log, 2)
    os.close(log)
    # a root handler: TensorFlow then adds no console handler of its own (tf_logging.get_logger)
    logging.basicConfig(filename=path, level=logging.INFO, force=True,
                        format=f"%(asctime)s {os.path.basename(sys.argv[0])} %(levelname).1s %(name)s: %(message)s")


def _run_as_a_benchmark() -> bool:
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return os.path.dirname(script) == os.path.dirname(os.path.abspath(__file__))


if _run_as_a_benchmark():
    send_to_log()
