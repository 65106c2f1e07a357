"""Runs the pipeline on this machine: LocalDagRunner, Beam's FnApiRunner, SQLite ML Metadata.

    make run                      # the ASOS data: data/asos/, else ../shared/data/asos
    make run ARGS="--data-dir /path/to/data --skip-checksums"
    make run ARGS="--verbose"     # the full log live, not only the summary lines

It prints one line per component, the Trainer's epochs, the gate's table and a summary; the
full log of the run goes to <output-dir>/logs/, its HTML report to <output-dir>/reports/.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import sys

from pipeline import configs
from runner import console


def _workers(text: str) -> int:
    value = int(text)
    if value < 0:  # Beam's FnApiRunner fails inside ExampleGen with an IndexError
        raise argparse.ArgumentTypeError(f"{value} is not a number of workers (0: one per core)")
    return value


def _parser() -> argparse.ArgumentParser:
    defaults = configs.PipelineConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="exit codes:\n" + console.EXIT_CODES_TEXT)
    p.add_argument("--data-dir", default=defaults.data_dir,
                   help="directory with the four ASOS files (downloaded there when missing); default %(default)s")
    p.add_argument("--skip-checksums", action="store_true",
                   help="data of your own in the ASOS shape: do not check the published sha256")
    p.add_argument("--output-dir", default=defaults.output_dir,
                   help="pipeline root, ML Metadata, pushed models, logs and reports go here; default %(default)s")
    p.add_argument("--beam-workers", type=_workers, default=defaults.beam_workers,
                   help="Beam workers (0: one per core); default %(default)s")
    p.add_argument("--beam-running-mode", default=defaults.beam_direct_running_mode,
                   choices=["in_memory", "multi_threading", "multi_processing"])
    p.add_argument("--no-cache", action="store_true", help="re-run every component")
    configs.TrainingConfig.add_flags(p)
    p.add_argument("--gate-bound", action="append", default=[], metavar="METRIC=VALUE",
                   help="the gate's lower bound for a metric (recall_at_10, ndcg_at_10, sampled_accuracy, "
                        "recall_at_100, mrr), replacing its default; repeatable")
    p.add_argument("--verbose", action="store_true",
                   help="show the full log (TFX, Beam, TensorFlow) live, not only the run's summary lines")
    p.add_argument("--wait", action="store_true",
                   help="when another run is using the output directory, wait for it instead of refusing")
    return p


def _config(p: argparse.ArgumentParser, args: argparse.Namespace) -> configs.PipelineConfig:
    try:
        training = configs.TrainingConfig.from_flags(args)
    except ValueError as e:
        p.error(str(e))
    gate = configs.GateConfig()
    for item in args.gate_bound:
        metric, sep, value = item.partition("=")
        try:
            gate.lower_bounds[metric] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            p.error(f"--gate-bound {item!r} is not METRIC=NUMBER")
    return configs.PipelineConfig(
        data_dir=args.data_dir, output_dir=args.output_dir, enable_cache=not args.no_cache,
        beam_workers=args.beam_workers, beam_direct_running_mode=args.beam_running_mode,
        verify_checksums=not args.skip_checksums,
        training=training, gate=gate)


def parse_config(argv=None) -> configs.PipelineConfig:
    p = _parser()
    return _config(p, p.parse_args(argv))


def build(config: configs.PipelineConfig):
    from pipeline import pipeline as pipeline_def

    return pipeline_def.create_pipeline(config)


def main(argv=None, stream=None) -> int:
    """Runs the pipeline behind the console (runner/console.py); returns the exit code.
    `stream`: where the console's lines go (default: standard output)."""
    p = _parser()
    args = p.parse_args(argv)
    config = _config(p, args)
    return console.run_pipeline(config, build, verbose=args.verbose, wait=args.wait, stream=stream)


if __name__ == "__main__":
    sys.exit(main())
