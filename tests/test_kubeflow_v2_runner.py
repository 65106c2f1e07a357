"""The Vertex AI / Kubeflow V2 compile: offline into a temporary directory, read back with the
kfp-pipeline-spec protos, and compared with the LOCAL pipeline object (local_runner.build), so the
expectations follow the pipeline as components are added."""

import json
import os
import re
from collections import defaultdict

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import kubeflow_v2_runner
import local_runner
from kubeflow_v2 import settings
from pipeline import configs

IMAGE = "europe-west1-docker.pkg.dev/test-project/recsys/asos-recommender:test"
REQUIRED = ["--project", "test-project", "--region", "europe-west1", "--bucket", "test-bucket",
            "--image", IMAGE]
DATAFLOW = REQUIRED + ["--dataflow", "--dataflow-max-workers", "4",
                       "--dataflow-service-account", "df@test-project.iam.gserviceaccount.com"]


@pytest.fixture(scope="module")
def local_pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    return local_runner.build(configs.PipelineConfig(
        data_dir=str(root / "data"), output_dir=str(root / "out"), verify_checksums=False))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("vertex")
    config, _, _ = settings.parse_compile_args(DATAFLOW, environ={})
    path, tfx_pipeline = kubeflow_v2_runner.compile_pipeline(config, str(out))
    with open(path) as f:
        text = f.read()
    job = json_format.Parse(text, pipeline_spec_pb2.PipelineJob())  # strict: unknown fields fail
    spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec),
                                 pipeline_spec_pb2.PipelineSpec())
    deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                                       pipeline_spec_pb2.PipelineDeploymentConfig())
    return dict(config=config, path=path, text=text, job=job, spec=spec, deployment=deployment,
                pipeline=tfx_pipeline, out=str(out))


def _node_of(task_name, node_ids):
    """A task's node: its own id (a Resolver would compile to '<id>-...' tasks; there is none)."""
    if task_name in node_ids:
        return task_name
    owners = [n for n in node_ids if task_name.startswith(n + "-")]
    assert len(owners) == 1, f"task {task_name} matches no single node of {sorted(node_ids)}"
    return owners[0]


def _executor(compiled, node_id):
    """The deployment executor of a component's task."""
    task = compiled["spec"].root.dag.tasks[node_id]
    label = compiled["spec"].components[task.component_ref.name].executor_label
    return compiled["deployment"].executors[label]


def _components(pipeline, type_name):
    """The nodes of that class (or a subclass of it, e.g. GatedEvaluator for Evaluator)."""
    return [c for c in pipeline.components if type_name in {k.__name__ for k in type(c).__mro__}]


def _component(pipeline, type_name):
    """The one node of that class: a pipeline without it (or with two) fails the test."""
    found = _components(pipeline, type_name)
    assert len(found) == 1, f"the pipeline has {len(found)} {type_name} nodes, one expected"
    return found[0]


def _parameter(task, name):
    value = task.inputs.parameters[name].runtime_value
    if value.HasField("constant"):
        return value.constant.string_value
    return value.constant_value.string_value


# --- the DAG ------------------------------------------------------------------------------------

def test_compiled_dag_is_the_local_pipeline(compiled, local_pipeline):
    expected = {n.id: {u.id for u in n.upstream_nodes} for n in local_pipeline.components}
    got = defaultdict(set)
    for name, task in compiled["spec"].root.dag.tasks.items():
        node = _node_of(name, expected)
        got[node] |= {_node_of(d, expected) for d in task.dependent_tasks} - {node}
    assert sorted(got) == sorted(expected), "every component and the Importer compile"
    assert dict(got) == expected
    # the edge that stops Transform on bad data survives compilation
    assert "StrictExampleValidator" in got["Transform"]


def test_the_served_baseline_feeds_the_trainer_and_the_evaluator_and_runs_uncached(compiled, local_pipeline):
    """No resolver task (open-source KFP runs none): ServedBaseline reads the Pusher's directory.
    Compiled, it decides when it runs, so its task is never taken from Vertex's cache; the local
    runner decides before the run (pinned_version) and leaves caching to TFX."""
    tasks = compiled["spec"].root.dag.tasks
    assert not [t for t in tasks if "resolver" in t.lower()]
    for consumer, key in (("Trainer", "base_model"), ("Evaluator", "baseline_model"),
                          ("RunReport", "baseline_model")):
        ref = tasks[consumer].inputs.artifacts[key].task_output_artifact
        assert (ref.producer_task, ref.output_artifact_key) == ("ServedBaseline", "model"), consumer
    assert not tasks["ServedBaseline"].caching_options.enable_cache
    assert all(t.caching_options.enable_cache for name, t in tasks.items() if name != "ServedBaseline")
    assert "pinned_version" not in tasks["ServedBaseline"].inputs.parameters
    assert compiled["config"].serving_model_dir in _parameter(tasks["ServedBaseline"], "serving_model_dir")
    local = _component(local_pipeline, "ServedBaseline")
    assert local.exec_properties["pinned_version"] == "none"  # nothing served in the fixture's dirs


# --- images, Beam -------------------------------------------------------------------------------

def test_every_executor_runs_the_image(compiled):
    from tfx.dsl.components.base import base_component
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    containers = {k: e.container for k, e in compiled["deployment"].executors.items()
                  if e.WhichOneof("spec") == "container"}
    assert containers
    for name, container in containers.items():
        assert container.image == IMAGE, name
        assert list(container.command) == list(kubeflow_v2_dag_runner.KUBEFLOW_TFX_CMD), name
    for node in compiled["pipeline"].components:  # importers run in Vertex itself
        if isinstance(node, base_component.BaseComponent):
            assert _executor(compiled, node.id).container.image == IMAGE, node.id


def _beam_components(pipeline):
    from tfx.dsl.components.base import executor_spec
    return [c for c in pipeline.components
            if isinstance(getattr(c, "executor_spec", None), executor_spec.BeamExecutorSpec)]


@pytest.mark.parametrize("type_name", ["Transform", "StatisticsGen", "Evaluator", "FileBasedExampleGen"])
def test_beam_components_run_on_dataflow(compiled, type_name):
    node = _component(compiled["pipeline"], type_name)
    args = list(_executor(compiled, node.id).container.args)
    for expected in ["--runner=DataflowRunner", "--project=test-project", "--region=europe-west1",
                     "--temp_location=gs://test-bucket/dataflow/tmp",
                     f"--sdk_container_image={IMAGE}", "--max_num_workers=4",
                     "--service_account_email=df@test-project.iam.gserviceaccount.com"]:
        assert expected in args, (type_name, args)
    assert not any(a.startswith("--direct_") for a in args)


def test_every_beam_component_gets_the_dataflow_args(compiled):
    beam = _beam_components(compiled["pipeline"])
    assert {"Transform", "StatisticsGen"} <= {type(c).__name__ for c in beam}
    wanted = compiled["config"].beam_pipeline_args()
    for node in beam:
        container = _executor(compiled, node.id).container
        assert list(container.args)[-len(wanted):] == wanted, node.id
        if container.lifecycle.HasField("pre_cache_check"):  # ExampleGen's driver lists files too
            assert list(container.lifecycle.pre_cache_check.args)[-len(wanted):] == wanted


def test_without_dataflow_beam_stays_in_the_container(local_pipeline):
    config, _, _ = settings.parse_compile_args(REQUIRED, environ={})
    job = kubeflow_v2_runner.create_runner(config, "unused", "unused.json").run(
        kubeflow_v2_runner.build(config), write_out=False)
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    args = executors["Transform_executor"]["container"]["args"]
    assert "--runner=FnApiRunner" in args and not any("Dataflow" in a for a in args)
    # and the local run is untouched: in memory
    assert "--runner=FnApiRunner" in local_pipeline.beam_pipeline_args


def test_every_beam_args_list_declares_a_dependency(compiled, local_pipeline):
    """Else TFX builds a throwaway TFX sdist in each Beam component: 2-6 s, and 46 MB under /tmp
    that it never removes (conftest.py refuses the build, so TFX's own check decides here)."""
    from tfx.utils import dependency_utils
    in_container, _, _ = settings.parse_compile_args(REQUIRED, environ={})
    for args in (compiled["config"].beam_pipeline_args(), in_container.beam_pipeline_args(),
                 local_pipeline.beam_pipeline_args):
        assert dependency_utils.make_beam_dependency_flags(args) == args


# --- Evaluator ----------------------------------------------------------------------------------

def test_evaluator_thresholds_are_compiled(compiled, local_pipeline):
    evaluator = _component(local_pipeline, "Evaluator")
    from tensorflow_model_analysis.proto import config_pb2

    def as_proto(value):
        if isinstance(value, config_pb2.EvalConfig):
            return value
        return json_format.Parse(value, config_pb2.EvalConfig())

    local = as_proto(evaluator.exec_properties["eval_config"])
    task = compiled["spec"].root.dag.tasks[evaluator.id]
    remote = as_proto(_parameter(task, "eval_config"))
    assert remote == local
    thresholds = [t for spec in remote.metrics_specs for t in spec.thresholds.values()]
    thresholds += [m.threshold for spec in remote.metrics_specs for m in spec.metrics
                   if m.HasField("threshold")]
    assert any(t.HasField("value_threshold") or t.HasField("change_threshold") for t in thresholds), \
        "without a threshold the Evaluator never blesses and Pusher never pushes (tfx#5148)"


# --- nothing of this machine in the file ---------------------------------------------------------

def _strings(value):
    """Every string in the JSON, and in JSON documents nested in strings (exec properties)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value
        if value[:1] in "{[":
            try:
                yield from _strings(json.loads(value))
            except ValueError:
                pass


# (after a "*": a relative glob, as ExampleGen's span patterns "*/dsf_asos_train_*.parquet")
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.\-{}$*])/[\w.\-]+(?:/[\w.\-*]*)*")


def test_no_path_of_this_machine_and_no_wheels(compiled, tmp_path):
    text = compiled["text"]
    for forbidden in ["/work/", configs.PROJECT_DIR, os.path.dirname(compiled["out"]),
                      os.path.expanduser("~") + "/", "_wheels", ".whl", "module_path"]:
        assert forbidden not in text, forbidden
    found = {m.group(0) for s in _strings(json.loads(text)) for m in ABSOLUTE_PATH.finditer(s)}
    allowed = {p for p in found if p == configs.IMAGE_PROJECT_DIR
               or p.startswith(configs.IMAGE_PROJECT_DIR + "/")}
    assert found - allowed == set(), "absolute paths other than the image's " + configs.IMAGE_PROJECT_DIR
    # the schema is read from the copy inside the image
    assert configs.IMAGE_SCHEMA_DIR in text


def test_cloud_locations(compiled):
    job, config = compiled["job"], compiled["config"]
    assert job.runtime_config.gcs_output_directory == "gs://test-bucket/pipeline_root"
    tasks = compiled["spec"].root.dag.tasks
    assert _parameter(tasks["FileBasedExampleGen"], "input_base") == "gs://test-bucket/data/asos"
    assert _parameter(tasks["CatalogCheck"], "catalog_uri") == \
        f"gs://test-bucket/data/asos/{configs.CATALOG_FILE}"
    pusher = _component(compiled["pipeline"], "Pusher")
    assert config.serving_model_dir in _parameter(tasks[pusher.id], "push_destination")
    assert compiled["spec"].pipeline_info.name == configs.PIPELINE_NAME


def test_module_code_is_referenced_by_dotted_path(compiled):
    tasks = compiled["spec"].root.dag.tasks
    assert _parameter(tasks["Transform"], "preprocessing_fn") == configs.PREPROCESSING_FN
    trainer = _component(compiled["pipeline"], "Trainer")
    assert _parameter(tasks[trainer.id], "run_fn") == configs.RUN_FN


# --- the command line ---------------------------------------------------------------------------

def test_main_compiles_and_lists_the_components(tmp_path, capsys):
    assert kubeflow_v2_runner.main(REQUIRED + ["--output-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / configs.VERTEX_PIPELINE_JSON).is_file()
    assert "Transform (Transform)" in printed and "wrote" in printed
    assert "--accept-drift" not in printed


def test_a_compile_with_accept_drift_says_what_it_lets_through(tmp_path, capsys):
    """Found by exploratory testing: such a package lets every drifted span through, and the compile
    said nothing of it."""
    assert kubeflow_v2_runner.main(REQUIRED + ["--output-dir", str(tmp_path), "--accept-drift"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "--accept-drift" in line]
    assert notes == ["[compile] note: compiled with --accept-drift: every run of this package lets every drifted "
                     "span through (recorded in gs://test-bucket/pipeline_root/drift_acceptances/asos-recommender); "
                     "compile it for the one run that needs it, then again without it"], notes


@pytest.mark.parametrize("missing, flag, env", [
    ("--project", "--project", "RECSYS_GCP_PROJECT"),
    ("--region", "--region", "RECSYS_GCP_REGION"),
    ("--bucket", "--bucket", "RECSYS_GCS_BUCKET"),
    ("--image", "--image", "RECSYS_IMAGE"),
])
def test_a_missing_setting_is_one_line_naming_it(monkeypatch, capsys, missing, flag, env):
    for name in list(os.environ):
        if name.startswith("RECSYS_"):
            monkeypatch.delenv(name)
    i = REQUIRED.index(missing)
    assert kubeflow_v2_runner.main(REQUIRED[:i] + REQUIRED[i + 2:]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and env in err, err


def test_settings_come_from_the_environment():
    environ = {"RECSYS_GCP_PROJECT": "p", "RECSYS_GCP_REGION": "us-central1",
               "RECSYS_GCS_BUCKET": "gs://b/", "RECSYS_IMAGE": "img:1", "RECSYS_DATAFLOW": "true",
               "RECSYS_BEAM_ARGS": "--experiments=use_runner_v2 --number_of_worker_harness_threads=2",
               "RECSYS_PIPELINE_ROOT": "gs://other/root"}
    config, _, _ = settings.parse_compile_args([], environ=environ)
    assert (config.project, config.region, config.bucket, config.image) == ("p", "us-central1", "gs://b", "img:1")
    assert config.pipeline_root == "gs://other/root" and config.data_root == "gs://b/data/asos"
    args = config.beam_pipeline_args()
    assert args[:5] == ["--runner=DataflowRunner", "--project=p", "--region=us-central1",
                        "--temp_location=gs://b/dataflow/tmp", "--sdk_container_image=img:1"]
    assert args[-2:] == ["--experiments=use_runner_v2", "--number_of_worker_harness_threads=2"]
    # a flag wins over its variable
    config, _, _ = settings.parse_compile_args(["--no-dataflow", "--project", "q"], environ=environ)
    assert config.project == "q" and config.beam_pipeline_args()[0] == "--runner=FnApiRunner"
    with pytest.raises(settings.SettingError, match="RECSYS_DATAFLOW"):
        settings.parse_compile_args([], environ={**environ, "RECSYS_DATAFLOW": "maybe"})


def test_model_settings_are_compiled_into_the_trainer(tmp_path):
    argv = REQUIRED + ["--output-dir", str(tmp_path), "--preset", "notebook",
                       "--model-param", "epochs=2", "--model-param", "sampling=mixed"]
    assert kubeflow_v2_runner.main(argv) == 0
    with open(tmp_path / configs.VERTEX_PIPELINE_JSON) as f:
        document = json.load(f)
    spec = document.get("pipelineSpec", document)
    parameter = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["custom_config"]
    value = parameter["runtimeValue"].get("constant", parameter["runtimeValue"].get("constantValue"))
    custom_config = json.loads(value if isinstance(value, str) else value["stringValue"])
    assert custom_config["preset"] == "notebook"
    assert custom_config["model"] == {"epochs": 2, "sampling": "mixed"}


def test_a_bad_model_parameter_stops_the_compile(tmp_path, capsys):
    argv = REQUIRED + ["--output-dir", str(tmp_path), "--model-param", "dropout=0.1"]
    assert kubeflow_v2_runner.main(argv) == 2
    assert "unknown ModelConfig keys: dropout" in capsys.readouterr().err
    assert not (tmp_path / configs.VERTEX_PIPELINE_JSON).exists()


# --- deploying each blessed model to a Vertex AI endpoint (optional) ----------------------------
SERVING_IMAGE = "europe-west1-docker.pkg.dev/test-project/recsys/asos-recommender-serving:test"


def test_no_endpoint_deploy_unless_asked(compiled):
    assert not [t for t in compiled["spec"].root.dag.tasks if "VertexEndpoint" in t]
    assert compiled["config"].vertex_deploy_custom_config() is None


def test_deploy_endpoint_needs_the_serving_image():
    with pytest.raises(settings.SettingError, match="--serving-image"):
        settings.parse_compile_args(REQUIRED + ["--deploy-endpoint", "recsys"], environ={})


def test_deploy_endpoint_compiles_tfxs_vertex_pusher_with_the_serving_image(tmp_path):
    """What would be deployed: TFX's Vertex Pusher after the gate, uploading the blessed model as a
    Vertex Model that runs the serving image, on the named endpoint in the pipeline's region.
    Compiled offline: nothing calls Google."""
    argv = REQUIRED + ["--deploy-endpoint", "recsys-endpoint", "--serving-image", SERVING_IMAGE]
    config, _, _ = settings.parse_compile_args(argv, environ={})
    path, tfx_pipeline = kubeflow_v2_runner.compile_pipeline(config, str(tmp_path))
    with open(path) as f:
        job = json_format.Parse(f.read(), pipeline_spec_pb2.PipelineJob())
    spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec), pipeline_spec_pb2.PipelineSpec())
    deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                                       pipeline_spec_pb2.PipelineDeploymentConfig())
    task = spec.root.dag.tasks["VertexEndpointPusher"]
    assert {"Trainer", "Evaluator"} <= set(task.dependent_tasks)  # the blessed model, after the gate
    assert json.loads(_parameter(task, "custom_config")) == {
        "ai_platform_enable_vertex": True,
        "ai_platform_vertex_region": "europe-west1",
        "ai_platform_vertex_container_image_uri": SERVING_IMAGE,
        "ai_platform_serving_args": {"project": "test-project", "endpoint_name": "recsys-endpoint",
                                     "machine_type": "n1-standard-2", "min_replica_count": 1,
                                     "max_replica_count": 1},
    }
    executor = deployment.executors[spec.components[task.component_ref.name].executor_label].container
    assert executor.image == IMAGE  # the pipeline image runs the deploy; the serving image is deployed
    assert "tfx.extensions.google_cloud_ai_platform.pusher.executor.Executor" in " ".join(executor.args)
    # the filesystem push (KServe, `make serve` on a copy) stays
    assert "Pusher" in spec.root.dag.tasks


# --- batch recommendations ----------------------------------------------------------------------

def _batch_parameters(argv):
    config, _, _ = settings.parse_compile_args(argv, environ={})
    job = kubeflow_v2_runner.create_runner(config, "unused", "unused.json").run(
        kubeflow_v2_runner.build(config), write_out=False)
    task = job["pipelineSpec"]["root"]["dag"]["tasks"]["BatchRecommendations"]
    return task, {k: v["runtimeValue"]["constantValue"] for k, v in task["inputs"].get("parameters", {}).items()}


def test_batch_recommendations_read_the_pushed_model_and_write_bigquery_when_asked():
    task, params = _batch_parameters(REQUIRED)
    inputs = {k: (v["taskOutputArtifact"]["producerTask"], v["taskOutputArtifact"]["outputArtifactKey"])
              for k, v in task["inputs"]["artifacts"].items()}
    assert inputs == {"model": ("Trainer", "model"), "model_blessing": ("Evaluator", "blessing"),
                      "pushed_model": ("Pusher", "pushed_model"),  # lists only of what serves
                      "transform_graph": ("Transform", "transform_graph")}
    assert "bigquery_table" not in params  # parquet in the pipeline root only
    _, params = _batch_parameters(REQUIRED + ["--batch-bigquery-table", "test-project.recs.batch"])
    assert params["bigquery_table"] == {"stringValue": "test-project:recs.batch"}


def test_a_bad_bigquery_table_is_named():
    with pytest.raises(settings.SettingError, match="--batch-bigquery-table.*PROJECT.DATASET.TABLE"):
        settings.parse_compile_args(REQUIRED + ["--batch-bigquery-table", "recs.batch"], environ={})


@pytest.mark.parametrize("output_dir, output_file", [
    ("{tmp}/a-file/vertex", configs.VERTEX_PIPELINE_JSON),  # a file where a directory should be
    ("{tmp}/out", "../elsewhere.json"),
])
def test_an_output_dir_that_cannot_take_the_json_is_one_line(tmp_path, capsys, output_dir, output_file):
    """Used to end in a traceback of tf.io.gfile's FailedPreconditionError / NotFoundError."""
    (tmp_path / "a-file").write_text("")
    argv = REQUIRED + ["--output-dir", output_dir.format(tmp=tmp_path), "--output-file", output_file]
    assert kubeflow_v2_runner.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: cannot write the pipeline JSON"), err


# --- the Trainer on Vertex AI Training (optional) -------------------------------------------------

def _trainer_task(argv):
    config, _, _ = settings.parse_compile_args(argv, environ={})
    job = kubeflow_v2_runner.create_runner(config, "unused", "unused.json").run(
        kubeflow_v2_runner.build(config), write_out=False)
    spec = job["pipelineSpec"]
    task = spec["root"]["dag"]["tasks"]["Trainer"]
    executor = spec["deploymentSpec"]["executors"][spec["components"][task["componentRef"]["name"]]["executorLabel"]]
    value = task["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constantValue"]["stringValue"]
    return task, " ".join(executor["container"]["args"]), json.loads(value)


def test_the_trainer_runs_in_its_task_unless_a_machine_is_named():
    _, args, custom_config = _trainer_task(REQUIRED)
    assert "components.trainer.Executor" in args  # TFX's GenericExecutor, told the baseline's facts
    assert not [key for key in custom_config if key.startswith("ai_platform")]


def test_a_trainer_machine_compiles_tfxs_vertex_trainer_with_a_custom_job():
    """What would be submitted: TFX's Vertex Trainer, whose executor starts a Vertex AI CustomJob
    of the pipeline's image on that machine and accelerator, which runs the same executor (told
    the baseline's facts, for the warm start) and run_fn with the same model settings. Compiled
    offline: nothing calls Google."""
    argv = REQUIRED + ["--trainer-machine-type", "n1-highmem-16", "--trainer-accelerator", "NVIDIA_TESLA_T4:2",
                       "--model-param", "epochs=2"]
    task, args, custom_config = _trainer_task(argv)
    from components.trainer import Executor, VertexExecutor

    assert "components.trainer.VertexExecutor" in args
    assert VertexExecutor()._GetExecutorClass() is Executor  # what the custom job runs
    assert {"Transform", "CatalogCheck", "ServedBaseline"} <= set(task["dependentTasks"])  # the same place
    assert custom_config["ai_platform_enable_vertex"] is True
    assert custom_config["ai_platform_vertex_region"] == "europe-west1"
    assert custom_config["ai_platform_training_args"] == {
        "project": "test-project",
        "job_spec": {"worker_pool_specs": [{
            "machine_spec": {"machine_type": "n1-highmem-16", "accelerator_type": "NVIDIA_TESLA_T4",
                             "accelerator_count": 2},
            "replica_count": 1, "container_spec": {"image_uri": IMAGE}}]}}
    # run_fn's own settings travel with them, and the run_fn reads the same model from them
    assert custom_config["model"] == {"epochs": 2} and custom_config["preset"] == "default"
    from models import trainer
    assert trainer.model_config(custom_config).epochs == 2


def test_a_trainer_accelerator_alone_or_misspelt_is_named():
    with pytest.raises(settings.SettingError, match="--trainer-accelerator needs .*--trainer-machine-type"):
        settings.parse_compile_args(REQUIRED + ["--trainer-accelerator", "NVIDIA_TESLA_T4"], environ={})
    with pytest.raises(settings.SettingError, match="'t4:x' is not an accelerator TYPE\\[:COUNT\\]"):
        settings.parse_compile_args(REQUIRED + ["--trainer-machine-type", "n1-standard-8",
                                                "--trainer-accelerator", "t4:x"], environ={})
    with pytest.raises(settings.SettingError, match="RECSYS_TRAINER_ACCELERATOR.*TYPE\\[:COUNT\\]"):
        settings.parse_compile_args(REQUIRED, environ={"RECSYS_TRAINER_MACHINE_TYPE": "n1-standard-8",
                                                       "RECSYS_TRAINER_ACCELERATOR": "t4"})
    config, _, _ = settings.parse_compile_args(REQUIRED, environ={"RECSYS_TRAINER_MACHINE_TYPE": "n1-standard-8"})
    assert config.vertex_training_custom_config()["ai_platform_training_args"]["job_spec"][
        "worker_pool_specs"][0]["machine_spec"] == {"machine_type": "n1-standard-8"}


def test_an_eval_sample_compiles_between_examplegen_and_the_evaluator():
    config, _, _ = settings.parse_compile_args(DATAFLOW + ["--eval-users", "5000"], environ={})
    assert config.gate.eval_users == 5000
    job = kubeflow_v2_runner.create_runner(config, "unused", "unused.json").run(
        kubeflow_v2_runner.build(config), write_out=False)
    spec = job["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["EvalSample"]["dependentTasks"] == ["FileBasedExampleGen"]
    assert tasks["EvalSample"]["inputs"]["parameters"]["users"]["runtimeValue"]["constantValue"] == {
        "intValue": "5000"}
    assert tasks["Evaluator"]["inputs"]["artifacts"]["examples"]["taskOutputArtifact"] == {
        "producerTask": "EvalSample", "outputArtifactKey": "sampled"}
    assert tasks["RunReport"]["inputs"]["artifacts"]["eval_examples"]["taskOutputArtifact"]["producerTask"] == (
        "EvalSample")
    executor = spec["deploymentSpec"]["executors"][spec["components"][tasks["EvalSample"]["componentRef"]["name"]][
        "executorLabel"]]
    assert "--runner=DataflowRunner" in " ".join(executor["container"]["args"])  # its Beam work on Dataflow
