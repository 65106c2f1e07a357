"""Runs the pipeline on this machine: LocalDagRunner, Beam's FnApiRunner, SQLite ML Metadata.

    make run                      # the ASOS data: data/asos/, else ../shared/data/asos
    make run ARGS="--data-dir /path/to/data --skip-checksums"
    make run ARGS="--verbose"     # the full log live, not only the summary lines

It prints one line per component, the Trainer's epochs, the gate's table and a summary; the
full log of the run goes to <output-dir>/logs/, its HTML report to <output-dir>/reports/.

The pipeline runs in a child process that this one watches (runner/supervisor.py): a run killed
for memory still names the component and the memory it reached, and ends with the summary and
exit code 137; `--memory-limit` stops it there before the kernel does.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import os
import sys

from cli import flags
from cli.flags import Flag
from pipeline import configs
from runner import console


def _flags(defaults: configs.PipelineConfig):
    return (
        Flag("--data-dir", "directory with the ASOS train, eval and catalog files (downloaded there when "
             "missing), or the catalog and one folder per span (span-1/, span-2/ ...); default %(default)s",
             default=defaults.data_dir),
        Flag("--skip-checksums", "data of your own in the ASOS shape: do not check the published sha256",
             kind=flags.SWITCH),
        Flag("--output-dir", "pipeline root, ML Metadata, pushed models, logs and reports go here; "
             "default %(default)s", default=defaults.output_dir),
        # Beam's FnApiRunner fails inside ExampleGen with an IndexError below 0
        Flag("--beam-workers", "Beam workers (0: one per core); default %(default)s", default=defaults.beam_workers,
             parse=flags.integer(0, what="a number of workers (0: one per core)")),
        Flag("--beam-running-mode", "how Beam runs the work; default %(default)s",
             default=defaults.beam_direct_running_mode,
             choices=("in_memory", "multi_threading", "multi_processing")),
        Flag("--no-cache", "re-run every component", kind=flags.SWITCH),
        *configs.PIPELINE_FLAGS,
        Flag("--verbose", "show the full log (TFX, Beam, TensorFlow) live, not only the run's summary lines",
             kind=flags.SWITCH),
        Flag("--wait", "when another run is using the output directory, wait for it instead of refusing",
             kind=flags.SWITCH),
        Flag("--memory-limit", "stop the run when its processes' resident memory passes SIZE (e.g. 20G; "
             "powers of 1024), naming the component, before the kernel's out-of-memory killer would "
             "(default: no limit of its own)", metavar="SIZE", parse=flags.byte_size),
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="exit codes:\n" + console.EXIT_CODES_TEXT)
    flags.add(p, _flags(configs.PipelineConfig()))
    return p


def _config(args: argparse.Namespace) -> configs.PipelineConfig:
    return configs.PipelineConfig(
        data_dir=args.data_dir, output_dir=args.output_dir, enable_cache=not args.no_cache,
        beam_workers=args.beam_workers, beam_direct_running_mode=args.beam_running_mode,
        verify_checksums=not args.skip_checksums,
        training=configs.TrainingConfig.from_flags(args), gate=configs.GateConfig.from_flags(args),
        span_window=args.span_window, drift=configs.DriftConfig.from_flags(args))


def parse_config(argv=None) -> configs.PipelineConfig:
    return _config(_parser().parse_args(argv))


def build(config: configs.PipelineConfig):
    """The pipeline, its baseline decided now (runner/baseline.py): the cache then holds it."""
    from pipeline import pipeline as pipeline_def
    from runner import baseline

    pinned = baseline.pinned_version(config.serving_model_dir, pipeline_def.create_pipeline(config))
    return pipeline_def.create_pipeline(config, pinned_baseline=pinned)


def main(argv=None, stream=None) -> int:
    """Runs the pipeline behind the console (runner/console.py); returns the exit code.
    `stream`: where the console's lines go (default: standard output)."""
    args = _parser().parse_args(argv)
    return console.run_pipeline(_config(args), build, verbose=args.verbose, wait=args.wait, stream=stream)


def command(argv=None) -> int:
    """`make run`: the pipeline in a child process (a worker running `main`) that this process
    watches (runner/supervisor.py); returns the run's exit code. Flags are checked here first."""
    from runner import supervisor

    if argv is None:
        argv = sys.argv[1:]
    args = _parser().parse_args(argv)
    if supervisor.is_worker():
        supervisor.follow_supervisor()
        return main(argv)
    worker = [sys.executable, os.path.abspath(__file__), *argv]
    return supervisor.supervise(worker, _config(args), memory_limit=args.memory_limit)


if __name__ == "__main__":
    sys.exit(command())
