"""In-process latency of the serving signatures of the pushed model (not a test: it prints).

    env/run-in-env python benchmarks/serving_latency.py [--model-dir DIR | --output-dir DIR] [--repeats 200]

Loads the latest pushed SavedModel (of the last `make run`, or of --output-dir's run) with plain
TensorFlow (no project code, as TF Serving does) and times `serving_default` and `call_item_item`
on batches of 1 and 64 known ids drawn from the eval split, after a warm-up; prints p50 and p99 in
milliseconds. Network and TF Serving's own overhead are not included.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from benchmarks import console  # noqa: F401  (TensorFlow's own lines to outputs/logs/benchmarks.log)

import argparse
import os
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf

from models import features
from pipeline import configs
from runner import metadata


def percentiles(fn, batches, repeats: int):
    for batch in batches[:5]:
        fn(batch)  # warm-up: tracing and first-call allocations
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(batches[i % len(batches)])
        times.append((time.perf_counter() - start) * 1000)
    return np.percentile(times, 50), np.percentile(times, 99)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=None,
                   help="a SavedModel; default the latest one pushed into --output-dir")
    p.add_argument("--output-dir", default=configs.DEFAULT_OUTPUT_DIR,
                   help="the output directory of the 'make run' whose pushed model to measure; default %(default)s")
    p.add_argument("--data-dir", default=configs.default_data_dir())
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args(argv)
    model_dir = args.model_dir or metadata.latest_pushed_model(
        configs.PipelineConfig(output_dir=args.output_dir).serving_model_dir)
    model = tf.saved_model.load(model_dir)
    eval_rows = pq.read_table(os.path.join(args.data_dir, configs.EVAL_FILE)).to_pydict()
    users = np.array(eval_rows[features.USER_KEY], dtype=object)
    items = np.array(eval_rows[features.PRODUCT_KEY], dtype=np.int64)
    rng = np.random.default_rng(0)
    print(f"[latency] {model_dir}; {os.cpu_count()} cores; {args.repeats} calls each; milliseconds")
    print(f"  {'signature':<16}{'batch':>6}{'p50':>9}{'p99':>9}")
    for batch in (1, 64):
        picks = [rng.choice(len(users), batch) for _ in range(50)]
        user_batches = [tf.constant(list(users[i])) for i in picks]
        item_batches = [tf.constant(items[i]) for i in picks]
        for name, fn, batches in (
                ("serving_default", lambda b: model.signatures["serving_default"](user_id=b), user_batches),
                ("call_item_item", lambda b: model.signatures["call_item_item"](item=b), item_batches)):
            p50, p99 = percentiles(fn, batches, args.repeats)
            print(f"  {name:<16}{batch:>6}{p50:>9.2f}{p99:>9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
