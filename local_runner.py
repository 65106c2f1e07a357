"""Runs the pipeline on this machine: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata.

    make run                      # the ASOS data: data/asos/, else ../shared/data/asos
    make run ARGS="--data-dir /path/to/data --skip-checksums"
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import logging
import sys

from absl import logging as absl_logging
from tfx import v1 as tfx

from models import trainer
from pipeline import configs, data
from pipeline import pipeline as pipeline_def


def parse_config(argv=None) -> configs.PipelineConfig:
    defaults = configs.PipelineConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=defaults.data_dir,
                   help="directory with the four ASOS files (downloaded there when missing); default %(default)s")
    p.add_argument("--skip-checksums", action="store_true",
                   help="data of your own in the ASOS shape: do not check the published sha256")
    p.add_argument("--output-dir", default=defaults.output_dir,
                   help="pipeline root, ML Metadata and pushed models go here; default %(default)s")
    p.add_argument("--beam-workers", type=int, default=defaults.beam_workers)
    p.add_argument("--beam-running-mode", default=defaults.beam_direct_running_mode,
                   choices=["in_memory", "multi_threading", "multi_processing"])
    p.add_argument("--no-cache", action="store_true", help="re-run every component")
    configs.TrainingConfig.add_flags(p)
    args = p.parse_args(argv)
    try:
        training = configs.TrainingConfig.from_flags(args)
    except ValueError as e:
        p.error(str(e))
    return configs.PipelineConfig(
        data_dir=args.data_dir, output_dir=args.output_dir, enable_cache=not args.no_cache,
        beam_workers=args.beam_workers, beam_direct_running_mode=args.beam_running_mode,
        verify_checksums=not args.skip_checksums,
        training=training)


def build(config: configs.PipelineConfig) -> tfx.dsl.Pipeline:
    return pipeline_def.create_pipeline(config)


def main(argv=None) -> int:
    absl_logging.set_verbosity(absl_logging.INFO)
    pipeline.check_keras()
    config = parse_config(argv)
    try:  # a bad --preset/--model-param fails here, in one line, not inside the Trainer
        trainer.model_config(config.training.custom_config())
    except (TypeError, ValueError) as e:
        print(f"error: model configuration: {e}", file=sys.stderr)
        return 2
    try:
        config.data_dir = data.ensure_data(config.data_dir, verify_checksums=config.verify_checksums)
    except data.DataError as e:
        print(f"error: input data: {e}", file=sys.stderr)
        return 2
    print(f"[run] data {config.data_dir} -> outputs {config.output_dir}", flush=True)
    try:
        tfx.orchestration.LocalDagRunner().run(build(config))
    except Exception as e:  # the component's own message says what went wrong
        logging.debug("pipeline failed", exc_info=True)
        print(f"error: the pipeline stopped: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print("[run] pipeline finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
