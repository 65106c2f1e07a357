"""End to end on generated data, the whole pipeline: a good model is blessed and pushed; then a
model that cannot learn is refused by the Evaluator's gate and not pushed, and the pushed model
stays the good one; then the same model, against an absolute bound it clears, is refused by the
relative bound alone: it falls too far behind the served model. On data with nothing to learn
beyond popularity, the same good training is refused by the popularity rule alone: it passes
every absolute bound."""

import os

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components import evaluator
from pipeline import configs
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
SMALL = {"embedding_dim": 8, "epochs": 3, "batch_size": 64, "learning_rate": 0.05}
# A random ranking of the ~60 generated products puts the held-out one in the top 10 about 1
# time in 6; a trained model does far better (about 0.9 with SMALL on data with tastes, 0.6 to
# popularity's 0.6 without). Both gated metrics must also beat popularity by 10% (the default).
GATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.3, "sampled_accuracy": 0.0})
TASTES = 4  # users buy within one of 4 tastes: something beyond popularity to learn


# The gate changed, the model did not: the Evaluator judges the cached good model again
REGATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.3, "sampled_accuracy": 0.001})
# learning rate ~0 and no item graph (which needs no training): a random ranking
BAD = {**SMALL, "optimizer": "sgd", "learning_rate": 1e-9, "copurchase_weight": 0.0}
# An absolute bound a random ranking clears (it scores about 1/6), and the relative one: at most
# 1% below the served model (the good one, about 0.5); no popularity rule, so that the
# relative bound is the only one that can refuse it
LOW_BOUND = 0.05
RELATIVE = configs.GateConfig(lower_bounds={"recall_at_10": LOW_BOUND}, max_relative_drop=0.01,
                              popularity_margin=None)


def _config(root, overrides, gate=GATE, data="data", out="out", cold_start=False):
    return helpers.test_config(
        str(root / data), str(root / out), gate=gate,
        training=configs.TrainingConfig(overrides=overrides, serving_top_k=20, cold_start=cold_start))


def _pushed_versions(config):
    return sorted(os.listdir(config.serving_model_dir)) if os.path.isdir(config.serving_model_dir) else []


def _blessing(config, execution=-1):
    [uri] = helpers.output_uris(config, "Evaluator", "blessing", execution)
    return sorted(os.listdir(uri))  # TFX writes an empty BLESSED or NOT_BLESSED file


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    fake_asos.write_fake_asos(str(root / "data"), tastes=TASTES)
    good = _config(root, SMALL)
    helpers.run(good)
    after_good = (_pushed_versions(good), _blessing(good))
    bad = _config(root, BAD, cold_start=True)  # from nothing: a warm start would begin from the good model
    helpers.run(bad)
    # the good model from the cache under a changed gate: blessed again, already served
    helpers.run(_config(root, SMALL, gate=REGATE))
    # the random model from the cache, judged by the low absolute bound and the relative one
    helpers.run(_config(root, BAD, gate=RELATIVE, cold_start=True))
    return good, bad, after_good


def test_a_good_model_is_blessed_and_pushed(runs):
    good, _, (pushed, blessing) = runs
    assert blessing == ["BLESSED"]
    assert len(pushed) == 1
    model = tf.saved_model.load(os.path.join(good.serving_model_dir, pushed[0]))
    assert "call_item_item" in model.signatures


def test_the_gate_keeps_a_copy_of_its_eval_purchases_only_when_it_left_some_out(runs, tmp_path):
    """The eval purchases that repeat a pair a model trained on are left out (components/evaluator.py);
    without any, TFMA reads the eval split itself, and no copy of it is kept."""
    import pyarrow.parquet as pq

    from models import features

    good, _, _ = runs

    def pairs(name):
        table = pq.read_table(os.path.join(good.data_dir, name)).to_pydict()
        return list(zip(table[features.USER_KEY], table[features.PRODUCT_KEY]))

    trained = set(pairs(configs.TRAIN_FILE))
    repeats = sum(pair in trained for pair in pairs(configs.EVAL_FILE))
    [evaluation] = [a for a in helpers.store(good).get_artifacts_by_type("ModelEvaluation")
                    if a.uri == helpers.output_uris(good, "Evaluator", "evaluation", execution=0)[0]]
    assert evaluation.custom_properties[evaluator.REPEATS_LEFT_OUT].int_value == repeats
    assert evaluation.custom_properties[evaluator.EVAL_PURCHASES].int_value == len(pairs(configs.EVAL_FILE))
    assert os.path.isdir(os.path.join(evaluation.uri, evaluator.GATE_EXAMPLES_DIR)) == (repeats > 0)


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
    assert ran["Trainer"] == ["COMPLETE", "COMPLETE", "CACHED", "CACHED"]
    assert ran["Evaluator"] == ["COMPLETE"] * 4
    first, refused, _, _ = _pushes(bad)
    assert first == (1, os.path.join(good.serving_model_dir, pushed_after_good[0]))
    assert refused == (0, "")  # the bad model: not pushed
    assert _pushed_versions(bad) == pushed_after_good  # the good model stays the served one


def test_the_same_model_is_not_pushed_twice(runs):
    good, _, (pushed_after_good, _) = runs
    assert _blessing(good, execution=2) == ["BLESSED"]  # the cached good model, blessed again
    _, _, again, _ = _pushes(good)
    assert again == (1, os.path.join(good.serving_model_dir, pushed_after_good[0]))
    assert _pushed_versions(good) == pushed_after_good  # no second copy as a new version


def test_the_refusal_is_said_in_plain_words(runs):
    _, bad, _ = runs
    [evaluation] = helpers.output_uris(bad, "Evaluator", "evaluation", execution=1)
    blessed, report = evaluator.gate_report(evaluation, evaluator.eval_config(**GATE.eval_config_args()))
    assert not blessed
    assert "NOT BLESSED" in report and "will NOT be pushed" in report
    assert "compared with the served model" in report  # the good model is the baseline
    line = next(row for row in report.splitlines() if row.startswith("recall_at_10"))
    candidate, baseline = (float(v) for v in line.split()[1:3])
    assert candidate < 0.3 <= baseline and ">= 0.3" in line and line.endswith("FAILED")


def test_a_model_clearing_the_absolute_bound_is_refused_for_falling_behind_the_blessed_one(runs):
    good, bad, (pushed_after_good, _) = runs
    assert _blessing(bad, execution=3) == ["NOT_BLESSED"]
    [evaluation] = helpers.output_uris(bad, "Evaluator", "evaluation", execution=3)
    gate = evaluator.gate_verdict(evaluation)
    [row] = [r for r in gate["rows"] if r["threshold"] != "not gated"]
    assert row["metric"] == "recall_at_10" and row["result"] == "FAILED"
    assert row["candidate"] >= LOW_BOUND  # the absolute bound passes...
    assert row["candidate"] < 0.99 * row["baseline"]  # ...the relative one cannot
    # the baseline is the blessed good model, as its own evaluation measured it
    [good_evaluation] = helpers.output_uris(good, "Evaluator", "evaluation", execution=0)
    good_recall = evaluator.gate_verdict(good_evaluation)["values"][evaluator.CANDIDATE]["recall_at_10"]
    assert row["baseline"] == pytest.approx(good_recall) and good_recall >= 0.3
    # TFMA's own record of the refusal: one failure, the change threshold against the baseline
    [failure] = [f for per_slice in tfma.load_validation_result(evaluation).metric_validations_per_slice
                 for f in per_slice.failures]
    assert failure.metric_key.name == "recall_at_10" and failure.metric_key.is_diff
    assert failure.metric_threshold.HasField("change_threshold")
    assert not failure.metric_threshold.HasField("value_threshold")
    *_, refused = _pushes(bad)
    assert refused == (0, "")  # not pushed
    assert _pushed_versions(bad) == pushed_after_good


def test_the_drop_vs_served_is_judged_with_the_paired_interval_of_the_purchases_it_judged(runs):
    """TFMA's pass (models/eval_metrics.py `PairedDifference`) gives what numpy gives from both
    models' ranks of the purchases the gate judged: the mean difference, its standard error
    clustered by user, and one degree of freedom per user less one."""
    import numpy as np
    from tfx.utils import path_utils

    from models import features
    from models.ranking_metrics import evaluate_ranks, paired_interval, purchase_values

    good, bad, (pushed_after_good, _) = runs
    [evaluation] = helpers.output_uris(bad, "Evaluator", "evaluation", execution=3)
    kept = os.path.join(evaluation, evaluator.GATE_EXAMPLES_DIR, "Split-eval")
    if not os.path.isdir(kept):  # nothing left out: the gate judged the eval split itself
        [examples] = helpers.output_uris(bad, "FileBasedExampleGen", "examples", execution=3)
        kept = os.path.join(examples, "Split-eval")
    records = [r.numpy() for r in tf.data.TFRecordDataset(tf.io.gfile.glob(os.path.join(kept, "*")),
                                                          compression_type="GZIP")]
    [candidate] = helpers.output_uris(bad, "Trainer", "model", execution=3)
    ranks = [evaluate_ranks(tf.saved_model.load(d).signatures, records) for d in (
        path_utils.serving_model_path(candidate), os.path.join(good.serving_model_dir, pushed_after_good[0]))]
    differences = purchase_values("recall", 10, ranks[0]) - purchase_values("recall", 10, ranks[1])
    users = [tf.train.Example.FromString(r).features.feature[features.USER_KEY].bytes_list.value[0]
             for r in records]
    _, user_index = np.unique(users, return_inverse=True)
    expected = paired_interval(np.bincount(user_index, weights=differences), np.bincount(user_index))

    _, _, intervals = evaluator.read_metrics(evaluation)
    assert intervals["recall_at_10"][:2] == pytest.approx(expected[:2], rel=1e-9)
    assert intervals["recall_at_10"][2] == expected[2] == len(set(users)) - 1
    [row] = [r for r in evaluator.gate_verdict(evaluation)["rows"] if r["threshold"] != "not gated"]
    assert row["vs_served"]["result"] == "FAILED" and row["vs_served"]["high"] < 0  # beyond noise


def test_a_blessed_model_gets_batch_recommendations_for_every_user(runs):
    good, _, (pushed, _) = runs
    [uri] = helpers.output_uris(good, "BatchRecommendations", "recommendations", execution=0)
    users = helpers.check_batch_recommendations(
        os.path.join(uri, "recommendations"), os.path.join(good.serving_model_dir, pushed[0]),
        good.data_dir, good.training.serving_top_k)
    assert users == 120  # every one of write_fake_asos's 120 users buys something in train
    [artifact] = helpers.store(good).get_artifacts_by_uri(uri)
    assert artifact.custom_properties["users"].int_value == 120
    assert artifact.custom_properties["rows"].int_value == 2400  # 120 users, 20 products each


def test_a_refused_model_gets_no_batch_recommendations(runs):
    _, bad, _ = runs
    assert helpers.executions(bad)["BatchRecommendations"] == ["COMPLETE"] * 4
    [uri] = helpers.output_uris(bad, "BatchRecommendations", "recommendations", execution=1)
    assert not os.path.exists(uri) or os.listdir(uri) == []
    [artifact] = helpers.store(bad).get_artifacts_by_uri(uri)
    assert artifact.custom_properties["users"].int_value == 0


def _gate_rows(config, execution=-1):
    [evaluation] = helpers.output_uris(config, "Evaluator", "evaluation", execution)
    blessed, report = evaluator.gate_report(evaluation)
    return blessed, report, {row["metric"]: row for row in evaluator.gate_verdict(evaluation)["rows"]}


def test_the_models_margin_over_popularity_is_judged_in_the_same_pass(runs):
    good, bad, _ = runs
    _, _, rows = _gate_rows(good, execution=0)
    for metric in GATE.lower_bounds:  # the good model: far above popularity, computed by TFMA
        margin = rows[f"{metric}_over_popularity"]
        assert margin["result"] == "ok" and margin["candidate"] > 0.5, margin
        assert 0 <= rows[metric]["popularity"] < rows[metric]["candidate"]
    _, report, rows = _gate_rows(bad, execution=1)  # trained ~0 steps: below popularity too
    assert rows["recall_at_10_over_popularity"]["result"] == "FAILED"
    assert "no better than recommending the most bought products" in report


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory):
    """The good training on data whose purchases do not depend on who buys (no tastes): the
    model can only learn popularity."""
    root = tmp_path_factory.mktemp("degenerate")
    fake_asos.write_fake_asos(str(root / "data"))
    config = _config(root, SMALL)
    helpers.run(config)
    return config


def test_degenerate_data_is_refused_by_the_popularity_rule_alone(degenerate):
    blessed, report, rows = _gate_rows(degenerate)
    assert not blessed and _blessing(degenerate) == ["NOT_BLESSED"]
    assert _pushed_versions(degenerate) == []
    for metric, bound in GATE.lower_bounds.items():
        assert rows[metric]["result"] == "ok" and rows[metric]["candidate"] >= bound  # the bounds alone: blessed
        assert rows[f"{metric}_over_popularity"]["result"] == "FAILED"
        assert rows[f"{metric}_over_popularity"]["candidate"] < GATE.popularity_margin
    assert "against the most-popular-products baseline's" in report
