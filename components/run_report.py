"""RunReport: one self-contained HTML page per run, for a person to look at.

The last component of the pipeline (after the Pusher), so the report is an artifact of every run
that gets that far, on this machine and on Vertex alike. The page (`index.html` in the `report`
artifact) opens from disk with no network: styles inline, plots embedded as base64 PNG drawn with
matplotlib. Its figures are also written as `report.json` beside it, and the headline ones are
custom properties of the artifact.

What it shows:
  - data: per split the purchases, users, products, purchases per user and per product (plots);
  - validation: the anomalies found (the run gets here only when there are none) and the catalog
    check;
  - spans: the newest span, the training window, the eval file, and the drift gate's figures
    (the newest span against the previous one);
  - training: loss and examples/s per epoch (the Trainer's `training_history.json`);
  - evaluation: each metric for the candidate and the served model (the run's baseline: TFMA's
    values, the ones the gate used) and for the most-popular-products baseline, recall@k for
    k = 1..100 (the candidate's and served model's from the Evaluator's `RecallCurve` metric, the
    popularity baseline's through the same serving module) and catalog coverage@10 of all three
    (through `serving_default`; the candidate's from BatchRecommendations' lists when it wrote
    them, the same answers);
  - the gate's verdict and thresholds, and what the Pusher did;
  - the runs so far: each run's span, warm or cold start, the candidate's gated metrics, verdict
    and pushed version, as a table and a plot (the earlier runs' reports: report_figures.py's
    `earlier_reports`, found beside this one by the local runner; a compiled run shows itself); a
    rerun that found its model already served, judged the same, is counted in the row before it
    (`runs_so_far`), not a row of its own;
  - example recommendations: `call_item_item` of the candidate for the most bought products;
  - requests served: the headline figures of `make monitor`'s latest report (serving/monitor.py)
    and a link to it, when `monitoring_dir` holds one (as it was when the report was written: a run
    whose every component comes from the cache keeps its earlier report).
  - on a local run, each component's seconds and peak memory (the console's, so far).

This file is the component and its executor; the figures are gathered by
components/report_figures.py (the metrics: models/ranking_metrics.py), the page is drawn by
components/report_html.py with components/report_plots.py.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils

from components import baseline
from components import evaluator as evaluator_lib
from components import report_figures as figures
from components.catalog_check import CatalogReport
from components.drift import DriftReport
from components.report_html import render_html
from components.report_plots import plots

log = logging.getLogger("recsys.report")

HTML_FILE = "index.html"
JSON_FILE = "report.json"


class RunReportFile(artifact.Artifact):
    # Kubeflow V2 restores "<namespace>.<Class>" by import in each container:
    # components/__init__.py exposes it as components.RunReportFile.
    TYPE_NAME = "components.RunReportFile"


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """Reads the run's artifacts, gathers each section of the report (report_figures.py) and
        writes report.json and the page into the report artifact."""
        inputs = {key: _single(input_dict, key) for key in RunReportSpec.INPUTS}
        model = inputs["model"]
        purchases = figures.read_splits(inputs["examples"])
        sampled = inputs["eval_examples"]  # the Evaluator's sample of eval users, when it had one
        evaluated = {**purchases, **figures.read_splits(sampled)} if sampled else purchases
        judged = evaluator_lib.gate_examples(inputs["evaluation"])  # without the repeats the gate left out
        if judged:
            evaluated = {**evaluated, **figures.read_splits(judged[0])}
        catalog = figures.read_catalog_report(inputs["catalog_report"])
        train = figures.read_train_split(inputs["transform_graph"], inputs["transformed_examples"])
        gate = evaluator_lib.gate_verdict(inputs["evaluation"].uri)
        candidate = figures.saved_model_signatures(model.uri)
        report = {
            "pipeline": exec_properties.get("pipeline_name") or "pipeline",
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "run": f"candidate model {model.uri}",
            "data": {split: figures.split_statistics(p) for split, p in purchases.items()},
            "validation": {"anomalies": figures.anomaly_lines(inputs["anomalies"]), "catalog": catalog},
            "spans": figures.span_figures(inputs["examples"], inputs["drift_report"]),
            "training": figures.training_figures(inputs["model_run"], model.uri),
            "evaluation": figures.evaluation_figures(
                gate, evaluated, figures.catalog_size(catalog, train), train, candidate, model.uri,
                baseline_uri=_uri(inputs["baseline_model"]) if baseline.found(inputs["baseline_model"]) else None,
                recommendations_uri=_uri(inputs["batch_recommendations"]),
                sample=figures.sample_note(sampled), left_out=judged[1] if judged else 0),
            "gate": figures.gate_figures(gate),
            "push": figures.push_summary(inputs["pushed_model"], gate["blessed"],
                                         served=baseline.found(inputs["baseline_model"])),
            "examples": figures.item_item_examples(candidate, train),
            "monitoring": figures.monitoring_figures(exec_properties.get("monitoring_dir")),
            # the version served once this run is done: what it pushed, else the served baseline
            "served_version": _served_version(inputs["pushed_model"], inputs["baseline_model"]),
            "components": figures.component_figures(),
        }
        out = artifact_utils.get_single_instance(output_dict["report"])
        earlier = figures.earlier_reports(out.uri, JSON_FILE)
        # one row per model judged: a rerun that found its model already served is counted, not a row
        report["history"] = figures.runs_so_far([figures.history_row(r) for r in earlier]
                                                + [figures.history_row(report)])
        _write(report, out)


def _served_version(pushed_model: Optional[types.Artifact], baseline_model: Optional[types.Artifact]) -> Optional[str]:
    """The version served after this run: the one its Pusher pushed (or found already served),
    else the one served when it started (ServedBaseline's `served_version`); None when nothing is
    served."""
    if pushed_model is not None and pushed_model.has_custom_property("pushed") and \
            pushed_model.get_int_custom_property("pushed"):
        return pushed_model.get_string_custom_property("pushed_version") or None
    return baseline.artifact_facts(baseline_model)["baseline"]["served_version"]


def _single(input_dict: Dict[str, List[types.Artifact]], key: str) -> Optional[types.Artifact]:
    """The artifact of an input channel, None for an optional one left empty."""
    found = input_dict.get(key) or []
    return found[0] if found else None


def _uri(optional: Optional[types.Artifact]) -> Optional[str]:
    return optional.uri if optional is not None else None


def _write(report: Dict[str, Any], out: types.Artifact) -> None:
    """report.json and the page into the report artifact; the headline figures as its properties."""
    io_utils.write_string_file(os.path.join(out.uri, JSON_FILE), json.dumps(report, indent=1))
    io_utils.write_string_file(os.path.join(out.uri, HTML_FILE), render_html(report, plots(report)))
    out.set_int_custom_property("blessed", int(report["gate"]["blessed"]))
    out.set_int_custom_property("pushed", int(report["push"]["pushed"]))
    out.set_string_custom_property("pushed_version", report["push"]["version"])
    log.info("[report] %s", os.path.join(out.uri, HTML_FILE))


class RunReportSpec(ComponentSpec):
    PARAMETERS = {"pipeline_name": ExecutionParameter(type=str),
                  "monitoring_dir": ExecutionParameter(type=str, optional=True)}
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies, optional=True),
        "drift_report": ChannelParameter(type=DriftReport, optional=True),
        "catalog_report": ChannelParameter(type=CatalogReport, optional=True),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
        "transformed_examples": ChannelParameter(type=standard_artifacts.Examples),
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel, optional=True),
        # the candidate's lists, when blessed: its coverage@10 without asking the model again
        "batch_recommendations": ChannelParameter(type=standard_artifacts.InferenceResult, optional=True),
        # the Evaluator's seeded sample of eval users (components/eval_sample.py), when it has one
        "eval_examples": ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }
    OUTPUTS = {"report": ChannelParameter(type=RunReportFile)}


class RunReport(base_component.BaseComponent):
    """Writes the run's HTML report (see the module docstring)."""

    SPEC_CLASS = RunReportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, pipeline_name: str, examples, transform_graph, transformed_examples,
                 model, model_run, evaluation, anomalies=None, drift_report=None, catalog_report=None,
                 baseline_model=None, pushed_model=None, batch_recommendations=None, eval_examples=None,
                 monitoring_dir: Optional[str] = None):
        super().__init__(spec=RunReportSpec(
            pipeline_name=pipeline_name, monitoring_dir=monitoring_dir, examples=examples, anomalies=anomalies,
            drift_report=drift_report,
            catalog_report=catalog_report, transform_graph=transform_graph,
            transformed_examples=transformed_examples, model=model, model_run=model_run,
            baseline_model=baseline_model, evaluation=evaluation, pushed_model=pushed_model,
            batch_recommendations=batch_recommendations, eval_examples=eval_examples,
            report=types.Channel(type=RunReportFile)))
