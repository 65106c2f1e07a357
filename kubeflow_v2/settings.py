"""Settings of the Vertex AI / Kubeflow path, from flags or RECSYS_* environment variables.

Shared by `kubeflow_v2_runner.py` (compile, for Vertex AI or open-source Kubeflow Pipelines),
`vertex_submit.py` and `kfp_submit.py` (submit), declared as cli.flags.Flag with a variable each.
A flag wins over its environment variable; a required value given by neither is a one-line error
naming both (`SettingError`). The variables are named
RECSYS_* because env/run-in-env passes exactly those into its environment.

Imports neither TFX nor the Vertex SDK: parsing stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple

from cli import flags
from cli.flags import Flag
from pipeline import configs

DEFAULT_OUTPUT_DIR = os.path.join(configs.DEFAULT_OUTPUT_DIR, "vertex")
DEFAULT_PIPELINE_JSON = os.path.join(DEFAULT_OUTPUT_DIR, configs.VERTEX_PIPELINE_JSON)
VERTEX, KFP = "vertex", "kfp"  # the compile targets
DEFAULT_KFP_OUTPUT_DIR = os.path.join(configs.DEFAULT_OUTPUT_DIR, "kfp")
DEFAULT_KFP_PACKAGE = os.path.join(DEFAULT_KFP_OUTPUT_DIR, configs.KFP_PIPELINE_YAML)

SettingError = flags.FlagError  # a setting is missing or malformed: one line naming flag and variable


def _bigquery_table(text: str) -> str:
    """`PROJECT.DATASET.TABLE` (or Beam's `PROJECT:DATASET.TABLE`) -> `PROJECT:DATASET.TABLE`."""
    value = text.strip()
    if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9][.:][A-Za-z0-9_]{1,1024}\.[\w$-]{1,1024}", value):
        raise flags.BadValue(f"{text!r} is not a BigQuery table PROJECT.DATASET.TABLE")
    project, rest = (value.split(":", 1) if ":" in value else value.split(".", 1))
    return f"{project}:{rest}"


def _bucket(text: str) -> str:
    """`name` or `gs://name/` -> `gs://name`; an empty or malformed bucket name is a ValueError
    (`gs://` alone used to compile `gs://gs:/pipeline_root`)."""
    path = text.strip()
    path = (path[len("gs://"):] if path.startswith("gs://") else path).rstrip("/")
    name = path.split("/", 1)[0]
    if not re.fullmatch(r"[a-z0-9]([a-z0-9._-]{0,220}[a-z0-9])?", name):
        raise flags.BadValue(f"{text!r} is not a Cloud Storage bucket (name or gs://name; a name is "
                             "lowercase letters, digits, '-', '_' and '.')")
    return f"gs://{path}"


def _pipeline_name(text: str) -> str:
    """The pattern the Kubeflow V2 compiler requires, checked as a setting (its own message
    comes after the pipeline is built, and names no flag)."""
    name = text.strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", name):
        raise flags.BadValue(f"{text!r} is not a pipeline name (lowercase letters, digits and '-', "
                             "starting with a letter or digit, at most 128)")
    return name


def _accelerator(text: str) -> Tuple[str, int]:
    """`NVIDIA_TESLA_T4` or `NVIDIA_TESLA_T4:2` -> (Vertex AI's accelerator type, count)."""
    kind, _, count = text.strip().partition(":")
    if not re.fullmatch(r"[A-Z][A-Z0-9_]{2,63}", kind) or not re.fullmatch(r"[1-9][0-9]?|", count):
        raise flags.BadValue(f"{text!r} is not an accelerator TYPE[:COUNT] as Vertex AI names them, "
                             "e.g. NVIDIA_TESLA_T4 or NVIDIA_L4:2")
    return kind, int(count or 1)


def _beam_args(text: str) -> List[str]:
    """Beam arguments (split like a shell line), each a pipeline option: `--name` or `--name=value`;
    a `--runner=` must name a runner Beam knows (Beam's own `create_runner` says)."""
    args = shlex.split(text)
    bad = [a for a in args if not re.fullmatch(r"--[A-Za-z][A-Za-z0-9_-]*(=.*)?", a, re.S)]
    if bad:
        raise flags.BadValue(f"{bad[0]!r} is not a Beam pipeline option (--name or --name=value, e.g. "
                             "--beam-arg=--experiments=use_runner_v2)")
    for arg in args:
        if arg.startswith("--runner="):
            from apache_beam.runners import runner

            try:
                runner.create_runner(arg.partition("=")[2])
            except (ValueError, ImportError) as e:
                raise flags.BadValue(f"{arg!r} is not a Beam runner: {e}") from None
    return args


def _region(text: str) -> str:
    """A Google Cloud region name as Vertex AI and Dataflow take it: `europe-west1`,
    `northamerica-northeast1` (a typo fails here, not at submission or in the cloud)."""
    value = text.strip()
    if not re.fullmatch(r"[a-z]+-[a-z]+[1-9][0-9]?", value):
        raise flags.BadValue(f"{text!r} is not a Google Cloud region (e.g. europe-west1, us-central1)")
    return value


def _target(text: str) -> str:
    value = text.strip().lower()
    if value not in (VERTEX, KFP):
        raise flags.BadValue(f"{text!r} is not a target: {VERTEX} (Vertex AI Pipelines) or {KFP} "
                             "(open-source Kubeflow Pipelines 2)")
    return value


# --- What can be set ---------------------------------------------------------------------------
PROJECT = Flag("--project", "Google Cloud project id", env="RECSYS_GCP_PROJECT", required=True)
REGION = Flag("--region", "region of Vertex AI Pipelines and Dataflow, e.g. europe-west1",
              env="RECSYS_GCP_REGION", required=True, parse=_region)
BUCKET = Flag("--bucket", "Cloud Storage bucket (name or gs://name): default home of pipeline root, data, models",
              env="RECSYS_GCS_BUCKET", required=True, parse=_bucket)
IMAGE = Flag("--image", "container image with this package installed (see Dockerfile), e.g. "
             "europe-west1-docker.pkg.dev/PROJECT/recsys/asos-recommender:TAG; runs every component "
             "and the Dataflow workers", env="RECSYS_IMAGE", required=True)
PIPELINE_ROOT = Flag("--pipeline-root", "where components write their artifacts; default gs://BUCKET/pipeline_root",
                     env="RECSYS_PIPELINE_ROOT")
PIPELINE_NAME = Flag("--pipeline-name", "pipeline name (ML Metadata context, Vertex display name)",
                     env="RECSYS_PIPELINE_NAME", default=configs.PIPELINE_NAME, parse=_pipeline_name)
DATA_ROOT = Flag("--data-root", "directory holding the ASOS parquet and csv files; default gs://BUCKET/data/asos",
                 env="RECSYS_DATA_ROOT")
CATALOG_URI = Flag("--catalog-uri", f"product catalog file; default DATA_ROOT/{configs.CATALOG_FILE}",
                   env="RECSYS_CATALOG_URI")
SCHEMA_DIR = Flag("--schema-dir", "directory of the curated schema.pbtxt as the components see it; default "
                  "the copy inside the image", env="RECSYS_SCHEMA_DIR", default=configs.IMAGE_SCHEMA_DIR)
SERVING_MODEL_DIR = Flag("--serving-model-dir", "where Pusher writes blessed models; default "
                         "gs://BUCKET/serving_model/" + configs.MODEL_NAME, env="RECSYS_SERVING_MODEL_DIR")
BATCH_BIGQUERY_TABLE = Flag(
    "--batch-bigquery-table", "BigQuery table PROJECT.DATASET.TABLE that BatchRecommendations also "
    "writes (replaced each run; default: parquet in the pipeline root only)",
    env="RECSYS_BATCH_BIGQUERY_TABLE", parse=_bigquery_table)
DEPLOY_ENDPOINT = Flag("--deploy-endpoint", "also deploy each blessed model to the Vertex AI endpoint of this "
                       "display name (created if missing; off by default), served by --serving-image",
                       env="RECSYS_DEPLOY_ENDPOINT")
SERVING_IMAGE = Flag("--serving-image", "the model server image for --deploy-endpoint (Dockerfile target "
                     "`serving`), e.g. europe-west1-docker.pkg.dev/PROJECT/recsys/asos-recommender-serving:TAG",
                     env="RECSYS_SERVING_IMAGE")
DEPLOY_MACHINE_TYPE = Flag("--deploy-machine-type", "machine type of the endpoint's replica (default n1-standard-2)",
                           env="RECSYS_DEPLOY_MACHINE_TYPE")
CACHE = Flag("--cache", "reuse results of unchanged components (default on)", env="RECSYS_ENABLE_CACHE",
             dest="enable_cache", kind=flags.TOGGLE, parse=flags.boolean, default=True)
DATAFLOW = Flag("--dataflow", "run the Beam work of every component on Dataflow (default: Beam's FnApiRunner "
                "inside the component's container)", env="RECSYS_DATAFLOW", kind=flags.TOGGLE,
                parse=flags.boolean, default=False)
DATAFLOW_TEMP = Flag("--dataflow-temp-location", "Dataflow temp/staging files; default gs://BUCKET/dataflow/tmp",
                     env="RECSYS_DATAFLOW_TEMP_LOCATION")
DATAFLOW_MACHINE = Flag("--dataflow-machine-type", "Dataflow worker machine type, e.g. n2-standard-4 (default: "
                        "Dataflow's)", env="RECSYS_DATAFLOW_MACHINE_TYPE")
DATAFLOW_MAX_WORKERS = Flag("--dataflow-max-workers", "upper bound of Dataflow autoscaling",
                            env="RECSYS_DATAFLOW_MAX_WORKERS", parse=flags.positive_int)
DATAFLOW_DISK = Flag("--dataflow-disk-size-gb", "Dataflow worker disk size", env="RECSYS_DATAFLOW_DISK_SIZE_GB",
                     parse=flags.positive_int)
DATAFLOW_SA = Flag("--dataflow-service-account", "service account the Dataflow workers run as (default: Compute "
                   "Engine default)", env="RECSYS_DATAFLOW_SERVICE_ACCOUNT")
DATAFLOW_SUBNET = Flag("--dataflow-subnetwork", "Dataflow subnetwork, e.g. regions/REGION/subnetworks/NAME",
                       env="RECSYS_DATAFLOW_SUBNETWORK")
DATAFLOW_PUBLIC_IPS = Flag("--dataflow-public-ips", "give Dataflow workers public IPs (default on)",
                           env="RECSYS_DATAFLOW_PUBLIC_IPS", kind=flags.TOGGLE, parse=flags.boolean, default=True)
TRAINER_MACHINE = Flag("--trainer-machine-type", "run the Trainer as a Vertex AI Training custom job on this "
                       "machine type, e.g. n1-highmem-16 (TFX's Vertex Trainer; default: inside its pipeline "
                       "task, as every other component)", env="RECSYS_TRAINER_MACHINE_TYPE")
TRAINER_ACCELERATOR = Flag("--trainer-accelerator", "an accelerator for that custom job, TYPE[:COUNT], e.g. "
                           "NVIDIA_TESLA_T4:1 (needs --trainer-machine-type, and an image with CUDA libraries)",
                           env="RECSYS_TRAINER_ACCELERATOR", parse=_accelerator)
BEAM_ARGS = Flag("--beam-arg", "one more Beam argument for every Beam-using component (repeatable; the variable "
                 "is split like a shell line)", env="RECSYS_BEAM_ARGS", dest="extra_beam_args",
                 kind=flags.REPEAT, parse=_beam_args, default=())
SERVICE_ACCOUNT = Flag("--service-account", "service account the pipeline's components run as on Vertex AI",
                       env="RECSYS_VERTEX_SERVICE_ACCOUNT")
LABELS = Flag("--label", "label KEY=VALUE of the pipeline job (repeatable; the variable: KEY=VALUE,KEY=VALUE)",
              env="RECSYS_VERTEX_LABELS", dest="labels", kind=flags.REPEAT, parse=flags.key_values,
              default={})  # copied by resolve, never mutated

TARGET = Flag("--target", f"what to compile for: {VERTEX} (Vertex AI Pipelines: a PipelineJob JSON) or {KFP} "
              "(open-source Kubeflow Pipelines 2: a PipelineSpec YAML, docs/kubeflow.md); default vertex",
              env="RECSYS_COMPILE_TARGET", default=VERTEX, parse=_target)

COMPILE_SETTINGS = (TARGET, PROJECT, REGION, BUCKET, IMAGE, PIPELINE_ROOT, PIPELINE_NAME, DATA_ROOT, CATALOG_URI,
                    SCHEMA_DIR, SERVING_MODEL_DIR, BATCH_BIGQUERY_TABLE, DEPLOY_ENDPOINT, SERVING_IMAGE,
                    DEPLOY_MACHINE_TYPE, CACHE, DATAFLOW, DATAFLOW_TEMP, DATAFLOW_MACHINE,
                    DATAFLOW_MAX_WORKERS, DATAFLOW_DISK, DATAFLOW_SA, DATAFLOW_SUBNET, DATAFLOW_PUBLIC_IPS,
                    BEAM_ARGS, TRAINER_MACHINE, TRAINER_ACCELERATOR)
# where the compile writes (no variable: the JSON goes where the command line says)
OUTPUT_DIR = Flag("--output-dir", f"directory for the compiled pipeline; default {DEFAULT_OUTPUT_DIR} "
                  f"(--target {KFP}: {DEFAULT_KFP_OUTPUT_DIR})")
OUTPUT_FILE = Flag("--output-file", f"file name of the compiled pipeline; default {configs.VERTEX_PIPELINE_JSON} "
                   f"(--target {KFP}: {configs.KFP_PIPELINE_YAML})")
# TensorFlow 2.21 (Python 3.13) reads and writes local paths and gs:// only: no s3 filesystem
# (tensorflow-io, which had one, has no Python 3.13 wheel) and minio:// is KFP's own name.
_TF_SCHEMES = ("gs://", "/")


def vertex_config(values: Dict[str, Any], cls=configs.VertexConfig) -> configs.VertexConfig:
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in fields and v is not None})


def compile_parser(description: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # the help says when --project and --region are needed (found by exploratory testing: it said
    # "(required)", and --target kfp compiles without them); parse_compile_args checks them
    needed = {f.name: dataclasses.replace(f, required=False, help=f"{f.help}; required for --target {VERTEX}, and "
                                          f"for --target {KFP} with {DATAFLOW.name} or {DEPLOY_ENDPOINT.name}")
              for f in (PROJECT, REGION)}
    flags.add(p, tuple(needed.get(f.name, f) for f in COMPILE_SETTINGS) + configs.PIPELINE_FLAGS
              + (OUTPUT_DIR, OUTPUT_FILE))
    return p


def _beam_args_joined(argv: List[str]) -> List[str]:
    """`--beam-arg --runner=X` as `--beam-arg=--runner=X`: argparse reads a separate value that
    starts with -- as a flag ("expected one argument"), and a Beam argument always starts so."""
    out: List[str] = []
    for arg in argv:
        if out and out[-1] == BEAM_ARGS.name and arg.startswith("--") and arg != "--":
            out[-1] = f"{BEAM_ARGS.name}={arg}"
        else:
            out.append(arg)
    return out


def parse_compile_args(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None):
    """(VertexConfig, output_dir, output_file) from the command line and environment; with
    `--target kfp` a KfpConfig, whose project and region are needed only by Dataflow and the
    Vertex endpoint."""
    args = compile_parser().parse_args(_beam_args_joined(sys.argv[1:] if argv is None else argv))
    target = flags.resolve(args, (TARGET,), environ)["target"]
    wanted = COMPILE_SETTINGS
    if target == KFP:
        optional = {PROJECT.name, REGION.name}
        wanted = tuple(dataclasses.replace(f, required=False) if f.name in optional else f for f in wanted)
    values = flags.resolve(args, wanted, environ)
    if values.get("deploy_endpoint") and not values.get("serving_image"):
        raise SettingError(f"{DEPLOY_ENDPOINT.name} needs the model server image: pass {SERVING_IMAGE.name} "
                           f"or set {SERVING_IMAGE.env} (Dockerfile target `serving`)")
    if values.get("trainer_accelerator") and not values.get("trainer_machine_type"):
        raise SettingError(f"{TRAINER_ACCELERATOR.name} needs the custom job's machine: pass "
                           f"{TRAINER_MACHINE.name} or set {TRAINER_MACHINE.env}")
    if target == KFP:
        _check_kfp(values)
        values = {**values, "project": values.get("project") or "", "region": values.get("region") or ""}
    cls = configs.KfpConfig if target == KFP else configs.VertexConfig
    config = vertex_config({**values, "training": configs.TrainingConfig.from_flags(args),
                            "gate": configs.GateConfig.from_flags(args), "span_window": args.span_window,
                            "drift": configs.DriftConfig.from_flags(args)}, cls)
    if target == KFP:
        output_dir = args.output_dir or DEFAULT_KFP_OUTPUT_DIR
        output_file = args.output_file or configs.KFP_PIPELINE_YAML
    else:
        output_dir = args.output_dir or DEFAULT_OUTPUT_DIR
        output_file = args.output_file or configs.VERTEX_PIPELINE_JSON
    return config, output_dir, output_file


def _check_kfp(values: Dict[str, Any]) -> None:
    """What only the KFP target needs: a project and region where Google Cloud services are asked
    for, and locations TensorFlow can write."""
    for needed_by, flag in [(DATAFLOW, values.get("dataflow")), (DEPLOY_ENDPOINT, values.get("deploy_endpoint"))]:
        for setting in (PROJECT, REGION):
            if flag and not values.get(setting.key):
                raise SettingError(f"{needed_by.name} needs {setting.name} (or {setting.env}) with --target {KFP}")
    for setting in (PIPELINE_ROOT, DATA_ROOT, CATALOG_URI, SCHEMA_DIR, SERVING_MODEL_DIR, DATAFLOW_TEMP):
        value = values.get(setting.key)
        if value and not value.startswith(_TF_SCHEMES):
            raise SettingError(
                f"{setting.describe()}: {value!r} is not a gs:// URI or a local path; TensorFlow 2.21 on "
                "Python 3.13 cannot read s3:// or minio:// (tensorflow-io, its s3 filesystem, has no "
                "Python 3.13 wheel): use a gs:// bucket (docs/kubeflow.md#where-artifacts-live)")


# What a task parameter that holds a location is, by the parameter's name in the compiled pipeline
# (the same in the Vertex AI JSON and the KFP package): (what it is, the compile setting that sets it).
_LOCATION_PARAMETERS = {
    "input_base": ("data root", DATA_ROOT.name),                        # FileBasedExampleGen, ServedBaseline
    "data_files": ("data files", DATA_ROOT.name),                       # Pusher (under the data root)
    "catalog_uri": ("catalog", CATALOG_URI.name),                       # CatalogCheck
    "serving_model_dir": ("serving model dir", SERVING_MODEL_DIR.name),  # DriftGate, ServedBaseline
    "push_destination": ("serving model dir", SERVING_MODEL_DIR.name),   # Pusher's base_directory
    "acceptances_dir": ("drift acceptances", f"under {PIPELINE_ROOT.name}"),  # DriftGate
    "schema_file": ("schema", SCHEMA_DIR.name),                         # ImportSchemaGen (KFP)
    "artifact_uri": ("schema", SCHEMA_DIR.name),                        # the schema Importer (Vertex AI)
}
_BEAM_LOCATION = re.compile(r"--(\w+_location)=(.+)")  # Beam's temp_location, staging_location


def _leaves(value: Any, keyed: bool = False) -> List[Tuple[str, bool]]:
    """The strings in a compiled parameter value, inside the JSON TFX serializes some into
    (push_destination, data_files) too, each with whether it is a field's value inside JSON
    (base_directory: a location; versioning: not)."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v, True)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v, keyed)]
    if not isinstance(value, str):
        return []
    try:
        decoded = json.loads(value)
    except ValueError:
        return [(value, keyed)]
    return _leaves(decoded) if isinstance(decoded, (dict, list)) else [(value, keyed)]


def _looks_like_location(text: str) -> bool:
    from kubeflow_v2 import kfp_backend  # no TFX, no KFP: its scheme parser only

    return text.startswith("/") or kfp_backend.scheme_of(text) in kfp_backend.BUCKET_SCHEMES + ("file",)


def compiled_locations(spec: Mapping[str, Any], compiled_root: str = "") -> List[Tuple[str, str, str]]:
    """Every location a run of the compiled pipeline reads or writes, as (what, setting, location),
    each location once, from: the pipeline root (`compiled_root`; "" leaves it out), the
    root DAG's task parameters (by name, _LOCATION_PARAMETERS; any other whose value, or a string
    in its JSON, is an absolute path or a bucket or file URI), importer URIs, and Beam's
    *_location arguments; the known ones first. `spec`: the PipelineSpec (Vertex AI's JSON
    `pipelineSpec`, or a KFP package)."""
    found: List[Tuple[str, str, str]] = []
    if compiled_root:
        found.append(("pipeline root", PIPELINE_ROOT.name, compiled_root))
    from kubeflow_v2 import kfp_backend  # no TFX, no KFP

    tasks = ((spec.get("root") or {}).get("dag") or {}).get("tasks") or {}
    for task_name, task in tasks.items():
        parameters = ((task or {}).get("inputs") or {}).get("parameters") or {}
        for name, parameter in parameters.items():
            value = (parameter or {}).get("runtimeValue")
            known = _LOCATION_PARAMETERS.get(name)
            what, setting = known or (f"{task_name}'s {name}", "")
            # a known parameter's plain value is a location, relative too (--data-root data/asos); a field
            # inside its JSON, or any other parameter's value, when it looks like one
            found += [(what, setting, leaf) for leaf, in_json in _leaves(kfp_backend.compiled_constant(value))
                      if leaf and ((known and not in_json) or _looks_like_location(leaf))]
    for executor in ((spec.get("deploymentSpec") or {}).get("executors") or {}).values():
        uri = ((executor or {}).get("importer") or {}).get("artifactUri") or {}
        found += [("schema", SCHEMA_DIR.name, leaf) for leaf, _ in _leaves(kfp_backend.compiled_constant(uri)) if leaf]
        container = (executor or {}).get("container") or {}
        hook = ((container.get("lifecycle") or {}).get("preCacheCheck") or {})
        for arg in list(container.get("args") or []) + list(hook.get("args") or []):
            m = _BEAM_LOCATION.fullmatch(str(arg))
            if m:
                found.append((f"Beam's --{m.group(1)}", DATAFLOW_TEMP.name, m.group(2)))
    # the data files last: the catalog is one of them, named as the catalog
    order = ["pipeline root", "data root", "catalog", "schema", "serving model dir", "drift acceptances", "data files"]
    found.sort(key=lambda f: order.index(f[0]) if f[0] in order else len(order))  # stable: the rest in DAG order
    seen, unique = set(), []
    for what, setting, location in found:
        if location not in seen:
            seen.add(location)
            unique.append((what, setting, location))
    return unique


def in_bucket(location: Optional[str]) -> bool:
    """Is `location` a path in a Cloud Storage bucket (`gs://` and something after it)?"""
    return bool(location) and location.startswith("gs://") and len(location) > len("gs://")


def outside_buckets(locations: List[Tuple[str, str, str]]) -> List[Tuple[str, str, str]]:
    """The locations a run in the cloud cannot use: anything but gs://BUCKET/... and the image's own
    files (configs.IMAGE_PROJECT_DIR, e.g. the curated schema); a location inside another one
    listed, set by the same setting (the data files under the data root), is left out."""
    image = configs.IMAGE_PROJECT_DIR
    outside = [(what, setting, location) for what, setting, location in locations
               if not in_bucket(location)
               and not (location == image or location.startswith(image + "/"))]
    return [(what, setting, location) for what, setting, location in outside
            if not any(s == setting and o != location and location.startswith(o.rstrip("/") + "/")
                       for _, s, o in outside)]


def submit_root(given: Optional[str], compiled: str, package: str, compile_command: str,
                spec: Optional[Mapping[str, Any]] = None) -> str:
    """The pipeline root a submitted run writes to: `given` (the submit's --pipeline-root), else the
    one compiled into `package`. Both submit scripts take only gs://BUCKET/...: a run in the cloud
    cannot write a local root (a local root is for the harnesses), and TensorFlow 2.21 on Python
    3.13 cannot write s3:// or minio://. With `spec` (the package's PipelineSpec) every other
    location compiled in must be in a bucket too (compiled_locations): a package compiled for the
    local harness is refused, naming each location, with no --pipeline-root to suggest (it moves
    the artifacts only). Raises SettingError (one line)."""
    from kubeflow_v2 import kfp_backend  # no TFX, no KFP: its scheme parser only

    def tf_cannot(*locations: str) -> bool:
        return any(kfp_backend.scheme_of(location or "") in ("s3", "minio") for location in locations)

    tf_why = "TensorFlow 2.21 on Python 3.13 cannot write s3:// or minio:// (docs/kubeflow.md#where-artifacts-live)"
    if given and not in_bucket(given):
        why = tf_why if tf_cannot(given) else "the runs' artifacts live in a bucket"
        raise SettingError(f"{PIPELINE_ROOT.describe()}: {given} is not a gs:// URI ({why}); "
                           f"pass {PIPELINE_ROOT.name} gs://BUCKET/pipeline_root")
    outside = outside_buckets(compiled_locations(spec, "" if given else compiled)) if spec is not None else []
    if any(setting != PIPELINE_ROOT.name for _, setting, _ in outside):
        named = ", ".join(f"{what} {location}" + (f" ({setting})" if setting else "")
                          for what, setting, location in outside)
        why = (tf_why if tf_cannot(*(location for _, _, location in outside)) else
               "a run in the cloud would look for its data on its pod's own disk, and leave its pushed models "
               "and drift acceptances there, lost with the pod")
        raise SettingError(f"{package} was compiled with locations outside Cloud Storage, for the local harness "
                           f"only: {named}; {why}: compile with gs:// locations ({compile_command} "
                           f"ARGS=\"--bucket ...\", no local paths)")
    root = given or compiled or ""
    if in_bucket(root):
        return root
    # only the pipeline root is outside a bucket (every other location is in one): --pipeline-root helps
    scheme = kfp_backend.scheme_of(root)
    why = tf_why if tf_cannot(root) else "the runs' artifacts live in a bucket"
    local = "" if scheme else ": a local root is for the local harness only"
    raise SettingError(f"{package} was compiled with the pipeline root {compiled or '(none)'}, not a gs:// URI "
                       f"({why}){local}; compile with a gs:// root ({compile_command} ARGS=\"--bucket ...\"), "
                       f"or pass {PIPELINE_ROOT.name} gs://BUCKET/pipeline_root")


def refuse_wait_with_schedule(wait: bool, schedule: Optional[str], wait_flag: Flag, schedule_flag: Flag) -> None:
    """--wait follows one run; a schedule (or recurring run) starts its runs later. SettingError
    when both are asked for."""
    if wait and schedule:
        raise SettingError(f"{wait_flag.name} waits for one run; a schedule ({schedule_flag.name}) starts its "
                           "runs later: pass one of them")


def acceptances_note(spec: Mapping[str, Any], compiled_root: str, submit_root: Optional[str]) -> Optional[str]:
    """What a submit's --pipeline-root does not move: the drift gate's acceptances (DriftGate's
    `acceptances_dir`, compiled in as a constant under the compiled pipeline root); None when the
    roots agree. `spec`: the PipelineSpec (Vertex AI's JSON `pipelineSpec`, or a KFP package)."""
    if not submit_root or submit_root.rstrip("/") == (compiled_root or "").rstrip("/"):
        return None
    parameter = (((spec.get("root") or {}).get("dag") or {}).get("tasks") or {}).get("DriftGate", {})
    value = ((parameter.get("inputs") or {}).get("parameters") or {}).get("acceptances_dir", {}).get(
        "runtimeValue", {})
    compiled = value.get("constant") or (value.get("constantValue") or {}).get("stringValue")
    if not compiled:
        return None
    return (f"the drift gate's acceptances stay where they were compiled, {compiled} (compiled in): "
            f"{submit_root} takes the run's artifacts only; compile with --pipeline-root {submit_root} "
            "to keep both there")
