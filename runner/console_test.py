"""The console without a pipeline: TFX's records to one line per component, everything else to the
log file (even what is written straight to file descriptors 1 and 2), the summary and exit codes."""

import io
import logging
import os

from components import catalog_check, drift, validator
from runner import console, data


def _started(tmp_path):
    stream = io.StringIO()
    return stream, console.Console(str(tmp_path / "logs" / "run.log"), stream=stream).start()


def test_one_line_per_component_and_the_recsys_lines_only(tmp_path):
    stream, run = _started(tmp_path)
    absl = logging.getLogger("absl")
    try:
        absl.info("Component %s is running.", "StatisticsGen")
        absl.info("A cached execution %d is used.", 3)
        absl.info("Component %s is finished.", "StatisticsGen")
        absl.info("Component %s is running.", "Trainer")
        absl.info("Going to run a new execution %d", 4)
        logging.getLogger("recsys.train").info("[train] epoch %d/%d: loss %.4f", 1, 2, 0.5)
        logging.getLogger("tensorflow").warning("something only the log needs")
        os.write(1, b"printed by a library\n")
        os.write(2, b"I0000 a C++ start-up line\n")
        absl.info("Component %s is finished.", "Trainer")
        absl.info("Component %s is running.", "Evaluator")
        absl.info("Going to run a new execution %d", 5)
        absl.error("Execution %d failed.", 5)
    finally:
        run.close()
    lines = stream.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["StatisticsGen", "cached"], ["Trainer", "running"], ["[train]", "epoch"],
        ["Trainer", "ran"], ["Evaluator", "running"], ["Evaluator", "failed"]]
    assert lines[2] == "[train] epoch 1/2: loss 0.5000"
    assert [c.state for c in run.handler.components] == ["cached", "ran", "failed"]
    with open(tmp_path / "logs" / "run.log") as f:
        log = f.read()
    for text in ("something only the log needs", "printed by a library", "I0000 a C++ start-up line",
                 "Component Trainer is running.", "[train] epoch 1/2", "  Trainer"):
        assert text in log, text


def test_a_long_recsys_line_goes_on_under_its_text_and_the_log_keeps_it_whole(tmp_path):
    """Found by exploratory testing: outside the summary, the components' lines ran to 384 columns."""
    stream, run = _started(tmp_path)
    long = "[data] train: " + ", ".join(f"span-{n}/dsf_asos_train_with_alphanumeric_dummy_ids.parquet"
                                        for n in range(1, 5))
    row = f"{'recall_at_10':<18}{'0.0402':>10}".ljust(console.WIDTH - 2) + "ok"  # a table row of 100 columns
    try:
        logging.getLogger("recsys.data").info(long)
        logging.getLogger("recsys.gate").info("[gate] %s\n%s\n  %s", "BLESSED", row,
                                              "a detail " * 15)
    finally:
        run.close()
    lines = stream.getvalue().splitlines()
    assert console.too_wide(lines) == [] and all(len(line) <= console.WIDTH for line in lines)
    data_lines = [line for line in lines if not line.startswith(("[gate]", "recall", "  a detail", "    a detail"))]
    assert data_lines[0].startswith("[data] train: span-1/") and len(data_lines) == 4
    assert all(line.startswith(" " * len("[data] ") + "span-") for line in data_lines[1:])  # under its text
    assert " ".join(" ".join(data_lines).split()) == long  # every word, in order
    assert lines[len(data_lines):len(data_lines) + 2] == ["[gate] BLESSED", row]  # a row that fits: as it is
    assert lines[-2].startswith("  a detail") and lines[-1].startswith("    a detail")  # deeper than its line
    with open(tmp_path / "logs" / "run.log") as f:
        assert long in f.read()  # the log has it whole


def test_fit_text_keeps_a_path_whole_and_excuses_only_a_path():
    path = "/tmp/" + "long-directory/" * 8 + "index.html"
    assert console.fit_text(f"[report] {path}") == [f"[report] {path}"]
    lines = console.fit_text(f"[push] pushed version 17 (model card: assets.extra/model_card.md) to {path}")
    assert lines == ["[push] pushed version 17 (model card: assets.extra/model_card.md) to", f"       {path}"]
    assert console.too_wide(lines) == [] and console.too_wide([f"{'word ' * 25}/a/b"]) == [f"{'word ' * 25}/a/b"]
    before = f"[push] pushed version 17 to {path} (model card: assets.extra/model_card.md)"  # the line it was
    assert console.too_wide([before]) == [before]
    command = f'  next           make serve ARGS="--model_base_path {path}"'  # a command, whole
    assert console.too_wide([command]) == []
    assert console.fit_text("\nerror: x") == ["", "error: x"]


def test_the_log_moves_with_what_it_held(tmp_path):
    stream, run = _started(tmp_path)
    try:
        logging.getLogger("absl").info("before the move")
        run.move_log(str(tmp_path / "out" / "logs" / "run-1.log"))
        os.write(2, b"after the move\n")
    finally:
        run.close()
    assert not (tmp_path / "logs" / "run.log").exists()
    with open(tmp_path / "out" / "logs" / "run-1.log") as f:
        log = f.read()
    assert "before the move" in log and "after the move" in log


def test_data_rejections_are_told_from_other_failures():
    assert console.is_data_rejection(validator.DataValidationError("split 'eval': 0 rows"))
    assert console.is_data_rejection(catalog_check.CatalogMismatchError("x"))
    assert console.is_data_rejection(data.DataError("x.parquet: not a readable parquet file"))
    assert console.is_data_rejection(drift.DriftError("span-3 drifted"))
    try:
        try:
            raise validator.DataValidationError("bad")
        except validator.DataValidationError as e:
            raise RuntimeError("wrapped by the orchestrator") from e
    except RuntimeError as wrapped:
        assert console.is_data_rejection(wrapped)
    assert not console.is_data_rejection(MemoryError())


def _outcome(**changes):
    values = dict(rows={"train": 165042, "eval": 35567}, blessed=True, pushed=True,
                  already_served=False, pushed_version="17", pushed_path="/o/serving_model/recommender/17",
                  report_uri="/r")
    values.update(changes)
    return console.Outcome(**values)


def test_summary_and_exit_code_of_each_outcome(tmp_path):
    pushed = _outcome()
    lines = console.summary_lines(pushed, "/o/reports/run-1.html", "/o/logs/run-1.log")
    assert not any(line.startswith("  model card") for line in lines)  # a version without one
    os.makedirs(tmp_path / "17" / "assets.extra")
    (tmp_path / "17" / "assets.extra" / "model_card.md").write_text("# Model card")
    with_card = console.summary_lines(_outcome(pushed_path=str(tmp_path / "17")), None, "l")
    # named in the served model's folder, the row above: its whole path made the row 117 columns
    assert "  model card     assets.extra/model_card.md in the served model's folder" in with_card
    assert "  rows read      train 165,042, eval 35,567" in lines
    assert "  verdict        blessed and pushed as version 17" in lines
    assert "  report         /o/reports/run-1.html" in lines and "  exit code      0" in lines
    assert pushed.exit_code == console.EXIT_OK and lines[-1].startswith("  next           make serve   (serves")
    # another output directory: make serve is told where (found by exploratory testing: it said
    # `make serve`, which serves outputs/'s model)
    # (the command whole on its row, what it does under it: on one line, 119 columns)
    elsewhere = _outcome(serving_model_dir="/srv/o1/serving_model/recommender")
    assert console.summary_lines(elsewhere, None, "l")[-2:] == [
        '  next           make serve ARGS="--model_base_path /srv/o1/serving_model/recommender"',
        "                 (serves the pushed model)"]
    refused_elsewhere = _outcome(blessed=False, pushed=False, pushed_version="", pushed_path="",
                                 serving_model_dir="/srv/o1/serving_model/recommender")
    assert console.summary_lines(refused_elsewhere, None, "l")[-2:] == [
        "  next           open the report; the previous model is still the one",
        '                 `make serve ARGS="--model_base_path /srv/o1/serving_model/recommender"` serves']

    served = _outcome(already_served=True)
    assert served.exit_code == console.EXIT_OK
    assert "already served as version 17: nothing new pushed" in "\n".join(
        console.summary_lines(served, None, "l"))
    # a cached run whose model a rollback published again: the version that serves it now
    copy = _outcome(already_served=True, served_as="19", served_as_path="/o/serving_model/recommender/19")
    text = " ".join("\n".join(console.summary_lines(copy, None, "l")).split())  # a row may go on on the next line
    assert "already served as version 19 (a rollback to version 17): nothing new pushed" in text
    assert "served model /o/serving_model/recommender/19" in text

    refused = _outcome(blessed=False, pushed=False, pushed_version="", pushed_path="")
    assert refused.exit_code == console.EXIT_REFUSED
    text = "\n".join(console.summary_lines(refused, "r.html", "l"))
    assert "NOT blessed: the gate refused the model" in text and "make serve" in text
    # a first run refused: no "previous model" to speak of (found by exploratory testing)
    first = _outcome(blessed=False, pushed=False, pushed_version="", pushed_path="", nothing_served=True)
    assert console.summary_lines(first, "r.html", "l")[-1] == (
        "  next           open the report; no model is served yet (none was ever pushed here)")
    assert "  verdict        NOT blessed: the gate refused the model (table above)" in console.summary_lines(
        first, "r.html", "l")  # not "the served model is unchanged" (found by exploratory testing)
    assert _outcome(blessed=None, pushed=False).exit_code == console.EXIT_FAILED
    # blessed, but the version a rollback took out of service again (components/pusher.py)
    withdrawn = _outcome(pushed=False, pushed_version="", pushed_path="", not_pushed_reason="this model is 5 again")
    assert withdrawn.exit_code == console.EXIT_REFUSED
    assert "  verdict        blessed, NOT pushed: this model is 5 again" in console.summary_lines(withdrawn, "r", "l")
    # the version a cached Pusher names was deleted since (found by exploratory testing: "pushed as version 17")
    gone = _outcome(pushed_gone=True)
    assert gone.exit_code == console.EXIT_FAILED
    lines = console.summary_lines(gone, "r", "l")
    verdict = " ".join(console.summary_rows(lines)["verdict"].split())  # its parts, on two lines
    assert verdict.startswith("blessed, but version 17, which an earlier run pushed for this model (this run's "
                              "Pusher came from the cache), is no longer there (/o/serving_model/recommender/17)")
    assert verdict.endswith("this model is not served; --no-cache pushes it again")
    assert all(len(line) <= console.WIDTH for line in lines)  # 247 columns on one line
    assert not any(line.startswith("  served model") for line in lines)
    assert not lines[-1].startswith("  next           make serve")


def _drift_figures(**over):
    """The drift gate's figures of span-3 against span-2, the measures named in `over` over their limit."""
    from components import drift

    measures = [{"name": n, "value": v, "limit": "<= 0.1", "over": n in over.values(), "detail": ""}
                for n, v in zip(drift.MEASURE_NAMES, [0.0021, 0.24, 0.5, 0.0001, 0.97, 0.0019, 0.0])]
    return {"compared": True, "drifted": bool(over), "measures": measures,
            "newest": {"name": "span-3"}, "previous": {"name": "span-2"}}


def test_the_summary_says_the_drift_verdict_and_names_only_the_measures_over():
    """Found by exploratory testing: the drift row named every figure, about 250 columns; as the
    replay's span lines, the verdict, then each measure over its limit under it (the DriftGate's
    table above and the run report have every figure)."""
    from components import drift

    lines = console.summary_lines(_outcome(drift=_drift_figures()), None, "l")
    assert lines[2:4] == ["  rows read      train 165,042, eval 35,567",
                          "  drift          span-3 vs span-2 within the thresholds"]
    assert lines[4].startswith("  verdict")
    over = dict(_drift_figures(a=drift.PRODUCT_LINF_NAME, b=drift.ROWS_NAME), accepted="--accept-drift")
    lines = console.summary_lines(_outcome(drift=over), None, "l")
    assert lines[3:7] == [
        "  drift          span-3 vs span-2 OVER the thresholds, accepted (--accept-drift)",
        "                   over: productId L-infinity distance 0.0021, allowed <= 0.1",
        "                   over: rows, newest / previous 0.5, allowed <= 0.1",
        "  verdict        blessed and pushed as version 17"]
    assert console.summary_rows(lines)["drift"] == (
        "span-3 vs span-2 OVER the thresholds, accepted (--accept-drift)\n"
        "over: productId L-infinity distance 0.0021, allowed <= 0.1\nover: rows, newest / previous 0.5, allowed <= 0.1")
    for quiet in (_outcome(), _outcome(drift={"compared": False, "reason": "one span only"})):
        assert not any(line.startswith("  drift") for line in console.summary_lines(quiet, None, "l"))


def test_every_summary_row_fits_100_columns_but_a_path_longer_than_that(tmp_path):
    """Found on a real run (--output-dir /tmp/h-console-out): the `next` row was 125 columns, the
    model card's 99 (117 under the default outputs/). A row too long goes on under its text, a
    path or a command whole; summary_rows reads it back."""
    from components import drift

    serving = tmp_path / "a-rather-long-output-directory-name" / "serving_model" / "recommender"
    (serving / "1796661867" / "assets.extra").mkdir(parents=True)
    (serving / "1796661867" / "assets.extra" / "model_card.md").write_text("# Model card")
    start = {"kind": "warm", "from_version": "1796589554", "carried_products": 29696, "new_products": 12345,
             "dropped_products": 1234}
    stopped = [{"name": "span-2", "why": "productId L-infinity distance 0.003742, allowed <= 0.003"}]
    figures = dict(_drift_figures(a=drift.PER_USER_NAME), stopped_spans=stopped, accepted="--accept-drift")
    outcomes = [
        _outcome(pushed_path=str(serving / "1796661867"), serving_model_dir=str(serving), start=start, drift=figures),
        _outcome(pushed_gone=True, serving_model_dir=str(serving)),
        _outcome(blessed=False, pushed=False, pushed_version="", pushed_path="", serving_model_dir=str(serving))]
    logs = [str(tmp_path / "logs" / "harness-20261207-164131.log"), f"each task's: {tmp_path}/"]
    for outcome in outcomes:
        lines = console.summary_lines(outcome, str(tmp_path / "reports" / "run-20261207-164131.html"), logs,
                                      peak=console.ComponentRun("RunReport", 0.0, "ran", peak_bytes=2 << 30))
        assert all(len(line) <= console.WIDTH for line in lines if str(tmp_path) not in line), lines
        # (the row's text, after its label: a path, or the command to serve it, with a path in it)
        assert all(len(line) <= console.WIDTH or line[len(console.ROW_INDENT):].lstrip().startswith(
            (str(tmp_path), "`make serve", "make serve")) for line in lines), lines
        rows = console.summary_rows(lines)
        assert rows["exit code"] == str(outcome.exit_code)
        assert rows["full log"] == f"{tmp_path / 'logs' / 'harness-20261207-164131.log'}\neach task's: {tmp_path}/"
    rows = console.summary_rows(console.summary_lines(outcomes[0], None, "l"))
    assert rows["next"] == f'make serve ARGS="--model_base_path {serving}"\n(serves the pushed model)'
    assert rows["model card"] == "assets.extra/model_card.md in the served model's folder"
    assert rows["drift"].splitlines() == [  # the headline, 101 columns, on two lines
        "span-3 vs span-2 OVER the thresholds, span-2 stopped before, accepted", "(--accept-drift)",
        "over: purchases per user, Jensen-Shannon divergence 0.0001, allowed <= 0.1"]
    # a killed run's advice in place of the outcome's next step
    assert console.summary_lines(outcomes[0], None, "l", next_step="run it again")[-1] == (
        "  next           run it again")


def test_ctrl_c_ends_with_where_it_stopped_not_a_traceback(tmp_path, fake_data_dir):
    """Ctrl-C used to end the console with Python's traceback of wherever the run was."""
    from pipeline import configs

    def build(config):
        logging.getLogger("absl").info("Component %s is running.", "Transform")
        logging.getLogger("absl").info("Going to run a new execution %d", 4)
        raise KeyboardInterrupt

    config = configs.PipelineConfig(data_dir=fake_data_dir, output_dir=str(tmp_path / "out"),
                                    verify_checksums=False)
    stream = io.StringIO()
    assert console.run_pipeline(config, build, stream=stream) == console.EXIT_INTERRUPTED == 130
    lines = stream.getvalue().strip().splitlines()
    cause = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert " ".join(" ".join(lines[cause:-1]).split()).startswith(
        "error: interrupted during Transform (exit code 130); nothing was pushed; the served model is unchanged"), lines
    assert all(line.startswith("  ") for line in lines[cause + 1:-1]) and console.too_wide(lines) == []
    assert lines[-1].startswith(f"full log: {tmp_path / 'out' / 'logs'}")
    with open(lines[-1].split(": ", 1)[1]) as f:
        assert "KeyboardInterrupt" in f.read()  # the traceback is in the log


def test_a_ctrl_c_that_python_drops_still_stops_the_run(tmp_path, fake_data_dir, monkeypatch):
    """Found by exploratory testing: CPython drops a KeyboardInterrupt raised in a weakref callback
    ("Exception ignored in ..."), and a run whose Ctrl-C landed in one went on to the gate. It is
    delivered again until the run's Ctrl-C path takes it."""
    import signal
    import time
    import weakref

    from pipeline import configs

    monkeypatch.setattr(console, "INTERRUPT_REPEAT_SECONDS", 0.2)
    # Python's Ctrl-C handler, as a run's worker has it (supervisor.follow_supervisor), also when
    # these tests were started with SIGINT ignored (a script's `make test &`)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    class Thing:
        pass

    def build(config):
        thing = Thing()
        ref = weakref.ref(thing, lambda _: signal.raise_signal(signal.SIGINT))  # the Ctrl-C lands in it
        del thing
        assert ref() is None
        deadline = time.time() + 10
        while time.time() < deadline:  # the run's work
            time.sleep(0.05)
        raise AssertionError("the run went on after the Ctrl-C")

    config = configs.PipelineConfig(data_dir=fake_data_dir, output_dir=str(tmp_path / "out"),
                                    verify_checksums=False)
    stream = io.StringIO()
    try:
        assert console.run_pipeline(config, build, stream=stream) == console.EXIT_INTERRUPTED, stream.getvalue()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the run leaves Python's own
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_interruption_after_the_pusher_says_so(tmp_path):
    handler = console.ConsoleHandler(console.Console(str(tmp_path / "l.log")))
    handler.components = [console.ComponentRun("Pusher", 0.0, "ran")]
    handler.current = console.ComponentRun("RunReport", 0.0, "ran")
    [line, _] = console.interrupted_lines(handler, "l.log")
    assert "during RunReport" in line and "the Pusher had run before" in line


def test_the_callers_configuration_is_left_as_given(tmp_path, fake_data_dir, monkeypatch):
    """run_pipeline used to write the checked (absolute) data directory into the caller's config."""
    from pipeline import configs

    monkeypatch.chdir(tmp_path)
    built = []

    def build(config):
        built.append(config.data_dir)
        raise KeyboardInterrupt

    given = os.path.relpath(fake_data_dir)
    config = configs.PipelineConfig(data_dir=given, output_dir="out", verify_checksums=False)
    assert console.run_pipeline(config, build, stream=io.StringIO()) == console.EXIT_INTERRUPTED
    assert config.data_dir == given and built == [os.path.abspath(given)]


def test_a_full_disk_is_told_from_other_failures():
    import errno

    import tensorflow as tf

    from components.pusher import PushError

    full = tf.errors.ResourceExhaustedError(None, None, "/out/1/variables/variables.data; No space left on device")
    assert console.is_out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert console.is_out_of_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert console.is_out_of_space(full)
    try:
        try:
            raise full
        except tf.errors.OpError as e:
            raise PushError("the model could not be pushed") from e
    except PushError as e:
        assert console.is_out_of_space(e)
    assert console.is_out_of_space(RuntimeError("... OSError: [Errno 28] No space left on device [while running 'x']"))
    assert not console.is_out_of_space(OSError("disk full (simulated)"))
    assert not console.is_out_of_space(ValueError("no such metric"))
    line = console.no_space_line(full, " at Pusher")
    assert line.startswith(f"error: no space left on device at Pusher (exit code {console.EXIT_NO_SPACE}): ")
    assert "\n" not in line


_FULL_LOG_CHILD = """
import logging, os, sys
from runner import console
run = console.Console(sys.argv[1]).start()
with open(os.path.join(os.path.dirname(sys.argv[1]), "filler"), "wb", buffering=0) as f:
    try:
        while True:
            f.write(bytes(4096))
    except OSError:
        pass
print("a library prints into the log " * 50)
logging.getLogger("tfx").info("a record for the log " * 50)
run.say("error: the run stopped (exit code 3)")
run.close()
sys.exit(3)
"""


def test_a_log_on_a_full_disk_does_not_change_the_exit_code(tmp_path):
    """The issue's run printed `exit code 1` and exited 120: Python's exit could not flush what
    was left for the log on the full disk."""
    import subprocess
    import sys

    from pipeline import configs
    from runner import testing

    with testing.mounted(str(tmp_path / "disk"), 256 * 1024) as disk:
        done = subprocess.run([sys.executable, "-c", _FULL_LOG_CHILD, os.path.join(disk, "logs", "run.log")],
                              cwd=configs.PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "error: the run stopped (exit code 3)\n"
    assert "a library prints" not in done.stdout + done.stderr


def test_ctrl_c_wrapped_by_beam_is_an_interrupt():
    """Found by exploratory testing: Ctrl-C during Transform exited 1, Beam having wrapped it."""
    assert console.is_interrupt(RuntimeError("KeyboardInterrupt [while running 'Analyze/Compute']"))
    assert console.is_interrupt(KeyboardInterrupt())
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("the component failed") from e
    except RuntimeError as wrapped:
        assert console.is_interrupt(wrapped)
    assert not console.is_interrupt(RuntimeError("the component failed"))
    assert not console.is_interrupt(ValueError("no KeyboardInterrupt at the start"))
