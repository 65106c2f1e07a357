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
"""

from typing import Dict, Iterable, List, Mapping, Optional

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_util

from models import exporter
from models.ranking_metrics import purchase_values

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


class _PopularityMarginCombiner(beam.CombineFn):
    """Accumulates [sum of the model's values, sum of popularity's values, purchases]."""

    def __init__(self, keys, model_name: str, kind: str, k: int):
        self._margin_key, self._popularity_key = keys
        self._model_name, self._kind, self._k = model_name, kind, k

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(3, np.float64)

    def add_input(self, accumulator: np.ndarray, element) -> np.ndarray:
        outputs = element.prediction
        if self._model_name and isinstance(outputs, Mapping) and self._model_name in outputs:
            outputs = outputs[self._model_name]
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
