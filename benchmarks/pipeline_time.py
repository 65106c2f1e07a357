"""Wall time of each component on the ASOS data: a cold run, then a cached one.

    make benchmark            # or: env/run-in-env python benchmarks/pipeline_time.py

Runs the local pipeline (LocalDagRunner, the configuration of `make run`) twice into a fresh
output directory (default outputs/benchmark, removed first) and prints, per component, the wall
time ML Metadata recorded for its execution (create → last update) and its state, and the total
wall time of each run.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import os
import shutil
import sys
import time

from tfx import v1 as tfx

import local_runner
from pipeline import configs
from runner import data, metadata


def timed_run(config: configs.PipelineConfig, label: str) -> float:
    start_ms = int(time.time() * 1000)
    start = time.time()
    tfx.orchestration.LocalDagRunner().run(local_runner.build(config))
    total = time.time() - start
    print(f"\n{label} run: {total:.1f} s wall", flush=True)
    print(f"  {'component':<32}{'state':<10}{'seconds':>8}")
    for node, state, seconds in metadata.execution_times(config, start_ms):
        print(f"  {node:<32}{state:<10}{seconds:>8.1f}")
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=configs.default_data_dir())
    p.add_argument("--output-dir", default=os.path.join(configs.DEFAULT_OUTPUT_DIR, "benchmark"))
    args = p.parse_args(argv)
    shutil.rmtree(args.output_dir, ignore_errors=True)
    config = configs.PipelineConfig(data_dir=data.ensure_data(args.data_dir), output_dir=args.output_dir)
    print(f"[benchmark] ASOS data {config.data_dir}; beam {' '.join(config.beam_pipeline_args())}; "
          f"{os.cpu_count()} cores", flush=True)
    cold = timed_run(config, "cold")
    cached = timed_run(config, "cached (nothing changed)")
    print(f"\n[benchmark] cold {cold:.1f} s, cached {cached:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
