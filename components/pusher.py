"""Pusher that does not push the same model twice.

TFX's Pusher copies every blessed model to a new version directory. When a run changes nothing
(the Trainer comes from the cache, the Evaluator blesses that model again against itself), that
would publish a byte-identical copy as a new version and make TF Serving reload it. This Pusher
compares the SavedModel fingerprint (`fingerprint.pb`: checksums of the graph, signatures and
variables) with that of the newest version already served; when they are equal it records the
existing version as the push (pushed=1, same destination) and copies nothing. Everything else is
TFX's Pusher.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional

from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

FINGERPRINT = "fingerprint.pb"
log = logging.getLogger("recsys.push")  # the console shows it (runner/console.py)


def newest_version(base_directory: str) -> Optional[str]:
    """The newest numeric version directory under `base_directory`, or None."""
    if not fileio.exists(base_directory):
        return None
    versions = [v.rstrip("/") for v in fileio.listdir(base_directory) if v.rstrip("/").isdigit()]
    return max(versions, key=int) if versions else None


def same_model(model_path: str, served_path: str) -> bool:
    """Whether two SavedModels have the same fingerprint: the same graph, signatures, object
    graph and variables. Its `uuid` is left out: every export draws a new one, so a model
    trained again to the same bits (a compiled pipeline's rerun) would be pushed again."""
    a, b = os.path.join(model_path, FINGERPRINT), os.path.join(served_path, FINGERPRINT)
    if not (fileio.exists(a) and fileio.exists(b)):
        return False
    return _without_uuid(io_utils.read_bytes_file(a)) == _without_uuid(io_utils.read_bytes_file(b))


def _without_uuid(data: bytes) -> bytes:
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import fingerprint_pb2

    fingerprint = fingerprint_pb2.FingerprintDef()
    try:
        fingerprint.ParseFromString(data)
    except DecodeError:
        return data  # not a fingerprint TensorFlow wrote: compared as it is
    fingerprint.ClearField("uuid")
    return fingerprint.SerializeToString(deterministic=True)


def mark_pushed(model_push: types.Artifact, destination: str, version: str) -> None:
    """Records a push on the PushedModel artifact with the custom properties TFX's Pusher sets
    (`pushed`, `pushed_destination`, `pushed_version`: what the resolvers and tools read). TFX
    has no public helper for this (its executor's `_MarkPushed` is protected), hence the names here."""
    model_push.set_int_custom_property("pushed", 1)
    model_push.set_string_custom_property("pushed_destination", destination)
    model_push.set_string_custom_property("pushed_version", version)


class Executor(pusher_executor.Executor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        destination = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
            pusher_pb2.PushDestination())
        if self.CheckBlessing(input_dict) and destination.HasField("filesystem"):
            base = destination.filesystem.base_directory
            version = newest_version(base)
            served = os.path.join(base, version) if version else None
            if served and same_model(self.GetModelPath(input_dict), served):
                model_push = artifact_utils.get_single_instance(
                    output_dict[standard_component_specs.PUSHED_MODEL_KEY])
                mark_pushed(model_push, served, version)
                log.info("[push] this model is already served as version %s (%s): no new version",
                         version, served)
                return
        super().Do(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if model_push.get_int_custom_property("pushed"):
            log.info("[push] pushed version %s to %s", model_push.get_string_custom_property("pushed_version"),
                     model_push.get_string_custom_property("pushed_destination"))
        else:
            log.info("[push] nothing pushed: the model is not blessed")


class DedupPusher(tfx.components.Pusher):
    """tfx.components.Pusher that skips a model already served (see the module docstring)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
