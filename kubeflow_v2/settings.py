"""Settings of the Vertex AI / Kubeflow path, from flags or RECSYS_* environment variables.

Shared by `kubeflow_v2_runner.py` (compile) and `vertex_submit.py` (submit). A flag wins over its
environment variable; a required value given by neither is a one-line error naming both
(`MissingSetting`). The variables are named RECSYS_* because env/run-in-env passes exactly those
into its environment.

Imports neither TFX nor the Vertex SDK: parsing stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from pipeline import configs

DEFAULT_OUTPUT_DIR = os.path.join(configs.DEFAULT_OUTPUT_DIR, "vertex")
DEFAULT_PIPELINE_JSON = os.path.join(DEFAULT_OUTPUT_DIR, configs.VERTEX_PIPELINE_JSON)


class SettingError(ValueError):
    """A setting is missing or malformed; the message is one line that names flag and variable."""


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean (use 1/0, true/false)")


def _labels(text: str) -> Dict[str, str]:
    """`team=recsys,env=prod` -> {"team": "recsys", "env": "prod"}."""
    labels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"label {item!r} is not KEY=VALUE")
        labels[key.strip()] = value.strip()
    return labels


@dataclasses.dataclass(frozen=True)
class Setting:
    dest: str
    flag: str
    env: str
    help: str
    required: bool = False
    parse: Callable[[str], Any] = str
    default: Any = None
    is_bool: bool = False  # a switch: --flag / --no-flag, or the variable as 1/0
    repeat: bool = False  # the flag may be repeated; the variable is one string (split by `parse`)

    def describe(self) -> str:
        return f"{self.flag} or {self.env}"


def _bigquery_table(text: str) -> str:
    """`PROJECT.DATASET.TABLE` (or Beam's `PROJECT:DATASET.TABLE`) -> `PROJECT:DATASET.TABLE`."""
    value = text.strip()
    if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9][.:][A-Za-z0-9_]{1,1024}\.[\w$-]{1,1024}", value):
        raise ValueError(f"{text!r} is not a BigQuery table PROJECT.DATASET.TABLE")
    project, rest = (value.split(":", 1) if ":" in value else value.split(".", 1))
    return f"{project}:{rest}"


def _bucket(text: str) -> str:
    """`name` or `gs://name/` -> `gs://name`; an empty or malformed bucket name is a ValueError
    (`gs://` alone used to compile `gs://gs:/pipeline_root`)."""
    path = text.strip()
    path = (path[len("gs://"):] if path.startswith("gs://") else path).rstrip("/")
    name = path.split("/", 1)[0]
    if not re.fullmatch(r"[a-z0-9]([a-z0-9._-]{0,220}[a-z0-9])?", name):
        raise ValueError(f"{text!r} is not a Cloud Storage bucket (name or gs://name; a name is "
                         "lowercase letters, digits, '-', '_' and '.')")
    return f"gs://{path}"


def _pipeline_name(text: str) -> str:
    """The pattern the Kubeflow V2 compiler requires, checked as a setting (its own message
    comes after the pipeline is built, and names no flag)."""
    name = text.strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", name):
        raise ValueError(f"{text!r} is not a pipeline name (lowercase letters, digits and '-', "
                         "starting with a letter or digit, at most 128)")
    return name


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{value} is not a positive number")
    return value


# --- What can be set ---------------------------------------------------------------------------
PROJECT = Setting("project", "--project", "RECSYS_GCP_PROJECT", "Google Cloud project id", required=True)
REGION = Setting("region", "--region", "RECSYS_GCP_REGION",
                 "region of Vertex AI Pipelines and Dataflow, e.g. europe-west1", required=True)
BUCKET = Setting("bucket", "--bucket", "RECSYS_GCS_BUCKET",
                 "Cloud Storage bucket (name or gs://name): default home of pipeline root, data, models",
                 required=True, parse=_bucket)
IMAGE = Setting("image", "--image", "RECSYS_IMAGE",
                "container image with this package installed (see Dockerfile), e.g. "
                "europe-west1-docker.pkg.dev/PROJECT/recsys/asos-recommender:TAG; runs every component "
                "and the Dataflow workers", required=True)
PIPELINE_ROOT = Setting("pipeline_root", "--pipeline-root", "RECSYS_PIPELINE_ROOT",
                        "where components write their artifacts; default gs://BUCKET/pipeline_root")
PIPELINE_NAME = Setting("pipeline_name", "--pipeline-name", "RECSYS_PIPELINE_NAME",
                        "pipeline name (ML Metadata context, Vertex display name)",
                        default=configs.PIPELINE_NAME, parse=_pipeline_name)
DATA_ROOT = Setting("data_root", "--data-root", "RECSYS_DATA_ROOT",
                    "directory holding the ASOS parquet and csv files; default gs://BUCKET/data/asos")
CATALOG_URI = Setting("catalog_uri", "--catalog-uri", "RECSYS_CATALOG_URI",
                      f"product catalog file; default DATA_ROOT/{configs.CATALOG_FILE}")
SCHEMA_DIR = Setting("schema_dir", "--schema-dir", "RECSYS_SCHEMA_DIR",
                     "directory of the curated schema.pbtxt as the components see it; default the copy "
                     "inside the image", default=configs.IMAGE_SCHEMA_DIR)
SERVING_MODEL_DIR = Setting("serving_model_dir", "--serving-model-dir", "RECSYS_SERVING_MODEL_DIR",
                            "where Pusher writes blessed models; default gs://BUCKET/serving_model/"
                            + configs.MODEL_NAME)
BATCH_BIGQUERY_TABLE = Setting(
    "batch_bigquery_table", "--batch-bigquery-table", "RECSYS_BATCH_BIGQUERY_TABLE",
    "BigQuery table PROJECT.DATASET.TABLE that BatchRecommendations also writes (replaced each "
    "run; default: parquet in the pipeline root only)", parse=_bigquery_table)
DEPLOY_ENDPOINT = Setting("deploy_endpoint", "--deploy-endpoint", "RECSYS_DEPLOY_ENDPOINT",
                          "also deploy each blessed model to the Vertex AI endpoint of this display name "
                          "(created if missing; off by default), served by --serving-image")
SERVING_IMAGE = Setting("serving_image", "--serving-image", "RECSYS_SERVING_IMAGE",
                        "the model server image for --deploy-endpoint (Dockerfile target `serving`), e.g. "
                        "europe-west1-docker.pkg.dev/PROJECT/recsys/asos-recommender-serving:TAG")
DEPLOY_MACHINE_TYPE = Setting("deploy_machine_type", "--deploy-machine-type", "RECSYS_DEPLOY_MACHINE_TYPE",
                              "machine type of the endpoint's replica (default n1-standard-2)")
CACHE = Setting("enable_cache", "--cache", "RECSYS_ENABLE_CACHE",
                "reuse results of unchanged components (default on)", parse=_bool, default=True,
                is_bool=True)
DATAFLOW = Setting("dataflow", "--dataflow", "RECSYS_DATAFLOW",
                   "run the Beam work of every component on Dataflow (default: Beam's FnApiRunner "
                   "inside the component's container)", parse=_bool, default=False, is_bool=True)
DATAFLOW_TEMP = Setting("dataflow_temp_location", "--dataflow-temp-location", "RECSYS_DATAFLOW_TEMP_LOCATION",
                        "Dataflow temp/staging files; default gs://BUCKET/dataflow/tmp")
DATAFLOW_MACHINE = Setting("dataflow_machine_type", "--dataflow-machine-type", "RECSYS_DATAFLOW_MACHINE_TYPE",
                           "Dataflow worker machine type, e.g. n2-standard-4 (default: Dataflow's)")
DATAFLOW_MAX_WORKERS = Setting("dataflow_max_workers", "--dataflow-max-workers", "RECSYS_DATAFLOW_MAX_WORKERS",
                               "upper bound of Dataflow autoscaling", parse=_positive_int)
DATAFLOW_DISK = Setting("dataflow_disk_size_gb", "--dataflow-disk-size-gb", "RECSYS_DATAFLOW_DISK_SIZE_GB",
                        "Dataflow worker disk size", parse=_positive_int)
DATAFLOW_SA = Setting("dataflow_service_account", "--dataflow-service-account", "RECSYS_DATAFLOW_SERVICE_ACCOUNT",
                      "service account the Dataflow workers run as (default: Compute Engine default)")
DATAFLOW_SUBNET = Setting("dataflow_subnetwork", "--dataflow-subnetwork", "RECSYS_DATAFLOW_SUBNETWORK",
                          "Dataflow subnetwork, e.g. regions/REGION/subnetworks/NAME")
DATAFLOW_PUBLIC_IPS = Setting("dataflow_public_ips", "--dataflow-public-ips", "RECSYS_DATAFLOW_PUBLIC_IPS",
                              "give Dataflow workers public IPs (default on)", parse=_bool, default=True,
                              is_bool=True)
BEAM_ARGS = Setting("extra_beam_args", "--beam-arg", "RECSYS_BEAM_ARGS",
                    "one more Beam argument for every Beam-using component (repeatable; the variable "
                    "is split like a shell line)", parse=shlex.split, default=(), repeat=True)
SERVICE_ACCOUNT = Setting("service_account", "--service-account", "RECSYS_VERTEX_SERVICE_ACCOUNT",
                          "service account the pipeline's components run as on Vertex AI")
LABELS = Setting("labels", "--label", "RECSYS_VERTEX_LABELS",
                 "label KEY=VALUE of the pipeline job (repeatable; the variable: KEY=VALUE,KEY=VALUE)",
                 parse=_labels, default={}, repeat=True)  # copied by resolve, never mutated

COMPILE_SETTINGS = (PROJECT, REGION, BUCKET, IMAGE, PIPELINE_ROOT, PIPELINE_NAME, DATA_ROOT, CATALOG_URI,
                    SCHEMA_DIR, SERVING_MODEL_DIR, BATCH_BIGQUERY_TABLE, DEPLOY_ENDPOINT, SERVING_IMAGE,
                    DEPLOY_MACHINE_TYPE, CACHE, DATAFLOW, DATAFLOW_TEMP, DATAFLOW_MACHINE,
                    DATAFLOW_MAX_WORKERS, DATAFLOW_DISK, DATAFLOW_SA, DATAFLOW_SUBNET, DATAFLOW_PUBLIC_IPS,
                    BEAM_ARGS)


def add_settings(parser: argparse.ArgumentParser, settings: Sequence[Setting]) -> None:
    """Flags for `settings`; their defaults are resolved later by `resolve` (flag > env > default)."""
    for s in settings:
        text = f"{s.help} [env {s.env}]" + (" (required)" if s.required else "")
        if s.is_bool:
            parser.add_argument(s.flag, dest=s.dest, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        elif s.repeat:
            parser.add_argument(s.flag, dest=s.dest, action="append", default=None, help=text)
        else:
            parser.add_argument(s.flag, dest=s.dest, default=None, help=text)


def resolve(args: argparse.Namespace, settings: Sequence[Setting],
            environ: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """{dest: value} from the parsed flags, else the environment, else the default.

    Raises SettingError (one line naming the flag and the variable) for a missing required value
    or a value that does not parse."""
    environ = os.environ if environ is None else environ
    values: Dict[str, Any] = {}
    for s in settings:
        given = getattr(args, s.dest, None)
        try:
            if given is not None and s.repeat:
                value = _combine([s.parse(item) for item in given])
            elif given is not None:
                value = bool(given) if s.is_bool else s.parse(given)
            elif environ.get(s.env, "").strip():
                value = s.parse(environ[s.env])
            else:
                value = s.default
        except ValueError as e:
            raise SettingError(f"bad value for {s.describe()}: {e}") from None
        if s.required and (value is None or str(value).strip() == ""):
            what = s.help.split(",")[0].split(" (")[0].split(":")[0]
            raise SettingError(f"missing required setting: {what} (pass {s.flag} or set {s.env})")
        if s.repeat:
            value = dict(value) if isinstance(value, dict) else list(value)
        values[s.dest] = value
    return values


def _combine(parts: List[Any]) -> Any:
    """Repeated flags: dicts merge, lists concatenate."""
    if parts and isinstance(parts[0], dict):
        return {k: v for part in parts for k, v in part.items()}
    return [item for part in parts for item in part]


def vertex_config(values: Dict[str, Any]) -> configs.VertexConfig:
    fields = {f.name for f in dataclasses.fields(configs.VertexConfig)}
    return configs.VertexConfig(**{k: v for k, v in values.items() if k in fields and v is not None})


def compile_parser(description: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings(p, COMPILE_SETTINGS)
    configs.TrainingConfig.add_flags(p)
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR,
                   help="directory for the pipeline JSON; default %(default)s")
    p.add_argument("--output-file", default=configs.VERTEX_PIPELINE_JSON,
                   help="file name of the pipeline JSON; default %(default)s")
    return p


def parse_compile_args(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None):
    """(VertexConfig, output_dir, output_file) from the command line and environment."""
    args = compile_parser().parse_args(argv)
    try:
        training = configs.TrainingConfig.from_flags(args)
    except ValueError as e:
        raise SettingError(str(e)) from None
    values = resolve(args, COMPILE_SETTINGS, environ)
    if values.get("deploy_endpoint") and not values.get("serving_image"):
        raise SettingError(f"{DEPLOY_ENDPOINT.flag} needs the model server image: pass {SERVING_IMAGE.flag} "
                           f"or set {SERVING_IMAGE.env} (Dockerfile target `serving`)")
    config = vertex_config({**values, "training": training})
    return config, args.output_dir, args.output_file
