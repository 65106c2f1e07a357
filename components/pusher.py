"""TFX's Pusher, made safe: a version is never half there, a model is never pushed twice, and
every version carries its model card.

- **Atomic push**: the version is written by components/model_versions.py's `publish`: under a
  temporary name and renamed to its number on a local file system; on an object store (`gs://`)
  copied with `saved_model.pb` last. A push that fails (a full disk) leaves no version directory
  and says so in one line (`PushError`); the run ends with its own exit code (runner/console.py).
- **No second copy of the model served**: the SavedModel fingerprint (`fingerprint.pb`:
  checksums of the graph, signatures and variables) is compared with that of the newest
  *complete* version (the served one, DECISIONS D1); when they are equal (`same_model`: the
  graph may differ in how it was exported: vocabulary paths, function names) the push is
  recorded on the existing version (pushed=1, same destination) and nothing is copied. A
  numbered directory that is not complete (left by a crash before pushes were atomic) never
  counts: it is named in the log and left for a person to delete (it may be a copy by hand still
  under way).
- **No rollback undone by itself**: a model that is the same as a version a rollback took out of
  service (`withdrawn_twin`; a deterministic Trainer rebuilds it from the same data and start) is
  not pushed: the PushedModel artifact says which version and why (`withdrawn_version`,
  `not_pushed_reason`), and the run ends as refused (exit 3). `make rollback` to that version
  serves it again, and then it is no longer withdrawn.
- **The model card** (components/model_card.py) goes into `assets.extra/` of the version before
  the version appears: the data (from `examples`), the Trainer's configuration (`model_run`, and
  `assets.extra/training.json` of the model), the gate's figures (`evaluation`), the drift
  measurements (`anomalies`, when they hold any), the drift gate's comparison of the newest span
  with the one before it (`drift_report`), the input files' sha256 (`data_files`) and the git
  commit. Each of those inputs is optional.

Everything else is TFX's Pusher: the blessing check, the version numbers (Unix seconds, or one
more than the newest version when that is larger), the archive copy into the PushedModel
artifact, and the `pushed`, `pushed_destination`, `pushed_version` properties.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, proto_utils

from components import drift, model_card, model_versions

FINGERPRINT = model_versions.FINGERPRINT
# a blessed model not pushed: the version it repeats, which a rollback withdrew, and why, in words
WITHDRAWN_KEY, NOT_PUSHED_KEY = "withdrawn_version", "not_pushed_reason"
ALREADY_SERVED_KEY = "already_served"  # 1: `pushed` names the served version that holds this model; nothing new
MODEL_NAME_KEY, DATA_FILES_KEY, GIT_COMMIT_KEY = "model_name", "data_files", "git_commit"
CARD_INPUTS = ("examples", "model_run", "evaluation", "anomalies")
log = logging.getLogger("recsys.push")  # the console shows it (runner/console.py)


class PushError(RuntimeError):
    """A push that failed; nothing was published. The message is one line."""


# fingerprint.pb's hashes of how a model was exported as much as of what it computes: the graph
# holds its vocabulary tables' shared names, which TensorFlow makes from the vocabulary file's
# path at export (that Transform execution's output directory), and the object graph names its
# functions after Keras' layer counter in the exporting process (`transform_features_layer_6`);
# so the same model exported after another Transform execution has other hashes of those
_PATH_BOUND = ("saved_model_checksum", "graph_def_program_hash", "saved_object_graph_hash")


def same_model(model_path: str, served_path: str) -> bool:
    """Whether the complete version at `served_path` holds the SavedModel at `model_path`.

    The same fingerprint (graph, signatures, object graph and variables) but its `uuid` (every
    export draws a new one: a model trained again to the same bits would be pushed again) is the
    same model. So are the same variables and signatures with graphs that differ in how they were
    exported (`_PATH_BOUND`), when both models come from the same training code and configuration
    (training.json's `training_key` and `code_fingerprint`: models/trainer.py) and hold the same
    vocabulary files (`assets/`)."""
    a, b = os.path.join(model_path, FINGERPRINT), os.path.join(served_path, FINGERPRINT)
    if not (fileio.exists(a) and fileio.exists(b)) or model_versions.problem(served_path) is not None:
        return False
    data = io_utils.read_bytes_file(a), io_utils.read_bytes_file(b)
    ours, served = map(_fingerprint, data)
    if ours is None or served is None:  # not fingerprints TensorFlow wrote: compared as they are
        return data[0] == data[1]
    if _hashes(ours) == _hashes(served):
        return True
    if _hashes(ours, _PATH_BOUND) != _hashes(served, _PATH_BOUND):
        return False
    return _same_training(model_path, served_path) and _same_files(model_path, served_path, "assets")


def _fingerprint(data: bytes):
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import fingerprint_pb2

    fingerprint = fingerprint_pb2.FingerprintDef()
    try:
        fingerprint.ParseFromString(data)
    except DecodeError:
        return None
    return fingerprint


def _hashes(fingerprint, leave_out=()) -> Dict[str, Any]:
    """The fingerprint's fields but its uuid and `leave_out`."""
    return {field.name: value for field, value in fingerprint.ListFields()
            if field.name != "uuid" and field.name not in leave_out}


def _same_training(model_path: str, served_path: str) -> bool:
    from models import trainer

    ours, served = (trainer.read_training_facts(p) or {} for p in (model_path, served_path))
    return all(ours.get(key) and ours.get(key) == served.get(key) for key in ("training_key", "code_fingerprint"))


def _same_files(model_path: str, served_path: str, folder: str) -> bool:
    """Whether `folder` holds the same files, byte for byte, in both SavedModels."""
    def files(root):
        base = os.path.join(root, folder)
        if not fileio.isdir(base):
            return {}
        found = {}
        for directory, _, names in fileio.walk(base):
            for name in names:
                path = os.path.join(directory, name)
                found[os.path.relpath(path, base)] = io_utils.read_bytes_file(path)
        return found

    return files(model_path) == files(served_path)


def withdrawn_twin(model_path: str, base: str) -> Optional[Dict[str, Any]]:
    """{"version", "text"} when the model at `model_path` is the same model (`same_model`) as a
    version a rollback took out of service (and no later rollback served again), else None. A
    deterministic Trainer given the data and start it had before rebuilds that very model, and
    pushing it would undo the rollback without a word."""
    # the cards first, unchecked (a few bytes each); only a rollback's copy must be complete to
    # count, and `same_model` checks the version it names: no SavedModel of the others is read
    cards = [(number, path, model_card.read(path)) for number, path in model_versions.numbered(base)]
    rollbacks = [(number, card) for number, path, card in cards
                 if model_card.rollback_of(card) is not None and model_versions.problem(path) is None]
    paths = {number: path for number, path, _ in cards}
    for number, why in model_card.withdrawn(rollbacks).items():
        if number in paths and same_model(model_path, paths[number]):
            reason = f": \"{why['reason']}\"" if why.get("reason") else ""
            return {"version": number,
                    "text": f"this model is version {number} again, which a rollback (version "
                            f"{why['by']}, a copy of {why['of']}) took out of service{reason}; the "
                            f"served model is unchanged (`make rollback VERSION={number} REASON=\"...\"` serves it "
                            "again)"}
    return None


def mark_pushed(model_push: types.Artifact, destination: str, version: str) -> None:
    """Records a push on the PushedModel artifact with the custom properties TFX's Pusher sets
    (`pushed`, `pushed_destination`, `pushed_version`: what the resolvers and tools read). TFX
    has no public helper for this (its executor's `_MarkPushed` is protected), hence the names here."""
    model_push.set_int_custom_property("pushed", 1)
    model_push.set_string_custom_property("pushed_destination", destination)
    model_push.set_string_custom_property("pushed_version", version)


def _single(input_dict: Dict[str, List[types.Artifact]], key: str) -> Optional[types.Artifact]:
    found = input_dict.get(key) or []
    return found[0] if found else None


def card_for(input_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any], model_path: str,
             served_before: Optional[int]):
    """The model card's sections gathered once (the inputs), and a function making the card of a
    given version number and path (what `publish` writes into the version)."""
    examples, model_run = _single(input_dict, "examples"), _single(input_dict, "model_run")
    evaluation, anomalies = _single(input_dict, "evaluation"), _single(input_dict, "anomalies")
    drift_report = _single(input_dict, "drift_report")
    patterns = json.loads(exec_properties.get(DATA_FILES_KEY) or "[]")
    sections = dict(
        git=exec_properties.get(GIT_COMMIT_KEY) or "",
        data=model_card.data_section(examples) if examples else None,
        sources=model_card.source_files(model_card.window_patterns(patterns, examples)) if patterns else None,
        training=model_card.training_section(model_path, model_run.uri if model_run else None),
        evaluation=model_card.gate_section(evaluation.uri) if evaluation else None,
        drift=model_card.drift_section(anomalies) if anomalies else None,
        drift_gate=model_card.drift_gate_section(drift.read_report(drift_report.uri)) if drift_report else None)
    name = exec_properties.get(MODEL_NAME_KEY) or "model"
    pushed_at = datetime.datetime.now(datetime.timezone.utc)

    def card(number: int, path: str) -> Dict[str, Any]:
        return model_card.assemble(name=name, version=number, pushed_at=pushed_at, destination=path,
                                   served_before=served_before, **sections)
    return card


class Executor(pusher_executor.Executor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            log.info("[push] nothing pushed: the model is not blessed")
            return
        destination = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], pusher_pb2.PushDestination())
        if not destination.HasField("filesystem"):
            raise NotImplementedError(f"push destination {destination.WhichOneof('destination')} (only a "
                                      "file system destination is supported)")
        base = destination.filesystem.base_directory
        model_path = self.GetModelPath(input_dict)
        served = None
        for version in model_versions.scan(base):  # newest first, down to the served one
            if version.complete:
                served = version
                break
            log.warning("[push] %s is not a complete version (%s): ignored, never served; delete it by hand",
                        version.path, version.problem)
        if served and same_model(model_path, served.path):
            mark_pushed(model_push, served.path, str(served.number))
            model_push.set_int_custom_property(ALREADY_SERVED_KEY, 1)
            log.info("[push] this model is already served as version %d: no new version (%s)",
                     served.number, served.path)
            return
        withdrawn = withdrawn_twin(model_path, base)
        if withdrawn:
            self._MarkNotPushed(model_push)
            model_push.set_string_custom_property(WITHDRAWN_KEY, str(withdrawn["version"]))
            model_push.set_string_custom_property(NOT_PUSHED_KEY, withdrawn["text"])
            log.warning("[push] nothing pushed: %s", withdrawn["text"])
            return
        card = card_for(input_dict, exec_properties, model_path, served.number if served else None)
        try:
            # TFX's archive of what was pushed, first: a disk too full for it has no room for the
            # version either, and then nothing was published
            io_utils.copy_dir(model_path, model_push.uri)
            version = model_versions.publish(
                model_path, base, lambda number, path: model_card.files(card(number, path)))
        except Exception as e:  # noqa: BLE001 - said in one line, the cause chained
            cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PushError(f"the model could not be pushed to {base}: {cause}; no version was published "
                            "(the partial copy was removed)") from e
        mark_pushed(model_push, version.path, str(version.number))
        # the path last: on a line of its own when it does not fit (runner/console.py fit_text)
        log.info("[push] pushed version %d (model card: %s/%s) to %s", version.number,
                 model_versions.ASSETS_EXTRA, model_card.CARD_MD, version.path)


class PusherSpec(standard_component_specs.PusherSpec):
    """TFX's PusherSpec, and what the model card is made of (all optional)."""

    PARAMETERS = {
        **standard_component_specs.PusherSpec.PARAMETERS,
        MODEL_NAME_KEY: ExecutionParameter(type=str, optional=True),
        DATA_FILES_KEY: ExecutionParameter(type=str, optional=True),  # JSON list of glob patterns
        GIT_COMMIT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        "examples": ChannelParameter(type=standard_artifacts.Examples, optional=True),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun, optional=True),
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
        "anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies, optional=True),
        "drift_report": ChannelParameter(type=drift.DriftReport, optional=True),
    }


class DedupPusher(tfx.components.Pusher):
    """tfx.components.Pusher that pushes atomically, skips a model already served and writes the
    model card (see the module docstring)."""

    SPEC_CLASS = PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 push_destination: pusher_pb2.PushDestination, model_name: str = "",
                 examples: Optional[types.BaseChannel] = None, model_run: Optional[types.BaseChannel] = None,
                 evaluation: Optional[types.BaseChannel] = None, anomalies: Optional[types.BaseChannel] = None,
                 drift_report: Optional[types.BaseChannel] = None, data_files: Optional[List[str]] = None,
                 git_commit: Optional[str] = None):
        """`data_files`: glob patterns of the input files whose sha256 the card lists;
        `git_commit`: default, the commit of this checkout when it is one."""
        base_component.BaseComponent.__init__(self, spec=PusherSpec(
            model=model, model_blessing=model_blessing, push_destination=push_destination,
            custom_config=json.dumps(None), model_name=model_name,
            data_files=json.dumps(list(data_files or [])),
            git_commit=model_card.git_commit() if git_commit is None else git_commit,
            examples=examples, model_run=model_run, evaluation=evaluation, anomalies=anomalies,
            drift_report=drift_report, pushed_model=types.Channel(type=standard_artifacts.PushedModel)))
