"""For tests, not the run: a small disk, to see what a full disk does (a tmpfs mounted for the
length of a block; unit tests import nothing from tests/).

Mounting needs root (CI runs the tests as root; env/run-in-env's rootfs mode keeps root's mount
rights in its own mount namespace). Elsewhere the test is skipped, saying why.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Iterator

import pytest


@contextlib.contextmanager
def mounted(path: str, size_bytes: int) -> Iterator[str]:
    """A tmpfs of `size_bytes` at `path` (created if missing), unmounted after the block."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, and mounting one needs root")
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", path],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs at {path}: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", path], check=True)


def resize(path: str, size_bytes: int) -> None:
    """Gives the tmpfs at `path` a new size (not below what it holds)."""
    subprocess.run(["mount", "-o", f"remount,size={size_bytes}", path], check=True)


def fill(path: str) -> None:
    """Fills the disk holding the directory `path` to the last byte."""
    with open(os.path.join(path, ".filler"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
