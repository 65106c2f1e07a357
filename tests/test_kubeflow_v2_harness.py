"""The compiled Vertex AI pipeline, run: kubeflow_v2_runner.py compiles it with local roots (no
Dataflow), tests/harness.py runs every task's container command as Vertex would, twice.

The first run trains, blesses and pushes a model (no baseline yet) and writes the batch
recommendations; the second run resolves the first run's model as the baseline, takes the rest
from Vertex's cache and blesses again. The pushed model answers both serving signatures."""

import dataclasses
import json
import os

import pytest

import kubeflow_v2_runner
from kubeflow_v2 import harness, settings
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
    config, _, _ = settings.parse_compile_args(
        ["--project", "local-project", "--region", "local"] + helpers.harness_compile_flags(str(root), str(data)),
        environ={})
    config = dataclasses.replace(
        config, gate=GATE, training=configs.TrainingConfig(overrides=SMALL, serving_top_k=TOP_K))
    path, _ = kubeflow_v2_runner.compile_pipeline(config, str(root / "compiled"))
    runner = harness.VertexLocalRunner(path, str(root / "logs"))
    first = runner.run()
    second = runner.run()
    return dict(config=config, data=str(data), runner=runner, first=first, second=second)


def _containers(result, cached):
    return sorted(t.name for t in result.tasks.values() if t.kind == "container" and t.cached is cached)


def test_first_run_trains_blesses_pushes_and_writes_the_batch(runs):
    first = runs["first"]
    assert _containers(first, cached=True) == []
    assert first.artifact("latest_blessed_model_resolver-model-blessing-resolver", "model_blessing") is None
    assert first.artifact("latest_blessed_model_resolver-model-resolver", "model") is None
    blessing = first.artifact("Evaluator", "blessing")
    assert blessing["metadata"]["blessed"] == 1
    # the Evaluator names the model it judged by its Vertex artifact name
    assert blessing["metadata"]["current_model_id"] == first.artifact("Trainer", "model")["name"]
    pushed = first.artifact("Pusher", "pushed_model")
    assert pushed["metadata"]["pushed"] == 1
    assert os.path.dirname(pushed["metadata"]["pushed_destination"]) == runs["config"].serving_model_dir
    batch = first.artifact("BatchRecommendations", "recommendations")
    users = helpers.check_batch_recommendations(
        os.path.join(batch["uri"], "recommendations"), pushed["metadata"]["pushed_destination"],
        runs["data"], TOP_K)
    assert batch["metadata"]["users"] == users and batch["metadata"]["top_k"] == TOP_K
    with open(os.path.join(batch["uri"], "summary.json")) as f:
        assert json.load(f)["users"] == users


def test_second_run_compares_with_the_first_runs_model(runs):
    first, second = runs["first"], runs["second"]
    resolved = second.artifact("latest_blessed_model_resolver-model-resolver", "model")
    assert resolved is not None and resolved["uri"] == first.artifact("Trainer", "model")["uri"]
    assert second.artifact("latest_blessed_model_resolver-model-blessing-resolver",
                           "model_blessing")["uri"] == first.artifact("Evaluator", "blessing")["uri"]
    # nothing changed: every task up to the Trainer comes from Vertex's cache; the Evaluator runs
    # again because its baseline input is new, and so do the tasks that read its blessing
    assert "Trainer" in _containers(second, cached=True)
    assert {"Evaluator", "Pusher", "BatchRecommendations"} <= set(_containers(second, cached=False))
    blessing = second.artifact("Evaluator", "blessing")
    assert blessing["metadata"]["blessed"] == 1
    assert blessing["metadata"]["baseline_model_id"] == resolved["name"]
    # the same model is served: no second version
    assert len(os.listdir(runs["config"].serving_model_dir)) == 1


def test_the_pushed_model_answers_both_signatures(runs):
    [version] = os.listdir(runs["config"].serving_model_dir)
    helpers.check_serving_signatures(os.path.join(runs["config"].serving_model_dir, version), runs["data"], TOP_K)


def test_the_metadata_record_holds_both_runs(runs):
    store = harness.MetadataStore(os.path.join(runs["config"].pipeline_root, harness.METADATA_FILE))
    assert store.data["runs"] == [runs["first"].run_id, runs["second"].run_id]
    blessed = store.query('schema_title="tfx.ModelBlessing" AND metadata.blessed.number_value=1')
    assert [b["run"] for b in blessed] == [runs["second"].run_id, runs["first"].run_id]
