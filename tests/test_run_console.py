"""End to end on generated data, through the command line: what `make run` prints, its exit code,
its log file and its HTML report, for a pushed run, a refused run, a rejected run, a run whose
component fails, and a run that waits for another one (`--wait`).

The pushed run goes through `python local_runner.py` in a child process (the real console: no
TensorFlow or TFX line may reach standard output); the others call local_runner.main (or the
console it runs) in-process with the console's lines captured."""

import html.parser
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading

import pyarrow.parquet as pq
import pytest
import tensorflow as tf

import local_runner
from components import report_figures, run_report
from models import features
from pipeline import configs
from runner import console
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
SMALL = ["--model-param", "embedding_dim=8", "--model-param", "epochs=3",
         "--model-param", "batch_size=64", "--model-param", "learning_rate=0.05",
         # as tests/test_pipeline_gate.py: a random ranking of ~60 products scores recall@10 ~ 1/6
         "--gate-bound", "recall_at_10=0.3", "--gate-bound", "sampled_accuracy=0"]


def _argv(root, data="data", *extra):
    return ["--data-dir", str(root / data), "--output-dir", str(root / "out"), "--skip-checksums",
            *SMALL, *extra]


def _in_process(argv):
    """local_runner.main; returns (exit code, console text)."""
    stream = io.StringIO()
    code = local_runner.main(argv, stream=stream)
    return code, stream.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("console")
    fake_asos.write_fake_asos(str(root / "data"), tastes=4)  # a model can beat popularity (the gate's rule)
    _monitoring_report(root / "out")  # what make monitor left: the run report links it
    pushed = subprocess.run([sys.executable, "local_runner.py", *_argv(root)], cwd=configs.PROJECT_DIR,
                            capture_output=True, text=True)
    # nothing changed: the whole run from the cache, started with --wait while another run holds
    # the output directory
    again = _behind_another_run(root / "out", _argv(root, "data", "--wait"))
    # learning rate ~0, no item graph (which needs no training), from nothing: the model stays
    # random; the gate refuses it
    refused = _in_process(_argv(root, "data", "--model-param", "optimizer=sgd",
                                "--model-param", "learning_rate=1e-9", "--model-param", "copurchase_weight=0",
                                "--cold-start"))
    # an eval file with no rows (still parquet): rejected at validation, before Transform
    shutil.copytree(root / "data", root / "tiny")
    fake_asos.write_purchases(str(root / "tiny" / configs.EVAL_FILE), *_first_rows(root / "data", 0))
    rejected = _in_process(_argv(root, "tiny"))
    # the good model again (from the cache: already served), judged by a changed gate (so the
    # Evaluator, the Pusher and the report run again), and a run report that fails
    mp = pytest.MonkeyPatch()
    mp.setattr(run_report.Executor, "Do", _failing_report)
    try:
        report_failed = _in_process(_argv(root, "data", "--gate-bound", "sampled_accuracy=0.001"))
    finally:
        mp.undo()
    # a curated schema that does not parse: the validator fails reading it (ExampleGen and
    # StatisticsGen come from the cache), a failure that is not the data's
    (root / "broken_schema").mkdir()
    (root / "broken_schema" / "schema.pbtxt").write_text(BROKEN_SCHEMA)
    stream = io.StringIO()
    code = console.run_pipeline(helpers.test_config(str(root / "data"), str(root / "out"),
                                                    schema_dir=str(root / "broken_schema")),
                                local_runner.build, stream=stream)
    failed = code, stream.getvalue()
    return root, pushed, refused, rejected, report_failed, again, failed


BROKEN_SCHEMA = 'feature {\n  name: "dummyUserId"\n  type: BYTES\n  presence { min_fraction: 1 }\n'  # no "}"


def _behind_another_run(output_dir, argv):
    """local_runner.main(argv) while another holder keeps the output directory's run lock until
    the run says it is waiting. Returns (exit code, console text, whether the holder had let go
    before the run's first line after the wait)."""
    from runner import run_lock

    held, waiting, letting_go = threading.Event(), threading.Event(), threading.Event()
    after_the_wait = []

    class Console(io.StringIO):
        def write(self, text):
            if text.startswith("[run] waiting: another run is using"):
                waiting.set()
            elif text.startswith("[run] data "):
                after_the_wait.append(letting_go.is_set())
            return super().write(text)

    def other_run():
        with run_lock.hold(str(output_dir)):
            held.set()
            waiting.wait(timeout=600)
            letting_go.set()  # the last thing before the lock goes

    holder = threading.Thread(target=other_run)
    holder.start()
    held.wait()
    stream = Console()
    try:
        code = local_runner.main(argv, stream=stream)
    finally:
        waiting.set()  # a run that never waits must not keep the holder
        holder.join()
    return code, stream.getvalue(), after_the_wait == [True]


def _monitoring_report(out):
    """make monitor's report of a few logged requests, in the output directory's monitoring/."""
    import numpy as np

    from serving import monitor, request_log

    prefix = str(out / "request_logs" / configs.MODEL_NAME)
    logger = request_log.RequestLogger(configs.MODEL_NAME, request_log.logging_config(prefix, 1.0))
    for known in (True, True, False):
        logger.log(lambda k=known: request_log.rest_predict_messages(
            configs.MODEL_NAME, None, None, "", 1, "serving_default", {"user_id": np.array([b"u"], object)},
            {"known_user": np.array([k])}), 1, "serving_default", 0.004, "rest")
    logger.close()
    assert monitor.main(["--output-dir", str(out), "--model-base-path", str(out / "none"),
                         "--threshold", "min_rows=1"],
                        stream=io.StringIO()) == monitor.EXIT_SIGNAL  # 1 user in 3


def _failing_report(self, input_dict, output_dict, exec_properties):
    raise OSError("disk full (simulated)")


def _first_rows(data_dir, n):
    import pyarrow.parquet as pq

    table = pq.read_table(str(data_dir / configs.EVAL_FILE)).to_pydict()
    return table[features.USER_KEY][:n], table[features.PRODUCT_KEY][:n]


def _gate_table(text):
    """The gate's table on a console: the metric rows under its header, after the `[gate]` verdict
    (on more lines than one when it is longer than the console: runner/console.py fit_text)."""
    lines = text.splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("[gate]"))
    start = next(i for i in range(verdict, len(lines)) if lines[i].startswith("metric "))
    end = next(i for i in range(start, len(lines) + 1)
               if i == len(lines) or not re.match(r"([a-z_0-9]+|  vs popularity) ", lines[i]))
    return lines[start:end]


def _summary(text):
    lines = text.splitlines()
    start = lines.index("summary")
    return {line.split(None, 1)[0] if not line.startswith("  ") else line[2:17].strip(): line[17:].strip()
            for line in lines[start + 1:] if line.strip()}


def test_every_console_line_fits_100_columns_but_a_path_longer_than_that(runs):
    """Found by exploratory testing: outside the summary, lines ran to 384 columns (the report's
    eval purchases), 138 (the Pusher's, the refused gate's), 174 (the catalog's)."""
    _, pushed, refused, rejected, report_failed, again, failed = runs
    for text in (pushed.stdout + pushed.stderr, refused[1], rejected[1], report_failed[1], again[1], failed[1]):
        assert console.too_wide(text.splitlines()) == [], text


def test_a_pushed_run_prints_a_short_console_and_exits_0(runs):
    root, pushed, *_ = runs
    assert pushed.returncode == console.EXIT_OK, pushed.stdout + pushed.stderr
    out = pushed.stdout.splitlines()
    assert len(out) <= 64  # a line longer than 100 columns goes on on the next (runner/console.py fit_text)
    assert not re.search(r"WARNING|absl|tensorflow/|I0000|E0000|Traceback", pushed.stdout + pushed.stderr)
    summary = _summary(pushed.stdout)
    served = os.listdir(root / "out" / "serving_model" / configs.MODEL_NAME)
    assert summary["verdict"] == f"blessed and pushed as version {served[0]}"
    assert summary["rows read"].startswith("train ") and ", eval " in summary["rows read"]
    assert summary["exit code"] == "0" and summary["next"].startswith("make serve")
    # every component has its line; the Trainer's epochs and the gate's table are there
    for name in ("FileBasedExampleGen", "StrictExampleValidator", "Transform", "Trainer",
                 "Evaluator", "Pusher", "RunReport"):
        assert re.search(rf"^  {name} +ran +\d+\.\d s$", pushed.stdout, re.M), name
    assert len(re.findall(r"epoch \d/3: loss", pushed.stdout)) == 3
    assert "[gate] BLESSED" in pushed.stdout
    # the full log holds what the console left out
    log = summary["full log"]
    assert os.path.dirname(log) == str(root / "out" / "logs")
    with open(log) as f:
        text = f.read()
    assert "Component Trainer is running." in text and len(text.splitlines()) > 5 * len(out)


def _report_of(summary_text):
    path = _summary(summary_text)["report"]
    with open(path) as f:
        return path, f.read()


class _Html(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.refs, self.images, self.text = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag not in ("br", "img", "meta", "link", "hr", "input"):
            self.stack.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append(value)
        self.images += tag == "img"

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_the_report_is_self_contained_html_with_the_runs_figures(runs):
    root, pushed, *_ = runs
    path, page = _report_of(pushed.stdout)
    assert os.path.exists(root / "out" / "report.html")
    parser = _Html()
    parser.feed(page)
    parser.close()
    assert parser.stack == []  # every element closed: well-formed
    assert parser.images >= 3  # data, training curve, recall@k
    latest = json.loads((root / "out" / "monitoring" / "latest.json").read_text())
    links = [ref for ref in parser.refs if not ref.startswith("data:image/png;base64,")]
    assert links == [f"file://{latest['html']}"], parser.refs  # only make monitor's report, on disk
    assert not re.search(r"https?://|<script|<link|@import|url\(", page)
    text = " ".join(parser.text)

    config = helpers.test_config(str(root / "data"), str(root / "out"))
    [uri] = helpers.output_uris(config, "RunReport", "report", execution=0)  # the pushed run's
    with open(os.path.join(uri, run_report.JSON_FILE)) as f:
        figures = json.load(f)
    # the flat layout is TFX's span 0, which the report does not call a span
    assert figures["spans"]["flat"] and "Trained on the flat data (one train file, no span folders)" in text
    # the rows ExampleGen read (StatisticsGen's counts in ML Metadata) are the report's
    rows = dict(pair.split(" ") for pair in _summary(pushed.stdout)["rows read"].split(", "))
    for split, count in rows.items():
        assert figures["data"][split]["purchases"] == int(count.replace(",", ""))
        assert f"{int(count.replace(',', '')):,}" in text
    # recall@10 (TFMA's value, the gate's, and the curve's 10th point) worked out here from the
    # eval file: the share of eval purchases whose product is in the user's top 10 as the
    # candidate serves them
    [model_uri] = helpers.output_uris(config, "Trainer", "model", execution=0)
    signatures = report_figures.saved_model_signatures(model_uri)
    eval_rows = pq.read_table(str(root / "data" / configs.EVAL_FILE)).to_pydict()
    top10 = signatures["serving_default"](user_id=tf.constant(eval_rows[features.USER_KEY]))["products"]
    in_top10 = [p in row for p, row in zip(eval_rows[features.PRODUCT_KEY], top10.numpy()[:, :10].tolist())]
    recall_at_10 = sum(in_top10) / len(in_top10)
    candidate = figures["evaluation"]["models"]["candidate"]
    assert candidate["metrics"]["recall_at_10"] == pytest.approx(recall_at_10)
    assert candidate["recall_at_k"][9] == pytest.approx(recall_at_10)
    assert len(candidate["recall_at_k"]) == 100 and "most popular" in figures["evaluation"]["models"]
    assert f"{recall_at_10:.4f}" in text
    # the candidate's coverage@10, read from BatchRecommendations' lists, is what the model answers
    [examples_uri] = helpers.output_uris(config, "FileBasedExampleGen", "examples", execution=0)
    eval_users = report_figures.read_purchases(os.path.join(examples_uri, "Split-eval"))["users"]
    asked = report_figures.coverage_at_10(signatures, eval_users,
                                          figures["validation"]["catalog"]["catalog_products"])
    assert candidate["coverage_at_10"] == asked > 0
    # the training curve is the Trainer's history: one point per epoch
    assert [h["epoch"] for h in figures["training"]["history"]] == [1, 2, 3]
    assert f"{figures['training']['history'][-1]['loss']:.4f}" in text
    assert len(figures["examples"]) == report_figures.EXAMPLE_PRODUCTS
    assert figures["push"]["pushed"] and figures["push"]["version"] in text
    # make monitor's latest report, linked with its figures
    assert figures["monitoring"]["html"] == latest["html"] and f"href='file://{latest['html']}'" in page
    assert "3 requests logged" in text and "A threshold is crossed: a signal to retrain." in text


def test_a_refused_run_exits_3_and_keeps_the_served_model(runs):
    root, pushed, (code, text), *_ = runs
    assert code == console.EXIT_REFUSED, text
    summary = _summary(text)
    assert summary["verdict"].startswith("NOT blessed: the gate refused the model")
    assert "[gate] NOT BLESSED" in text and re.search(r"^recall_at_10 .* FAILED$", text, re.M)
    assert summary["exit code"] == "3"
    _, page = _report_of(text)
    assert "Not pushed: the gate refused the model" in page
    assert len(os.listdir(root / "out" / "serving_model" / configs.MODEL_NAME)) == 1


def test_a_rejected_run_exits_4_naming_the_problem(runs):
    _, _, _, (code, text), *_ = runs
    assert code == console.EXIT_DATA_REJECTED, text
    lines = text.strip().splitlines()
    assert "error: the data was rejected at StrictExampleValidator" in text and "(exit code 4)" in text
    assert "split 'eval': 0 rows, fewer than the 20 required" in text
    assert lines[-1].startswith("full log: ")  # the cause last, with the log's path
    assert not re.search(r"^  (Transform|Trainer) ", text, re.M)  # stopped before Transform


def test_a_failed_report_does_not_hide_what_was_pushed(runs):
    root, pushed, _, _, (code, text), *_ = runs
    assert code == console.EXIT_OK, text
    assert "warning: the run report could not be written (OSError: disk full (simulated))" in text
    served = os.listdir(root / "out" / "serving_model" / configs.MODEL_NAME)
    assert _summary(text)["verdict"] == f"blessed; already served as version {served[0]}: nothing new pushed"
    assert len(served) == 1


def test_a_second_run_with_nothing_changed_comes_whole_from_the_cache(runs):
    root, pushed, *_, (code, text, _), _ = runs
    assert code == console.EXIT_OK, text
    lines = [row for row in text.splitlines() if re.match(r"^  [A-Za-z_]+ +(ran|cached|done|failed) ", row)]
    assert lines and all(re.match(r"^  \S+ +(cached|done) ", row) for row in lines), text
    # the first run's gate table again, marked as such, and the same model still served
    assert "[gate] (cached) BLESSED" in text and re.search(r"^recall_at_10 .* ok$", text, re.M)
    # the same table as the run that judged it: no served model then, so no "vs served" bound
    # (found by exploratory testing: the live table showed the bound TFX had dropped)
    assert _gate_table(text) == _gate_table(pushed.stdout)
    assert "vs served" not in pushed.stdout and "no served model: absolute bounds only" in pushed.stdout
    served = os.listdir(root / "out" / "serving_model" / configs.MODEL_NAME)
    assert _summary(text)["verdict"] == f"blessed; already served as version {served[0]}: nothing new pushed"
    assert _summary(pushed.stdout)["report"] != _summary(text)["report"]  # a copy for this run too
    assert os.path.exists(_summary(text)["report"])


def test_with_wait_a_run_waits_for_the_run_using_the_output_directory(runs):
    root, *_, (code, text, let_go_first), _ = runs
    assert code == console.EXIT_OK, text
    lines = text.splitlines()
    waiting = next(i for i, line in enumerate(lines) if line.startswith("[run] waiting: "))
    said = " ".join(" ".join(lines[waiting:waiting + 2]).split())  # on two lines when it does not fit on one
    assert said.startswith(f"[run] waiting: another run is using {root / 'out'} (pid {os.getpid()}, started ")
    assert waiting < next(i for i, line in enumerate(lines) if line.startswith("[run] data "))
    assert let_go_first  # it went on only once the other run had let go of the directory


def test_a_failing_component_exits_1_naming_it_and_its_error(runs):
    root, *_, (code, text) = runs
    assert code == console.EXIT_FAILED == 1, text
    lines = text.strip().splitlines()
    cause = lines.index("error: the pipeline stopped at StrictExampleValidator (exit code 1): ParseError:")
    assert lines[cause + 1] == '  4:30 : Expected "}".'  # protobuf's words: line 4 ends, the feature is open
    assert re.search(r"^  StrictExampleValidator +failed ", text, re.M)
    assert not re.search(r"^  (Transform|Trainer) ", text, re.M)  # nothing after it ran
    assert lines[-1].startswith(f"full log: {root / 'out' / 'logs'}")
    with open(lines[-1].split(": ", 1)[1]) as f:
        assert "Traceback" in f.read()  # the log has the traceback, the console the cause
    assert len(os.listdir(root / "out" / "serving_model" / configs.MODEL_NAME)) == 1  # still served


def test_a_second_run_on_a_busy_output_directory_exits_75(tmp_path, fake_data_dir):
    from runner import run_lock

    stream = io.StringIO()
    with run_lock.hold(str(tmp_path / "out")):  # as if another run were going on
        code = local_runner.main(["--data-dir", fake_data_dir, "--skip-checksums",
                                  "--output-dir", str(tmp_path / "out")], stream=stream)
    assert code == console.EXIT_BUSY
    said = " ".join(stream.getvalue().split())  # its lines joined: it goes on on more lines than one
    assert f"another run is using {tmp_path / 'out'} (pid {os.getpid()}" in said
    assert not (tmp_path / "out" / "metadata").exists()


def test_a_file_that_is_not_parquet_exits_4_naming_it(tmp_path, fake_data_dir):
    with open(os.path.join(fake_data_dir, configs.TRAIN_FILE), "wb") as f:
        f.write(b"not parquet at all")
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", fake_data_dir, "--skip-checksums",
                              "--output-dir", str(tmp_path / "out")], stream=stream)
    assert code == console.EXIT_DATA_REJECTED
    assert f"{configs.TRAIN_FILE}: not a readable parquet file" in " ".join(stream.getvalue().split())
    assert not (tmp_path / "out").exists()  # rejected before anything was written
