"""Ranking metrics for TFMA, computed from the `ranks` output of the `evaluate` signature.

Each eval purchase is one example; `ranks[:, 0]` is the 0-based rank of the purchased product
among all products (the user's train purchases left out), `ranks[:, 1]` its rank among 100
uniformly sampled products. Averaged over purchases (TFMA's examples), so recall@k here is the
share of eval purchases ranked in the top k; benchmarks/quality.py reports the per-user table.
Rebuilt by TFMA from `get_config` (tfx#4022): keep the constructor arguments in it.

`RecallCurve` is a TFMA metric (not a Keras one) whose value is an array: recall@k for
k = 1..max_k, the run report's curve, computed in the same pass as the gated metrics.

`PopularityMargin` judges a model against the most-popular-products baseline in that same pass:
the `evaluate` signature also returns `popularity_ranks`, the ranks the popularity fallback the
model holds gives the same purchases (models/exporter.py). For one metric it gives the
baseline's value (`popularity_<metric>`) and the model's relative margin over it
(`<metric>_over_popularity` = model / popularity - 1), on which the gate puts a lower bound: TFMA
thresholds compare a metric with a number or with the same metric of the baseline model, never
two metrics of one model, so the comparison is a metric of its own.

`PairedDifference` is the candidate's difference from the served (baseline) model on one metric,
with its standard error: both models' values of each purchase are read from the same extract and
summed per user, so the interval is exact, clustered by user (models/ranking_metrics.py
`paired_interval`) and the same on every run. TFMA's own confidence intervals (jackknife,
bootstrap) draw their groups of examples unseeded, and treat every purchase of a user as an
independent test; the gate's "vs served" rule is judged with this one instead.
"""

from typing import Dict, Iterable, List, Mapping, Optional

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_util

from models import exporter, features
from models.ranking_metrics import paired_interval, purchase_values

KINDS = ("recall", "ndcg", "mrr", "sampled_accuracy")


def check_kind(kind: str, k: int) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if kind in ("recall", "ndcg") and k < 1:
        raise ValueError(f"{kind} needs k >= 1")


class RankingMetric(tf.keras.metrics.Mean):
    """recall@k, ndcg@k (one relevant item: 1/log2(rank+2) within the top k), mrr, or the
    notebook's sampled accuracy (the true product beats all 100 sampled ones)."""

    def __init__(self, kind: str, k: int = 0, name: str = None, dtype=None):
        check_kind(kind, k)
        super().__init__(name=name or (f"{kind}_at_{k}" if k else kind), dtype=dtype)
        self.kind, self.k = kind, k

    def update_state(self, y_true, y_pred, sample_weight=None):
        del y_true  # the signature already compared the label with the ranking
        ranks = tf.reshape(tf.cast(y_pred, tf.float32), [-1, 2])
        rank, sampled_rank = ranks[:, 0], ranks[:, 1]
        if self.kind == "recall":
            value = tf.cast(rank < self.k, tf.float32)
        elif self.kind == "ndcg":
            value = tf.where(rank < self.k, 1.0 / (tf.math.log(rank + 2.0) / tf.math.log(2.0)), 0.0)
        elif self.kind == "mrr":
            value = 1.0 / (rank + 1.0)
        else:
            value = tf.cast(tf.equal(sampled_rank, 0.0), tf.float32)
        return super().update_state(value, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "k": self.k}


RECALL_CURVE = "recall_at_k_curve"


class RecallCurve(tfma.metrics.Metric):
    """recall@k for k = 1..max_k (one array value, per eval purchase like the other metrics):
    the share of eval purchases whose product ranks in the top k of the whole catalog."""

    def __init__(self, max_k: int = 100, name: str = RECALL_CURVE):
        if max_k < 1:
            raise ValueError(f"max_k must be >= 1, not {max_k}")
        super().__init__(_recall_curve, max_k=max_k, name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False


def _recall_curve(max_k: int, name: str, eval_config=None, model_names: Optional[List[str]] = None,
                  output_names: Optional[List[str]] = None, example_weighted: bool = False):
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            key = tfma.metrics.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                         example_weighted=example_weighted)
            computations.append(tfma.metrics.MetricComputation(
                keys=[key], preprocessors=None,
                combiner=_RecallCurveCombiner(key, eval_config, max_k, example_weighted)))
    return computations


class _RecallCurveCombiner(beam.CombineFn):
    """Accumulates [weight of purchases ranked k, for k < max_k; weight ranked max_k or lower;
    total weight]: a few numbers, whatever the number of purchases."""

    def __init__(self, key, eval_config, max_k: int, example_weighted: bool):
        self._key, self._eval_config = key, eval_config
        self._max_k, self._example_weighted = max_k, example_weighted

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(self._max_k + 1, np.float64)

    def add_input(self, accumulator: np.ndarray, element) -> np.ndarray:
        for _, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, example_weighted=self._example_weighted,
                flatten=False, allow_none=True, require_single_example_weight=True):
            weight = float(np.asarray(weight).reshape(-1)[0])
            for full_rank in np.asarray(prediction).reshape(-1, 2)[:, 0]:
                accumulator[min(int(full_rank), self._max_k)] += weight
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        accumulators = iter(accumulators)
        result = next(accumulators).copy()
        for accumulator in accumulators:
            result += accumulator
        return result

    def extract_output(self, accumulator: np.ndarray) -> Dict:
        total = accumulator.sum()
        curve = np.cumsum(accumulator[:self._max_k]) / total if total > 0 else \
            np.full(self._max_k, np.nan)
        return {self._key: curve}


def popularity_name(metric: str) -> str:
    """The key of the popularity baseline's value of `metric`."""
    return f"popularity_{metric}"


def margin_name(metric: str) -> str:
    """The key of a model's relative margin over the popularity baseline on `metric`."""
    return f"{metric}_over_popularity"


def relative_margin(model: float, popularity: float) -> float:
    """model / popularity - 1; against a baseline of 0: +inf when the model scores, 0 when it
    does not either (no better than popularity)."""
    if popularity > 0:
        return model / popularity - 1.0
    return float("inf") if model > 0 else 0.0


class PopularityMargin(tfma.metrics.Metric):
    """For the ranking metric `metric` (kind, k as RankingMetric): the popularity baseline's
    value and the model's margin over it, both from one `evaluate` call (module docstring).
    A model exported without `popularity_ranks` (before the gate had this rule) gets no value:
    as a baseline it is simply not compared; as a candidate the gate fails it with no value."""

    def __init__(self, metric: str, kind: str, k: int = 0, name: Optional[str] = None):
        check_kind(kind, k)
        super().__init__(_popularity_margin, metric=metric, kind=kind, k=k, name=name or margin_name(metric))

    @property
    def compute_confidence_interval(self) -> bool:
        return False


def _popularity_margin(metric: str, kind: str, k: int, name: str, eval_config=None,
                       model_names: Optional[List[str]] = None, output_names: Optional[List[str]] = None,
                       example_weighted: bool = False):
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            keys = [tfma.metrics.MetricKey(name=n, model_name=model_name, output_name=output_name,
                                           example_weighted=example_weighted)
                    for n in (name, popularity_name(metric))]
            computations.append(tfma.metrics.MetricComputation(
                keys=keys, preprocessors=None,
                combiner=_PopularityMarginCombiner(keys, model_name, kind, k)))
    return computations


def _model_outputs(predictions, model_name: str):
    """One model's outputs in an extract's predictions: keyed by model name in a multi-model
    evaluation, the predictions themselves with one model."""
    if model_name and isinstance(predictions, Mapping) and model_name in predictions:
        return predictions[model_name]
    return predictions


class _PopularityMarginCombiner(beam.CombineFn):
    """Accumulates [sum of the model's values, sum of popularity's values, purchases]."""

    def __init__(self, keys, model_name: str, kind: str, k: int):
        self._margin_key, self._popularity_key = keys
        self._model_name, self._kind, self._k = model_name, kind, k

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(3, np.float64)

    def add_input(self, accumulator: np.ndarray, element) -> np.ndarray:
        outputs = _model_outputs(element.prediction, self._model_name)
        if not isinstance(outputs, Mapping) or exporter.POPULARITY_RANKS_KEY not in outputs:
            return accumulator  # a model exported before popularity_ranks: nothing to compare
        ranks = np.asarray(outputs[exporter.RANKS_KEY], np.float64).reshape(-1, 2)
        popular = np.asarray(outputs[exporter.POPULARITY_RANKS_KEY], np.float64).reshape(-1, 2)
        accumulator[0] += purchase_values(self._kind, self._k, ranks).sum()
        accumulator[1] += purchase_values(self._kind, self._k, popular).sum()
        accumulator[2] += len(ranks)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return np.sum(list(accumulators), axis=0)

    def extract_output(self, accumulator: np.ndarray) -> Dict:
        model_sum, popularity_sum, count = accumulator
        if count == 0:
            return {}
        return {self._margin_key: relative_margin(model_sum / count, popularity_sum / count),
                self._popularity_key: popularity_sum / count}


def paired_name(metric: str) -> str:
    """The key of the candidate's paired difference from the served model on `metric` (a diff
    key of the candidate model: TFMA keeps it beside its own diff of `metric`, which has no
    interval)."""
    return f"{metric}_vs_served"


class PairedDifference(tfma.metrics.Metric):
    """The candidate's value of the ranking metric `metric` (kind, k as RankingMetric) minus the
    served model's, on the same purchases, as a t-distributed value: the mean difference, its
    standard error clustered by user and its degrees of freedom (module docstring). Computed only
    in an evaluation with a baseline model; a diff key of each candidate model."""

    def __init__(self, metric: str, kind: str, k: int = 0, name: Optional[str] = None):
        check_kind(kind, k)
        super().__init__(_paired_difference, metric=metric, kind=kind, k=k, name=name or paired_name(metric))

    @property
    def compute_confidence_interval(self) -> bool:
        return False  # its value carries its own interval


def _paired_difference(metric: str, kind: str, k: int, name: str, eval_config=None,
                       model_names: Optional[List[str]] = None, output_names: Optional[List[str]] = None,
                       example_weighted: bool = False):
    from tensorflow_model_analysis.utils import model_util

    baseline = model_util.get_baseline_model_spec(eval_config) if eval_config else None
    if baseline is None or baseline.name not in (model_names or []):
        return []  # nothing served: nothing to compare with
    computations = []
    for model_name in model_names:
        if model_name == baseline.name:
            continue
        for output_name in output_names or [""]:
            key = tfma.metrics.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                         example_weighted=example_weighted, is_diff=True)
            computations.append(tfma.metrics.MetricComputation(
                keys=[key], preprocessors=[tfma.metrics.FeaturePreprocessor(feature_keys=[features.USER_KEY])],
                combiner=_PairedDifferenceCombiner(key, model_name, baseline.name, kind, k)))
    return computations


def _model_ranks(predictions, model_name: str) -> np.ndarray:
    outputs = _model_outputs(predictions, model_name)
    if isinstance(outputs, Mapping):
        outputs = outputs[exporter.RANKS_KEY]
    return np.asarray(outputs, np.float64).reshape(-1, 2)


class _PairedDifferenceCombiner(beam.CombineFn):
    """Accumulates {user id: [sum of the purchases' differences, purchases]}: one entry per eval
    user, whatever their number of purchases."""

    def __init__(self, key, candidate: str, baseline: str, kind: str, k: int):
        self._key, self._candidate, self._baseline = key, candidate, baseline
        self._kind, self._k = kind, k

    def create_accumulator(self) -> Dict[bytes, List[float]]:
        return {}

    def add_input(self, accumulator: Dict[bytes, List[float]], element) -> Dict[bytes, List[float]]:
        differences = (purchase_values(self._kind, self._k, _model_ranks(element.prediction, self._candidate))
                       - purchase_values(self._kind, self._k, _model_ranks(element.prediction, self._baseline)))
        users = np.asarray(element.features[features.USER_KEY]).reshape(-1)
        if len(users) == 1:
            users = np.repeat(users, len(differences))
        if len(users) != len(differences):
            raise ValueError(f"{len(users)} user ids for {len(differences)} purchases in one example")
        for user, difference in zip(users.tolist(), differences.tolist()):
            entry = accumulator.setdefault(user, [0.0, 0])
            entry[0] += difference
            entry[1] += 1
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Dict[bytes, List[float]]]) -> Dict[bytes, List[float]]:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            for user, (total, count) in accumulator.items():
                entry = result.setdefault(user, [0.0, 0])
                entry[0] += total
                entry[1] += count
        return result

    def extract_output(self, accumulator: Dict[bytes, List[float]]) -> Dict:
        if not accumulator:
            return {}
        # in a fixed order of users: the same sum, to the last bit, however Beam split the input
        sums, counts = np.array([accumulator[user] for user in sorted(accumulator)], np.float64).T
        mean, standard_error, dof = paired_interval(sums, counts)
        return {self._key: tfma.types.ValueWithTDistribution(
            sample_mean=mean, sample_standard_deviation=standard_error,
            sample_degrees_of_freedom=dof, unsampled_value=mean)}
