"""End to end on generated data, through the command line: what `make run` prints, its exit code,
its log file and its HTML report, for a pushed run, a refused run and a rejected run.

The pushed run goes through `python local_runner.py` in a child process (the real console: no
TensorFlow or TFX line may reach standard output); the others call local_runner.main in-process
with the console's lines captured."""

import html.parser
import io
import json
import os
import re
import shutil
import subprocess
import sys

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
    fake_asos.write_fake_asos(str(root / "data"))
    pushed = subprocess.run([sys.executable, "local_runner.py", *_argv(root)], cwd=configs.PROJECT_DIR,
                            capture_output=True, text=True)
    again = _in_process(_argv(root))  # nothing changed: the whole run from the cache
    # learning rate ~0 from nothing: the model stays random; the gate refuses it
    refused = _in_process(_argv(root, "data", "--model-param", "optimizer=sgd",
                                "--model-param", "learning_rate=1e-9", "--cold-start"))
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
    return root, pushed, refused, rejected, report_failed, again


def _failing_report(self, input_dict, output_dict, exec_properties):
    raise OSError("disk full (simulated)")


def _first_rows(data_dir, n):
    import pyarrow.parquet as pq

    table = pq.read_table(str(data_dir / configs.EVAL_FILE)).to_pydict()
    return table[features.USER_KEY][:n], table[features.PRODUCT_KEY][:n]


def _summary(text):
    lines = text.splitlines()
    start = lines.index("summary")
    return {line.split(None, 1)[0] if not line.startswith("  ") else line[2:17].strip(): line[17:].strip()
            for line in lines[start + 1:] if line.strip()}


def test_a_pushed_run_prints_a_short_console_and_exits_0(runs):
    root, pushed, *_ = runs
    assert pushed.returncode == console.EXIT_OK, pushed.stdout + pushed.stderr
    out = pushed.stdout.splitlines()
    assert len(out) <= 60
    assert not re.search(r"WARNING|absl|tensorflow/|I0000|E0000|Traceback", pushed.stdout)
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
    assert all(ref.startswith("data:image/png;base64,") for ref in parser.refs), parser.refs
    assert not re.search(r"https?://|<script|<link|@import|url\(", page)
    text = " ".join(parser.text)

    config = helpers.test_config(str(root / "data"), str(root / "out"))
    [uri] = helpers.output_uris(config, "RunReport", "report", execution=0)  # the pushed run's
    with open(os.path.join(uri, run_report.JSON_FILE)) as f:
        figures = json.load(f)
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
    root, pushed, _, _, (code, text), _ = runs
    assert code == console.EXIT_OK, text
    assert "warning: the run report could not be written (OSError: disk full (simulated))" in text
    served = os.listdir(root / "out" / "serving_model" / configs.MODEL_NAME)
    assert _summary(text)["verdict"] == f"blessed; already served as version {served[0]}: nothing new pushed"
    assert len(served) == 1


def test_a_second_run_with_nothing_changed_comes_whole_from_the_cache(runs):
    root, pushed, *_, (code, text) = runs
    assert code == console.EXIT_OK, text
    lines = [row for row in text.splitlines() if re.match(r"^  [A-Za-z_]+ +(ran|cached|done|failed) ", row)]
    assert lines and all(re.match(r"^  \S+ +(cached|done) ", row) for row in lines), text
    # the first run's gate table again, marked as such, and the same model still served
    assert "[gate] (cached) BLESSED" in text and re.search(r"^recall_at_10 .* ok$", text, re.M)
    served = os.listdir(root / "out" / "serving_model" / configs.MODEL_NAME)
    assert _summary(text)["verdict"] == f"blessed; already served as version {served[0]}: nothing new pushed"
    assert _summary(pushed.stdout)["report"] != _summary(text)["report"]  # a copy for this run too
    assert os.path.exists(_summary(text)["report"])


def test_a_second_run_on_a_busy_output_directory_exits_75(tmp_path, fake_data_dir):
    from runner import run_lock

    stream = io.StringIO()
    with run_lock.hold(str(tmp_path / "out")):  # as if another run were going on
        code = local_runner.main(["--data-dir", fake_data_dir, "--skip-checksums",
                                  "--output-dir", str(tmp_path / "out")], stream=stream)
    assert code == console.EXIT_BUSY
    assert f"another run is using {tmp_path / 'out'} (pid {os.getpid()}" in stream.getvalue()
    assert not (tmp_path / "out" / "metadata").exists()


def test_a_file_that_is_not_parquet_exits_4_naming_it(tmp_path, fake_data_dir):
    with open(os.path.join(fake_data_dir, configs.TRAIN_FILE), "wb") as f:
        f.write(b"not parquet at all")
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", fake_data_dir, "--skip-checksums",
                              "--output-dir", str(tmp_path / "out")], stream=stream)
    assert code == console.EXIT_DATA_REJECTED
    assert f"{configs.TRAIN_FILE}: not a readable parquet file" in stream.getvalue()
    assert not (tmp_path / "out").exists()  # rejected before anything was written
