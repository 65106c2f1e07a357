"""Settings of the Vertex AI / Kubeflow path, from flags or RECSYS_* environment variables.

Shared by `kubeflow_v2_runner.py` (compile) and `vertex_submit.py` (submit), declared as
cli.flags.Flag with a variable each. A flag wins over its environment variable; a required value
given by neither is a one-line error naming both (`SettingError`). The variables are named
RECSYS_* because env/run-in-env passes exactly those into its environment.

Imports neither TFX nor the Vertex SDK: parsing stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
from typing import Any, Dict, List, Mapping, Optional, Tuple

from cli import flags
from cli.flags import Flag
from pipeline import configs

DEFAULT_OUTPUT_DIR = os.path.join(configs.DEFAULT_OUTPUT_DIR, "vertex")
DEFAULT_PIPELINE_JSON = os.path.join(DEFAULT_OUTPUT_DIR, configs.VERTEX_PIPELINE_JSON)

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


# --- What can be set ---------------------------------------------------------------------------
PROJECT = Flag("--project", "Google Cloud project id", env="RECSYS_GCP_PROJECT", required=True)
REGION = Flag("--region", "region of Vertex AI Pipelines and Dataflow, e.g. europe-west1",
              env="RECSYS_GCP_REGION", required=True)
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
                 kind=flags.REPEAT, parse=shlex.split, default=())
SERVICE_ACCOUNT = Flag("--service-account", "service account the pipeline's components run as on Vertex AI",
                       env="RECSYS_VERTEX_SERVICE_ACCOUNT")
LABELS = Flag("--label", "label KEY=VALUE of the pipeline job (repeatable; the variable: KEY=VALUE,KEY=VALUE)",
              env="RECSYS_VERTEX_LABELS", dest="labels", kind=flags.REPEAT, parse=flags.key_values,
              default={})  # copied by resolve, never mutated

COMPILE_SETTINGS = (PROJECT, REGION, BUCKET, IMAGE, PIPELINE_ROOT, PIPELINE_NAME, DATA_ROOT, CATALOG_URI,
                    SCHEMA_DIR, SERVING_MODEL_DIR, BATCH_BIGQUERY_TABLE, DEPLOY_ENDPOINT, SERVING_IMAGE,
                    DEPLOY_MACHINE_TYPE, CACHE, DATAFLOW, DATAFLOW_TEMP, DATAFLOW_MACHINE,
                    DATAFLOW_MAX_WORKERS, DATAFLOW_DISK, DATAFLOW_SA, DATAFLOW_SUBNET, DATAFLOW_PUBLIC_IPS,
                    BEAM_ARGS, TRAINER_MACHINE, TRAINER_ACCELERATOR)
# where the compile writes (no variable: the JSON goes where the command line says)
OUTPUT_DIR = Flag("--output-dir", "directory for the pipeline JSON; default %(default)s",
                  default=DEFAULT_OUTPUT_DIR)
OUTPUT_FILE = Flag("--output-file", "file name of the pipeline JSON; default %(default)s",
                   default=configs.VERTEX_PIPELINE_JSON)


def vertex_config(values: Dict[str, Any]) -> configs.VertexConfig:
    fields = {f.name for f in dataclasses.fields(configs.VertexConfig)}
    return configs.VertexConfig(**{k: v for k, v in values.items() if k in fields and v is not None})


def compile_parser(description: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add(p, COMPILE_SETTINGS + configs.PIPELINE_FLAGS + (OUTPUT_DIR, OUTPUT_FILE))
    return p


def parse_compile_args(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None):
    """(VertexConfig, output_dir, output_file) from the command line and environment."""
    args = compile_parser().parse_args(argv)
    values = flags.resolve(args, COMPILE_SETTINGS, environ)
    if values.get("deploy_endpoint") and not values.get("serving_image"):
        raise SettingError(f"{DEPLOY_ENDPOINT.name} needs the model server image: pass {SERVING_IMAGE.name} "
                           f"or set {SERVING_IMAGE.env} (Dockerfile target `serving`)")
    if values.get("trainer_accelerator") and not values.get("trainer_machine_type"):
        raise SettingError(f"{TRAINER_ACCELERATOR.name} needs the custom job's machine: pass "
                           f"{TRAINER_MACHINE.name} or set {TRAINER_MACHINE.env}")
    config = vertex_config({**values, "training": configs.TrainingConfig.from_flags(args),
                            "gate": configs.GateConfig.from_flags(args), "span_window": args.span_window,
                            "drift": configs.DriftConfig.from_flags(args)})
    return config, args.output_dir, args.output_file
