"""Evaluator (TFMA) whose verdict is said in plain words, and the EvalConfig of the gate.

`GatedEvaluator` is TFX's Evaluator with two additions: its baseline is ServedBaseline's output
(components/baseline.py), which is left out when it holds no model (nothing served yet: the
absolute bounds only, as TFMA does without a baseline); and after TFMA has written its metrics
and its blessing, the executor logs (to `recsys.gate`, which the console shows) a table of every
metric: the candidate's value, the served model's value, the most-popular-products baseline's,
the thresholds, and whether it passed (`FAILED (no value)` when a gated metric has none, never
`ok`). Under each gated metric, a row "vs popularity": the models' relative margin over
popularity on it, which must reach the popularity margin (models/eval_metrics.py
`PopularityMargin`, computed in TFMA's one pass). Nothing else changes: the blessing artifact
decides, and Pusher pushes only a blessed model.

**One set of purchases for both models.** Each model's `evaluate` signature leaves out what the
user bought in *its* train data (recommendations never repeat a purchase), so an eval purchase
that repeats a (user, product) pair one model trained on is a miss for it whatever its quality,
while the other model may hit it: the candidate trains on spans the served model never saw, and
such repeats made the comparison lean towards the served model (found by exploratory testing: a
better candidate refused, 0.358 against 0.369, which was 0.409 against 0.349 on the other
purchases). Before TFMA, a Beam pass (`leave_out_repeats`, in the workers: each reads both
models' pairs from their checkpoints once) drops the eval purchases that repeat a pair either
model trained on; the gate judges both on the rest. The count is on the evaluation artifact
(`repeat_purchases_left_out`, `eval_purchases`) and on the console when there are any.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.writers import eval_config_writer
from tfx.components.evaluator import executor as evaluator_executor
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.components.util import examples_utils
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils, path_utils
from tfx import v1 as tfx

from components import baseline, beam_metrics
from models import exporter
from models import features
from models.eval_metrics import RECALL_CURVE, margin_name, paired_name, popularity_name

METRICS_MODULE = "models.eval_metrics"
MODULE_CODE_KEY = "module_code"
CANDIDATE, BASELINE = "candidate", "baseline"
NO_VALUE = "FAILED (no value)"
log = logging.getLogger("recsys.gate")
REPEATS_LEFT_OUT, EVAL_PURCHASES = "repeat_purchases_left_out", "eval_purchases"
GATE_EXAMPLES_DIR = "gate_examples"  # under the evaluation's uri: the purchases TFMA judged
COUNTERS = "gate_examples"  # the Beam metrics' namespace


def metric_configs() -> List[Tuple[str, Dict[str, Any]]]:
    """(metric name, RankingMetric config) of every metric the Evaluator computes
    (declared in models/features.py: EVAL_METRICS)."""
    return [(name, {"kind": kind, "k": k}) for name, (kind, k) in features.EVAL_METRICS.items()]


def eval_config(lower_bounds: Mapping[str, float], max_relative_drop: float,
                popularity_margin: Optional[float] = None) -> config_pb2.EvalConfig:
    """The gate: each metric in `lower_bounds` must reach its bound, must not fall more than
    `max_relative_drop` (a fraction) below the served model's value (skipped by TFMA when
    nothing is served yet), and, unless `popularity_margin` is None, must beat the
    most-popular-products baseline by that relative margin (0.1: at least 10% above its value;
    0: at least as good)."""
    unknown = set(lower_bounds) - {name for name, _ in metric_configs()}
    if unknown:
        raise ValueError(f"no such metric to gate on: {sorted(unknown)}")
    # Every metric is a fraction of eval purchases: a bound above 1 (or NaN) refuses every model
    # after the whole run has trained one, a negative one gates nothing.
    for name, bound in sorted(lower_bounds.items()):
        if not 0.0 <= bound <= 1.0:
            raise ValueError(f"the bound of {name} must be between 0 and 1 (the metrics are "
                             f"fractions of eval purchases), got {bound}")
    if not 0.0 <= max_relative_drop <= 1.0:
        raise ValueError(f"max_relative_drop must be between 0 and 1 (a fraction), got {max_relative_drop}")
    if popularity_margin is not None and not 0.0 <= popularity_margin < float("inf"):
        raise ValueError("the popularity margin must be 0 or more (a fraction: 0.1 means 10% above the "
                         f"most-popular-products baseline), got {popularity_margin}")
    metrics = []
    for name, cfg in metric_configs():
        threshold = None
        if name in lower_bounds:
            threshold = config_pb2.MetricThreshold(
                value_threshold=config_pb2.GenericValueThreshold(lower_bound={"value": lower_bounds[name]}),
                change_threshold=config_pb2.GenericChangeThreshold(
                    direction=config_pb2.MetricDirection.HIGHER_IS_BETTER,
                    relative={"value": -max_relative_drop}))
        metrics.append(config_pb2.MetricConfig(
            class_name="RankingMetric", module=METRICS_MODULE,
            config=json.dumps({"name": name, **cfg}), threshold=threshold))
        if name in lower_bounds:  # the interval the "vs served" rule is judged with (without_forgiven_failures)
            metrics.append(config_pb2.MetricConfig(
                class_name="PairedDifference", module=METRICS_MODULE,
                config=json.dumps({"name": paired_name(name), "metric": name, **cfg})))
        if name in lower_bounds and popularity_margin is not None:
            metrics.append(config_pb2.MetricConfig(
                class_name="PopularityMargin", module=METRICS_MODULE,
                config=json.dumps({"name": margin_name(name), "metric": name, **cfg}),
                threshold=config_pb2.MetricThreshold(value_threshold=config_pb2.GenericValueThreshold(
                    lower_bound={"value": popularity_margin}))))
    # not a gate row: the run report's recall@k curve, computed in the same pass
    metrics.append(config_pb2.MetricConfig(
        class_name="RecallCurve", module=METRICS_MODULE,
        config=json.dumps({"name": RECALL_CURVE, "max_k": features.SERVING_TOP_K})))
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(
            signature_name=exporter.EVAL_SIGNATURE, label_key=features.LABEL_KEY,
            prediction_key=exporter.RANKS_KEY, model_type="tf_generic")],
        slicing_specs=[config_pb2.SlicingSpec()],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics)],
    )


# How a metric's rules are said (">= 0.03, drop <= 1.0% vs served"): report_html reads the served
# rule back, to tell a run judged with a served model from one without
RULES_JOIN, SERVED_RULE = ", ", "drop <= "


def _thresholds_text(threshold: config_pb2.MetricThreshold) -> str:
    parts = []
    if threshold.HasField("value_threshold"):
        parts.append(f">= {threshold.value_threshold.lower_bound.value:g}")
    if threshold.HasField("change_threshold"):
        parts.append(f"{SERVED_RULE}{-threshold.change_threshold.relative.value:.1%} vs served")
    return RULES_JOIN.join(parts)


MARGIN, VALUE = "margin", "value"  # the two kinds of gate rows


Interval = Tuple[float, float, int]  # (candidate - served, its standard error, degrees of freedom)


def change_interval(served: float, interval: Interval) -> Tuple[float, float, float]:
    """(relative change, low, high): the candidate's change against the served value and the
    ends of its two-sided 95% t interval (the paired difference's standard error, clustered by
    user: models/eval_metrics.py `PairedDifference`), as fractions of the served value."""
    from scipy import stats

    diff, se, dof = interval
    half = float(stats.t.ppf(0.975, dof)) * se if dof > 0 else float("inf")
    return diff / served, (diff - half) / served, (diff + half) / served


def gate_rows(config: config_pb2.EvalConfig, values: Mapping[str, Mapping[str, float]],
              failed: Mapping[str, str], intervals: Optional[Mapping[str, Interval]] = None
              ) -> List[Dict[str, Any]]:
    """One row per metric: {"metric", "kind": VALUE, "candidate", "baseline", "popularity",
    "threshold", "result"}, followed, for a metric gated against popularity, by its margin row
    {"metric": "<metric>_over_popularity", "kind": MARGIN, "of": "<metric>", ...}: each model's relative margin
    over popularity ("popularity": None). A value row compared with a served model whose
    difference has an interval (`intervals`: metric -> Interval) also holds "vs_served":
    {"change", "low", "high", "allowed" (the largest drop the rule allows, a fraction),
    "result": "ok", "ok (within noise)" (a drop larger than allowed whose interval reaches 0: not
    below the served model beyond noise) or "FAILED" (larger than allowed, and the whole interval
    below 0)}.

    `values`: model (CANDIDATE/BASELINE) -> metric key -> value; `failed`: metric key -> TFMA's
    failure message. A gated metric without a value (an empty eval split, a metric that could not
    be computed) reads `FAILED (no value)`: never `ok` without a value."""
    def outcome(key: str, gated: bool) -> str:
        if not gated:
            return "-"
        if values.get(CANDIDATE, {}).get(key) is None:
            return NO_VALUE
        return "FAILED" if key in failed else "ok"

    def value(model: str, key: str) -> Optional[float]:
        return values.get(model, {}).get(key)

    rows = []
    for metric in config.metrics_specs[0].metrics:
        key = json.loads(metric.config)["name"]
        gated = metric.HasField("threshold")
        if metric.class_name == "RankingMetric":
            rows.append({"metric": key, "kind": VALUE, "candidate": value(CANDIDATE, key),
                         "baseline": value(BASELINE, key),
                         "popularity": value(CANDIDATE, popularity_name(key)),
                         "threshold": _thresholds_text(metric.threshold) if gated else "not gated",
                         "result": outcome(key, gated)})
            served = value(BASELINE, key)
            if (gated and metric.threshold.HasField("change_threshold") and served
                    and key in (intervals or {})):
                change, low, high = change_interval(served, intervals[key])
                allowed = -metric.threshold.change_threshold.relative.value
                rows[-1]["vs_served"] = {
                    "change": change, "low": low, "high": high, "allowed": allowed,
                    "result": "ok" if change >= -allowed else
                    "ok (within noise)" if high >= 0 else "FAILED"}
        elif metric.class_name == "PopularityMargin":
            bound = metric.threshold.value_threshold.lower_bound.value
            rows.append({"metric": key, "kind": MARGIN, "of": json.loads(metric.config)["metric"],
                         "candidate": value(CANDIDATE, key),
                         "baseline": value(BASELINE, key), "popularity": None, "bound": bound,
                         "threshold": f">= {_percent(bound)} over popularity",
                         "result": outcome(key, gated)})
        # else the recall@k curve: drawn in the run report, not a row of the gate
    return rows


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _margin_details(rows: List[Dict[str, Any]]) -> List[str]:
    """A plain line for each margin row that failed: the reason a model no better than
    popularity is refused."""
    by_key = {row["metric"]: row for row in rows}
    lines = []
    for row in rows:
        if row["kind"] != MARGIN or row["result"] != "FAILED":
            continue
        metric = row["of"]
        value_row = by_key.get(metric, {})
        lines.append(f"{metric}: {_fmt(value_row.get('candidate'))} is {_percent(row['candidate'])} against the "
                     f"most-popular-products baseline's {_fmt(value_row.get('popularity'))}; the gate wants "
                     f"{row['threshold']} (the model is no better than recommending the most bought products)")
    return lines


def _noise_details(rows: List[Dict[str, Any]]) -> List[str]:
    """A plain line for each metric below the served model by more than the rule allows whose
    drop is within noise (not refused: its interval reaches 0)."""
    lines = []
    for row in rows:
        vs = row.get("vs_served")
        if vs and vs["result"] == "ok (within noise)":
            lines.append(f"{row['metric']}: {vs['change']:+.1%} against the served model is more than the "
                         f"{vs['allowed']:.1%} drop the gate allows, but within noise: its 95% interval "
                         f"({vs['low']:+.1%} to {vs['high']:+.1%}) reaches 0, so it is not refused (a drop "
                         f"of more than {vs['allowed']:.1%} is refused when its whole interval is below 0)")
    return lines


Metrics = Tuple[Dict[str, Dict[str, float]], Dict[str, List[float]], Dict[str, Interval]]


def read_metrics(output_uri: str) -> Metrics:
    """(values, curves, intervals) of the overall slice of an Evaluator output: values = model
    (CANDIDATE/BASELINE) -> metric -> value; curves = model -> recall@k for k = 1..; intervals =
    metric -> (candidate - served, its standard error clustered by user, degrees of freedom),
    from the metric's `PairedDifference` (none when nothing is served)."""
    of_paired = {paired_name(name): name for name, _ in metric_configs()}
    values: Dict[str, Dict[str, float]] = {CANDIDATE: {}, BASELINE: {}}
    curves: Dict[str, List[float]] = {}
    intervals: Dict[str, Interval] = {}
    for slice_metrics in tfma.load_metrics(output_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue  # the overall slice only
        for entry in slice_metrics.metric_keys_and_values:
            model = entry.key.model_name or CANDIDATE
            if entry.key.is_diff:
                if (entry.key.name in of_paired and entry.value.HasField("double_value")
                        and entry.confidence_interval.standard_error.HasField("double_value")):
                    intervals[of_paired[entry.key.name]] = (
                        entry.value.double_value.value,
                        entry.confidence_interval.standard_error.double_value.value,
                        entry.confidence_interval.degrees_of_freedom.value)
            elif entry.value.HasField("double_value"):
                values.setdefault(model, {})[entry.key.name] = entry.value.double_value.value
            elif entry.key.name == RECALL_CURVE and entry.value.HasField("array_value"):
                curves[model] = list(entry.value.array_value.float64_values)
    return values, curves, intervals


def gate_verdict(output_uri: str, config: Optional[config_pb2.EvalConfig] = None,
                 metrics: Optional[Metrics] = None) -> Dict[str, Any]:
    """The gate's verdict from an Evaluator output: {"blessed", "verdict", "has_baseline",
    "values": {CANDIDATE|BASELINE: {metric: value}}, "curves": {CANDIDATE|BASELINE: recall@k
    for k = 1..}, "rows" (gate_rows), "details"}.
    `config` defaults to the one TFMA saved with its output, `metrics` to `read_metrics`'."""
    if config is None:
        config = eval_config_writer.load_eval_run(output_uri)[0]
    result = tfma.load_validation_result(output_uri)
    values, curves, intervals = metrics or read_metrics(output_uri)
    failed = {f.metric_key.name: f.message
              for per_slice in result.metric_validations_per_slice for f in per_slice.failures}
    rows = gate_rows(config, values, failed, intervals)
    missing = [r["metric"] for r in rows if r["result"] == NO_VALUE]
    blessed = result.validation_ok  # what TFX's blessing says, and the Pusher follows
    verdict = BLESSED_VERDICT if blessed else NOT_BLESSED_VERDICT
    details = [f"{name}: {message}" for name, message in sorted(failed.items()) if message]
    details += _margin_details(rows)
    details += _noise_details(rows)
    details += [f"{name}: no value was computed (an empty eval split?)" for name in missing]
    if not blessed and not failed and not missing and result.HasField("validation_details"):
        details = [str(result.validation_details)]
    return {"blessed": blessed, "verdict": verdict, "has_baseline": bool(values[BASELINE]),
            "values": values, "curves": curves, "rows": rows, "details": details}


BLESSED_VERDICT = "BLESSED: the model passes the gate, on to the Pusher"
NOT_BLESSED_VERDICT = "NOT BLESSED: the model fails the gate and will NOT be pushed; the served model stays as it is"


# Why a "drop vs served" failure of TFMA's is not one (without_forgiven_failures)
SERVED_ZERO, WITHIN_NOISE = "the served model scores 0", "within noise"


def without_forgiven_failures(result, served: Mapping[str, float], intervals: Mapping[str, Interval]):
    """(`result` without the failures of the "no drop vs served" rule that are not drops, {reason:
    the names of the metrics forgiven for it}); the result is ok when no other failure (and
    nothing missing) is left, and `result` itself when nothing is forgiven. `served`: the served
    model's values; `intervals`: read_metrics'. Two reasons:

    - SERVED_ZERO: TFMA's relative change threshold divides by the served value and, when that
      is 0, takes the ratio as NaN, which fails every comparison: a candidate was refused for
      falling more than 1% below a served model that scored 0.0000 (found by exploratory
      testing: a span of new users only, whom the served model does not know, refused a
      candidate at recall@10 0.21 span after span). No value can fall below 0.
    - WITHIN_NOISE: TFMA judges a change threshold on the point estimates only, and on small eval
      sets a drop of 1% is far inside the noise of the paired difference (a span's 112 purchases
      refused a candidate at 34 hits against 42). A drop of more than the allowed one is refused
      only when it is also below the served model beyond noise: the whole 95% interval of the
      difference (`PairedDifference`) below 0. A metric without an interval keeps its failure."""
    from tensorflow_model_analysis.proto import validation_result_pb2

    def reason(failure) -> Optional[str]:
        threshold, name = failure.metric_threshold, failure.metric_key.name
        change = threshold.change_threshold
        if not (threshold.HasField("change_threshold") and change.HasField("relative")
                and change.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER):
            return None
        value, base = failure.metric_value.double_value.value, served.get(name)
        if base is not None and math.isclose(base, 0.0) and value >= 0 and not (
                change.HasField("absolute") and value < change.absolute.value):
            return SERVED_ZERO
        if (base and name in intervals and not change.HasField("absolute")
                and not threshold.HasField("value_threshold") and change_interval(base, intervals[name])[2] >= 0):
            return WITHIN_NOISE
        return None

    fixed = validation_result_pb2.ValidationResult()
    fixed.CopyFrom(result)
    forgiven: Dict[str, List[str]] = {}
    del fixed.metric_validations_per_slice[:]
    for per_slice in result.metric_validations_per_slice:
        kept = []
        for failure in per_slice.failures:
            why = reason(failure)
            if why:
                forgiven.setdefault(why, []).append(failure.metric_key.name)
            else:
                kept.append(failure)
        if kept:
            entry = fixed.metric_validations_per_slice.add()
            entry.CopyFrom(per_slice)
            del entry.failures[:]
            entry.failures.extend(kept)
    if not forgiven:
        return result, {}
    if not result.validation_ok and not fixed.metric_validations_per_slice and not (
            fixed.missing_thresholds or fixed.missing_slices or fixed.missing_cross_slices):
        fixed.validation_ok = True
    return fixed, {why: sorted(set(names)) for why, names in forgiven.items()}


def bless_over_forgiven_failures(output_uri: str, blessing, metrics: Optional[Metrics] = None
                                 ) -> Dict[str, List[str]]:
    """Rewrites TFMA's validation result under `output_uri` without the failures that are not
    drops (`without_forgiven_failures`) and, when that leaves it ok, the `blessing` artifact TFX
    wrote from it (its BLESSED / NOT_BLESSED file and `blessed` property). Returns {reason: the
    metrics whose failure was dropped}; `metrics` defaults to read_metrics'."""
    result = tfma.load_validation_result(output_uri)
    if result.validation_ok:
        return {}
    values, _, intervals = metrics or read_metrics(output_uri)
    fixed, forgiven = without_forgiven_failures(result, values[BASELINE], intervals)
    if forgiven:
        _rewrite_validation(output_uri, fixed, blessing)
    return forgiven


def _rewrite_validation(output_uri: str, fixed, blessing) -> None:
    """Writes `fixed` over TFMA's validation result and, when it is ok, turns the `blessing`
    artifact TFX wrote from the old one (its BLESSED / NOT_BLESSED file and `blessed` property)."""
    import tensorflow as tf
    from tfx.components.evaluator import constants

    (path,) = tf.io.gfile.glob(os.path.join(output_uri, "validations*"))
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(fixed.SerializeToString())
    if fixed.validation_ok and blessing is not None:
        not_blessed = os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME)
        if tf.io.gfile.exists(not_blessed):
            tf.io.gfile.remove(not_blessed)
        with tf.io.gfile.GFile(os.path.join(blessing.uri, constants.BLESSED_FILE_NAME), "w") as f:
            f.write("")
        blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY, constants.BLESSED_VALUE)


def gate_report(output_uri: str, config: Optional[config_pb2.EvalConfig] = None) -> Tuple[bool, str]:
    """(blessed, the verdict and a table of candidate/baseline values and thresholds)."""
    gate = gate_verdict(output_uri, config)
    return gate["blessed"], gate_text(gate)


def gate_text(gate: Mapping[str, Any]) -> str:
    """The verdict and the table of `gate` (gate_verdict's), as the console shows them."""
    # the verdict's line fits the console's 100 columns when blessed (found by exploratory testing:
    # 105 columns with "no baseline model: absolute thresholds only"); a longer one goes on under it
    baseline_note = ("compared with the served model" if gate["has_baseline"] else
                     "no served model: absolute bounds only")
    # columns of 18, 3 x 10, 2 and 33: a row with the longest result ("FAILED (no value)", "ok
    # (within noise)") is 100 columns, the console's width (found by exploratory testing: 106)
    lines = [f"{'metric':<18}{'candidate':>10}{'served':>10}{'popular':>10}  {'threshold':<33}result"]
    for row in gate["rows"]:
        if row["kind"] == MARGIN:
            name, show = "  vs popularity", _percent
        else:
            name, show = row["metric"], _fmt
        lines.append(f"{name:<18}{show(row['candidate']):>10}{show(row['baseline']):>10}"
                     f"{_fmt(row['popularity']):>10}  {row['threshold']:<33}{row['result']}")
        vs = row.get("vs_served")
        if vs:
            interval = f"95% interval {vs['low']:+.1%} to {vs['high']:+.1%}"
            lines.append(f"{'  vs served':<18}{_percent(vs['change']):>10}{'-':>10}{'-':>10}  "
                         f"{interval:<33}{vs['result']}")
    served_popular = [f"{row['of']} {_fmt(gate['values'][BASELINE].get(popularity_name(row['of'])))}"
                      for row in gate["rows"] if row["kind"] == MARGIN and row["baseline"] is not None]
    if served_popular:  # (found by exploratory testing: +1510.0% next to 0.1345 and 0.0860 read as an error)
        lines.append("  (served vs popularity: against the most-popular products of the served model's own "
                     "training data, not the popular column: " + ", ".join(served_popular) + ")")
    details = "".join(f"\n  {line}" for line in gate["details"])
    return f"[gate] {gate['verdict']} ({baseline_note})\n" + "\n".join(lines) + details


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


@contextlib.contextmanager
def fixed_size_input_batches():
    """Reads the eval examples in batches of up to 8,192, not Beam's adaptive sizes.

    TFX's Evaluator reads through TFXIO, whose batches Beam's `BatchElements` sizes adaptively;
    here it settles on one to a few examples per batch (19,067 batches for the 35,567 ASOS eval
    purchases), so the `evaluate` signature, which scores the whole catalog, is called ~20,000
    times: 268 s. tfx_bsl's `--tfxio_use_byte_size_batching` flag (an absl flag it documents as
    experimental) switches TFXIO to fixed batches of at most 8,192 records: 45 s for the same
    evaluation, at a peak of about 4 GB (measured 2026-11-29). The flag is read when the Beam
    pipeline is built, inside this executor, so it is set only for that and restored after."""
    from absl import flags
    import tfx_bsl.coders.batch_util  # noqa: F401  (defines the flag)

    if not flags.FLAGS.is_parsed():  # in-process runs (LocalDagRunner) never parse absl flags
        flags.FLAGS.mark_as_parsed()
    before = flags.FLAGS.tfxio_use_byte_size_batching
    flags.FLAGS.tfxio_use_byte_size_batching = True
    try:
        yield
    finally:
        flags.FLAGS.tfxio_use_byte_size_batching = before


def trained_pairs(saved_model_dir: str) -> Set[Tuple[bytes, int]]:
    """The (user id, product id) pairs the model at `saved_model_dir` trained on, which its
    `evaluate` signature leaves out (models/exporter.py); none when it does not hold them."""
    from models import warm_start

    try:
        return warm_start.trained_pairs(warm_start.read_tables(saved_model_dir))
    except warm_start.IncompatibleModel:
        return set()


class _LeaveOutRepeats(beam.DoFn):
    """Keeps the serialized purchases that repeat no pair the models at `model_dirs` trained on."""

    def __init__(self, model_dirs: List[str]):
        self._model_dirs = model_dirs
        self._kept = beam.metrics.Metrics.counter(COUNTERS, "kept")
        self._left_out = beam.metrics.Metrics.counter(COUNTERS, "left_out")

    def setup(self):
        import tensorflow as tf

        self._parse = tf.train.Example.FromString
        self._known = set().union(*(trained_pairs(d) for d in self._model_dirs))

    def process(self, record: bytes):
        feature = self._parse(record).features.feature
        users = feature[features.USER_KEY].bytes_list.value
        products = feature[features.PRODUCT_KEY].int64_list.value
        if len(users) == 1 and len(products) == 1 and (users[0], products[0]) in self._known:
            self._left_out.inc()
            return
        self._kept.inc()
        yield record


def leave_out_repeats(pipeline: beam.Pipeline, input_pattern: str, output_prefix: str,
                      model_dirs: List[str], label: str = "eval") -> None:
    """Adds the steps (named after `label`): the purchases of `input_pattern` (gzipped
    tf.Example TFRecords) -> those that repeat no pair a model of `model_dirs` trained on ->
    gzipped TFRecords at `output_prefix`."""
    _ = (pipeline
         | f"Read[{label}]" >> beam.io.ReadFromTFRecord(input_pattern, coder=beam.coders.BytesCoder())
         | f"LeaveOutRepeats[{label}]" >> beam.ParDo(_LeaveOutRepeats(model_dirs))
         | f"Write[{label}]" >> beam.io.WriteToTFRecord(
             output_prefix, file_name_suffix=".gz", compression_type=beam.io.filesystem.CompressionTypes.GZIP))


class Executor(evaluator_executor.Executor):
    """TFX's Evaluator executor (without a baseline that holds no model) on the eval purchases
    neither model trained on, then the gate's verdict in plain words."""

    def Do(self, input_dict, output_dict, exec_properties):
        key = standard_component_specs.BASELINE_MODEL_KEY
        if input_dict.get(key) and not baseline.found(input_dict[key][0]):
            input_dict = {**input_dict, key: []}
        evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])
        input_dict = {**input_dict, standard_component_specs.EXAMPLES_KEY: [
            self._without_repeats(input_dict, exec_properties, evaluation)]}
        with fixed_size_input_batches():
            result = super().Do(input_dict, output_dict, exec_properties)
        blessings = output_dict.get(standard_component_specs.BLESSING_KEY) or [None]
        metrics = read_metrics(evaluation.uri)
        forgiven = bless_over_forgiven_failures(evaluation.uri, blessings[0], metrics)
        if forgiven.get(SERVED_ZERO):
            log.info("[gate] the served model scores 0 on %s: the candidate cannot fall below it, so the "
                     "\"drop vs served\" rule holds there (TFMA cannot take a relative change from 0 and "
                     "failed it)", ", ".join(forgiven[SERVED_ZERO]))
        if forgiven.get(WITHIN_NOISE):
            log.info("[gate] the drop vs served on %s is within noise (its 95%% interval reaches 0): not "
                     "refused for it (TFMA judges the point estimates only)", ", ".join(forgiven[WITHIN_NOISE]))
        # the config TFMA saved with its output, as the cached table, the report and the card read
        # it: without a served model TFX drops the "vs served" thresholds (rubber stamp)
        report = gate_text(gate_verdict(evaluation.uri, metrics=metrics))
        log.info("%s", report)  # the console shows it (runner/console.py)
        return result

    def _without_repeats(self, input_dict, exec_properties, evaluation) -> standard_artifacts.Examples:
        """The eval examples without the purchases that repeat a pair the candidate or the
        baseline trained on (the module docstring), as an Examples artifact under the
        evaluation's uri; their counts on `evaluation`."""
        examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
        models = [artifact_utils.get_single_instance(input_dict[k]) for k in (
            standard_component_specs.MODEL_KEY, standard_component_specs.BASELINE_MODEL_KEY) if input_dict.get(k)]
        model_dirs = [path_utils.serving_model_path(m.uri, path_utils.is_old_model_artifact(m)) for m in models]
        splits = json.loads(exec_properties.get(standard_component_specs.EXAMPLE_SPLITS_KEY) or "null") or \
            artifact_utils.decode_split_names(examples.split_names)
        kept = standard_artifacts.Examples()
        kept.uri = os.path.join(evaluation.uri, GATE_EXAMPLES_DIR)
        kept.split_names = artifact_utils.encode_split_names(list(splits))
        examples_utils.set_payload_format(kept, examples_utils.get_payload_format(examples))
        examples_utils.set_file_format(kept, examples_utils.get_file_format(examples))
        import tensorflow as tf

        pipeline = self._make_beam_pipeline()
        for split in splits:
            out_dir = artifact_utils.get_split_uri([kept], split)
            tf.io.gfile.makedirs(out_dir)
            leave_out_repeats(pipeline, os.path.join(artifact_utils.get_split_uri([examples], split), "*"),
                              os.path.join(out_dir, "data_tfrecord"), model_dirs, label=split)
        result = pipeline.run()
        result.wait_until_finish()
        left_out = beam_metrics.counter(result, COUNTERS, "left_out")
        purchases = beam_metrics.counter(result, COUNTERS, "kept") + left_out
        evaluation.set_int_custom_property(REPEATS_LEFT_OUT, left_out)
        evaluation.set_int_custom_property(EVAL_PURCHASES, purchases)
        if not left_out:  # the gate judges its input as it is: no copy of it is kept
            tf.io.gfile.rmtree(kept.uri)
            return examples
        if len(model_dirs) > 1:
            log.info("[gate] %s of %s eval purchases repeat a purchase the candidate or the served model "
                     "trained on: left out for both (each model leaves out what a user bought: only the other "
                     "could hit it)", f"{left_out:,}", f"{purchases:,}")
        else:  # no served model (found by exploratory testing: the line spoke of one)
            log.info("[gate] %s of %s eval purchases repeat a purchase the candidate trained on: left out (its "
                     "recommendations leave out what a user bought)", f"{left_out:,}", f"{purchases:,}")
        return kept


def gate_examples(evaluation: Optional[Any]) -> Optional[Tuple[Any, int]]:
    """(the Examples artifact of the purchases the gate judged, how many it left out) when the
    Evaluator left out repeats (`Executor._without_repeats`), else None: it judged its input."""
    if evaluation is None or not evaluation.has_custom_property(REPEATS_LEFT_OUT):
        return None
    left_out = evaluation.get_int_custom_property(REPEATS_LEFT_OUT)
    root = os.path.join(evaluation.uri, GATE_EXAMPLES_DIR)
    import tensorflow as tf

    if not left_out or not tf.io.gfile.isdir(root):
        return None
    kept = standard_artifacts.Examples()
    kept.uri = root
    kept.split_names = artifact_utils.encode_split_names(sorted(
        name.rstrip("/")[len("Split-"):] for name in tf.io.gfile.listdir(root) if name.startswith("Split-")))
    return kept, left_out


class GatedEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    """TFX's EvaluatorSpec, and the fingerprint of the metrics' code (`module_code`): TFMA imports
    `METRICS_MODULE` by the name in the eval config, so TFX's cache would not see a change in it."""

    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        MODULE_CODE_KEY: ExecutionParameter(type=str, optional=True),
    }


class GatedEvaluator(tfx.components.Evaluator):
    """tfx.components.Evaluator that reports its gate in plain words (module docstring)."""

    SPEC_CLASS = GatedEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, *, examples: types.BaseChannel, model: types.BaseChannel,
                 eval_config: config_pb2.EvalConfig, baseline_model: Optional[types.BaseChannel] = None,
                 example_splits: Optional[List[str]] = None, module_code: str = ""):
        """tfx.components.Evaluator's arguments this pipeline uses, and `module_code`: the
        fingerprint of `METRICS_MODULE` (pipeline/code_fingerprint.py), only there for the cache."""
        base_component.BaseComponent.__init__(self, spec=GatedEvaluatorSpec(
            examples=examples, model=model, baseline_model=baseline_model, eval_config=eval_config,
            example_splits=json_utils.dumps(example_splits),
            fairness_indicator_thresholds=json_utils.dumps(None),  # as tfx.components.Evaluator
            module_code=module_code,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
