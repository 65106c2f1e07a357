"""The one place for the pipeline's names and defaults (feature names: models/features.py).

Everything a run can change is a field of `PipelineConfig` (a local run) or `VertexConfig` (a
run compiled for Vertex AI); runners build one (from flags or the environment) and hand it to
`pipeline.pipeline.create_pipeline`. Feature names live with the module code, in
`models/features.py`; module code reads its tunables from `custom_config`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar, Dict, List, Optional

from cli import flags
from cli.flags import Flag
from models import features

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PIPELINE_NAME = "asos-recommender"
MODEL_NAME = "recommender"  # TF Serving model name: /v1/models/recommender:predict

# --- Data -------------------------------------------------------------------------------------
TRAIN_FILE = "dsf_asos_train_with_alphanumeric_dummy_ids.parquet"
EVAL_FILE = "dsf_asos_valid_with_alphanumeric_dummy_ids.parquet"
USERS_FILE = "dsf_asos_dummy_users_with_alphanumeric_dummy_ids.csv"
CATALOG_FILE = "dsf_asos_productIds.csv"
DATA_SOURCE_URL = "https://raw.githubusercontent.com/ASOS/dsf2020/main"
DATA_SHA256 = {
    USERS_FILE: "9c524aed767df81ec204acad7b8ce243397e5c7e04761c83486b62b2004ac145",
    CATALOG_FILE: "160c762fd03a63629fb22885734e94783434afbcb1dd3fd693838368f1a23a31",
    TRAIN_FILE: "d96096d61aff5ff2ffd2ca868ada0c3e8f13ea54a792a68770a0340a29410427",
    EVAL_FILE: "f4dbf22c933d4268b1ef596ced133ee92f02f13a1e8872c5ce620a1459233fc1",
}
# ExampleGen splits: the notebook's files as they are (no re-split).
SPLIT_PATTERNS = {"train": "dsf_asos_train_*.parquet", "eval": "dsf_asos_valid_*.parquet"}

DEFAULT_DATA_DIR = os.path.join(PROJECT_DIR, "data", "asos")
SHARED_DATA_DIR = os.path.join(os.path.dirname(PROJECT_DIR), "shared", "data", "asos")
DEFAULT_OUTPUT_DIR = os.path.join(PROJECT_DIR, "outputs")
SCHEMA_DIR = os.path.join(PROJECT_DIR, "schema")

# Dotted paths of module code (models/): importable from the installed package, so nothing is
# uploaded when the pipeline is compiled for Kubeflow / Vertex.
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"


def default_data_dir() -> str:
    """`data/asos/` in the clone, else the team's shared copy when it exists."""
    if os.path.isdir(DEFAULT_DATA_DIR) or not os.path.isdir(SHARED_DATA_DIR):
        return DEFAULT_DATA_DIR
    return SHARED_DATA_DIR


@dataclasses.dataclass
class TrainingConfig:
    """What the Trainer trains: a preset of models.model plus overrides (custom_config)."""

    preset: str = "default"  # "default" (the tuned model) or "notebook" (the workshop's)
    overrides: Dict[str, Any] = dataclasses.field(default_factory=dict)  # ModelConfig fields
    serving_top_k: int = features.SERVING_TOP_K  # products returned by the serving signatures

    def custom_config(self) -> Dict[str, Any]:
        return {"preset": self.preset, "model": dict(self.overrides),
                "serving_top_k": self.serving_top_k}

    @classmethod
    def from_flags(cls, args) -> "TrainingConfig":
        """From the parsed PIPELINE_FLAGS (`--preset`, `--model-param`, `--serving-top-k`)."""
        return cls(preset=args.preset, overrides=dict(args.model_param), serving_top_k=args.serving_top_k)


# Per eval purchase (TFMA's examples): well above the most-popular baseline, with a margin for the
# default model (the measured figures: docs/model.md, "What the gate sees").
DEFAULT_LOWER_BOUNDS = {
    "recall_at_10": 0.03,
    "ndcg_at_10": 0.016,
    "sampled_accuracy": 0.15,
}


# StrictExampleValidator's rule: fewer rows than this in a split stops the run at validation (an
# empty or absurdly small split would otherwise be transformed, trained on and "evaluated" to
# metrics without values). The ASOS files have 165,042 (train) and 35,567 (eval) rows;
# tests/fake_asos.py's generated data about 400 and 60.
DEFAULT_MIN_SPLIT_ROWS = {"train": 100, "eval": 20}


@dataclasses.dataclass
class GateConfig:
    """The Evaluator's gate: absolute lower bounds, and the largest relative drop allowed
    against the last blessed model (retraining is not bit-for-bit deterministic on CPU threads,
    hence a small tolerance rather than none)."""

    lower_bounds: Dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_LOWER_BOUNDS))
    max_relative_drop: float = 0.01

    @classmethod
    def from_flags(cls, args) -> "GateConfig":
        """From the parsed PIPELINE_FLAGS: each `--gate-bound METRIC=VALUE` replaces that metric's
        default bound (the metric and the value are checked by components/evaluator.py)."""
        return cls(lower_bounds={**DEFAULT_LOWER_BOUNDS, **dict(args.gate_bound)})


# --- The flags of both runners (local_runner.py, kubeflow_v2_runner.py) ---------------------------
# What is trained and how it is judged; a Vertex compile takes them as a local run does.
PRESET_FLAG = Flag("--preset", "the model to train: the tuned default or the workshop notebook's",
              default="default", choices=("default", "notebook"))
MODEL_PARAM_FLAG = Flag("--model-param", "override a ModelConfig field (models/model.py), e.g. epochs=3 or "
                   "sampling=mixed; repeatable", kind=flags.REPEAT, metavar="FIELD=VALUE",
                   parse=flags.assignment(flags.json_or_text, "FIELD=VALUE"))
SERVING_TOP_K_FLAG = Flag("--serving-top-k", "products each serving request returns; default %(default)s "
                          "(models/features.py SERVING_TOP_K, also the k range of the Evaluator's recall@k "
                          "curve, which this flag leaves as it is)", metavar="N", default=features.SERVING_TOP_K,
                          parse=flags.integer(1, what="a number of products (1 or more)"))
GATE_BOUND_FLAG = Flag("--gate-bound", "the gate's lower bound for a metric of the Evaluator ("
                       + ", ".join(features.EVAL_METRICS) + "), replacing its default ("
                       + ", ".join(f"{name}={value:g}" for name, value in DEFAULT_LOWER_BOUNDS.items())
                       + "); repeatable", kind=flags.REPEAT, metavar="METRIC=VALUE",
                       parse=flags.assignment(float, "METRIC=NUMBER"))
PIPELINE_FLAGS = (PRESET_FLAG, MODEL_PARAM_FLAG, SERVING_TOP_K_FLAG, GATE_BOUND_FLAG)


@dataclasses.dataclass
class PipelineConfig:
    """What one run of the pipeline is: where data and outputs live, and how Beam runs."""

    data_dir: str = dataclasses.field(default_factory=default_data_dir)
    output_dir: str = DEFAULT_OUTPUT_DIR
    pipeline_name: str = PIPELINE_NAME
    schema_dir: str = SCHEMA_DIR
    enable_cache: bool = True
    verify_checksums: bool = True  # the published ASOS files; off for data of your own
    # Beam: the FnApiRunner, named. Beam's "DirectRunner" (>= 2.68) first tries to download Prism,
    # a detour in each Beam component before it falls back to this same FnApiRunner (measured:
    # docs/benchmarks.md, "Why the code is this way").
    beam_runner: str = "FnApiRunner"
    beam_direct_running_mode: str = "in_memory"
    beam_workers: int = 1
    # The Evaluator's baseline leaves the candidate out (pipeline/resolvers.py): a second run with
    # nothing changed is cached whole instead of comparing the model with itself.
    baseline_excludes_candidate: ClassVar[bool] = True
    extra_beam_args: List[str] = dataclasses.field(default_factory=list)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    min_split_rows: Dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_MIN_SPLIT_ROWS))

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root", self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata", self.pipeline_name, "metadata.db")

    @property
    def serving_model_dir(self) -> str:
        return os.path.join(self.output_dir, "serving_model", MODEL_NAME)

    # --- what create_pipeline reads, named as VertexConfig names it -----------------------------
    @property
    def data_root(self) -> str:
        return self.data_dir

    @property
    def catalog_uri(self) -> str:
        return os.path.join(self.data_dir, CATALOG_FILE)

    @property
    def batch_bigquery_table(self) -> Optional[str]:
        return None  # a local run writes the batch recommendations as parquet only

    def beam_pipeline_args(self) -> List[str]:
        # The project's package is the pipeline's Beam dependency (what a remote runner would
        # stage: module code and components; a local runner stages nothing). Without one
        # declared, TFX builds a TFX sdist for Beam in each Beam component
        # (tfx/utils/dependency_utils.py), which a local runner never reads (docs/benchmarks.md).
        args = [f"--runner={self.beam_runner}", f"--setup_file={os.path.join(PROJECT_DIR, 'setup.py')}"]
        if self.beam_runner in ("FnApiRunner", "DirectRunner"):  # both read DirectOptions
            args += [
                f"--direct_running_mode={self.beam_direct_running_mode}",
                f"--direct_num_workers={self.beam_workers}",
            ]
        return args + list(self.extra_beam_args)


# --- Kubeflow Pipelines / Vertex AI ---------------------------------------------------------------
# The container image (Dockerfile) holds the code and the curated schema at fixed places; the
# compiled pipeline refers to them there, never to a path of the machine that compiled it.
IMAGE_PROJECT_DIR = "/pipeline"  # the clone's files (schema/, pipeline/, components/, models/) in the image
IMAGE_SCHEMA_DIR = IMAGE_PROJECT_DIR + "/schema"
VERTEX_PIPELINE_JSON = "asos-recommender-pipeline.json"
KFP_PIPELINE_YAML = "asos-recommender-pipeline.yaml"  # open-source KFP takes a bare PipelineSpec YAML


def _gs(uri: str) -> str:
    """`my-bucket` or `gs://my-bucket/` -> `gs://my-bucket`."""
    uri = uri.strip().rstrip("/")
    return uri if "://" in uri else f"gs://{uri}"


@dataclasses.dataclass
class VertexConfig:
    """One pipeline compiled for Vertex AI Pipelines (or Kubeflow Pipelines).

    Defaults derived from `bucket`: pipeline root `gs://BUCKET/pipeline_root`, data
    `gs://BUCKET/data/asos`, pushed models `gs://BUCKET/serving_model/recommender`, Dataflow temp
    files `gs://BUCKET/dataflow/tmp`. Beam runs inside each component's container (FnApiRunner)
    unless `dataflow` is on, then on Dataflow workers started from the same `image`.
    """

    project: str
    region: str
    bucket: str
    image: str
    pipeline_name: str = PIPELINE_NAME
    pipeline_root: Optional[str] = None
    data_root: Optional[str] = None
    catalog_uri: Optional[str] = None
    schema_dir: str = IMAGE_SCHEMA_DIR
    serving_model_dir: Optional[str] = None
    enable_cache: bool = True
    # BatchRecommendations also writes to this BigQuery table (PROJECT.DATASET.TABLE), replacing it
    batch_bigquery_table: Optional[str] = None
    # Deploying each blessed model to a Vertex AI endpoint (off unless an endpoint is named): TFX's
    # Vertex Pusher uploads it as a Vertex Model running `serving_image` (the Dockerfile's `serving`
    # target) and deploys it to the endpoint of that display name (created if missing).
    deploy_endpoint: Optional[str] = None
    serving_image: Optional[str] = None
    deploy_machine_type: str = "n1-standard-2"
    # Submitting (vertex_submit.py)
    service_account: Optional[str] = None
    labels: Dict[str, str] = dataclasses.field(default_factory=dict)
    # Beam
    dataflow: bool = False
    dataflow_temp_location: Optional[str] = None
    dataflow_machine_type: Optional[str] = None
    dataflow_max_workers: Optional[int] = None
    dataflow_disk_size_gb: Optional[int] = None
    dataflow_service_account: Optional[str] = None
    dataflow_subnetwork: Optional[str] = None
    dataflow_public_ips: bool = True
    direct_num_workers: int = 0  # without Dataflow: 0 = every core of the component's machine
    extra_beam_args: List[str] = dataclasses.field(default_factory=list)
    # TFX's LatestBlessedModelStrategy: the Kubeflow V2 compiler accepts no other (pipeline/resolvers.py)
    baseline_excludes_candidate: ClassVar[bool] = False
    # What is trained and how it is judged: the local run's defaults, so both runs agree.
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    min_split_rows: Dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_MIN_SPLIT_ROWS))

    def __post_init__(self):
        self.bucket = _gs(self.bucket)
        root = self.bucket
        self.pipeline_root = self.pipeline_root or f"{root}/pipeline_root"
        self.data_root = (self.data_root or f"{root}/data/asos").rstrip("/")
        self.catalog_uri = self.catalog_uri or f"{self.data_root}/{CATALOG_FILE}"
        self.serving_model_dir = self.serving_model_dir or f"{root}/serving_model/{MODEL_NAME}"
        self.dataflow_temp_location = self.dataflow_temp_location or f"{root}/dataflow/tmp"

    @property
    def metadata_path(self) -> Optional[str]:
        return None  # Vertex AI keeps ML Metadata itself

    def vertex_deploy_custom_config(self) -> Optional[Dict[str, Any]]:
        """custom_config of TFX's Vertex Pusher (tfx.extensions.google_cloud_ai_platform), or None
        when no endpoint is named. The serving container gets Vertex's AIP_* variables and needs
        no arguments (its ENTRYPOINT is the model server)."""
        if not self.deploy_endpoint:
            return None
        if not self.serving_image:
            raise ValueError("deploying to a Vertex AI endpoint needs the serving image "
                             "(the Dockerfile's `serving` target)")
        return {
            "ai_platform_enable_vertex": True,
            "ai_platform_vertex_region": self.region,
            "ai_platform_vertex_container_image_uri": self.serving_image,
            "ai_platform_serving_args": {
                "project": self.project,
                "endpoint_name": self.deploy_endpoint,
                "machine_type": self.deploy_machine_type,
                "min_replica_count": 1,
                "max_replica_count": 1,
            },
        }

    def beam_pipeline_args(self) -> List[str]:
        """Arguments every Beam-using component gets (ExampleGen, StatisticsGen, Transform,
        Evaluator...): Dataflow with workers from our image, else the in-container FnApiRunner."""
        if not self.dataflow:
            # named, as the local run's (PipelineConfig.beam_runner): the DirectRunner would try
            # Prism first, and with internet in the container download and run it
            args = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                    f"--direct_num_workers={self.direct_num_workers}"]
            return args + list(self.extra_beam_args)
        args = [
            "--runner=DataflowRunner",
            f"--project={self.project}",
            f"--region={self.region}",
            f"--temp_location={self.dataflow_temp_location}",
            # Workers run our image: the package (preprocessing_fn...) is installed there, so
            # nothing is staged (no --setup_file, no wheels).
            f"--sdk_container_image={self.image}",
        ]
        optional = [
            ("machine_type", self.dataflow_machine_type),
            ("max_num_workers", self.dataflow_max_workers),
            ("disk_size_gb", self.dataflow_disk_size_gb),
            ("service_account_email", self.dataflow_service_account),
            ("subnetwork", self.dataflow_subnetwork),
        ]
        args += [f"--{name}={value}" for name, value in optional if value not in (None, "")]
        if not self.dataflow_public_ips:
            args.append("--no_use_public_ips")
        return args + list(self.extra_beam_args)


@dataclasses.dataclass
class KfpConfig(VertexConfig):
    """One pipeline compiled for open-source Kubeflow Pipelines 2 (docs/kubeflow.md): the Vertex
    settings (`project` and `region` are empty unless Dataflow or the Vertex endpoint needs them),
    and two differences in the pipeline, because that backend runs no resolver task and its
    importer takes bucket URIs only:

    - the curated schema is read by TFX's ImportSchemaGen in a task (from the image, or wherever
      `schema_dir` points), not imported by the orchestrator;
    - no resolver task: until the served-model baseline (DECISIONS D3) lands, the Evaluator gets
      no baseline and judges with the absolute bounds only.
    """

    schema_from_task: ClassVar[bool] = True
    baseline_resolver: ClassVar[bool] = False
