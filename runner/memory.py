"""Memory of a local run: each component's peak, the process tree's resident memory, and whether
the kernel's out-of-memory killer struck.

A local run executes its components one after the other in one process (LocalDagRunner; Beam's
in_memory mode adds no process, its multi_processing mode adds worker processes). What the kernel
weighs before killing is that process's resident memory (RSS), so that is what is measured: a
component's peak is the highest RSS of the run's process, with its children's, while the
component ran. It includes what earlier components left in the process (Python rarely hands
memory back), which is also what the kernel sees.

Used by the console (runner/console.py: each component's peak, into `<run log>.components.json`,
which the run report shows) and by the supervisor (runner/supervisor.py: the memory a killed run
had reached, and `--memory-limit`).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Dict, List, Optional

import psutil

GIB = 2**30


def gib(n_bytes: float) -> str:
    """`2.1 GiB`."""
    return f"{n_bytes / GIB:.1f} GiB"


def limit_gib(n_bytes: float) -> str:
    """A size a person gave (--memory-limit) as they gave it: `2.0 GiB`, `1.45 GiB`, `400 MiB`
    (`gib` read 1.45G as 1.4 GiB, and 400M as 0.4 GiB)."""
    value = n_bytes / GIB
    if abs(round(value, 1) - value) < 0.005:
        return gib(n_bytes)
    if abs(round(value, 2) - value) < 0.0005:
        return f"{value:.2f} GiB"
    return f"{n_bytes / 2**20:,.0f} MiB"  # 400M: 0.390625 GiB


def tree_rss(pid: int) -> int:
    """Resident memory of process `pid` and all its descendants, in bytes (0 once it is gone)."""
    total = 0
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in family:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # ended between the listing and the reading
            pass
    return total


def _own_peak() -> Optional[int]:
    """This process's peak RSS since its last reset (VmHWM), in bytes; None where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_own_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0: `5` into /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMeter:
    """The peak resident memory of this process and its children over a stretch of time.

    `start()` begins a stretch, `peak()` reads its peak so far. The process's own peak is the
    kernel's exact high-water mark (VmHWM, reset at each start); children (Beam's
    multi_processing workers) are sampled every `interval` seconds by a daemon thread."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self._sampled = 0
        self._exact = False
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        with self._lock:
            self._exact = _reset_own_peak()
            self._sampled = tree_rss(os.getpid())
        if self._thread is None:
            self._thread = threading.Thread(target=self._sample, name="peak-meter", daemon=True)
            self._thread.start()

    def peak(self) -> int:
        with self._lock:
            sampled = max(self._sampled, tree_rss(os.getpid()))
            own = _own_peak() if self._exact else None
            self._sampled = sampled
        return max(sampled, own or 0)

    def _sample(self) -> None:
        event = threading.Event()
        while not event.wait(self.interval):
            rss = tree_rss(os.getpid())
            with self._lock:
                self._sampled = max(self._sampled, rss)


def oom_kills() -> Optional[int]:
    """How many processes of this process's memory cgroup the kernel's out-of-memory killer has
    killed (cgroup v2 `memory.events`, v1 `memory.oom_control`); None where it cannot be read.
    A rise across a run's life says its SIGKILL came from the OOM killer."""
    try:
        with open("/proc/self/cgroup") as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    candidates = []
    for _, controllers, path in entries:
        if controllers == "":  # v2
            candidates.append(os.path.join("/sys/fs/cgroup", path.lstrip("/"), "memory.events"))
            candidates.append(os.path.join("/sys/fs/cgroup/unified", path.lstrip("/"), "memory.events"))
        elif "memory" in controllers.split(","):  # v1
            candidates.append(os.path.join("/sys/fs/cgroup/memory", path.lstrip("/"), "memory.oom_control"))
    for path in candidates:
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def machine_memory() -> int:
    """This machine's memory in bytes."""
    return psutil.virtual_memory().total


# --- The components file: each component's seconds and peak memory, beside the run's log ----------
COMPONENTS_SUFFIX = ".components.json"
MEASURED = ("peak resident memory of the run's process and its children while the component ran "
            "(with what earlier components left in it: what the kernel weighs)")


def write_components(path: str, components: List[Dict]) -> None:
    """[{"name", "state", "seconds", "peak_bytes", ...}] into `path` (replaced whole)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"measured": MEASURED, "components": [
            {key: c[key] for key in ("name", "state", "seconds", "peak_bytes")} for c in components]},
            f, indent=1)
    os.replace(tmp, path)


def read_components(path: str) -> List[Dict]:
    with open(path) as f:
        return json.load(f)["components"]
