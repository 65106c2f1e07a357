"""The pushed versions: their history, and a rollback (runner/versions.py).

    make history                                   # outputs/serving_model/recommender
    make rollback VERSION=1796012949 REASON="the new model hurt sales"
    env/run-in-env python versions.py history --serving-dir gs://BUCKET/serving_model/recommender
    env/run-in-env python versions.py rollback 1796012949 --reason "..." --output-dir DIR

A rollback publishes the chosen version again as a new, newest version (a copy, with its model
card saying what it is a rollback of and why): running servers load it at their next poll, and
the next pipeline run takes it as the served model.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import contextlib
import os
import sys

from cli import flags, quiet
from cli.flags import Flag
from pipeline import configs
from runner import console

EXIT_CODES = [(0, "done (or the version asked for is already served)"), (1, "another failure"),
              (2, "bad flags, or a version that is unknown or not complete"),
              (console.EXIT_NO_SPACE, "no space left for the copy (nothing was published)"),
              (console.EXIT_BUSY, "a pipeline run is using the output directory")]
COMMON = (
    Flag("--output-dir", "the pipeline's output directory; its serving_model/recommender holds the versions "
         "(default %(default)s)", default=configs.DEFAULT_OUTPUT_DIR),
    Flag("--serving-dir", "the versions' base directory itself (a gs:// path works), instead of --output-dir's",
         aliases=("--model_base_path",)),
)
REPLAY_MARKER = "replay.json"  # what benchmarks/replay.py leaves in its output directory (its MARKER)
ROLLBACK = (
    Flag("version", "the version to serve again", parse=flags.integer(0, what="a version number")),
    Flag("--reason", "why (goes into the new version's model card and the history)", required=True),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python versions.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="exit codes:\n" + "".join(f"  {c:>3}  {t}\n" for c, t in EXIT_CODES))
    commands = p.add_subparsers(dest="command", required=True)
    flags.add(commands.add_parser("history", help="the pushed versions, newest first"), COMMON)
    flags.add(commands.add_parser("rollback", help="serve an earlier version again, as a new version"),
              COMMON + ROLLBACK)
    return p


def _base(args) -> str:
    return args.serving_dir or os.path.join(args.output_dir, "serving_model", configs.MODEL_NAME)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    base = _base(args)
    with quiet.native_stderr_silenced():  # TensorFlow's C++ start-up lines
        from runner import run_lock, versions

    missing = not args.serving_dir and not os.path.isdir(args.output_dir)
    if missing and not (args.command == "history" and args.output_dir == configs.DEFAULT_OUTPUT_DIR):
        # a mistyped path is no empty history (the default before any run is: "run make run")
        what = "not a directory:" if os.path.exists(args.output_dir) else "no output directory"
        print(f"error: {what} {os.path.abspath(args.output_dir)} (--output-dir: where `make run` "
              "wrote; --serving-dir for a base directory of versions)", file=sys.stderr)
        return 2
    replay_dir = not args.serving_dir and os.path.isfile(os.path.join(args.output_dir, REPLAY_MARKER))
    if replay_dir and not os.path.isdir(base):
        # found by exploratory testing: `make history` on a replay's directory said "no versions
        # yet (run 'make run' to push one)" beside the versions its spans pushed
        chains = [c for c in ("warm", "cold") if os.path.isdir(os.path.join(args.output_dir, c))]
        print(f"error: {os.path.abspath(args.output_dir)} is a replay's output directory: its runs push under "
              + " and ".join(f"{c}/ (--output-dir {os.path.join(args.output_dir, c)})" for c in chains or ["warm"]),
              file=sys.stderr)
        return 2
    if args.command == "history":
        print(versions.history_text(base, configs.MODEL_NAME))
        return 0
    try:
        versions.check_reason(args.reason)  # a usage error is said before a busy output directory
        # a pipeline run on the same output directory could push meanwhile: one at a time
        busy = "roll back once it has finished (it may push a version meanwhile: see `make history`)"
        with run_lock.hold(args.output_dir, hint=busy) if not args.serving_dir else contextlib.nullcontext():
            acceptances = None if args.serving_dir else configs.PipelineConfig(
                output_dir=args.output_dir).drift_acceptances_dir
            note = versions.accepted_drift_note(base, acceptances)  # of the version it takes out
            version = versions.rollback(base, args.version, args.reason, configs.MODEL_NAME)
    except versions.AlreadyServed as e:
        print(e)
        return 0
    except versions.VersionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except run_lock.OutputDirBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return console.EXIT_BUSY
    except Exception as e:  # noqa: BLE001  said in one line; a full disk has its own code
        if console.is_out_of_space(e):
            print(f"error: no space left for the copy of version {args.version} under {base} "
                  f"(exit code {console.EXIT_NO_SPACE}): {console.plain_cause(e).splitlines()[0]}; nothing was "
                  "published", file=sys.stderr)
            return console.EXIT_NO_SPACE
        raise
    print(f"version {args.version} is served again as version {version.number} ({version.path}): running "
          "servers load it at their next poll; `make history` lists it")
    if note:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
