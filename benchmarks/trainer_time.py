"""The Trainer's run_fn alone, on the Transform output of an earlier run (prints its phases).

    env/run-in-env python benchmarks/trainer_time.py --output-dir outputs/local [--model JSON]

Calls `models.trainer.run_fn` as the TFX Trainer does (FnArgs with a TFXIO data accessor over
Transform's train split), into a temporary directory, and prints the time of each phase it logs
(reading, history and item graph, each epoch, export) and the total. The Trainer component's
time inside `make run` adds TFX's own overhead (a second or two) to this figure.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import json
import logging
import os
import sys
import tempfile
import time

import tensorflow as tf
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import trainer
from pipeline import configs
from runner import metadata


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", default=configs.DEFAULT_OUTPUT_DIR,
                   help="the output directory of an earlier 'make run'; default %(default)s")
    p.add_argument("--model", type=json.loads, default={}, help="JSON ModelConfig overrides")
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s")
    for name in ("recsys", "models.trainer"):  # the phases: console lines and full-log lines
        logging.getLogger(name).setLevel(logging.INFO)
    config = configs.PipelineConfig(output_dir=args.output_dir)
    [graph] = metadata.output_uris(config, "Transform", "transform_graph")
    [transformed] = metadata.output_uris(config, "Transform", "transformed_examples")
    accessor = tfx.components.DataAccessor(  # as the Trainer gets it, for Transform's TFRecords
        tf_dataset_factory=lambda files, options, schema: tfxio.TFExampleRecord(
            files, schema=schema).TensorFlowDataset(options),
        record_batch_factory=None, data_view_decode_fn=None)
    with tempfile.TemporaryDirectory() as tmp:
        fn_args = tfx.components.FnArgs(
            train_files=[os.path.join(transformed, "Split-train", "*")],
            transform_graph_path=graph, data_accessor=accessor,
            serving_model_dir=os.path.join(tmp, "serving"), model_run_dir=os.path.join(tmp, "run"),
            custom_config={"preset": "default", "model": args.model})
        tf.io.gfile.makedirs(fn_args.model_run_dir)
        start = time.time()
        trainer.run_fn(fn_args)
        print(f"[trainer_time] run_fn {json.dumps(args.model)}: {time.time() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
