import numpy as np
import pytest

import tensorflow_model_analysis as tfma

from models import features
from models.eval_metrics import RankingMetric, RecallCurve

# ranks of four purchases: full-catalog rank, rank among the 100 sampled products
RANKS = np.array([[0, 0], [4, 0], [12, 3], [99, 7]], np.float32)


@pytest.mark.parametrize("kind, k, expected", [
    ("recall", 10, 2 / 4),
    ("recall", 100, 4 / 4),
    ("ndcg", 10, (1 + 1 / np.log2(6)) / 4),
    ("mrr", 0, (1 + 1 / 5 + 1 / 13 + 1 / 100) / 4),
    ("sampled_accuracy", 0, 2 / 4),
])
def test_values(kind, k, expected):
    metric = RankingMetric(kind, k)
    metric.update_state(np.zeros([4, 1]), RANKS)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)


def test_rebuilt_from_config_as_tfma_does():
    metric = RankingMetric("ndcg", 10)
    clone = RankingMetric.from_config(metric.get_config())
    assert (clone.name, clone.kind, clone.k) == ("ndcg_at_10", "ndcg", 10)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        RankingMetric("precision", 10)


def _curve(ranks, max_k, weights=None):
    """RecallCurve's value through its TFMA computation, fed one purchase at a time."""
    [computation] = RecallCurve(max_k=max_k).computations(model_names=[""], output_names=[""])
    combiner = computation.combiner
    halves = []
    for part in (slice(0, len(ranks) // 2), slice(len(ranks) // 2, None)):  # merged as Beam does
        acc = combiner.create_accumulator()
        for row in ranks[part]:
            acc = combiner.add_input(acc, tfma.metrics.StandardMetricInputs(
                label=np.array([0.0]), prediction=row, example_weight=np.array([1.0])))
        halves.append(acc)
    [value] = combiner.extract_output(combiner.merge_accumulators(halves)).values()
    return value


def test_recall_curve_is_recall_at_every_k():
    curve = _curve(RANKS, max_k=100)
    assert curve.shape == (100,)
    for k in (1, 5, 10, 13, 100):
        metric = RankingMetric("recall", k)
        metric.update_state(np.zeros([4, 1]), RANKS)
        assert curve[k - 1] == pytest.approx(float(metric.result())), k
    assert list(_curve(RANKS, max_k=3)) == [0.25, 0.25, 0.25]  # ranks past max_k count as misses


def test_recall_curve_is_rebuilt_from_its_config_as_tfma_does():
    clone = RecallCurve.from_config(RecallCurve(max_k=7).get_config())
    assert clone.name == "recall_at_k_curve" and clone.get_config()["max_k"] == 7


POPULAR = np.array([[2, 0], [20, 5], [1, 0], [50, 9]], np.float32)  # popularity's ranks of the same purchases


def _margin(predictions, metric="recall_at_10", kind="recall", k=10, model_name=""):
    """PopularityMargin's values through its TFMA computation, one purchase at a time."""
    from models.eval_metrics import PopularityMargin

    [computation] = PopularityMargin(metric, kind, k).computations(model_names=[model_name], output_names=[""])
    combiner = computation.combiner
    acc = combiner.create_accumulator()
    for prediction in predictions:
        acc = combiner.add_input(acc, tfma.metrics.StandardMetricInputs(
            label=np.array([0.0]), prediction=prediction, example_weight=np.array([1.0])))
    return {key.name: value for key, value in combiner.extract_output(combiner.merge_accumulators([acc])).items()}


def test_the_margin_over_popularity_comes_from_the_same_predictions():
    rows = [{"ranks": r, "popularity_ranks": p} for r, p in zip(RANKS, POPULAR)]
    values = _margin(rows)
    assert values["popularity_recall_at_10"] == pytest.approx(2 / 4)  # popularity ranks 2 and 1 in the top 10
    assert values["recall_at_10_over_popularity"] == pytest.approx(0.0)  # the model: 2 / 4 as well
    sampled = _margin(rows, "sampled_accuracy", "sampled_accuracy", 0)
    assert sampled["popularity_sampled_accuracy"] == pytest.approx(2 / 4)
    ndcg = _margin(rows, "ndcg_at_10", "ndcg", 10)
    model = (1 + 1 / np.log2(6)) / 4
    popular = (1 / np.log2(4) + 1 / np.log2(3)) / 4
    assert ndcg["ndcg_at_10_over_popularity"] == pytest.approx(model / popular - 1)


def test_with_a_baseline_each_model_reads_its_own_outputs_and_an_old_model_has_no_margin():
    rows = [{"candidate": {"ranks": r, "popularity_ranks": p}, "baseline": r} for r, p in zip(RANKS, POPULAR)]
    assert _margin(rows, model_name="candidate")["recall_at_10_over_popularity"] == pytest.approx(0.0)
    assert _margin(rows, model_name="baseline") == {}  # exported before popularity_ranks: not compared


def test_relative_margin_against_a_baseline_of_zero():
    from models.eval_metrics import relative_margin

    assert relative_margin(0.3, 0.2) == pytest.approx(0.5)
    assert relative_margin(0.1, 0.0) == float("inf") and relative_margin(0.0, 0.0) == 0.0


def test_the_margin_metric_is_rebuilt_from_its_config_as_tfma_does():
    from models.eval_metrics import PopularityMargin

    clone = PopularityMargin.from_config(PopularityMargin("mrr", "mrr").get_config())
    assert clone.name == "mrr_over_popularity" and clone.get_config()["kind"] == "mrr"
    with pytest.raises(ValueError, match="kind must be one of"):
        PopularityMargin("x", "precision", 10)


def _paired(rows, users, model_names=("candidate", "baseline"), splits=1):
    """PairedDifference's output through its TFMA computation, the purchases fed in `splits`
    accumulators merged as Beam does; `rows`: (candidate ranks, served ranks) per purchase."""
    from tensorflow_model_analysis.proto import config_pb2

    from models.eval_metrics import PairedDifference

    config = config_pb2.EvalConfig(model_specs=[
        config_pb2.ModelSpec(name="candidate"), config_pb2.ModelSpec(name="baseline", is_baseline=True)])
    computations = PairedDifference("recall_at_10", "recall", 10).computations(
        eval_config=config, model_names=list(model_names), output_names=[""])
    if not computations:
        return None
    [computation] = computations
    combiner = computation.combiner
    accumulators = [combiner.create_accumulator() for _ in range(splits)]
    for i, ((candidate, served), user) in enumerate(zip(rows, users)):
        accumulators[i % splits] = combiner.add_input(accumulators[i % splits], tfma.metrics.StandardMetricInputs(
            prediction={"candidate": {"ranks": candidate, "popularity_ranks": candidate}, "baseline": served},
            features={features.USER_KEY: np.array([user])}))
    [(key, value)] = combiner.extract_output(combiner.merge_accumulators(accumulators)).items()
    assert key.is_diff and key.model_name == "candidate" and key.name == "recall_at_10_vs_served"
    return value


def test_the_paired_difference_is_the_mean_of_the_purchases_differences_with_its_standard_error():
    rng = np.random.default_rng(0)
    hits = rng.random((200, 2)) < [0.5, 0.4]  # candidate, served: top 10 or not
    rows = [(np.array([[0 if c else 50, 0]], np.float32), np.array([[0 if s else 50, 0]], np.float32))
            for c, s in hits]
    value = _paired(rows, [f"user{i}".encode() for i in range(200)])  # one purchase per user
    differences = hits[:, 0].astype(float) - hits[:, 1]
    assert value.unsampled_value == value.sample_mean == pytest.approx(differences.mean())
    assert value.sample_standard_deviation == pytest.approx(differences.std(ddof=1) / np.sqrt(200))
    assert value.sample_degrees_of_freedom == 199


def test_a_heavy_users_purchases_are_not_counted_as_independent_tests():
    """Each user's purchases repeated 100 times (a user buying thousands of times) give the same
    mean and the same interval: not one ten times narrower."""
    rng = np.random.default_rng(1)
    hits = rng.random((50, 2)) < [0.5, 0.4]
    rows = [(np.array([[0 if c else 50, 0]], np.float32), np.array([[0 if s else 50, 0]], np.float32))
            for c, s in hits]
    users = [f"user{i}".encode() for i in range(50)]
    once, hundred = _paired(rows, users), _paired(rows * 100, users * 100)
    assert hundred.sample_mean == pytest.approx(once.sample_mean)
    assert hundred.sample_standard_deviation == pytest.approx(once.sample_standard_deviation)
    assert hundred.sample_degrees_of_freedom == once.sample_degrees_of_freedom == 49


def test_the_paired_difference_is_the_same_however_beam_splits_the_purchases():
    rng = np.random.default_rng(2)
    hits = rng.random((300, 2)) < [0.3, 0.3]
    rows = [(np.array([[0 if c else 50, 0]], np.float32), np.array([[0 if s else 50, 0]], np.float32))
            for c, s in hits]
    users = [f"user{i % 40}".encode() for i in range(300)]
    values = {_paired(rows, users, splits=splits) for splits in (1, 3, 7)}
    assert len(values) == 1  # to the last bit


def test_without_a_served_model_there_is_no_paired_difference():
    assert _paired([], [], model_names=("candidate",)) is None


def test_the_paired_difference_is_rebuilt_from_its_config_as_tfma_does():
    from models.eval_metrics import PairedDifference

    clone = PairedDifference.from_config(PairedDifference("ndcg_at_10", "ndcg", 10).get_config())
    assert clone.name == "ndcg_at_10_vs_served" and clone.get_config()["kind"] == "ndcg"
