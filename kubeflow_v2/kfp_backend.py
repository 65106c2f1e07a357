"""What the open-source Kubeflow Pipelines 2 backend does with a pipeline package, from its source
(kubeflow/pipelines 2.17.0, its Argo Workflows v4.0.5 and robfig/cron v1.2.0; file and line
references below are at those tags).

Three users: the KFP compile (kubeflow_v2/kfp_package.py) refuses at compile time what the
backend would refuse at run creation; the harness's KFP mode (kubeflow_v2/harness.py) behaves as
the backend does; kfp_submit.py sends a cron expression the backend reads as meant.

Imports nothing heavy: no TFX, no kfp.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

SCHEMA_VERSION = "2.1.0"  # the only one the API server takes (apiserver/template/v2_template.go:231)
# Schemes of a pipeline root or an imported artifact (objectstore/config.go ParseBucketPathToConfig).
BUCKET_SCHEMES = ("gs", "s3", "minio", "mem")
# Where the launcher mirrors a bucket URI inside the container (launcher_v2.go LocalPathForURI).
_LOCAL_MOUNTS = {"gs": "/gcs/", "minio": "/minio/", "s3": "/s3/"}
# Added by the driver to every container task when the API server runs with PUBLISH_LOGS=true,
# the released manifests' default (driver.go provisionOutputs).
EXECUTOR_LOGS = "executor-logs"
EXECUTOR_LOGS_TYPE = {"schemaTitle": "system.Artifact"}
OUTPUT_METADATA_FILE = "output_metadata.json"
# Argo's rule for DAG task names (workflow/validate/validate.go:1624-1640); KFP uses the
# PipelineSpec task keys verbatim, and `<task>-driver` for a container task's driver.
_ARGO_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]*")
_ARGO_NAME_MESSAGE = ("name must consist of alpha-numeric characters or '-', and must start with an "
                      "alpha-numeric character (e.g. My-name1-2, 123-NAME)")
ARGO_NAME_MAX = 128


class BackendError(ValueError):
    """What the KFP API server or launcher answers; the message is the backend's own text."""


# --- The package ----------------------------------------------------------------------------------
def load_package(text: str) -> Dict[str, Any]:
    """The PipelineSpec of a package as the API server reads it: one YAML (or JSON) document that
    is a bare PipelineSpec (template.go:107-115 parses it strictly; TFX's PipelineJob JSON wrapper
    is not one)."""
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:  # not a ValueError: found by exploratory testing (a traceback)
        raise BackendError(f"unknown template format: not YAML ({str(e).splitlines()[0]})") from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise BackendError("unknown template format")
    spec = documents[0]
    if "pipelineSpec" in spec:  # TFX's Vertex JSON: its PipelineSpec is wrapped in a PipelineJob
        raise BackendError("unknown template format: a Vertex AI pipeline JSON (PipelineJob), not a KFP "
                           "package (compile with --target kfp)")
    if not isinstance(spec.get("root"), dict) or not isinstance(spec.get("pipelineInfo"), dict):
        raise BackendError("unknown template format")
    return spec


def check_schema_version(spec: Mapping[str, Any]) -> None:
    version = spec.get("schemaVersion", "")
    if version != SCHEMA_VERSION:
        raise BackendError(f"KFP only supports schema version {SCHEMA_VERSION}, but the pipeline spec "
                           f"has version {version}")


def _executor_kind(spec: Mapping[str, Any], component: Mapping[str, Any]) -> str:
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
    return next((k for k in ("container", "importer", "resolver", "customJob") if k in executor), "?")


def check_compiles(spec: Mapping[str, Any]) -> None:
    """What creating a run does before anything starts: the backend compiles the PipelineSpec to
    an Argo Workflow (visitor.go: each component of the root DAG in task-key order, before the
    DAG; only container and importer executors) and validates it with Argo (task names).

    Raises BackendError with the API server's message (resource_manager.go:671 wraps
    v2_template.go:398 wraps visitor.go:134)."""
    tasks = spec["root"]["dag"]["tasks"]
    components = spec["components"]
    for key in sorted(tasks):
        name = tasks[key]["componentRef"]["name"]
        component = components[name]
        if "executorLabel" not in component:
            continue  # a sub-DAG; the project compiles none
        if _executor_kind(spec, component) not in ("container", "importer"):
            raise BackendError(
                "Failed to generate the ExecutionSpec: Failed to compile job: "
                f'error processing component name="{name}": executor(label="{component["executorLabel"]}"): '
                "non-container and non-importer executor not implemented")
    for i, name in enumerate(argo_task_names(spec)):
        if len(name) > ARGO_NAME_MAX or not _ARGO_NAME.fullmatch(name):
            raise BackendError(f"templates.root.tasks[{i}].name: '{name}' is invalid: {_ARGO_NAME_MESSAGE}")


def argo_task_names(spec: Mapping[str, Any]) -> List[str]:
    """The Argo DAG task names of the root DAG: a container task is a driver task and an executor
    task (argocompiler/dag.go), an importer one task (argocompiler/importer.go)."""
    names = []
    for key in sorted(spec["root"]["dag"]["tasks"]):
        component = spec["components"][spec["root"]["dag"]["tasks"][key]["componentRef"]["name"]]
        if _executor_kind(spec, component) == "container":
            names.append(key + "-driver")
        names.append(key)
    return names


def check_importer_uri(uri: str) -> None:
    """The importer launcher takes only bucket URIs (importer_launcher.go:277-279)."""
    if scheme_of(uri) not in BUCKET_SCHEMES:
        raise BackendError("failed to execute importer component: failed to create MLMD artifact from "
                           f"ImporterSpec: no provider scheme found in artifact URI: {uri}")


def scheme_of(uri: str) -> Optional[str]:
    m = re.match(r"^([a-z][a-z0-9]+)://", uri)
    return m.group(1) if m else None


def check_pipeline_root(root: str) -> None:
    """objectstore/config.go:119-143: a bucket URI, not a path."""
    if scheme_of(root) not in BUCKET_SCHEMES:
        raise BackendError(f"unrecognized pipeline root format: {root!r}")


def local_path_for_uri(uri: str) -> str:
    """Where the launcher mirrors an artifact inside the container (gs://B/K -> /gcs/B/K)."""
    scheme = scheme_of(uri)
    if scheme not in _LOCAL_MOUNTS:
        raise BackendError(f"failed to generate local path for URI {uri}: unsupported storage scheme")
    return _LOCAL_MOUNTS[scheme] + uri[len(scheme) + 3:]


def uri_for_local_path(path: str) -> Optional[str]:
    """The bucket URI a launcher-mirrored path stands for (/gcs/B/K -> gs://B/K), or None."""
    for scheme, mount in _LOCAL_MOUNTS.items():
        if path.startswith(mount):
            return f"{scheme}://{path[len(mount):]}"
    return None


def task_root(run_root: str, task: str, salt: str) -> str:
    """driver.go provisionOutputs: every output of a task lives under <run root>/<task>/<salt>/,
    the run root being <pipeline root>/<pipeline name>/<run id> (metadata/client.go:391-420)."""
    return "/".join([run_root.rstrip("/"), task, salt])


def run_root(pipeline_root: str, pipeline_name: str, run_id: str) -> str:
    return "/".join([pipeline_root.rstrip("/"), pipeline_name, run_id])


# --- Values as they come back from ML Metadata ------------------------------------------------------
def mlmd_value(value: Any) -> Any:
    """A metadata value after a trip through ML Metadata (metadata/client.go
    StructValueToMLMDValue and back): numbers are doubles, booleans become numbers, strings and
    structs stay."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return value


def compiled_constant(runtime: Any) -> Any:
    """A task parameter's compiled constant: `{"constant": V}` (PipelineSpec 2.1, the KFP package)
    or `{"constantValue": {"stringValue": V}}` (2.0, Vertex AI's JSON); None for anything else."""
    runtime = runtime if isinstance(runtime, dict) else {}
    if "constant" in runtime:
        return runtime["constant"]
    value = runtime.get("constantValue")
    return next(iter(value.values()), None) if isinstance(value, dict) and len(value) == 1 else value


def parameter_value(name: str, value: Any, parameter_type: Optional[str]) -> Any:
    """A resolved input parameter checked against its declared type (driver/resolve.go:184-232):
    a STRING parameter of another kind becomes its text, a number or boolean of the wrong kind is
    an error."""
    if parameter_type == "STRING" and not isinstance(value, str):
        return json.dumps(value)
    if parameter_type in ("NUMBER_INTEGER", "NUMBER_DOUBLE") and (
            isinstance(value, bool) or not isinstance(value, (int, float))):
        raise BackendError(f"input parameter {name} requires type {parameter_type}, but got {value!r}")
    if parameter_type == "BOOLEAN" and not isinstance(value, bool):
        raise BackendError(f"input parameter {name} requires type BOOLEAN, but got {value!r}")
    return value


# --- The cache ----------------------------------------------------------------------------------------
def cache_fingerprint(input_artifact_names: Mapping[str, List[str]], parameter_values: Mapping[str, Any],
                      outputs_spec: Mapping[str, Any], image: str, command_and_args: List[str]) -> str:
    """cacheutils/cache.go:173-230: sha256 of the inputs' ML Metadata ids, the parameter values,
    the declared outputs (type and metadata, no URI), the image and the command and args as
    compiled. The component spec itself is not in it; no pre-cache hook adds to it."""
    key = {
        "inputArtifactNames": {k: {"artifactNames": list(v)} for k, v in sorted(input_artifact_names.items())},
        "inputParameterValues": dict(sorted(parameter_values.items())),
        "outputArtifactsSpec": {k: {"artifactType": v.get("artifactType"), "metadata": v.get("metadata")}
                                for k, v in sorted(outputs_spec.get("artifacts", {}).items())},
        "outputParametersSpec": {k: v.get("parameterType") for k, v in
                                 sorted(outputs_spec.get("parameters", {}).items())},
        "containerSpec": {"image": image, "cmdArgs": list(command_and_args)},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def caching_enabled(task: Mapping[str, Any]) -> bool:
    """`cachingOptions: {}` or absent means off (pipeline_spec.proto:505, driver/container.go)."""
    return bool(task.get("cachingOptions", {}).get("enableCache", False))


# --- Schedules --------------------------------------------------------------------------------------
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def cron(text: str) -> Tuple[str, Optional[str]]:
    """A cron expression as KFP reads it, and a note when it was converted.

    KFP parses with robfig/cron v1 `cron.Parse` (parser.go:174-185): seconds first, then minute,
    hour, day of month, month, optional day of week. A 5-field expression is accepted there but
    read as seconds..month: "0 3 * * 1" would run at minute 3 of every hour in January. So a
    5-field expression (the usual crontab, and Vertex AI's) gets "0" seconds in front; six fields
    and descriptors (@daily, @every 1h) go as they are. No time zone: KFP's is install-wide
    (cronScheduleTimezone, default UTC).

    Raises ValueError with what is wrong."""
    value = " ".join(text.split())
    if not value:
        raise ValueError("an empty cron expression")
    if re.match(r"^(CRON_)?TZ=", value):
        raise ValueError(f"{text!r}: KFP has no time zone per schedule (its cron parser takes no TZ=); "
                         "the install-wide cronScheduleTimezone applies (default UTC): give UTC times")
    if value.startswith("@"):
        if value in _DESCRIPTORS or re.fullmatch(r"@every \d+(\.\d+)?(ns|us|µs|ms|s|m|h)+.*", value):
            return value, None
        raise ValueError(f"{text!r} is not a cron descriptor (@hourly, @daily, @weekly, @monthly, "
                         "@yearly, @every DURATION)")
    fields = value.split(" ")
    if not all(re.fullmatch(r"[0-9A-Za-z*/,?-]+", f) for f in fields):
        raise ValueError(f"{text!r} is not a cron expression")
    if len(fields) == 5:
        converted = "0 " + value
        return converted, (f"cron {value!r} has 5 fields; KFP's has seconds first: sent as {converted!r} "
                           "(same times)")
    if len(fields) == 6:
        return value, None
    raise ValueError(f"{text!r} has {len(fields)} fields; KFP's cron has 6 (second minute hour "
                     "day-of-month month day-of-week) or a crontab's 5")


def container_tasks(spec: Mapping[str, Any]) -> Iterator[Tuple[str, Dict[str, Any], Dict[str, Any]]]:
    """(task name, task, container executor) of every container task of the root DAG."""
    for name, task in spec["root"]["dag"]["tasks"].items():
        component = spec["components"][task["componentRef"]["name"]]
        executor = spec["deploymentSpec"]["executors"].get(component.get("executorLabel", ""), {})
        if "container" in executor:
            yield name, task, executor["container"]
