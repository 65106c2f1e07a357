"""What a local run prints, what it logs, and how it ends.

The console shows, by default:
  - one line per component: `running` when it starts work, then `ran` or `cached` with its
    seconds (read from TFX's LocalDagRunner and launcher log records);
  - the lines the project's own code logs for a person to read: every record of the `recsys`
    logger hierarchy (`logging.getLogger("recsys.<what>")`: the Trainer's epochs, the gate's
    table, the Pusher's push, the catalog check);
  - a closing summary (`summary`), or the cause of a failure in plain words, last.
Each component's peak memory (runner/memory.py) goes with its seconds into
`<output_dir>/logs/run-<time>.components.json`, beside the run's log; the run report shows it.
Under `make run` a supervisor process watches the run (runner/supervisor.py): a run killed for
memory still ends with the component, the memory it reached and the summary.
Everything else (TFX, absl, Beam and TensorFlow logs, TensorFlow's C++ start-up lines, library
warnings, anything printed) goes to a log file per run: file descriptors 1 and 2 are redirected
to it, so even output from C++ lands there. `verbose` shows that log live as well.

Exit codes (documented in docs/pipeline.md; scripts and cron jobs act on them):
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import IO, Callable, Dict, List, Optional, Sequence, Union

from runner import memory

PROGRESS_LOGGER = "recsys"  # the channel of lines meant for the console
REPORT_NODE = "RunReport"  # the last component: its failure does not change what was pushed

EXIT_OK = 0  # a model was pushed, or the model is already the one served
EXIT_FAILED = 1  # anything else went wrong (the cause is printed last, with the log's path)
EXIT_USAGE = 2  # bad flags or model parameters: nothing was run
EXIT_REFUSED = 3  # the gate refused the model, or a rollback withdrew it; the served model stays
EXIT_DATA_REJECTED = 4  # the input data was rejected (missing, unreadable, too small, or invalid)
EXIT_NO_SPACE = 74  # a disk filled up (EX_IOERR); a push cut short leaves no version: free space, run again
EXIT_BUSY = 75  # another run holds the output directory (EX_TEMPFAIL: try again later)
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as a shell reports it: 128 + 2
# Killed for memory: SIGKILLed by the kernel's out-of-memory killer, or stopped at --memory-limit
# (runner/supervisor.py). 128 + 9, as a shell reports a SIGKILLed command: what such a run
# returned before it was watched, now with the component and the summary.
EXIT_OUT_OF_MEMORY = 137

EXIT_CODES_TEXT = "".join(f"  {code:>3}  {name}\n" for code, name in [
    (EXIT_OK, "a model was pushed, or the model is already the one served"),
    (EXIT_FAILED, "another failure"),
    (EXIT_USAGE, "bad flags or model parameters; nothing ran"),
    (EXIT_REFUSED, "the gate refused the model (or it is a version a rollback withdrew); the "
                   "previously pushed model stays served"),
    (EXIT_DATA_REJECTED, "the input data was rejected"),
    (EXIT_NO_SPACE, "no space left on a disk the run writes to; nothing half-pushed: free space and run again"),
    (EXIT_BUSY, "another run is using the output directory"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
    (EXIT_OUT_OF_MEMORY, "killed for memory (the kernel's out-of-memory killer, or --memory-limit)"),
])
__doc__ += EXIT_CODES_TEXT

# The exception classes that mean "the data was rejected", by name (module.Class), whoever
# raised them: the pre-run file checks (runner/data.py), the validator, the catalog check.
DATA_REJECTED_ERRORS = {
    "runner.data.DataError",
    "components.validator.DataValidationError",
    "components.drift.DriftError",
    "components.catalog_check.CatalogMismatchError",
    "components.catalog_check.CatalogFormatError",
    # a data directory that cannot be read as spans: the local run's data checks say it as a
    # DataError; a compiled pipeline's ExampleGen raises it (found by exploratory testing: exit 1
    # there, 4 here)
    "components.spans.SpanLayoutError",
}

# TFX 1.21's own log records that tell a component's life (tfx/orchestration/local/
# local_dag_runner.py and tfx/orchestration/portable/launcher.py).
_TFX_RUNNING = "Component %s is running."
_TFX_FINISHED = "Component %s is finished."
_TFX_CACHED = "A cached execution %d is used."
_TFX_NEW = "Going to run a new execution %d"
_TFX_FAILED = "Execution %d failed."


@dataclasses.dataclass
class ComponentRun:
    name: str
    started: float
    state: str = "done"  # "ran", "cached", "failed", or "done" (importer, resolver)
    seconds: float = 0.0
    peak_bytes: int = 0  # resident memory of the run's process (and children) while it ran


class ConsoleHandler(logging.Handler):
    """Turns log records into the console's lines (see the module docstring)."""

    def __init__(self, console: "Console"):
        super().__init__(level=logging.INFO)
        self.console = console
        self.current: Optional[ComponentRun] = None
        self.components: List[ComponentRun] = []
        self.meter = memory.PeakMeter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name == PROGRESS_LOGGER or record.name.startswith(PROGRESS_LOGGER + "."):
                if not self.console.verbose:  # verbose: the live log shows it already (whole)
                    for line in fit_text(record.getMessage()):  # the log has it whole (_LogFileHandler)
                        self.console.say(line, log=False)
            elif record.msg == _TFX_RUNNING and record.args:
                self.current = ComponentRun(str(record.args[0]), time.monotonic())
                self.meter.start()
                self.console.component_started(self.current)
            elif self.current is not None and record.msg == _TFX_CACHED:
                self.current.state = "cached"
            elif self.current is not None and record.msg == _TFX_NEW:
                self.current.state = "ran"
                self.console.say(f"  {self.current.name:<30} running")
            elif self.current is not None and record.msg == _TFX_FAILED:
                self._end("failed")
            elif self.current is not None and record.msg == _TFX_FINISHED:
                self._end(self.current.state)
        except Exception:  # the console must never break the run
            self.handleError(record)

    def _end(self, state: str) -> None:
        run, self.current = self.current, None
        run.state, run.seconds = state, time.monotonic() - run.started
        run.peak_bytes = self.meter.peak()
        self.components.append(run)
        self.console.component_ended(run, self.components)
        self.console.say(f"  {run.name:<30} {state:<7}{run.seconds:6.1f} s")


class _LogFileHandler(logging.Handler):
    """Every record into the run's log file (verbose: through the pipe that shows it live too)."""

    def __init__(self, console: "Console"):
        super().__init__(level=logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
            if self.console.verbose:
                os.write(2, text.encode("utf-8", errors="replace"))
            else:
                self.console._log.write(text)
        except Exception:
            self.handleError(record)


class Console:
    """The run's console and its log file (see the module docstring).

    Started before TensorFlow is imported, so that its C++ start-up lines reach the log file.
    `stream` is where the console's lines go (default: the terminal's standard output as it
    was before the redirection), `err_stream` where its error lines go (`say(..., err=True)`;
    default: the terminal's standard error)."""

    def __init__(self, log_path: str, verbose: bool = False, stream: Optional[IO[str]] = None,
                 err_stream: Optional[IO[str]] = None):
        self.log_path = log_path
        self.verbose = verbose
        self._stream = stream
        self._err_stream = err_stream
        self._saved_fds: List[int] = []
        self._tee: Optional[threading.Thread] = None
        self._swap = threading.Lock()  # the tee thread vs move_log
        self.handler: Optional[ConsoleHandler] = None
        self._file_handler: Optional[logging.Handler] = None
        self.components_path: Optional[str] = None  # each component's seconds and peak memory
        self._events = None  # a supervised run's pipe to its supervisor (runner/supervisor.py)

    def start(self) -> "Console":
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved_fds = [os.dup(1), os.dup(2)]
        if self._stream is None:
            self._stream = os.fdopen(os.dup(self._saved_fds[0]), "w", buffering=1)
        if self._err_stream is None:
            self._err_stream = os.fdopen(os.dup(self._saved_fds[1]), "w", buffering=1)
        self._log = open(self.log_path, "a", buffering=1)
        if self.verbose:  # fds 1 and 2 into a pipe; a thread copies it to the log and the terminal
            read_fd, write_fd = os.pipe()
            self._tee = threading.Thread(target=self._copy, args=(read_fd,), daemon=True)
            self._tee.start()
            target = write_fd
        else:
            target = self._log.fileno()
        os.dup2(target, 1)
        os.dup2(target, 2)
        if self.verbose:
            os.close(write_fd)

        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.INFO)  # TFX's component records are INFO
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        self._file_handler = _LogFileHandler(self)
        self._file_handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname).1s %(name)s: %(message)s"))
        self.handler = ConsoleHandler(self)
        root.addHandler(self._file_handler)
        root.addHandler(self.handler)
        logging.getLogger(PROGRESS_LOGGER).setLevel(logging.INFO)
        logging.captureWarnings(True)
        from runner import supervisor

        self._events = supervisor.Events.from_environ()
        self._event(log=self.log_path)
        return self

    def _event(self, **fields) -> None:
        if self._events is not None:
            self._events.send(**fields)

    def component_started(self, run: ComponentRun) -> None:
        self._event(start=run.name)

    def component_ended(self, run: ComponentRun, finished: List[ComponentRun]) -> None:
        """Tells the supervisor, and rewrites the components file (when there is one)."""
        self._event(end=run.name, state=run.state, seconds=run.seconds, peak_bytes=run.peak_bytes)
        if self.components_path:
            memory.write_components(self.components_path, [dataclasses.asdict(c) for c in finished])

    def move_log(self, new_path: str) -> None:
        """Moves the log file (its content so far, and what follows) to `new_path`: the run
        starts logging before it knows it may write into the output directory."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.makedirs(os.path.dirname(new_path), exist_ok=True)
        self._log.flush()
        with open(self.log_path, "rb") as old, open(new_path, "ab") as new:
            new.write(old.read())
        log = open(new_path, "a", buffering=1)
        if not self.verbose:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        with self._swap:
            previous, self._log = self._log, log
        previous.close()
        os.remove(self.log_path)
        self.log_path = new_path
        self._event(log=new_path)

    def _copy(self, read_fd: int) -> None:
        terminal = os.dup(self._saved_fds[1])
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            for chunk in iter(lambda: pipe.read(65536), b""):
                with self._swap:
                    self._log.write(chunk.decode("utf-8", errors="replace"))
                os.write(terminal, chunk)
        os.close(terminal)

    def say(self, text: str, log: bool = True, err: bool = False) -> None:
        """A line for the console (its error stream if `err`), and for the log unless the log has
        it already."""
        stream = self._err_stream if err else self._stream
        stream.write(text + "\n")
        stream.flush()
        if log and not self.verbose:
            try:
                self._log.write(text + "\n")
            except OSError:  # the log's disk is full: the console line is what counts
                pass

    def say_fitted(self, text: str, err: bool = False) -> None:
        """`text` as lines of at most WIDTH columns (`fit_text`: a longer line goes on under its
        text), each said (`say`): the run's own lines of free text (a cause, a path)."""
        for line in fit_text(text):
            self.say(line, err=err)

    def close(self) -> None:
        """Restores the standard outputs; the log file stays."""
        root = logging.getLogger()
        for handler in (self.handler, self._file_handler):
            if handler is not None:
                root.removeHandler(handler)
        logging.captureWarnings(False)
        _flush_or_drop()
        if self._saved_fds:
            os.dup2(self._saved_fds[0], 1)
            os.dup2(self._saved_fds[1], 2)  # closes the pipe's last writer: the tee thread ends
            for fd in self._saved_fds:
                os.close(fd)
            self._saved_fds = []
        if self._tee is not None:
            self._tee.join(timeout=5)
        try:
            self._log.close()
        except OSError:  # what the full disk did not take is lost; the console said what counts
            pass


def _flush_or_drop() -> None:
    """Flushes sys.stdout and sys.stderr into the log; when its disk is full, drops what they
    hold (into /dev/null), so that it does not reach the terminal later, and so that Python's
    exit does not fail on it (exit status 120 instead of the run's code)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            fd = stream.fileno()
            saved, null = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            try:
                stream.flush()
            except OSError:
                pass
            finally:
                os.dup2(saved, fd)
                os.close(saved)
                os.close(null)


def log_path_for(output_dir: str, now: Optional[datetime.datetime] = None, what: str = "run") -> str:
    """`<output_dir>/logs/<what>-<UTC time>.log`: a run's log (a compile's: what="compile")."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return os.path.join(output_dir, "logs", f"{what}-{now:%Y%m%d-%H%M%S}.log")


def terminal(stream: IO[str]) -> Optional[IO[str]]:
    """`stream` (sys.stdout or sys.stderr) for a Console, when it is not the process's own: a
    caller's capture (pytest's capsys) is written to as it is; the process's own is None, so that
    the Console writes to the terminal as it was before the redirection, not into the log."""
    return None if stream in (sys.__stdout__, sys.__stderr__) else stream


def _chain(error: Optional[BaseException]):
    """`error` and the exceptions it was raised from (`__cause__`, else `__context__`), each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def is_data_rejection(error: BaseException) -> bool:
    """Whether `error` (or an exception it was raised from) means the data was rejected."""
    return any(f"{cls.__module__}.{cls.__qualname__}" in DATA_REJECTED_ERRORS
               for e in _chain(error) for cls in type(e).__mro__)


NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


def is_interrupt(error: BaseException) -> bool:
    """Whether `error` (or an exception it was raised from) is Ctrl-C: a KeyboardInterrupt, or
    one that Beam's runner wrapped (a RuntimeError whose message starts "KeyboardInterrupt")."""
    return any(isinstance(e, KeyboardInterrupt) or str(e).startswith("KeyboardInterrupt") for e in _chain(error))


def is_out_of_space(error: BaseException) -> bool:
    """Whether `error` (or an exception it was raised from) is a full disk or quota: errno
    ENOSPC/EDQUOT, or TensorFlow's RESOURCE_EXHAUSTED with the OS's words (tf.io.gfile), or those
    words in a message that wraps it (Beam's)."""
    import errno

    return any((isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT))
               or any(text in str(e) for text in NO_SPACE_TEXTS) for e in _chain(error))


def no_space_line(error: BaseException, where: str = "") -> str:
    """The one line a run that ran out of disk space ends with."""
    return (f"error: no space left on device{where} (exit code {EXIT_NO_SPACE}): "
            f"{plain_cause(error).splitlines()[0]}. Free some space and run again: what finished "
            "comes from the cache")


def plain_cause(error: BaseException) -> str:
    """The failure's own message, without a traceback (the log has that)."""
    message = str(error).strip() or type(error).__name__
    return message if len(message) < 4000 else message[:4000] + " ..."


@dataclasses.dataclass
class Outcome:
    """What a finished run did, read back from ML Metadata (executions of this run only)."""

    rows: dict  # split -> examples read
    blessed: Optional[bool]  # None: the Evaluator did not run
    pushed: bool
    already_served: bool
    pushed_version: str
    pushed_path: str
    report_uri: Optional[str]
    evaluation_uri: Optional[str] = None
    drift: Optional[dict] = None  # the drift gate's figures (components/drift.py), None if it did not run
    # the version that serves the pushed model now, when it is another (a rollback's copy of it)
    served_as: Optional[str] = None
    served_as_path: Optional[str] = None
    # a blessed model the Pusher did not push: why (the same model as a withdrawn version)
    not_pushed_reason: Optional[str] = None
    nothing_served: bool = False  # no model is served after this run (none pushed, none before)
    # the version the (cached) Pusher names was deleted since: this run's model is not served
    pushed_gone: bool = False
    serving_model_dir: Optional[str] = None  # the Pusher's base directory: what make serve must be given
    # the Trainer's start (its training.json's "start"), for a console that did not show its
    # [train] lines (the compiled pipeline's harness); None: said above, or no Trainer ran
    start: Optional[dict] = None

    @property
    def serve_command(self) -> str:
        """`make serve`, with the base directory when it is not the one make serve serves by
        default (found by exploratory testing: after a run with --output-dir, the summary said
        `make serve`, which serves outputs/'s model, another or none)."""
        from pipeline import configs

        default = configs.PipelineConfig().serving_model_dir
        if not self.serving_model_dir or os.path.abspath(self.serving_model_dir) == os.path.abspath(default):
            return "make serve"
        return f'make serve ARGS="--model_base_path {self.serving_model_dir}"'

    @property
    def exit_code(self) -> int:
        if self.pushed_gone:
            return EXIT_FAILED
        if self.pushed:
            return EXIT_OK
        return EXIT_REFUSED if self.blessed is False or self.not_pushed_reason else EXIT_FAILED


def read_outcome(config, since_ms: int, served_before: set) -> Outcome:
    """The outcome of the run started at `since_ms` (ML Metadata times, ms since the epoch)."""
    from ml_metadata.proto import metadata_store_pb2

    from runner import metadata

    mlmd = metadata.store(config)
    executions = metadata.node_executions(config)

    def outputs(node: str, key: str):
        runs = [e for e in executions.get(node, []) if e.create_time_since_epoch >= since_ms]
        if not runs:
            return []
        events = mlmd.get_events_by_execution_ids([runs[-1].id])
        ids = [ev.artifact_id for ev in events if ev.type == metadata_store_pb2.Event.OUTPUT
               and any(s.HasField("key") and s.key == key for s in ev.path.steps)]
        return mlmd.get_artifacts_by_id(ids)

    def uri(node: str, key: str) -> Optional[str]:
        found = outputs(node, key)
        return found[0].uri if found else None

    def properties(node: str, key: str) -> Optional[dict]:
        found = outputs(node, key)
        if not found:
            return None
        return {name: value.string_value if value.HasField("string_value") else value.int_value
                for name, value in found[0].custom_properties.items()}

    return outcome_of(rows=split_rows(uri("StatisticsGen", "statistics")),
                      blessing=properties("Evaluator", "blessing"), pushed_model=properties("Pusher", "pushed_model"),
                      report_uri=uri(REPORT_NODE, "report"), evaluation_uri=uri("Evaluator", "evaluation"),
                      drift_uri=uri("DriftGate", "drift_report"), serving_model_dir=config.serving_model_dir,
                      served_before=served_before)


def split_rows(statistics_uri: Optional[str]) -> dict:
    """{split: examples} of a StatisticsGen output (its `Split-<name>/FeatureStats.pb`), in the
    pipeline's order of splits; {} without one."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from pipeline import configs

    rows = {}
    if statistics_uri and os.path.isdir(statistics_uri):
        for split in sorted(os.listdir(statistics_uri)):
            path = os.path.join(statistics_uri, split, "FeatureStats.pb")
            if split.startswith("Split-") and os.path.exists(path):
                stats = statistics_pb2.DatasetFeatureStatisticsList()
                with open(path, "rb") as f:
                    stats.ParseFromString(f.read())
                rows[split[len("Split-"):]] = sum(d.num_examples for d in stats.datasets)
    order = list(configs.SPLIT_PATTERNS)
    return dict(sorted(rows.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def outcome_of(*, rows: dict, blessing: Optional[dict], pushed_model: Optional[dict], report_uri: Optional[str],
               evaluation_uri: Optional[str], drift_uri: Optional[str], serving_model_dir: str,
               served_before: Optional[set] = None, start: Optional[dict] = None) -> Outcome:
    """The Outcome of a run from what its components wrote, however they were orchestrated (a
    local run's ML Metadata: read_outcome; a compiled pipeline's task outputs:
    kubeflow_v2/harness.py): the Evaluator's blessing's and the Pusher's pushed model's properties
    ({name: value}, None when the component did not run), the URIs of the run report, the
    evaluation and the drift report. `served_before`: the versions served before the run (a
    cached Pusher's version among them is already served); without it, the Pusher's own
    `already_served`."""
    from components import drift, model_versions, pusher

    blessed = bool(blessing.get("blessed")) if blessing else None
    props = pushed_model or {}
    pushed = bool(props.get("pushed"))
    path = str(props.get("pushed_destination") or "")
    version = str(props.get("pushed_version") or "")
    # found by exploratory testing: after the pushed version's folder was deleted, a rerun (its
    # Pusher from the cache) said "pushed as version N" of a version that was not there
    gone = pushed and bool(path) and not os.path.isdir(path)
    already_served = pushed and (version in served_before if served_before is not None
                                 else bool(props.get(pusher.ALREADY_SERVED_KEY)))
    served_as = served_copy(serving_model_dir, version) if already_served else None
    return Outcome(rows=rows, blessed=blessed, pushed=pushed,
                   already_served=already_served,
                   pushed_version=version, pushed_path=path,
                   report_uri=report_uri, evaluation_uri=evaluation_uri,
                   drift=drift.read_report(drift_uri) if drift_uri else None,
                   served_as=served_as[0] if served_as else None,
                   served_as_path=served_as[1] if served_as else None,
                   not_pushed_reason=props.get(pusher.NOT_PUSHED_KEY) or None,
                   nothing_served=(not pushed or gone) and model_versions.served(serving_model_dir) is None,
                   pushed_gone=gone, serving_model_dir=serving_model_dir, start=start)


def served_copy(serving_model_dir: str, version: str):
    """(number, path) of the served version when it is a rollback's copy of `version` (a cached
    run's Pusher names the version it pushed back then), else None."""
    from components import model_card, model_versions

    served = model_versions.served(serving_model_dir)
    if served is None or str(served.number) == version:
        return None
    if str(model_card.rollback_of(model_card.read(served.path))) != version:
        return None
    return str(served.number), served.path


WIDTH = 100  # the console's columns: every line it prints fits (but a path longer than that)
LABEL_WIDTH = 15  # a summary row's label, after its 2-column indent: "  verdict        ..."
ROW_INDENT = " " * (2 + LABEL_WIDTH)  # a summary row's continuation lines, under its text


def fit(parts: List[str], first: str = "", indent: str = "    ", width: int = WIDTH, sep: str = "; ",
        whole: Sequence[str] = ()) -> List[str]:
    """`parts` joined by `sep` into lines of at most `width` columns, the first starting with
    `first`, the others with `indent`: a line breaks between two parts, and inside a part only
    when the part alone is too long (between words, under a deeper indent; a path stays whole, and
    so does a part in `whole`: a command to copy). Found by exploratory testing: a replay span's
    line ran to about 600 characters when its drift was over a threshold (benchmarks/replay.py),
    the summary's drift row to about 250."""
    import textwrap

    lines: List[str] = []
    line: Optional[str] = None  # the line being filled, while more parts may join it
    for part in parts:
        if line is not None and len(f"{line}{sep}{part}") <= width:
            line = f"{line}{sep}{part}"
            continue
        if line is not None:
            lines.append(line)
        prefix = indent if lines else first
        # the prefix as an indent, not as words: a path too long for any line stays on the first
        wrapped = [prefix + part] if part in whole else textwrap.wrap(
            part, width, initial_indent=prefix, subsequent_indent=indent + "  ", break_long_words=False,
            break_on_hyphens=False) or [prefix.rstrip()]
        if len(wrapped) > 1:  # the next part starts a line of its own, not the tail of this one
            lines += wrapped
            line = None
        else:
            line = wrapped[0]
    lines += [] if line is None else [line]
    return lines or [first.rstrip()]


def fit_text(text: str, width: int = WIDTH) -> List[str]:
    """Each line of `text` (a component's message for the console) fitted to `width` (`fit`): a
    line that fits stays as it is (a table's row), a longer one goes on under its text, after
    its `[prefix] ` or its own indent (a path longer than a line stays whole). Found by
    exploratory testing: outside the summary, lines ran to 384 columns (the report's eval
    purchases), 138 (the Pusher's), 174 (the catalog's)."""
    lines: List[str] = []
    for line in text.splitlines() or [""]:
        lead = re.match(r"\[[^\]]*\] (\([a-z]+\) )?|\s*", line).group(0)
        if len(line) <= width or not line[len(lead):].strip():
            lines.append(line)
            continue
        # fit's continuation of a part too long for one line is two columns deeper than `indent`:
        # under the text after a "[prefix] ", two columns under an indented line's start
        indent = " " * (len(lead) - 2) if lead.startswith("[") else lead
        lines += fit([line[len(lead):]], lead, indent, width=width)
    return lines


def too_wide(lines: Sequence[str], width: int = WIDTH) -> List[str]:
    """The lines wider than `width` but for a path: a line is excused when a long path (a word
    with a "/", 40 columns or more) is what makes it long, the rest of the line short (60 columns
    at most: a label, an indent, a command's start), as `fit` keeps a path whole. What the tests
    hold a console to: `[push] pushed version N to <path> (model card: ...)` is not excused."""
    return [line for line in lines if len(line) > width
            and not any("/" in word and len(word) >= 40 and len(line) - len(word) <= 60 for word in line.split())]


def drift_lines(figures: Dict, first: str, indent: str) -> List[str]:
    """The drift gate's verdict on compared spans (components/drift.py's figures), short: what was
    compared and the verdict after `first`, then, each on a line of its own under `indent` and two
    columns more, every measure over its threshold, a stopped span of the window and a late span
    the verdict does not name. The figures within their thresholds are left to the DriftGate's
    table above and the run report (found by exploratory testing: the summary's drift row named
    every figure, about 250 columns; the replay's span lines name only those over, as here)."""
    from components import drift

    verdict = drift.verdict_text(figures)
    lines = fit([f"{figures['newest']['name']} vs {figures['previous']['name']} {verdict}"], first, indent)
    detail = indent + "  "
    for text in drift.over_texts(figures):
        lines += fit([f"over: {text}"], detail, indent)
    for span in figures.get("stopped_spans") or []:  # what the verdict leaves unsaid when it is "over"
        if f"{span['name']} stopped before" not in verdict:
            lines += fit([f"{span['name']} stopped before, in the window: {span.get('why', '-')}"], detail, indent)
    for span in figures.get("late_spans") or []:
        if f"{span['name']} arrived late" not in verdict:
            lines += fit([f"{span['name']} arrived late"], detail, indent)
    return lines


def _row(label: str, *parts: str, whole: bool = False) -> List[str]:
    """A summary row: its label, then `parts` fitted to WIDTH, continued under the row's text
    (`whole`: each part on one line, however long: "each task's: <path>")."""
    return fit(list(parts), f"  {label:<{LABEL_WIDTH}}", ROW_INDENT, whole=parts if whole else ())


def summary_rows(lines: List[str]) -> Dict[str, str]:
    """{label: text} of a console's summary rows (the lines after "summary"), a row continued
    on more lines (fit) with its lines joined by newlines: what a program reads of a run's end
    (benchmarks/replay.py, the tests)."""
    rows: Dict[str, str] = {}
    label = None
    for line in lines[lines.index("summary") + 1:] if "summary" in lines else []:
        if not line.startswith("  ") or not line.strip():
            continue
        if line.startswith(ROW_INDENT) and label is not None:
            rows[label] += "\n" + line.strip()
        else:
            label = line[2:2 + LABEL_WIDTH].strip()
            rows[label] = line[2 + LABEL_WIDTH:].strip()
    return rows


MODEL_CARD = os.path.join("assets.extra", "model_card.md")  # in a pushed version (components/model_card.py)


def summary_lines(outcome: Outcome, report_path: Optional[str], log_path: Union[str, Sequence[str]],
                  exit_code: Optional[int] = None, peak: Optional[ComponentRun] = None,
                  next_step: Optional[str] = None) -> List[str]:
    """The summary: a row per fact, a label and its text, none wider than WIDTH but for a path
    longer than that (a row too long goes on under its text: `fit`); `exit_code` when it is not
    the outcome's (a killed run), `peak` the component whose memory peaked highest, `log_path` the
    log (or its parts: "<log>", "each task's: <dir>"), `next_step` what to do next when it is not
    the outcome's (a killed run's advice)."""
    rows = ", ".join(f"{split} {n:,}" for split, n in outcome.rows.items()) or "-"
    # the verdict in parts: a row too long breaks between them (fit), not at any word
    if outcome.pushed_gone:
        verdict = [f"blessed, but version {outcome.pushed_version}, which an earlier run pushed for this model "
                   f"(this run's Pusher came from the cache), is no longer there ({outcome.pushed_path})",
                   "this model is not served", "--no-cache pushes it again"]
    elif outcome.pushed and outcome.already_served and outcome.served_as:
        verdict = ["blessed", f"already served as version {outcome.served_as} (a rollback to version "
                   f"{outcome.pushed_version}): nothing new pushed"]
    elif outcome.pushed and outcome.already_served:
        verdict = ["blessed", f"already served as version {outcome.pushed_version}: nothing new pushed"]
    elif outcome.pushed:
        verdict = [f"blessed and pushed as version {outcome.pushed_version}"]
    elif outcome.blessed is False:
        verdict = ["NOT blessed: the gate refused the model (table above)"] + (
            [] if outcome.nothing_served else ["the served model is unchanged"])
    elif outcome.not_pushed_reason:
        verdict = [f"blessed, NOT pushed: {outcome.not_pushed_reason}"]
    else:
        verdict = ["no model pushed"]
    lines = ["", "summary"] + _row("rows read", rows)
    if outcome.start:
        lines += _row("start", start_text(outcome.start))
    if outcome.drift and outcome.drift.get("compared"):  # one span (the flat layout): nothing to say
        lines += drift_lines(outcome.drift, f"  {'drift':<{LABEL_WIDTH}}", ROW_INDENT)
    lines += _row("verdict", *verdict)
    if outcome.pushed and not outcome.pushed_gone:
        served_path = outcome.served_as_path or outcome.pushed_path
        lines += _row("served model", served_path)
        if os.path.exists(os.path.join(served_path, MODEL_CARD)):  # `make history` lists every version
            # in the served model's folder, named on the row above (found by exploratory testing:
            # its whole path made the row 117 columns under the default outputs/)
            lines += _row("model card", f"{MODEL_CARD} in the served model's folder")
    if peak is not None and peak.peak_bytes:
        lines += _row("peak memory", f"{memory.gib(peak.peak_bytes)} ({peak.name}; every component's in the report)")
    lines += _row("report", report_path or "-")
    lines += _row("full log", *([log_path] if isinstance(log_path, str) else log_path), whole=True)
    lines += _row("exit code", str(outcome.exit_code if exit_code is None else exit_code))
    command = outcome.serve_command
    if next_step:
        lines += _row("next", next_step)
    elif outcome.pushed and not outcome.pushed_gone:  # the command whole, on a line of its own if need be
        lines += fit([command, "(serves the pushed model)"], f"  {'next':<{LABEL_WIDTH}}", ROW_INDENT, sep="   ",
                     whole=[command])
    elif outcome.nothing_served:
        lines += _row("next", "open the report; no model is served yet (none was ever pushed here)")
    else:
        lines += fit(["open the report; the previous model is still the one", f"`{command}`", "serves"],
                     f"  {'next':<{LABEL_WIDTH}}", ROW_INDENT, sep=" ", whole=[f"`{command}`"])
    return lines


def start_text(start: dict) -> str:
    """The Trainer's start (training.json's "start": models/trainer.py start_from) as its
    [train] line says it: "warm from version 17: 29,696 products carried over, 12 new, 0
    dropped", "cold: no model is served yet"."""
    if start.get("kind") != "warm":
        return f"cold: {start.get('reason') or '-'}"
    version = f"version {start['from_version']}" if start.get("from_version") else "the served model"
    return (f"warm from {version}: {start.get('carried_products', 0):,} products carried over, "
            f"{start.get('new_products', 0):,} new, {start.get('dropped_products', 0):,} dropped")


def _served_versions(serving_model_dir: str) -> set:
    return set(os.listdir(serving_model_dir)) if os.path.isdir(serving_model_dir) else set()


def _publish_report(report_uri: Optional[str], output_dir: str, stamp: str) -> Optional[str]:
    """Copies the run's report to `<output_dir>/reports/run-<stamp>.html` and
    `<output_dir>/report.html` (the latest); returns the former."""
    import shutil

    if not report_uri:
        return None
    from components import run_report

    source = os.path.join(report_uri, run_report.HTML_FILE)
    if not os.path.exists(source):
        return None
    kept = os.path.join(output_dir, "reports", f"run-{stamp}.html")
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    shutil.copyfile(source, kept)
    shutil.copyfile(source, os.path.join(output_dir, "report.html"))
    return kept


INTERRUPT_REPEAT_SECONDS = 5.0  # a dropped Ctrl-C is delivered again after this long


class InterruptWatch:
    """A Ctrl-C that stops the run even when Python drops it.

    CPython drops a KeyboardInterrupt raised inside a weakref callback, a `__del__` or a
    garbage-collection callback ("Exception ignored in ..."), and the run goes on as if nothing
    had happened (found by exploratory testing: a Ctrl-C during the Trainer was dropped, and the
    run went on to the Evaluator and the gate). After the first Ctrl-C this delivers it again to
    the main thread every `repeat_seconds` until the run's Ctrl-C path takes it (`taken`), so a
    dropped one costs a few seconds, not the stop. A Ctrl-C that is not dropped reaches that path
    long before the first repeat. Outside the main thread (where no signal handler can be set)
    it does nothing."""

    def __init__(self, repeat_seconds: Optional[float] = None):
        self.repeat_seconds = INTERRUPT_REPEAT_SECONDS if repeat_seconds is None else repeat_seconds
        self._requested = threading.Event()
        self._taken = threading.Event()
        self._previous = None

    def start(self) -> "InterruptWatch":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def stop(self) -> None:
        self.taken()
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def taken(self) -> None:
        """The run's Ctrl-C path has it: no more repeats, and a late one is ignored."""
        self._taken.set()

    def _on_interrupt(self, signum, frame) -> None:
        if self._taken.is_set():
            return
        if not self._requested.is_set():
            self._requested.set()
            threading.Thread(target=self._repeat, args=(threading.main_thread().ident,),
                             name="interrupt-repeat", daemon=True).start()
        raise KeyboardInterrupt

    def _repeat(self, main_thread: int) -> None:
        while not self._taken.wait(self.repeat_seconds):
            logging.warning("the Ctrl-C has not stopped the run yet (Python may have dropped it): delivering it again")
            try:
                signal.pthread_kill(main_thread, signal.SIGINT)
            except (ProcessLookupError, OSError):
                return


def interrupted_text(during: Sequence[str], pusher_ran: bool) -> str:
    """An interrupted run in a line: where it stopped (the components, or a compiled pipeline's
    tasks, under way) and whether the Pusher had run: "error: interrupted during Trainer (exit
    code 130); nothing was pushed; the served model is unchanged"."""
    pushed = ("the Pusher had run before, so its verdict stands" if pusher_ran else
              "nothing was pushed; the served model is unchanged")
    where = f" during {', '.join(during)}" if during else ""
    return f"error: interrupted{where} (exit code {EXIT_INTERRUPTED}); {pushed}"


def interrupted_lines(handler: Optional[ConsoleHandler], log_path: str) -> List[str]:
    """What an interrupted run says: where it stopped and whether the Pusher had run."""
    current = handler.current.name if handler is not None and handler.current else None
    finished = {c.name for c in handler.components} if handler is not None else set()
    return [f"\n{interrupted_text([current] if current else [], 'Pusher' in finished)}; components "
            "that finished keep their outputs (the next run takes them from the cache)",
            f"full log: {log_path}"]


def run_pipeline(config, build: Callable, verbose: bool = False, wait: bool = False,
                 stream: Optional[IO[str]] = None) -> int:
    """Runs `build(config)` with LocalDagRunner behind the console; returns the exit code.

    Order: the log starts in a temporary file (nothing is written into the output directory
    before the flags and the data pass their checks), the model configuration is checked, the
    output directory (writable, not busy, its outputs not orphaned by a deleted ML Metadata
    store), the input files are checked, the output directory's run lock is taken, the log moves into
    `<output_dir>/logs/`, the pipeline runs, and the summary (or the cause of the failure) ends
    the console."""
    import tempfile

    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = f"{now:%Y%m%d-%H%M%S}"
    fd, tmp_log = tempfile.mkstemp(prefix="recsys-run-", suffix=".log")
    os.close(fd)
    console = Console(tmp_log, verbose=verbose, stream=stream).start()
    watch = InterruptWatch().start()
    # after the console has taken file descriptors 1 and 2: runner.data loads TensorFlow (through
    # the span layout's TFX imports), whose C++ start-up lines belong in the log
    from runner import data, run_lock

    try:
        import pipeline

        pipeline.check_keras()
        from models import trainer

        from components import evaluator

        try:  # a bad --preset/--model-param fails here, in one line, not inside the Trainer
            trainer.model_config(config.training.custom_config())
        except (TypeError, ValueError) as e:
            console.say_fitted(f"error: model configuration: {e}")
            return EXIT_USAGE
        try:
            evaluator.eval_config(**config.gate.eval_config_args())
        except ValueError as e:
            console.say_fitted(f"error: gate configuration: {e}")
            return EXIT_USAGE
        from components import drift

        try:
            drift.check_thresholds(config.drift.thresholds)
        except ValueError as e:
            console.say_fitted(f"error: {e}")
            return EXIT_USAGE
        problem = run_lock.unwritable(config.output_dir)
        if problem:  # before the data checks read (or download) anything
            console.say_fitted(f"error: cannot write into --output-dir {config.output_dir}: {problem}")
            return EXIT_USAGE
        if not wait:  # a busy output directory is said before the data is read (or downloaded)
            try:
                run_lock.refuse_if_busy(config.output_dir)
            except run_lock.OutputDirBusy as e:
                console.say_fitted(f"error: {e}")
                return EXIT_BUSY
        problem = run_lock.orphaned_outputs(config.metadata_path, config.pipeline_root,
                                            kept=[os.path.basename(config.drift_acceptances_dir)])
        if problem:
            console.say_fitted(f"error: {problem}")
            return EXIT_USAGE
        try:
            # a copy: the caller's configuration stays as it was given
            config = dataclasses.replace(config, data_dir=data.ensure_data(
                config.data_dir, verify_checksums=config.verify_checksums, span_window=config.span_window))
        except data.DataError as e:
            console.say_fitted(f"error: the input data was rejected: {e}")
            return EXIT_DATA_REJECTED
        try:
            run_lock.check_writable(config.output_dir)
        except OSError as e:
            console.say_fitted(f"error: cannot write into --output-dir {config.output_dir}: "
                        f"{e.strerror or e}{f' ({e.filename})' if e.filename else ''}")
            return EXIT_USAGE
        try:
            with run_lock.hold(config.output_dir, wait_seconds=None if wait else 0,
                               on_wait=lambda holder: console.say_fitted(
                                   f"[run] waiting: another run is using {config.output_dir} ({holder})")):
                console.move_log(log_path_for(config.output_dir, now))
                return _run_locked(config, build, console, stamp)
        except run_lock.OutputDirBusy as e:
            console.say_fitted(f"error: {e}")
            return EXIT_BUSY
    except KeyboardInterrupt:  # Ctrl-C: say where, not a traceback of wherever Python was
        watch.taken()
        logging.exception("the run was interrupted")
        cause, log_line = interrupted_lines(console.handler, console.log_path)
        console.say_fitted(cause)
        console.say(log_line)  # a path, whole
        tmp_log = None  # kept when the run had not moved it yet
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001  unforeseen: say it plainly, keep the log
        logging.exception("the run stopped")
        tmp_log = None  # kept: it holds the traceback
        if is_out_of_space(e):
            console.say_fitted(no_space_line(e))
            return EXIT_NO_SPACE
        console.say_fitted(f"error: the run stopped (exit code {EXIT_FAILED}): {type(e).__name__}: {plain_cause(e)}")
        console.say(f"full log: {console.log_path}")
        return EXIT_FAILED
    finally:
        watch.stop()
        console.close()
        if tmp_log and os.path.exists(tmp_log):
            os.remove(tmp_log)


@contextlib.contextmanager
def _components_file(console: Console):
    """Each component's seconds and peak memory into `<run log>.components.json` while the
    pipeline runs; the RunReport reads it (its path in COMPONENTS_FILE_ENV, for this run only)."""
    from components import report_figures

    console.components_path = os.path.splitext(console.log_path)[0] + memory.COMPONENTS_SUFFIX
    os.environ[report_figures.COMPONENTS_FILE_ENV] = console.components_path
    try:
        yield
    finally:
        os.environ.pop(report_figures.COMPONENTS_FILE_ENV, None)


def _run_locked(config, build: Callable, console: Console, stamp: str) -> int:
    from tfx import v1 as tfx

    console.say(f"[run] data {config.data_dir}")
    for line in fit([f"[run] outputs {os.path.abspath(config.output_dir)}", f"(full log: {console.log_path})"],
                    indent="      ", sep=" "):  # the log's path on a line of its own when both do not fit
        console.say(line)
    served_before = _served_versions(config.serving_model_dir)
    since_ms = int(time.time() * 1000) - 1000
    try:
        with _components_file(console):
            tfx.orchestration.LocalDagRunner().run(build(config))
    except Exception as e:  # noqa: BLE001  the component's own message says what went wrong
        if is_interrupt(e):  # Ctrl-C during a Beam component: Beam wraps it
            raise KeyboardInterrupt from e
        logging.exception("the pipeline stopped")
        failed = [c.name for c in console.handler.components if c.state == "failed"]
        where = f" at {failed[-1]}" if failed else ""
        if failed and failed[-1] == REPORT_NODE:  # the model's fate is decided: say it anyway
            console.say_fitted(f"warning: the run report could not be written ({type(e).__name__}: "
                        f"{plain_cause(e).splitlines()[0]}); see the full log")
            outcome = read_outcome(config, since_ms, served_before)
            for line in summary_lines(outcome, None, console.log_path):
                console.say(line)
            return outcome.exit_code
        if is_out_of_space(e):
            console.say_fitted("\n" + no_space_line(e, where))
            console.say(f"full log: {console.log_path}")
            return EXIT_NO_SPACE
        if is_data_rejection(e):
            code = EXIT_DATA_REJECTED
            console.say_fitted(f"\nerror: the data was rejected{where}; nothing was trained or pushed "
                        f"(exit code {code}):")
        else:
            code = EXIT_FAILED
            console.say_fitted(f"\nerror: the pipeline stopped{where} (exit code {code}): {type(e).__name__}:")
        console.say_fitted("\n".join("  " + line for line in plain_cause(e).splitlines()))
        console.say(f"full log: {console.log_path}")
        return code
    outcome = read_outcome(config, since_ms, served_before)
    evaluator_run = next((c for c in console.handler.components if c.name == "Evaluator"), None)
    if evaluator_run and evaluator_run.state == "cached" and outcome.evaluation_uri:
        # nothing changed since the run that judged this model: its gate table, from the cache
        from components import evaluator

        _, table = evaluator.gate_report(outcome.evaluation_uri)
        console.say_fitted(table.replace("[gate] ", "[gate] (cached) ", 1))
    report = _publish_report(outcome.report_uri, config.output_dir, stamp)
    ran = [c for c in console.handler.components if c.state == "ran"]
    peak = max(ran, key=lambda c: c.peak_bytes) if ran else None
    for line in summary_lines(outcome, report, console.log_path, peak=peak):
        console.say(line)
    return outcome.exit_code
