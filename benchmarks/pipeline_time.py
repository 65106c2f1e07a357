"""Wall time and peak memory of each component on the ASOS data: a cold run, then a cached one.

    make benchmark            # or: env/run-in-env python benchmarks/pipeline_time.py

Runs the local pipeline twice as `make run` does (`local_runner.py` in a process of its own, its
worker watched by the supervisor) into a fresh output directory (default outputs/benchmark,
removed first) and prints, per component, the seconds and the peak memory the console recorded
(`<output>/logs/run-*.components.json`: the run's resident memory while the component ran,
runner/memory.py), and the wall time of each run.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple

from pipeline import configs
from runner import memory

DEFAULT_OUTPUT_DIR = os.path.join(configs.DEFAULT_OUTPUT_DIR, "benchmark")  # make benchmark's other scripts read it


def run_local(data_dir: str, output_dir: str, extra: Sequence[str] = ()) -> Tuple[int, float, List[Dict], str]:
    """`local_runner.py` on `data_dir` into `output_dir`; (exit code, wall seconds, the run's
    components file: [{"name", "state", "seconds", "peak_bytes"}], its console)."""
    start = time.time()
    done = subprocess.run([sys.executable, "local_runner.py", "--data-dir", data_dir, "--output-dir", output_dir,
                           *extra], cwd=configs.PROJECT_DIR, capture_output=True, text=True)
    wall = time.time() - start
    files = sorted(glob.glob(os.path.join(output_dir, "logs", "run-*" + memory.COMPONENTS_SUFFIX)),
                   key=os.path.getmtime)
    components = memory.read_components(files[-1]) if files else []
    return done.returncode, wall, components, done.stdout + done.stderr


def print_components(components: List[Dict]) -> None:
    print(f"  {'component':<32}{'state':<10}{'seconds':>8}{'peak GiB':>10}")
    for c in components:
        peak = f"{c['peak_bytes'] / memory.GIB:>10.2f}" if c["peak_bytes"] else f"{'-':>10}"
        print(f"  {c['name']:<32}{c['state']:<10}{c['seconds']:>8.1f}{peak}")


def timed_run(data_dir: str, output_dir: str, label: str, extra: Sequence[str] = ()) -> float:
    code, wall, components, console = run_local(data_dir, output_dir, extra)
    print(f"\n{label} run: {wall:.1f} s wall, exit code {code}", flush=True)
    if code != 0:
        print(console[-3000:])
    print_components(components)
    return wall


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=configs.default_data_dir())
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR)
    args = p.parse_args(argv)
    shutil.rmtree(args.output_dir, ignore_errors=True)
    config = configs.PipelineConfig(data_dir=args.data_dir, output_dir=args.output_dir)
    print(f"[benchmark] data {config.data_dir}; beam {' '.join(config.beam_pipeline_args())}; "
          f"{os.cpu_count()} cores, {memory.gib(memory.machine_memory())}", flush=True)
    cold = timed_run(args.data_dir, args.output_dir, "cold")
    cached = timed_run(args.data_dir, args.output_dir, "cached (nothing changed)")
    print(f"\n[benchmark] cold {cold:.1f} s, cached {cached:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
