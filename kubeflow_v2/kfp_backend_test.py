"""The KFP backend's rules, on small hand-written PipelineSpecs: what it refuses (and in which
words), where it puts things, what its cache key holds, how it reads a cron expression."""

import pytest
import yaml

from kubeflow_v2 import kfp_backend

TYPE = {"instanceSchema": "title: tfx.Model\ntype: object\n"}


def _spec(tasks, executors, version="2.1.0"):
    """tasks: {task name: executor kind}; executors: {kind: executor body}."""
    return {
        "schemaVersion": version,
        "pipelineInfo": {"name": "p"},
        "components": {name: {"executorLabel": f"{name}_executor",
                              "outputDefinitions": {"artifacts": {"out": {"artifactType": TYPE}}}}
                       for name in tasks},
        "deploymentSpec": {"executors": {f"{name}_executor": {kind: executors[kind]} for name, kind in tasks.items()}},
        "root": {"dag": {"tasks": {name: {"componentRef": {"name": name}, "taskInfo": {"name": name}}
                                   for name in tasks}}},
    }


CONTAINER = {"image": "img", "command": ["python"], "args": ["{{$}}"]}
IMPORTER = {"artifactUri": {"constant": "gs://b/schema"}, "typeSchema": TYPE}
RESOLVER = {"outputArtifactQueries": {"out": {"filter": 'schema_title="tfx.Model"'}}}


def test_a_package_is_one_bare_pipeline_spec():
    spec = _spec({"Trainer": "container"}, {"container": CONTAINER})
    assert kfp_backend.load_package(yaml.safe_dump(spec)) == spec
    for text in [yaml.safe_dump({"pipelineSpec": spec, "runtimeConfig": {}}),  # TFX's PipelineJob JSON form
                 yaml.safe_dump_all([spec, spec]), "[1, 2]", "", "root: 5\npipelineInfo: {name: x}",
                 "# README\nkey: value: other"]:  # found by exploratory testing: tracebacks for the last two
        with pytest.raises(kfp_backend.BackendError, match="^unknown template format"):
            kfp_backend.load_package(text)


def test_only_schema_2_1_0():
    kfp_backend.check_schema_version(_spec({}, {}))
    with pytest.raises(kfp_backend.BackendError, match="^KFP only supports schema version 2.1.0, but the "
                                                       "pipeline spec has version 2.0.0$"):
        kfp_backend.check_schema_version(_spec({}, {}, version="2.0.0"))


def test_a_resolver_task_is_refused_with_the_api_servers_words():
    spec = _spec({"Trainer": "container", "latest-model": "resolver", "a-resolver": "resolver"},
                 {"container": CONTAINER, "resolver": RESOLVER})
    with pytest.raises(kfp_backend.BackendError) as e:
        kfp_backend.check_compiles(spec)
    # the first resolver in task-key order (visitor.go), wrapped by the API server
    assert str(e.value) == (
        'Failed to generate the ExecutionSpec: Failed to compile job: error processing component '
        'name="a-resolver": executor(label="a-resolver_executor"): non-container and non-importer '
        "executor not implemented")


def test_task_names_follow_argos_rule():
    kfp_backend.check_compiles(_spec({"Trainer": "container", "schema-importer": "importer"},
                                     {"container": CONTAINER, "importer": IMPORTER}))
    spec = _spec({"Trainer": "container", "schema_importer": "importer"},
                 {"container": CONTAINER, "importer": IMPORTER})
    assert kfp_backend.argo_task_names(spec) == ["Trainer-driver", "Trainer", "schema_importer"]
    with pytest.raises(kfp_backend.BackendError, match=r"^templates\.root\.tasks\[2\]\.name: 'schema_importer' is "
                                                       r"invalid: name must consist of alpha-numeric characters or "
                                                       r"'-', and must start with an alpha-numeric character"):
        kfp_backend.check_compiles(spec)
    with pytest.raises(kfp_backend.BackendError, match="'served_model-driver' is invalid"):
        kfp_backend.check_compiles(_spec({"served_model": "container"}, {"container": CONTAINER}))


def test_importer_and_root_uris_are_bucket_uris():
    for uri in ["gs://b/schema", "s3://b/k", "minio://mlpipeline/x", "mem://x"]:
        kfp_backend.check_importer_uri(uri)
        kfp_backend.check_pipeline_root(uri)
    with pytest.raises(kfp_backend.BackendError, match="^failed to execute importer component: failed to create "
                                                       "MLMD artifact from ImporterSpec: no provider scheme found "
                                                       "in artifact URI: /pipeline/schema$"):
        kfp_backend.check_importer_uri("/pipeline/schema")
    with pytest.raises(kfp_backend.BackendError, match="unrecognized pipeline root format"):
        kfp_backend.check_pipeline_root("/tmp/root")


def test_where_the_launcher_mirrors_a_uri():
    assert kfp_backend.local_path_for_uri("gs://b/root/x") == "/gcs/b/root/x"
    assert kfp_backend.local_path_for_uri("minio://mlpipeline/v2/x") == "/minio/mlpipeline/v2/x"
    assert kfp_backend.uri_for_local_path("/gcs/b/root/x") == "gs://b/root/x"
    assert kfp_backend.uri_for_local_path("/tmp/kfp_outputs/x") is None
    with pytest.raises(kfp_backend.BackendError, match="unsupported storage scheme"):
        kfp_backend.local_path_for_uri("/local/x")
    root = kfp_backend.run_root("gs://b/root/", "asos-recommender", "r-1")
    assert kfp_backend.task_root(root, "Trainer", "u-1") == "gs://b/root/asos-recommender/r-1/Trainer/u-1"


def test_values_as_ml_metadata_returns_them():
    assert [kfp_backend.mlmd_value(v) for v in [1, True, 0.5, "x", {"a": 1}]] == [1.0, 1.0, 0.5, "x", {"a": 1}]
    assert kfp_backend.parameter_value("n", 6.0, "NUMBER_INTEGER") == 6.0
    assert kfp_backend.parameter_value("s", {"a": 1}, "STRING") == '{"a": 1}'
    with pytest.raises(kfp_backend.BackendError, match="input parameter n requires type NUMBER_INTEGER"):
        kfp_backend.parameter_value("n", "6", "NUMBER_INTEGER")


def test_the_cache_key_holds_input_ids_parameters_outputs_image_and_command():
    outputs = {"artifacts": {"model": {"artifactType": TYPE}}}
    base = dict(input_artifact_names={"examples": ["3"]}, parameter_values={"epochs": 3.0},
                outputs_spec=outputs, image="img:1", command_and_args=["python", "-m", "x", "{{$}}"])
    key = kfp_backend.cache_fingerprint(**base)
    assert kfp_backend.cache_fingerprint(**base) == key
    for change in [dict(input_artifact_names={"examples": ["4"]}), dict(parameter_values={"epochs": 4.0}),
                   dict(image="img:2"), dict(command_and_args=["python", "-m", "y", "{{$}}"]),
                   dict(outputs_spec={"artifacts": {"model": {"artifactType": {"schemaTitle": "system.Model"}}}})]:
        assert kfp_backend.cache_fingerprint(**{**base, **change}) != key, change
    assert kfp_backend.caching_enabled({"cachingOptions": {"enableCache": True}})
    assert not kfp_backend.caching_enabled({"cachingOptions": {}}) and not kfp_backend.caching_enabled({})


@pytest.mark.parametrize("given, sent, converted", [
    ("0 3 * * 1", "0 0 3 * * 1", True),  # a crontab's Monday 03:00, not "minute 3 of every hour in January"
    ("30 0 3 * * *", "30 0 3 * * *", False),
    ("  0  0 3 * * 1 ", "0 0 3 * * 1", False),
    ("@daily", "@daily", False),
    ("@every 6h", "@every 6h", False),
])
def test_cron_as_kfp_reads_it(given, sent, converted):
    value, note = kfp_backend.cron(given)
    assert value == sent and bool(note) is converted


@pytest.mark.parametrize("given, words", [
    ("TZ=Europe/London 0 3 * * 1", "no time zone"),
    ("CRON_TZ=UTC 0 3 * * 1", "no time zone"),
    ("0 3 * *", "has 4 fields"),
    ("0 0 0 3 * * 1", "has 7 fields"),
    ("@fortnightly", "not a cron descriptor"),
    ("0 3 * * 1; rm", "not a cron expression"),
    ("", "empty"),
])
def test_a_cron_kfp_would_misread_is_refused(given, words):
    with pytest.raises(ValueError, match=words):
        kfp_backend.cron(given)
