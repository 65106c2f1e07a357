"""The compiled Vertex AI pipeline, run: kubeflow_v2_runner.py compiles it with local roots (no
Dataflow), kubeflow_v2/harness.py runs every task's container command as Vertex would, three
times, on a data root of span folders.

The first run (span 1 only) trains, blesses and pushes a model (nothing served yet: no baseline)
and writes the batch recommendations. The second, with nothing changed, takes everything up to
the CatalogCheck from Vertex's cache; ServedBaseline runs uncached, finds that the served model is
the first run's own (same data, same training) and gives its baseline again (none), so the
Trainer trains again from the same start, to the same model, and nothing new is pushed. Then
span 2 arrives: the third run's ExampleGen is not cached (the pre-cache check's fingerprint
covers every span's files), reads spans 1 and 2 and span 2's eval file, the drift gate compares
span 2 with span 1, the Trainer warm-starts from the first run's model and the Evaluator judges
the new model against it. The pushed model answers both serving signatures."""

import dataclasses
import json
import os
import re
import shutil

import pyarrow.parquet as pq
import pytest

import kubeflow_v2_runner
from kubeflow_v2 import harness, settings
from models import features, trainer
from pipeline import configs
from runner import console
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e

SMALL = {"embedding_dim": 8, "epochs": 3, "batch_size": 64, "learning_rate": 0.05}
GATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.3, "sampled_accuracy": 0.0})
TOP_K = 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vertex_local")
    data = root / "data"
    fake_asos.write_fake_spans(str(data), num_spans=2, span_eval=(2,), tastes=4)  # tastes: a model can beat popularity
    shutil.move(str(data / "span-2"), str(root / "span-2"))  # arrives before the third run
    config, _, _ = settings.parse_compile_args(
        ["--project", "local-project", "--region", "europe-west1"]
        + helpers.harness_compile_flags(str(root), str(data)),
        environ={})
    config = dataclasses.replace(
        config, gate=GATE, training=configs.TrainingConfig(overrides=SMALL, serving_top_k=TOP_K),
        drift=configs.DriftConfig(thresholds=fake_asos.SPAN_DRIFT_THRESHOLDS))
    path, _ = kubeflow_v2_runner.compile_pipeline(config, str(root / "compiled"))
    runner = harness.VertexLocalRunner(path, str(root / "logs"))
    first = runner.run()
    second = runner.run()
    served_after_second = sorted(os.listdir(config.serving_model_dir))
    shutil.move(str(root / "span-2"), str(data / "span-2"))
    third = runner.run()
    return dict(config=config, data=str(data), runner=runner, first=first, second=second, third=third,
                served_after_second=served_after_second)


def _facts(result):
    """The training.json of the model the run's Trainer exported."""
    uri = result.artifact("Trainer", "model")["uri"]
    with open(os.path.join(uri, "Format-Serving", trainer.TRAINING_FACTS)) as f:
        return json.load(f)


def _containers(result, cached):
    return sorted(t.name for t in result.tasks.values() if t.kind == "container" and t.cached is cached)


def test_first_run_trains_blesses_pushes_and_writes_the_batch(runs):
    first = runs["first"]
    assert _containers(first, cached=True) == []
    assert not [t for t in first.tasks if "resolver" in t.lower()]  # the baseline is a component
    served = first.artifact("ServedBaseline", "model")
    assert served["metadata"]["found"] == 0 and served["metadata"]["reason"] == "no model is served yet"
    blessing = first.artifact("Evaluator", "blessing")
    assert blessing["metadata"]["blessed"] == 1 and "baseline_model_id" not in blessing["metadata"]
    # the Evaluator names the model it judged by its Vertex artifact name
    assert blessing["metadata"]["current_model_id"] == first.artifact("Trainer", "model")["name"]
    assert _facts(first)["start"]["kind"] == "cold"
    pushed = first.artifact("Pusher", "pushed_model")
    assert pushed["metadata"]["pushed"] == 1
    assert os.path.dirname(pushed["metadata"]["pushed_destination"]) == runs["config"].serving_model_dir
    batch = first.artifact("BatchRecommendations", "recommendations")
    users = helpers.check_batch_recommendations(
        os.path.join(batch["uri"], "recommendations"), pushed["metadata"]["pushed_destination"],
        runs["data"], TOP_K, train_files=[os.path.join(runs["data"], "span-1", configs.TRAIN_FILE)])
    assert batch["metadata"]["users"] == users and batch["metadata"]["top_k"] == TOP_K
    with open(os.path.join(batch["uri"], "summary.json")) as f:
        assert json.load(f)["users"] == users


def test_a_second_run_with_nothing_changed_decides_the_first_runs_baseline_again(runs):
    first, second = runs["first"], runs["second"]
    assert set(_containers(second, cached=True)) == {
        "FileBasedExampleGen", "StatisticsGen", "StrictExampleValidator", "DriftGate", "Transform", "CatalogCheck"}
    # ServedBaseline runs uncached (its answer is in no input of the task), and so does what reads it
    assert {"ServedBaseline", "Trainer", "Evaluator", "Pusher"} <= set(_containers(second, cached=False))
    version = first.artifact("Pusher", "pushed_model")["metadata"]["pushed_version"]
    served = second.artifact("ServedBaseline", "model")["metadata"]
    assert (served["found"], served["served_version"]) == (0, version)
    assert served["reason"].endswith("was trained on this data with this configuration: its own baseline again")
    assert _facts(second)["start"]["kind"] == "cold"
    assert second.artifact("Evaluator", "blessing")["metadata"]["blessed"] == 1
    # the same start, the same seed: the same model (its fingerprint, but for the export's uuid),
    # already served: no second version
    pushed = second.artifact("Pusher", "pushed_model")["metadata"]
    assert (pushed["pushed"], pushed["pushed_version"]) == (1, version)
    assert runs["served_after_second"] == [version]


def _metadata(artifact, key):
    """A custom property as Kubeflow V2 carries it (under a prefix when a declared property has its name)."""
    return artifact["metadata"].get(key, artifact["metadata"].get(f"__custom_property__{key}"))


def test_the_first_run_reads_span_one_and_has_nothing_to_compare(runs):
    examples = runs["first"].artifact("FileBasedExampleGen", "examples")
    assert (_metadata(examples, "span"), examples["metadata"]["window_spans"],
            examples["metadata"]["eval_source"]) == (1, "1", "standing")
    drift = runs["first"].artifact("DriftGate", "drift_report")
    assert drift["metadata"]["compared"] == 0


def test_a_new_span_runs_the_pipeline_again_on_the_window_with_the_drift_gate(runs):
    third = runs["third"]
    # the pre-cache check's fingerprint covers every span's files: the new span is seen
    ran = set(_containers(third, cached=False))
    assert {"FileBasedExampleGen", "DriftGate", "Transform", "Trainer", "Evaluator"} <= ran
    examples = third.artifact("FileBasedExampleGen", "examples")
    metadata = examples["metadata"]
    assert (_metadata(examples, "span"), metadata["window_spans"], metadata["eval_source"]) == (2, "1,2", "span-2")
    assert "split:span_train,num_files:2," in metadata["input_fingerprint"]
    drift = third.artifact("DriftGate", "drift_report")
    assert (drift["metadata"]["compared"], drift["metadata"]["drifted"], drift["metadata"]["previous_span"]) == (
        1, 0, 1)
    with open(os.path.join(drift["uri"], "drift.json")) as f:
        assert json.load(f)["newest"]["name"] == "span-2"
    # warm-started from the first run's model, and judged against it on span 2's eval file
    version = runs["first"].artifact("Pusher", "pushed_model")["metadata"]["pushed_version"]
    served = third.artifact("ServedBaseline", "model")
    assert (served["metadata"]["found"], served["metadata"]["version"]) == (1, version)
    start = _facts(third)["start"]
    assert start["kind"] == "warm" and start["from_version"] == version and start["carried_products"] > 0
    assert third.artifact("Evaluator", "blessing")["metadata"]["baseline_model_id"] == served["name"]
    assert _facts(third)["data"]["window_spans"] == [1, 2]


def test_the_pushed_model_answers_both_signatures(runs):
    version = max(os.listdir(runs["config"].serving_model_dir), key=int)
    users = sorted(set(pq.read_table(os.path.join(runs["data"], "span-1", configs.TRAIN_FILE)).column(
        features.USER_KEY).to_pylist()))[:3]  # users every run's model knows
    helpers.check_serving_signatures(os.path.join(runs["config"].serving_model_dir, version), runs["data"], TOP_K,
                                     users=users)


def test_the_metadata_record_holds_every_run(runs):
    store = harness.MetadataStore(os.path.join(runs["config"].pipeline_root, harness.METADATA_FILE))
    assert store.data["runs"] == [runs[n].run_id for n in ("first", "second", "third")]
    blessed = store.query('schema_title="tfx.ModelBlessing" AND metadata.blessed.number_value=1')
    assert [b["run"] for b in blessed][-2:] == [runs["second"].run_id, runs["first"].run_id]


def test_a_run_ends_with_the_gates_table_and_make_runs_summary(runs):
    """What `python -m kubeflow_v2.harness` prints after the third run (harness.result_lines):
    the gate's table and the summary of a local run, with the Trainer's warm start, the drift
    gate's verdict and the run's report."""
    third = runs["third"]
    lines, code = harness.result_lines(runs["runner"], third, "/logs/harness.log")
    assert code == 0
    text = "\n".join(lines)
    assert "[gate] BLESSED: the model passes the gate, on to the Pusher (compared with the served model)" in text
    assert console.too_wide(text.splitlines()) == []  # as make run's console: every line fits, but a path
    version = runs["first"].artifact("Pusher", "pushed_model")["metadata"]["pushed_version"]
    assert any(line.startswith(f"  start          warm from version {version}: ") for line in lines)
    # the drift row: the verdict, the figures within their thresholds left to the report
    assert "  drift          span-2 vs span-1 within the thresholds" in lines
    rows = console.summary_rows(lines)
    report = rows["report"]
    assert report.startswith(runs["config"].pipeline_root) and os.path.isfile(report)
    assert rows["full log"].startswith("/logs/harness.log") and "each task's: " in rows["full log"]
    assert rows["exit code"] == "0"
    # its tasks counted, not named (it named each one that ran, about 220 columns)
    assert re.fullmatch(rf"\[vertex-local\] {third.run_id}: 13 tasks: \d+ ran(, \d+ cached)?, 1 imported", lines[0])
