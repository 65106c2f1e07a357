"""The compiled Vertex AI pipeline, run: kubeflow_v2_runner.py compiles it with local roots (no
Dataflow), tests/harness.py runs every task's container command as Vertex would, three times.

The first run trains, blesses and pushes a model (nothing served yet: no baseline) and writes
the batch recommendations. The second, with nothing changed, takes everything up to the
CatalogCheck from Vertex's cache; ServedBaseline runs uncached, finds that the served model is
the first run's own (same data, same training) and gives its baseline again (none), so the
Trainer trains again from the same start, to the same model, and nothing new is pushed. The
third has new data: the first run's model is the baseline, the Trainer warm-starts from it and
the Evaluator compares with it. The pushed model answers both serving signatures."""

import dataclasses
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
import tensorflow as tf

import kubeflow_v2_runner
from kubeflow_v2 import harness, settings
from models import trainer
from pipeline import configs
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e

SMALL = {"embedding_dim": 8, "epochs": 3, "batch_size": 64, "learning_rate": 0.05}
GATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.3, "sampled_accuracy": 0.0})
TOP_K = 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vertex_local")
    data = root / "data"
    fake_asos.write_fake_asos(str(data))
    config, _, _ = settings.parse_compile_args([
        "--project", "local-project", "--region", "local", "--bucket", "unused", "--image", "unused",
        "--pipeline-root", str(root / "pipeline_root"), "--data-root", str(data),
        "--schema-dir", configs.SCHEMA_DIR, "--serving-model-dir", str(root / "serving"),
        # the tiny data: one Beam worker in the component's process (the default starts one per core)
        "--beam-arg=--direct_running_mode=in_memory", "--beam-arg=--direct_num_workers=1",
    ], environ={})
    config = dataclasses.replace(
        config, gate=GATE, training=configs.TrainingConfig(overrides=SMALL, serving_top_k=TOP_K))
    path, _ = kubeflow_v2_runner.compile_pipeline(config, str(root / "compiled"))
    runner = harness.VertexLocalRunner(path, str(root / "logs"))
    first = runner.run()
    second = runner.run()
    # what the first two runs saw and left, before the third changes them
    shutil.copytree(data, root / "data-first")
    served_after_second = sorted(os.listdir(config.serving_model_dir))
    # new data: the train file without its last tenth of purchases
    train = pq.read_table(str(data / configs.TRAIN_FILE))
    pq.write_table(train.slice(0, train.num_rows * 9 // 10), str(data / configs.TRAIN_FILE))
    third = runner.run()
    return dict(config=config, data=str(data), data_first=str(root / "data-first"), runner=runner,
                first=first, second=second, third=third, served_after_second=served_after_second)


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
        runs["data_first"], TOP_K)
    assert batch["metadata"]["users"] == users and batch["metadata"]["top_k"] == TOP_K
    with open(os.path.join(batch["uri"], "summary.json")) as f:
        assert json.load(f)["users"] == users


def test_a_second_run_with_nothing_changed_decides_the_first_runs_baseline_again(runs):
    first, second = runs["first"], runs["second"]
    assert set(_containers(second, cached=True)) == {
        "FileBasedExampleGen", "StatisticsGen", "StrictExampleValidator", "Transform", "CatalogCheck"}
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


def test_new_data_warm_starts_from_the_served_model_and_is_judged_against_it(runs):
    first, third = runs["first"], runs["third"]
    assert _containers(third, cached=True) == []  # new data: every task runs
    version = first.artifact("Pusher", "pushed_model")["metadata"]["pushed_version"]
    served = third.artifact("ServedBaseline", "model")
    assert (served["metadata"]["found"], served["metadata"]["version"]) == (1, version)
    start = _facts(third)["start"]
    assert start["kind"] == "warm" and start["from_version"] == version and start["carried_products"] > 0
    blessing = third.artifact("Evaluator", "blessing")["metadata"]
    assert blessing["baseline_model_id"] == served["name"]


def test_the_pushed_model_answers_both_signatures(runs):
    version = max(os.listdir(runs["config"].serving_model_dir), key=int)
    model = tf.saved_model.load(os.path.join(runs["config"].serving_model_dir, version))
    items = [int(line) for line in open(os.path.join(runs["data"], configs.CATALOG_FILE))][:3]
    similar = model.signatures["call_item_item"](item=tf.constant(items, tf.int64))
    assert similar["products"].shape == (3, TOP_K)
    users = [line.strip().encode() for line in open(os.path.join(runs["data"], configs.USERS_FILE))][:3]
    recommended = model.signatures["serving_default"](user_id=tf.constant(users))
    assert recommended["products"].shape == (3, TOP_K)
    assert bool(tf.reduce_all(recommended["known_user"]))


def test_the_metadata_record_holds_every_run(runs):
    store = harness.MetadataStore(os.path.join(runs["config"].pipeline_root, harness.METADATA_FILE))
    assert store.data["runs"] == [runs[n].run_id for n in ("first", "second", "third")]
    blessed = store.query('schema_title="tfx.ModelBlessing" AND metadata.blessed.number_value=1')
    assert [b["run"] for b in blessed][-2:] == [runs["second"].run_id, runs["first"].run_id]
