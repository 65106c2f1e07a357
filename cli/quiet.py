"""TensorFlow's C++ log lines (oneDNN, CUDA drivers and cuInit, CPU instructions, absl's "log
messages before absl::InitializeLog()"), which no setting turns off, kept off a command's console:
the command does its TensorFlow work inside `native_stderr_silenced()`."""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 points at /dev/null inside the block, so what C++ writes there is
    dropped; Python's own sys.stderr (tracebacks, warnings) keeps writing where it did."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    python_stderr = sys.stderr
    if sys.stderr is sys.__stderr__:  # the process's own stream, on fd 2: move it off fd 2
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
