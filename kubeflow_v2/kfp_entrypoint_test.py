"""The KFP entrypoint: the launcher's ExecutorInput made into TFX's, a real TFX executor run behind
it, and the directory markers removed from a (fake) bucket. The whole pipeline through it:
tests/test_kfp_harness.py."""

import argparse
import json
import os
from types import SimpleNamespace

import pytest

from kubeflow_v2 import kfp_backend, kfp_entrypoint
from pipeline import configs

EXAMPLES = {"instanceSchema": "title: tfx.Examples\ntype: object\nproperties:\n  span:\n    type: integer\n"}
SCHEMA = {"instanceSchema": "title: tfx.Schema\ntype: object\n"}


def _launcher_input(output_file="/gcs/b/root/p/r-1/StatisticsGen/u-1/output_metadata.json"):
    """What the KFP 2.17 driver hands a StatisticsGen (research notes §2.1)."""
    return {
        "inputs": {
            "artifacts": {"examples": {"artifacts": [{
                "name": "42", "uri": "gs://b/root/p/r-1/FileBasedExampleGen/u-0/examples",
                "type": {"instanceSchema": ""},
                "metadata": {"split_names": '["train", "eval"]', "span": 0.0, "display_name": "examples",
                             "store_session_info": '{"Provider":"gs","Params":{"fromEnv":"true"}}'}}]}},
            "parameterValues": {"exclude_splits": "[]"},
        },
        "outputs": {
            "artifacts": {
                "statistics": {"artifacts": [{
                    "name": "statistics", "uri": "gs://b/root/p/r-1/StatisticsGen/u-1/statistics",
                    "type": {"instanceSchema": "title: tfx.ExampleStatistics\ntype: object\n"}}]},
                kfp_backend.EXECUTOR_LOGS: {"artifacts": [{"name": "executor-logs", "uri": "gs://b/x/executor-logs",
                                                           "type": kfp_backend.EXECUTOR_LOGS_TYPE}]},
            },
            "outputFile": output_file,
        },
    }


INPUTS_SPEC = {"artifacts": {"examples": {"artifactType": EXAMPLES}},
               "parameters": {"exclude_splits": {"parameterType": "STRING"}}}


def test_the_launchers_input_made_into_tfxs():
    given = _launcher_input()
    before = json.dumps(given, sort_keys=True)
    made = kfp_entrypoint.for_tfx(given, INPUTS_SPEC)
    assert json.dumps(given, sort_keys=True) == before  # not changed in place
    examples = made["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert examples["type"] == EXAMPLES and examples["name"] == "42" and examples["metadata"]["span"] == 0.0
    assert set(made["outputs"]["artifacts"]) == {"statistics"}  # the launcher keeps executor-logs
    # TFX's temporary directory beside the output file: on the bucket, where Dataflow workers see it
    assert made["outputs"]["outputFile"] == "gs://b/root/p/r-1/StatisticsGen/u-1/executor_output.json"
    local = kfp_entrypoint.for_tfx(_launcher_input("/tmp/kfp_outputs/output_metadata.json"), INPUTS_SPEC)
    assert local["outputs"]["outputFile"] == "/tmp/kfp_outputs/output_metadata.json"


def test_an_input_without_a_declared_type_is_named():
    with pytest.raises(kfp_entrypoint.KfpInputError, match="input artifact 'examples' arrived without a type"):
        kfp_entrypoint.for_tfx(_launcher_input(), {"parameters": {}})
    with pytest.raises(kfp_entrypoint.KfpInputError, match="compile the pipeline with the KFP target"):
        kfp_entrypoint.for_tfx(_launcher_input(), None)


def test_tfx_alone_cannot_read_the_launchers_input_and_can_read_ours():
    """Why the shim exists (tensorflow/tfx#7768): TFX 1.21 parses an empty type as no schema."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils
    from tfx.types import standard_artifacts

    def parse(executor_input):
        message = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput(), ignore_unknown_fields=True)
        return utils.parse_raw_artifact_dict(message.inputs.artifacts), message

    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'get'"):
        parse(_launcher_input())
    inputs, _ = parse(kfp_entrypoint.for_tfx(_launcher_input(), INPUTS_SPEC))
    [examples] = inputs["examples"]
    assert isinstance(examples, standard_artifacts.Examples) and examples.split_names == '["train", "eval"]'
    with pytest.raises(ImportError, match="system.Artifact"):  # the launcher's executor-logs output
        message = json_format.ParseDict(_launcher_input(), pipeline_spec_pb2.ExecutorInput())
        utils.parse_raw_artifact_dict(message.outputs.artifacts)


def test_a_tfx_executor_runs_behind_it(tmp_path):
    """TFX's ImportSchemaGen executor, through run(), with the launcher's input: the schema is
    copied, the output metadata is where the launcher reads it, and names no executor-logs."""
    task = tmp_path / "p" / "r-1" / "ImportSchemaGen" / "u-1"
    launcher_input = {
        "inputs": {"parameterValues": {"schema_file": os.path.join(configs.SCHEMA_DIR, "schema.pbtxt")}},
        "outputs": {"artifacts": {
            "schema": {"artifacts": [{"name": "schema", "uri": str(task / "schema"), "type": SCHEMA}]},
            kfp_backend.EXECUTOR_LOGS: {"artifacts": [{"name": "executor-logs", "uri": str(task / "executor-logs"),
                                                       "type": kfp_backend.EXECUTOR_LOGS_TYPE}]}},
            "outputFile": str(task / "output_metadata.json")},
    }
    args = argparse.Namespace(
        executor_class_path="tfx.components.schema_gen.import_schema_gen.executor.Executor",
        json_serialized_invocation_args=json.dumps(launcher_input),
        json_serialized_inputs_spec_args=json.dumps({"parameters": {"schema_file": {"parameterType": "STRING"}}}))
    deleted = []
    kfp_entrypoint.run((args, []), delete_markers=lambda uris: deleted.append(list(uris)) or 0)
    assert (task / "schema" / "schema.pbtxt").read_text() == (
        open(os.path.join(configs.SCHEMA_DIR, "schema.pbtxt")).read())
    written = json.loads((task / "output_metadata.json").read_text())
    assert set(written["artifacts"]) == {"schema"}
    assert written["artifacts"]["schema"]["artifacts"][0]["uri"] == str(task / "schema")
    assert deleted == []  # nothing on a bucket


def _blob(name, size):
    return SimpleNamespace(name=name, size=size)


class FakeStorage:
    """google.cloud.storage.Client's list_blobs / bucket(...).delete_blob, on a dict of objects."""

    def __init__(self, objects):
        self.objects = dict(objects)  # "bucket/name" -> size
        self.deleted = []

    def list_blobs(self, bucket, prefix=None):
        return [_blob(k.split("/", 1)[1], size) for k, size in self.objects.items()
                if k.startswith(bucket + "/") and k.split("/", 1)[1].startswith(prefix or "")]

    def bucket(self, name):
        return SimpleNamespace(delete_blob=lambda blob: (self.deleted.append(f"{name}/{blob}"),
                                                         self.objects.pop(f"{name}/{blob}")))


def test_directory_markers_are_deleted_under_what_a_task_wrote():
    model = "b/root/p/r/Trainer/u/model"
    storage = FakeStorage({
        f"{model}/": 0, f"{model}/Format-Serving/": 0, f"{model}/Format-Serving/saved_model.pb": 120,
        f"{model}/Format-Serving/assets/empty.txt": 0,  # an empty file, not a marker: kept
        f"{model}/Format-Serving/variables/": 0, f"{model}/Format-Serving/variables/variables.index": 10,
        "b/root/p/r/Trainer/u/model_run/": 0,  # another output: not this task's URI list
        "b/serving/recommender/17/": 0, "b/serving/recommender/17/saved_model.pb": 120,
        "b/serving/recommender/170/": 0,  # another version, beside the pushed one
    })
    count = kfp_entrypoint.delete_directory_markers(
        [f"gs://{model}", "gs://b/serving/recommender/17/", "/local/path"], client=storage)
    assert count == 4
    assert sorted(storage.deleted) == sorted([f"{model}/", f"{model}/Format-Serving/",
                                              f"{model}/Format-Serving/variables/", "b/serving/recommender/17/"])
    assert "b/serving/recommender/170/" in storage.objects


def test_what_a_task_wrote():
    declared = {"pushed_model": {"artifacts": [{"uri": "gs://b/root/Pusher/u/pushed_model"}]},
                "other": {"artifacts": [{"uri": "gs://b/root/Pusher/u/other"}]}}
    output = {"artifacts": {"pushed_model": {"artifacts": [{
        "uri": "gs://b/root/Pusher/u/pushed_model",
        "metadata": {"pushed": 1.0, "pushed_destination": "gs://b/serving/recommender/17"}}]}}}
    assert kfp_entrypoint.written_uris(output, declared) == [
        "gs://b/root/Pusher/u/pushed_model", "gs://b/serving/recommender/17", "gs://b/root/Pusher/u/other"]
