"""The peak memory of a stretch of a process's life, and the components file."""

import os

from cli import flags
from runner import memory


def test_a_stretchs_peak_counts_what_it_took_and_the_next_stretch_starts_again():
    meter = memory.PeakMeter()
    meter.start()
    before = memory.tree_rss(os.getpid())
    block = bytearray(256 * 2**20)
    block[::4096] = b"x" * (len(block) // 4096)  # resident
    del block  # freed before peak() is read: the high-water mark still has it
    assert meter.peak() >= before + 200 * 2**20
    meter.start()
    assert meter.peak() < before + 100 * 2**20


def test_the_components_file_holds_each_components_figures(tmp_path):
    path = str(tmp_path / "run-1") + memory.COMPONENTS_SUFFIX
    memory.write_components(path, [{"name": "Trainer", "state": "ran", "seconds": 2.5, "peak_bytes": 7,
                                    "started": 1.0}])
    assert memory.read_components(path) == [{"name": "Trainer", "state": "ran", "seconds": 2.5,
                                             "peak_bytes": 7}]
    assert memory.gib(1.5 * 2**30) == "1.5 GiB"
    # a limit as it was given (found by exploratory testing: --memory-limit 1.45G read 1.4 GiB)
    assert [memory.limit_gib(flags.byte_size(text)) for text in ("1.45G", "2G", "1.5G", "512M", "400M")] == [
        "1.45 GiB", "2.0 GiB", "1.5 GiB", "0.5 GiB", "400 MiB"]


def test_the_oom_kill_counter_is_a_count_or_unknown():
    kills = memory.oom_kills()
    assert kills is None or kills >= 0
