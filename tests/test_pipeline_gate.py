"""End to end on generated data, the whole pipeline: a good model is blessed and pushed; then a
model that cannot learn is refused by the Evaluator's gate and not pushed, and the pushed model
stays the good one."""

import os

import pytest
import tensorflow as tf

from components import evaluator
from pipeline import configs
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
SMALL = {"embedding_dim": 8, "epochs": 3, "batch_size": 64, "learning_rate": 0.05}
# A random ranking of the ~60 generated products puts the held-out one in the top 10 about 1
# time in 6; a trained model does far better (about 0.5 with SMALL).
GATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.3, "sampled_accuracy": 0.0})


# The gate changed, the model did not: the Evaluator judges the cached good model again
REGATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.3, "sampled_accuracy": 0.001})


def _config(root, overrides, gate=GATE, cold_start=False):
    return helpers.test_config(
        str(root / "data"), str(root / "out"), gate=gate,
        training=configs.TrainingConfig(overrides=overrides, serving_top_k=20, cold_start=cold_start))


def _pushed_versions(config):
    return sorted(os.listdir(config.serving_model_dir)) if os.path.isdir(config.serving_model_dir) else []


def _blessing(config, execution=-1):
    [uri] = helpers.output_uris(config, "Evaluator", "blessing", execution)
    return sorted(os.listdir(uri))  # TFX writes an empty BLESSED or NOT_BLESSED file


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    fake_asos.write_fake_asos(str(root / "data"))
    good = _config(root, SMALL)
    helpers.run(good)
    after_good = (_pushed_versions(good), _blessing(good))
    # learning rate ~0 and no item graph (which needs no training), from nothing (a warm start
    # would begin from the good model's tables): a random ranking
    bad = _config(root, {**SMALL, "optimizer": "sgd", "learning_rate": 1e-9, "copurchase_weight": 0.0},
                  cold_start=True)
    helpers.run(bad)
    # the good model from the cache under a changed gate: blessed again, already served
    helpers.run(_config(root, SMALL, gate=REGATE))
    return good, bad, after_good


def test_a_good_model_is_blessed_and_pushed(runs):
    good, _, (pushed, blessing) = runs
    assert blessing == ["BLESSED"]
    assert len(pushed) == 1
    model = tf.saved_model.load(os.path.join(good.serving_model_dir, pushed[0]))
    assert "call_item_item" in model.signatures


def _pushes(config):
    """(pushed, destination) of every Pusher execution's output, oldest first."""
    mlmd = helpers.store(config)
    pushed = sorted(mlmd.get_artifacts_by_type("PushedModel"), key=lambda a: a.id)
    return [(a.custom_properties["pushed"].int_value,
             a.custom_properties["pushed_destination"].string_value) for a in pushed]


def test_a_bad_model_is_not_blessed_and_not_pushed(runs):
    good, bad, (pushed_after_good, _) = runs
    assert _blessing(bad, execution=1) == ["NOT_BLESSED"]
    ran = helpers.executions(bad)
    assert ran["Trainer"] == ["COMPLETE", "COMPLETE", "CACHED"]
    assert ran["Evaluator"] == ["COMPLETE", "COMPLETE", "COMPLETE"]
    first, refused, _ = _pushes(bad)
    assert first == (1, os.path.join(good.serving_model_dir, pushed_after_good[0]))
    assert refused == (0, "")  # the bad model: not pushed
    assert _pushed_versions(bad) == pushed_after_good  # the good model stays the served one


def test_the_same_model_is_not_pushed_twice(runs):
    good, _, (pushed_after_good, _) = runs
    assert _blessing(good) == ["BLESSED"]  # the cached good model, blessed again
    *_, again = _pushes(good)
    assert again == (1, os.path.join(good.serving_model_dir, pushed_after_good[0]))
    assert _pushed_versions(good) == pushed_after_good  # no second copy as a new version


def test_the_refusal_is_said_in_plain_words(runs):
    _, bad, _ = runs
    [evaluation] = helpers.output_uris(bad, "Evaluator", "evaluation", execution=1)
    gate = evaluator.eval_config(GATE.lower_bounds, GATE.max_relative_drop)
    blessed, report = evaluator.gate_report(evaluation, gate)
    assert not blessed
    assert "NOT BLESSED" in report and "will NOT be pushed" in report
    assert "compared with the served model" in report  # the good model is the baseline
    line = next(row for row in report.splitlines() if row.startswith("recall_at_10"))
    candidate, baseline = (float(v) for v in line.split()[1:3])
    assert candidate < 0.3 <= baseline and ">= 0.3" in line and line.endswith("FAILED")


def test_a_blessed_model_gets_batch_recommendations_for_every_user(runs):
    good, _, (pushed, _) = runs
    [uri] = helpers.output_uris(good, "BatchRecommendations", "recommendations", execution=0)
    users = helpers.check_batch_recommendations(
        os.path.join(uri, "recommendations"), os.path.join(good.serving_model_dir, pushed[0]),
        good.data_dir, good.training.serving_top_k)
    [artifact] = helpers.store(good).get_artifacts_by_uri(uri)
    assert artifact.custom_properties["users"].int_value == users


def test_a_refused_model_gets_no_batch_recommendations(runs):
    _, bad, _ = runs
    assert helpers.executions(bad)["BatchRecommendations"] == ["COMPLETE", "COMPLETE", "COMPLETE"]
    [uri] = helpers.output_uris(bad, "BatchRecommendations", "recommendations", execution=1)
    assert not os.path.exists(uri) or os.listdir(uri) == []
    [artifact] = helpers.store(bad).get_artifacts_by_uri(uri)
    assert artifact.custom_properties["users"].int_value == 0
