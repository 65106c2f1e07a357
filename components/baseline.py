"""ServedBaseline: the run's baseline is the model that is served (DECISIONS D1, D3).

The Trainer warm-starts from it and the Evaluator judges the candidate against it. "Served" is
the newest complete numeric version under the Pusher's base directory (what TF Serving and
`make serve` serve; a rollback publishes a new version, so it is honoured). The component reads
that directory itself: no ML Metadata query, so it works the same on the local runner, on
Vertex AI and on open-source Kubeflow Pipelines (which runs no resolver task).

Its output is a Model artifact: a copy of the baseline's SavedModel under `<uri>/Format-Serving`
(what `fn_args.base_model` and TFMA read), with custom properties `found` (0: nothing to start
from or compare with: a cold start and an absolute-only gate), `version`, `served_version`,
`reason`, and the data it was decided for (the Examples' `input_fingerprint`, `span`,
`window_spans`, `eval_source`: the Trainer records them in training.json; a compiled ExampleGen
leaves the fingerprint out, and the component computes it from ExampleGen's patterns as its
driver does).

**The rule** (`decide`): the baseline is the served model, unless the served model is this
very training run again: trained on exactly this data (its training.json's input fingerprint
and window of spans are the Examples') with exactly this training configuration and code
(`training_key`). Then the baseline is the one that model had (what it was warm-started from
and judged against). So a
second run with nothing changed decides what the first decided, and comes whole from the cache;
new data, another configuration or a rollback give a new baseline.

**When it is decided.** A cached execution must mean the same answer. On the local runner the
runner decides before the run (`pinned_version`, runner/baseline.py): the answer is part of the
cache key, so the component is cached exactly when the answer is unchanged. A compiled pipeline
(Vertex AI, Kubeflow) cannot know the answer when it is compiled: there the component decides
at run time and its task runs uncached (kubeflow_v2_runner.py), so what follows it runs again
on every run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict, List, Optional, Sequence

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils, proto_utils

from components import model_versions, spans
from models import trainer

log = logging.getLogger("recsys.baseline")  # the console shows it (runner/console.py)

PIN_NONE = "none"  # pinned_version: nothing is the baseline
# The Examples' custom properties the decision and training.json use (ExampleGen's spans)
DATA_PROPERTIES = {"input_fingerprint": str, "span": int, "window_spans": str, "eval_source": str}


@dataclasses.dataclass
class Decision:
    version: Optional[str]  # the baseline's version directory name; None: no baseline
    served: Optional[str]  # the newest complete version, when there is one
    reason: str


def is_complete(version_dir: str) -> bool:
    """A pushed version directory that holds a whole SavedModel (components/model_versions.py)."""
    return model_versions.problem(version_dir) is None


def served_version(serving_model_dir: str) -> Optional[str]:
    """The version served (D1): the newest complete numeric version directory
    (components/model_versions.py, the one place for that rule), as its directory name."""
    served = model_versions.served(serving_model_dir)
    return os.path.basename(served.path.rstrip("/")) if served else None


def decide(serving_model_dir: str, data_fingerprint: Optional[str], training_key: str,
           window_spans: Optional[Sequence[int]] = None) -> Decision:
    """The baseline of a run on data `data_fingerprint` (ExampleGen's input fingerprint) and
    `window_spans` (the spans it trains on) that trains `training_key` (models/trainer.py), by
    the rule of the module docstring. The fingerprint covers every span's files, so the window
    tells apart two trainings on the same files with another `--span-window`."""
    served = served_version(serving_model_dir)
    if served is None:
        return Decision(None, None, "no model is served yet")
    facts = trainer.read_training_facts(os.path.join(serving_model_dir, served)) or {}
    data = facts.get("data") or {}
    same_data = (bool(data_fingerprint) and data.get("input_fingerprint") == data_fingerprint
                 and _window(data.get("window_spans")) == _window(window_spans))
    if same_data and facts.get("training_key") == training_key:
        base = (facts.get("baseline") or {}).get("version") or None
        return Decision(base, served, f"version {served}, the served one, was trained on this data with "
                        "this configuration: its own baseline again")
    return Decision(served, served, "served")


def _window(value: Any) -> Optional[List[int]]:
    """A window's span numbers (spans.span_numbers), None when it is not known."""
    return None if value is None else spans.span_numbers(value)


def data_fingerprint(input_base: str, input_config: Any) -> str:
    """TFX's fingerprint of the files ExampleGen's patterns match (number, sizes, modification
    times): what its driver records as the Examples' `input_fingerprint`. `input_config`: the
    Input proto or its JSON."""
    config = example_gen_pb2.Input()  # a copy: TFX rewrites {SPAN} patterns in place
    if isinstance(input_config, str):
        proto_utils.json_to_proto(input_config, config)
    else:
        config.CopyFrom(input_config)
    fingerprint, _, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        input_base, config.splits)
    return fingerprint


def data_facts(artifact: types.Artifact, prefix: str = "") -> Dict[str, Any]:
    """The DATA_PROPERTIES an artifact has (an Examples' span properties; this component's
    output holds them with the prefix `data_`), `window_spans` as a list of ints."""
    facts: Dict[str, Any] = {}
    for name, kind in DATA_PROPERTIES.items():
        if artifact.has_custom_property(prefix + name):
            get = artifact.get_int_custom_property if kind is int else artifact.get_string_custom_property
            facts[name] = get(prefix + name)
    if "window_spans" in facts:
        facts["window_spans"] = spans.span_numbers(facts["window_spans"])
    return facts


def artifact_facts(model: Optional[types.Artifact]) -> Dict[str, Any]:
    """What a ServedBaseline artifact says: {"baseline": {found, version, served_version, reason},
    "data": data_facts}. A Model from elsewhere (no `found` property) counts as found when it
    holds a serving model."""
    if model is None:
        return {"baseline": {"found": False, "version": None, "served_version": None,
                             "reason": "no baseline input"}, "data": {}}

    def text(name):
        return model.get_string_custom_property(name) if model.has_custom_property(name) else ""

    found = (bool(model.get_int_custom_property("found")) if model.has_custom_property("found")
             else fileio.exists(path_utils.serving_model_dir(model.uri)))
    return {"baseline": {"found": found, "version": text("version") or None,
                         "served_version": text("served_version") or None, "reason": text("reason")},
            "data": data_facts(model, prefix="data_")}


def found(model: Optional[types.Artifact]) -> bool:
    """Whether a baseline Model artifact holds a model to start from and compare with."""
    return artifact_facts(model)["baseline"]["found"]


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        out = artifact_utils.get_single_instance(output_dict["model"])
        serving_dir = exec_properties["serving_model_dir"]
        data = data_facts(examples)
        if "input_fingerprint" not in data:  # a compiled ExampleGen's driver does not set it
            data["input_fingerprint"] = data_fingerprint(exec_properties["input_base"],
                                                         exec_properties["input_config"])
        decision = decide(serving_dir, data["input_fingerprint"], exec_properties["training_key"],
                          data.get("window_spans"))
        pinned = exec_properties.get("pinned_version") or ""
        if pinned and (None if pinned == PIN_NONE else pinned) != decision.version:
            # the runner decided before the run, and that answer is the cache key: it stands
            version = None if pinned == PIN_NONE else pinned
            decision = Decision(version, decision.served, "decided when the run started")
        source = os.path.join(serving_dir, decision.version) if decision.version else None
        if source and not is_complete(source):
            fallback = served_version(serving_dir)
            decision = Decision(fallback, decision.served, f"version {decision.version} is no longer "
                                f"there: {'the served one' if fallback else 'none'} instead")
            source = os.path.join(serving_dir, fallback) if fallback else None
        if source:
            io_utils.copy_dir(source, path_utils.serving_model_dir(out.uri))
        out.set_int_custom_property("found", int(source is not None))
        out.set_string_custom_property("version", decision.version or "")
        out.set_string_custom_property("served_version", decision.served or "")
        out.set_string_custom_property("reason", decision.reason)
        for name, value in data.items():
            if name == "window_spans":
                value = ",".join(str(s) for s in value)
            setter = out.set_int_custom_property if isinstance(value, int) else out.set_string_custom_property
            setter("data_" + name, value)
        if source:
            log.info("[baseline] version %s (%s): the Evaluator compares with it, and the Trainer "
                     "starts from it unless it starts cold (--cold-start, other model settings)",
                     decision.version, decision.reason)
        else:
            log.info("[baseline] none (%s): a cold start, and the gate's absolute bounds only",
                     decision.reason)


class ServedBaselineSpec(ComponentSpec):
    PARAMETERS = {
        "serving_model_dir": ExecutionParameter(type=str),  # the Pusher's base directory
        "training_key": ExecutionParameter(type=str),  # models/trainer.py training_key
        # ExampleGen's: the data's fingerprint when its Examples do not carry it
        "input_base": ExecutionParameter(type=str),
        "input_config": ExecutionParameter(type=example_gen_pb2.Input),
        # decided before the run (local runner): a version or PIN_NONE; absent: decided at run time
        "pinned_version": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {"model": ChannelParameter(type=standard_artifacts.Model)}


class ServedBaseline(base_component.BaseComponent):
    """The served model as the run's baseline, for the Trainer and the Evaluator (see the
    module docstring)."""

    SPEC_CLASS = ServedBaselineSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, examples, input_base: str, input_config: example_gen_pb2.Input,
                 serving_model_dir: str, training_key: str, pinned_version: Optional[str] = None):
        super().__init__(spec=ServedBaselineSpec(
            examples=examples, input_base=input_base, input_config=input_config,
            serving_model_dir=serving_model_dir, training_key=training_key,
            pinned_version=pinned_version, model=types.Channel(type=standard_artifacts.Model)))
