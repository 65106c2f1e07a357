"""One heavy user against the plain ASOS run: seconds and peak memory per component, and the
pushed model's answer time for that user (prints them).

    env/run-in-env python benchmarks/heavy_user.py                 # about 3 minutes
    env/run-in-env python benchmarks/heavy_user.py --purchases 5000 --skip-plain

Makes the data (benchmarks/heavy_data.py: the ASOS files plus one user with --purchases distinct
catalog products, 15% of them in the eval split), then runs the local pipeline (`local_runner.py`,
as `make run`, cache off) on the plain ASOS data and on the heavy data, each into its own output
directory under --output-root and in its own process, whose resident memory (with its
children's) is sampled every 0.2 s. A run that passes --memory-limit-gb is ended (it would
otherwise take the machine's memory from everyone on it) and said so.

Prints per component the seconds (ML Metadata's execution times) and peak memory of each run
and their ratios, then `serving_default`'s latency at batch 1 on each pushed model (plain
TensorFlow, median of --calls calls after 5 warm-up calls) for the heavy user, the ASOS user
with the most train purchases and one with the median number.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, List, Tuple

import numpy as np
import psutil
import pyarrow.parquet as pq

from benchmarks import heavy_data
from models import features
from pipeline import configs
from runner import metadata

SAMPLE_SECONDS = 0.2


def rss_with_children(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_pipeline(data_dir: str, output_dir: str, log_path: str, skip_checksums: bool,
                 memory_limit: float) -> Tuple[int, List[Tuple[float, int]], float, bool]:
    """Runs local_runner.py in a process of its own; (exit code, [(time, rss bytes)] samples,
    wall seconds, whether it was ended for passing `memory_limit` bytes)."""
    command = [sys.executable, "local_runner.py", "--data-dir", data_dir, "--output-dir",
               output_dir, "--no-cache"] + (["--skip-checksums"] if skip_checksums else [])
    samples: List[Tuple[float, int]] = []
    start = time.time()
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, cwd=configs.PROJECT_DIR, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        process = psutil.Process(child.pid)
        ended = False
        while child.poll() is None:
            rss = rss_with_children(process)
            samples.append((time.time(), rss))
            if rss > memory_limit and not ended:
                ended = True
                os.killpg(child.pid, signal.SIGKILL)  # the session this script started
            time.sleep(SAMPLE_SECONDS)
    return child.returncode, samples, time.time() - start, ended


def component_figures(config: configs.PipelineConfig, samples: List[Tuple[float, int]],
                      ended_at: float) -> Dict[str, Tuple[str, float, float]]:
    """{component: (state, seconds, peak memory in bytes)} of the run in `config`'s metadata."""
    figures = {}
    for node, executions in metadata.node_executions(config).items():
        e = executions[-1]
        begin = e.create_time_since_epoch / 1000
        state = metadata.STATE_NAMES[e.last_known_state]
        end = e.last_update_time_since_epoch / 1000 if state != "RUNNING" else ended_at
        peak = max((rss for t, rss in samples
                    if begin - SAMPLE_SECONDS <= t <= end + SAMPLE_SECONDS), default=0)
        figures[node] = (state, end - begin, peak)
    return figures


def serving_latency(model_dir: str, users: Dict[str, bytes], calls: int) -> Dict[str, float]:
    """{label: median milliseconds of serving_default for that one user}."""
    import tensorflow as tf

    model = tf.saved_model.load(model_dir)
    serve = model.signatures["serving_default"]
    out = {}
    for label, user in users.items():
        request = tf.constant([user])
        for _ in range(5):
            serve(user_id=request)["products"].numpy()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            serve(user_id=request)["products"].numpy()
            times.append((time.perf_counter() - start) * 1000)
        out[label] = float(np.median(times))
    return out


def users_asked(data_dir: str, heavy_user: str) -> Dict[str, Tuple[bytes, int]]:
    """{label: (user id, train purchases)}: an ASOS user with the median number of train
    purchases, the one with the most, and the heavy user (in the heavy data's train file)."""
    users = pq.read_table(os.path.join(data_dir, configs.TRAIN_FILE),
                          columns=[features.USER_KEY])[features.USER_KEY].to_numpy()
    ids, counts = np.unique(users, return_counts=True)
    heavy = ids == heavy_user.encode()
    order = np.argsort(np.where(heavy, -1, counts), kind="stable")
    median = order[(len(order) + 1) // 2]
    return {"median ASOS user": (ids[median], int(counts[median])),
            "heaviest ASOS user": (ids[order[-2]], int(counts[order[-2]])),
            "heavy user": (heavy_user.encode(), int(counts[heavy].sum()))}


def _gb(value: float) -> str:
    return f"{value / 2**30:.1f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=configs.default_data_dir(), help="the ASOS files")
    p.add_argument("--output-root", default="/tmp/heavy-user-benchmark",
                   help="the heavy data and both runs' output directories go here (replaced)")
    p.add_argument("--purchases", type=int, default=20000, help="the heavy user's purchases")
    p.add_argument("--skip-plain", action="store_true", help="run the heavy data only")
    p.add_argument("--memory-limit-gb", type=float, default=16.0,
                   help="end a run whose memory passes this; default %(default)s")
    p.add_argument("--calls", type=int, default=50, help="serving calls timed per user")
    args = p.parse_args(argv)
    if args.purchases < 1 or args.calls < 1:
        p.error("--purchases and --calls must be >= 1")

    shutil.rmtree(args.output_root, ignore_errors=True)
    heavy_dir = os.path.join(args.output_root, "data")
    [heavy_user] = heavy_data.add_heavy_users(args.data_dir, heavy_dir, [args.purchases])
    print(f"[heavy_user] data: ASOS + {heavy_user} with {args.purchases:,} purchases "
          f"({heavy_dir}); {os.cpu_count()} cores, "
          f"{_gb(psutil.virtual_memory().total)} GB", flush=True)

    runs = {"heavy": (heavy_dir, True)}
    if not args.skip_plain:
        runs = {"plain": (args.data_dir, False), **runs}
    results = {}
    for label, (data_dir, skip_checksums) in runs.items():
        output_dir = os.path.join(args.output_root, label)
        log_path = os.path.join(args.output_root, f"{label}.log")
        code, samples, wall, ended = run_pipeline(data_dir, output_dir, log_path, skip_checksums,
                                                  args.memory_limit_gb * 2**30)
        config = configs.PipelineConfig(data_dir=data_dir, output_dir=output_dir)
        figures = component_figures(config, samples, time.time())
        peak = max((rss for _, rss in samples), default=0)
        note = (f", ENDED at {args.memory_limit_gb:g} GB" if ended else "")
        print(f"[heavy_user] {label} run: exit {code}, {wall:.1f} s, peak {_gb(peak)} GB{note} "
              f"(console: {log_path})", flush=True)
        results[label] = {"config": config, "figures": figures, "wall": wall, "code": code}

    labels = list(results)
    nodes = list(dict.fromkeys(node for r in results.values() for node in r["figures"]))
    head = "".join(f"{label + ' s':>10}{label + ' GB':>10}" for label in labels)
    print(f"\n  {'component':<28}{head}" + ("   heavy/plain s" if len(labels) == 2 else ""))
    for node in nodes:
        cells, seconds = "", []
        for label in labels:
            state, s, peak = results[label]["figures"].get(node, ("-", float("nan"), 0))
            flag = "" if state == "COMPLETE" else "*"
            cells += f"{s:>9.1f}{flag or ' '}{_gb(peak):>10}"
            seconds.append(s)
        ratio = f"{seconds[1] / seconds[0]:>15.2f}" if len(seconds) == 2 and seconds[0] else ""
        print(f"  {node:<28}{cells}{ratio}")
    walls = [results[label]["wall"] for label in labels]
    print(f"  {'whole run (wall)':<28}" + "".join(f"{w:>9.1f} {'':>10}" for w in walls)
          + (f"{walls[1] / walls[0]:>15.2f}" if len(walls) == 2 else ""))
    print("  (* not COMPLETE: the component's last state)")

    asked = users_asked(heavy_dir, heavy_user)
    print(f"\n  serving_default, batch 1, median of {args.calls} calls (ms)")
    print(f"  {'user':<24}{'train purchases':>16}" + "".join(f"{label:>10}" for label in labels))
    latency = {}
    for label in labels:
        try:
            model_dir = metadata.latest_pushed_model(results[label]["config"].serving_model_dir)
        except FileNotFoundError:
            continue  # no model pushed: the run's exit code says why
        latency[label] = serving_latency(model_dir, {
            user: user_id for user, (user_id, _) in asked.items()
            if label == "heavy" or user != "heavy user"}, args.calls)
    for user, (_, count) in asked.items():
        cells = "".join(f"{latency.get(label, {}).get(user, float('nan')):>10.1f}"
                        for label in labels)
        print(f"  {user:<24}{count:>16,}{cells}")
    return 0 if all(r["code"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
