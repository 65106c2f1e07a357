"""Evaluator (TFMA) whose verdict is said in plain words, and the EvalConfig of the gate.

`GatedEvaluator` is TFX's Evaluator with one addition: after TFMA has written its metrics and
its blessing, the executor prints (and logs) a table of every gated metric: the candidate's
value, the last blessed model's value, the thresholds, and whether it passed. Nothing else
changes: the blessing artifact decides, and Pusher pushes only a blessed model.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Mapping, Optional, Tuple

import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tensorflow_model_analysis.proto import config_pb2
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs
from tfx import v1 as tfx

from models import exporter
from models import features

METRICS_MODULE = "models.eval_metrics"
CANDIDATE, BASELINE = "candidate", "baseline"


def metric_configs() -> List[Tuple[str, Dict[str, Any]]]:
    """(metric name, RankingMetric config) of every metric the Evaluator computes."""
    return [
        ("recall_at_10", {"kind": "recall", "k": 10}),
        ("recall_at_100", {"kind": "recall", "k": 100}),
        ("ndcg_at_10", {"kind": "ndcg", "k": 10}),
        ("mrr", {"kind": "mrr", "k": 0}),
        ("sampled_accuracy", {"kind": "sampled_accuracy", "k": 0}),
    ]


def eval_config(lower_bounds: Mapping[str, float], max_relative_drop: float) -> config_pb2.EvalConfig:
    """The gate: each metric in `lower_bounds` must reach its bound, and must not fall more than
    `max_relative_drop` (a fraction) below the last blessed model's value (skipped by TFMA when
    there is no blessed model yet)."""
    unknown = set(lower_bounds) - {name for name, _ in metric_configs()}
    if unknown:
        raise ValueError(f"no such metric to gate on: {sorted(unknown)}")
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
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(
            signature_name=exporter.EVAL_SIGNATURE, label_key=features.LABEL_KEY,
            prediction_key=exporter.RANKS_KEY, model_type="tf_generic")],
        slicing_specs=[config_pb2.SlicingSpec()],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics)],
    )


def _thresholds_text(threshold: config_pb2.MetricThreshold) -> str:
    parts = []
    if threshold.HasField("value_threshold"):
        parts.append(f">= {threshold.value_threshold.lower_bound.value:g}")
    if threshold.HasField("change_threshold"):
        parts.append(f"drop <= {-threshold.change_threshold.relative.value:.1%} vs blessed")
    return ", ".join(parts)


def gate_report(output_uri: str, config: config_pb2.EvalConfig) -> Tuple[bool, str]:
    """(blessed, the verdict and a table of candidate/baseline values and thresholds)."""
    result = tfma.load_validation_result(output_uri)
    values: Dict[Tuple[str, str], float] = {}
    for slice_metrics in tfma.load_metrics(output_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue  # the overall slice only
        for entry in slice_metrics.metric_keys_and_values:
            if entry.key.is_diff:
                continue
            values[(entry.key.model_name or CANDIDATE, entry.key.name)] = entry.value.double_value.value
    failed = {f.metric_key.name: f.message
              for per_slice in result.metric_validations_per_slice for f in per_slice.failures}
    has_baseline = any(model == BASELINE for model, _ in values)
    lines = [f"{'metric':<18}{'candidate':>11}{'blessed':>11}  {'threshold':<34}result"]
    for metric in config.metrics_specs[0].metrics:
        name = json.loads(metric.config)["name"]
        candidate = values.get((CANDIDATE, name))
        baseline = values.get((BASELINE, name))
        gated = metric.HasField("threshold")
        lines.append(
            f"{name:<18}{_fmt(candidate):>11}{_fmt(baseline):>11}  "
            f"{(_thresholds_text(metric.threshold) if gated else 'not gated'):<34}"
            f"{('FAILED' if name in failed else 'ok') if gated else '-'}")
    blessed = result.validation_ok
    verdict = ("BLESSED: the model passes the gate; Pusher serves it" if blessed else
               "NOT BLESSED: the model fails the gate and will NOT be pushed; "
               "the serving model stays the last blessed one")
    baseline_note = ("compared with the last blessed model" if has_baseline else
                     "no blessed model yet: absolute thresholds only")
    details = "".join(f"\n  {name}: {message}" for name, message in sorted(failed.items()) if message)
    if not blessed and not failed and result.HasField("validation_details"):
        details = f"\n  {result.validation_details}"
    return blessed, f"[gate] {verdict} ({baseline_note})\n" + "\n".join(lines) + details


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


class Executor(evaluator_executor.Executor):
    """TFX's Evaluator executor, then the gate's verdict in plain words."""

    def Do(self, input_dict, output_dict, exec_properties):
        result = super().Do(input_dict, output_dict, exec_properties)
        output_uri = artifact_utils.get_single_uri(output_dict[standard_component_specs.EVALUATION_KEY])
        eval_cfg = json_format.Parse(exec_properties[standard_component_specs.EVAL_CONFIG_KEY],
                                     config_pb2.EvalConfig())
        _, report = gate_report(output_uri, eval_cfg)
        logging.info("%s", report)
        print(report, flush=True)
        return result


class GatedEvaluator(tfx.components.Evaluator):
    """tfx.components.Evaluator that reports its gate in plain words (module docstring)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
