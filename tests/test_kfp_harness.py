"""The pipeline compiled for open-source Kubeflow Pipelines 2, run: kubeflow_v2_runner.py --target
kfp compiles it with local roots, the harness's KFP mode (kubeflow_v2/kfp_harness.py) runs every
task's container as the KFP 2 backend and launcher would, twice, on generated data.

The first run trains, blesses and pushes a model (nothing is served yet). Then other data arrives
(the train file loses its last tenth, its products stay); the second run reads it (ExampleGen
is never cached on KFP), warm-starts from the model the first run pushed and judges its
candidate against it: the served model (DECISIONS D3), with no resolver task; and pushes it.
Every purchase it reads is one the served model trained on: its warm start has nothing new to
learn, takes no step, and still writes everything a training writes."""

import dataclasses
import hashlib
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest

import kubeflow_v2_runner
from kubeflow_v2 import harness, kfp_harness, settings
from pipeline import configs
from runner import console
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e

SMALL = {"embedding_dim": 8, "epochs": 3, "batch_size": 64, "learning_rate": 0.05}
# a real comparison with the served model (a relative bound), lenient enough that a model
# retrained on a little less data passes it: the second run pushes
GATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.3, "sampled_accuracy": 0.0}, max_relative_drop=0.5)
TOP_K = 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kfp_local")
    data = root / "data"
    fake_asos.write_fake_asos(str(data), tastes=4)  # a model can beat popularity (the gate's rule)
    config, _, _ = settings.parse_compile_args(
        ["--target", "kfp"] + helpers.harness_compile_flags(str(root), str(data)), environ={})
    config = dataclasses.replace(
        config, gate=GATE, training=configs.TrainingConfig(overrides=SMALL, serving_top_k=TOP_K))
    path, _ = kubeflow_v2_runner.compile_pipeline(config, str(root / "compiled"))
    runner = kfp_harness.KfpLocalRunner(path, str(root / "logs"))
    first = runner.run()
    shutil.copytree(data, root / "data-first")  # what the first run read
    train = pq.read_table(str(data / configs.TRAIN_FILE))
    pq.write_table(train.slice(0, train.num_rows * 9 // 10), str(data / configs.TRAIN_FILE))
    second = runner.run()
    return dict(config=config, data=str(data), data_first=str(root / "data-first"), runner=runner,
                first=first, second=second, logs=str(root / "logs"))


def _containers(result, cached):
    return sorted(t.name for t in result.tasks.values() if t.kind == "container" and t.cached is cached)


def _saved_model_digest(uri):
    for candidate in (os.path.join(uri, "Format-Serving"), uri):
        path = os.path.join(candidate, "saved_model.pb")
        if os.path.exists(path):
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
    raise AssertionError(f"no SavedModel under {uri}")


def test_first_run_trains_blesses_pushes_and_writes_the_batch(runs):
    first = runs["first"]
    assert _containers(first, cached=True) == []
    assert not any(t.kind == "resolver" for t in first.tasks.values())
    # ExampleGen ran as KFP runs it: without its pre-cache hook (no driver log), and it still
    # read both splits
    assert not os.path.exists(os.path.join(runs["logs"], first.run_id, "FileBasedExampleGen.pre_cache_check.log"))
    assert json.loads(first.artifact("FileBasedExampleGen", "examples")["metadata"]["split_names"]) == ["train", "eval"]
    blessing = first.artifact("Evaluator", "blessing")
    assert blessing["metadata"]["blessed"] == 1
    # the Evaluator names the model it judged by its ML Metadata id, as KFP's launcher gave it
    assert blessing["metadata"]["current_model_id"] == first.artifact("Trainer", "model")["name"]
    # nothing served yet: no baseline, or one that found nothing (DECISIONS D3)
    baseline = first.tasks["Evaluator"].inputs.get("baseline_model")
    assert not baseline or not baseline[0]["metadata"].get("found")
    pushed = first.artifact("Pusher", "pushed_model")
    assert pushed["metadata"]["pushed"] == 1
    assert os.path.dirname(pushed["metadata"]["pushed_destination"]) == runs["config"].serving_model_dir
    batch = first.artifact("BatchRecommendations", "recommendations")
    users = helpers.check_batch_recommendations(
        os.path.join(batch["uri"], "recommendations"), pushed["metadata"]["pushed_destination"],
        runs["data_first"], TOP_K)
    assert batch["metadata"]["users"] == users and batch["metadata"]["top_k"] == TOP_K
    assert first.artifact("RunReport", "report")["metadata"]["pushed"] == 1


def test_second_run_reads_the_new_data_and_trains_again(runs):
    first, second = runs["first"], runs["second"]
    # no pre-cache hook on KFP: ExampleGen's task is compiled uncached (tests/test_kfp_compile.py),
    # so it reads the data directory again, and its new examples make every task after it run
    assert "FileBasedExampleGen" in _containers(second, cached=False)
    assert {"Transform", "Trainer", "Evaluator", "Pusher"} <= set(_containers(second, cached=False))
    assert second.artifact("Trainer", "model")["name"] != first.artifact("Trainer", "model")["name"]


def test_second_run_warm_starts_with_nothing_new_to_learn(runs):
    model = runs["second"].artifact("Trainer", "model")["uri"]
    with open(os.path.join(model, "Format-Serving", "assets.extra", "training.json")) as f:
        start = json.load(f)["start"]
    assert start["kind"] == "warm" and start["new_purchases"] == 0
    with open(os.path.join(runs["second"].artifact("Trainer", "model_run")["uri"], "training_history.json")) as f:
        assert json.load(f) == []  # no step


def test_second_run_judges_its_candidate_against_the_first_runs_pushed_model(runs):
    first, second = runs["first"], runs["second"]
    [baseline] = second.tasks["Evaluator"].inputs["baseline_model"]
    assert baseline["metadata"]["found"] == 1
    served = first.artifact("Pusher", "pushed_model")["metadata"]["pushed_destination"]
    assert _saved_model_digest(baseline["uri"]) == _saved_model_digest(served)
    blessing = second.artifact("Evaluator", "blessing")
    assert blessing["metadata"]["baseline_model_id"] == baseline["name"]
    assert blessing["metadata"]["blessed"] == 1  # judged with the relative bound too
    pushed = second.artifact("Pusher", "pushed_model")
    assert pushed["metadata"]["pushed"] == 1
    versions = sorted(os.listdir(runs["config"].serving_model_dir), key=int)
    assert len(versions) == 2 and os.path.basename(pushed["metadata"]["pushed_destination"]) == versions[-1]


def test_the_pushed_models_answer_both_signatures(runs):
    for version in os.listdir(runs["config"].serving_model_dir):
        helpers.check_serving_signatures(os.path.join(runs["config"].serving_model_dir, version), runs["data"], TOP_K)


def test_a_run_ends_with_the_gates_table_and_make_runs_summary(runs):
    """What `python -m kubeflow_v2.harness --kfp` prints after the second run
    (harness.result_lines): the gate's table and a local run's summary, with the warm start."""
    lines, code = harness.result_lines(runs["runner"], runs["second"], "/logs/harness.log")
    assert code == 0
    text = "\n".join(lines)
    assert lines[0].startswith("[kfp-local] ") and "[gate] BLESSED: " in text
    assert console.too_wide(text.splitlines()) == []  # as make run's console: every line fits, but a path
    version = runs["first"].artifact("Pusher", "pushed_model")["metadata"]["pushed_version"]
    assert any(line.startswith(f"  start          warm from version {version}: ") for line in lines)
    assert any(line.startswith("  verdict        blessed and pushed as version ") for line in lines)
    [report] = [line.split()[-1] for line in lines if line.startswith("  report ")]
    assert os.path.isfile(report) and "  exit code      0" in lines
