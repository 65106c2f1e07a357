"""The one place for the pipeline's names and defaults (feature names: models/features.py).

Everything a run can change is a field of `PipelineConfig` (a local run) or `VertexConfig` (a
run compiled for Vertex AI); runners build one (from flags or the environment) and hand it to
`pipeline.pipeline.create_pipeline`. Feature names live with the module code, in
`models/features.py`; module code reads its tunables from `custom_config`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar, Dict, List, Optional, Tuple

from cli import flags
from cli.flags import Flag
from models import features

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PIPELINE_NAME = "asos-recommender"
MODEL_NAME = "recommender"  # TF Serving model name: /v1/models/recommender:predict

# --- Data -------------------------------------------------------------------------------------
TRAIN_FILE = "dsf_asos_train_with_alphanumeric_dummy_ids.parquet"
EVAL_FILE = "dsf_asos_valid_with_alphanumeric_dummy_ids.parquet"
CATALOG_FILE = "dsf_asos_productIds.csv"
SPAN_PREFIX = "span-"  # span N's folder is span-N (TFX's {SPAN}; components/spans.py reads them)


def span_folder(number: int) -> str:
    """Span `number`'s folder in a data directory: `span-3` (dated folders are the other layout)."""
    return f"{SPAN_PREFIX}{number}"


# ASOS also publishes its user ids, one a line: nothing reads them (a run's users are those of its
# purchases), so a run neither needs the file nor downloads it (runner/data.py only leaves it out
# of the files it lists as foreign).
USERS_FILE = "dsf_asos_dummy_users_with_alphanumeric_dummy_ids.csv"
DATA_SOURCE_URL = "https://raw.githubusercontent.com/ASOS/dsf2020/main"
# The published files a run reads, and their checksums
DATA_SHA256 = {
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
    """`data/asos/` in the clone, else the team's shared copy when it exists. A `data/asos` that
    is a symbolic link is the data dir even when its target is missing (found by exploratory
    testing: a link whose target was not there fell back to the shared copy, and a run trained on
    other data than the user put there, without a word); runner.data.ensure_data then names the
    link and its target."""
    if os.path.isdir(DEFAULT_DATA_DIR) or os.path.islink(DEFAULT_DATA_DIR) or not os.path.isdir(SHARED_DATA_DIR):
        return DEFAULT_DATA_DIR
    return SHARED_DATA_DIR


@dataclasses.dataclass
class TrainingConfig:
    """What the Trainer trains: a preset of models.model plus overrides (custom_config)."""

    preset: str = "default"  # "default" (the tuned model) or "notebook" (the workshop's)
    overrides: Dict[str, Any] = dataclasses.field(default_factory=dict)  # ModelConfig fields
    serving_top_k: int = features.SERVING_TOP_K  # products returned by the serving signatures
    cold_start: bool = False  # train from nothing even when a model is served (no warm start)

    def custom_config(self) -> Dict[str, Any]:
        return {"preset": self.preset, "model": dict(self.overrides),
                "serving_top_k": self.serving_top_k, "cold_start": self.cold_start}

    @classmethod
    def from_flags(cls, args) -> "TrainingConfig":
        """From the parsed PIPELINE_FLAGS (`--preset`, `--model-param`, `--serving-top-k`,
        `--cold-start`)."""
        return cls(preset=args.preset, overrides=dict(args.model_param), serving_top_k=args.serving_top_k,
                   cold_start=args.cold_start)


# Per eval purchase (TFMA's examples): well above the most-popular baseline, with a margin for the
# default model (the measured figures: docs/model.md, "What the gate sees").
DEFAULT_LOWER_BOUNDS = {
    "recall_at_10": 0.03,
    "ndcg_at_10": 0.016,
    "sampled_accuracy": 0.15,
}


# The candidate must beat the most-popular-products baseline on every gated metric by this relative
# margin (0.1: 10% above popularity's value), computed by the Evaluator in its one pass. On the ASOS
# data the default model is 30% (sampled accuracy) to 130% (ndcg@10) above popularity; data with no
# signal beyond popularity gives a model within a few % of it (docs/model.md, "What the gate sees").
DEFAULT_POPULARITY_MARGIN = 0.1


# StrictExampleValidator's rule: fewer rows than this in a split stops the run at validation (an
# empty or absurdly small split would otherwise be transformed, trained on and "evaluated" to
# metrics without values). The ASOS files have 165,042 (train) and 35,567 (eval) rows;
# tests/fake_asos.py's generated data about 400 and 60.
DEFAULT_MIN_SPLIT_ROWS = {"train": 100, "eval": 20}


@dataclasses.dataclass
class GateConfig:
    """The Evaluator's gate: absolute lower bounds, the largest relative drop allowed against the
    served model (retraining is not bit-for-bit deterministic on CPU threads, hence a small
    tolerance rather than none), and the relative margin by which every bounded metric must beat
    the most-popular-products baseline (None: no popularity rule)."""

    lower_bounds: Dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_LOWER_BOUNDS))
    max_relative_drop: float = 0.01
    popularity_margin: Optional[float] = DEFAULT_POPULARITY_MARGIN
    # >0: the Evaluator (and the run report) measure the eval purchases of a seeded sample of this
    # many eval users (components/eval_sample.py), not every eval purchase; 0: all of them
    eval_users: int = 0

    @classmethod
    def from_flags(cls, args) -> "GateConfig":
        """From the parsed PIPELINE_FLAGS: each `--gate-bound METRIC=VALUE` replaces that metric's
        default bound (the metric and the value are checked by components/evaluator.py);
        `--gate-popularity-margin` the popularity margin; `--eval-users` the eval sample."""
        return cls(lower_bounds={**DEFAULT_LOWER_BOUNDS, **dict(args.gate_bound)},
                   popularity_margin=args.gate_popularity_margin,
                   eval_users=getattr(args, "eval_users", 0) or 0)

    def eval_config_args(self) -> Dict[str, Any]:
        """The arguments of components/evaluator.py's `eval_config`."""
        return {"lower_bounds": self.lower_bounds, "max_relative_drop": self.max_relative_drop,
                "popularity_margin": self.popularity_margin}


def popularity_margin(text: str) -> Optional[float]:
    """`--gate-popularity-margin`: a fraction of 0 or more, or `off` (None)."""
    if text.strip().lower() in ("off", "none"):
        return None
    return flags.number(0.0, what="a margin (0 or more: 0.1 means 10% above popularity; or off)")(text)


@dataclasses.dataclass
class MonitorConfig:
    """`make monitor`'s thresholds (serving/monitor.py): over one, its report says so plainly, a
    signal to retrain. The popularity distances are TFDV's, as the drift gate's; they are judged
    only above what chance gives a sample of as many requests drawn from the training purchases,
    and only with at least `min_requested_products` product requests; an unknown share only with
    at least `min_rows` rows of its signature."""

    max_unknown_user_share: float = 0.2  # of serving_default rows: users the model does not know
    max_unknown_product_share: float = 0.2  # of call_item_item rows: products the model does not know
    max_popularity_l_infinity: float = 0.01  # requested products against training purchases
    max_popularity_jensen_shannon: float = 0.3
    min_requested_products: int = 100
    min_rows: int = 100  # rows of a signature before its unknown share is judged (one request is no share)
    chance_draws: int = 20  # same-size samples of the training purchases: what chance gives


# --- Spans and the drift gate (components/spans.py, components/drift.py; docs/pipeline.md "Spans") ---
# The Trainer's window: the last 3 spans. A run's cost stays bounded as spans accumulate, the model
# follows a catalogue that turns over (products leave), and what older spans taught is carried by
# the warm start rather than by re-reading them; with the replay's 4 spans the window grows over
# spans 1-3 and then slides (span 4 trains on spans 2-4), so both cases run.
DEFAULT_SPAN_WINDOW = 3
# The newest span against the previous one: over any of these the run stops before Transform
# (exit 4) unless --accept-drift. Calibrated on seeded random spans of the ASOS train purchases
# (the replay's split: 4 spans, the first twice the others', 33k-66k rows) against the same spans
# with popularity turned upside down and with heavy buyers buying 3x: the figures, and what each
# threshold means, in docs/pipeline.md ("The drift gate"), from benchmarks/drift_calibration.py.
# Smaller spans are noisier, real ones rougher: calibrate on your own spans (benchmarks/drift_calibration.py
# --span-dir DATA_DIR: docs/pipeline.md, "Calibrating on your spans") and set its suggestion here to keep it
# for every run and compile (--drift-threshold overrides one run's).
DEFAULT_DRIFT_THRESHOLDS = {
    "product_l_infinity": 0.006,  # largest change of one product's share of purchases
    "product_jensen_shannon": 0.6,  # divergence of the product distributions (top 1,000 products)
    "min_rows_ratio": 0.4,  # rows of the newest span / the previous span's, at least ...
    "max_rows_ratio": 2.5,  # ... and at most
    "purchases_per_user_jensen_shannon": 0.005,  # divergence of purchases per user, at equal size
    "top_users_share_ratio": 1.5,  # the top 1% of users' share of purchases, x1.5 either way at most
    "user_l_infinity": 0.02,  # largest change of one buyer's share of purchases (a new heavy account)
    "repeated_rows": 0.5,  # share of the newest span's purchases already in the previous span
}


@dataclasses.dataclass
class DriftConfig:
    """The drift gate: its thresholds, and whether this run lets a drifted span through."""

    thresholds: Dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_DRIFT_THRESHOLDS))
    accept: bool = False  # --accept-drift

    @classmethod
    def from_flags(cls, args) -> "DriftConfig":
        """From the parsed PIPELINE_FLAGS (`--drift-threshold NAME=VALUE`, `--accept-drift`)."""
        return cls(thresholds={**DEFAULT_DRIFT_THRESHOLDS, **dict(args.drift_threshold)},
                   accept=bool(args.accept_drift))


# --- The flags of both runners (local_runner.py, kubeflow_v2_runner.py) ---------------------------
# What is trained and how it is judged; a Vertex compile takes them as a local run does.
PRESET_FLAG = Flag("--preset", "the model to train: the tuned default or the workshop notebook's",
              default="default", choices=("default", "notebook"))
MODEL_PARAM_FLAG = Flag("--model-param", "override a ModelConfig field (models/model.py), e.g. epochs=3 or "
                   "sampling=mixed; repeatable", kind=flags.REPEAT, metavar="FIELD=VALUE",
                   parse=flags.assignment(flags.json_or_text, "FIELD=VALUE"))
SERVING_TOP_K_FLAG = Flag("--serving-top-k", "products each serving request returns, and each user's batch "
                          "list holds; default %(default)s "
                          "(models/features.py SERVING_TOP_K, also the k range of the Evaluator's recall@k "
                          "curve, which this flag leaves as it is)", metavar="N", default=features.SERVING_TOP_K,
                          parse=flags.integer(1, what="a number of products (1 or more)"))
GATE_BOUND_FLAG = Flag("--gate-bound", "the gate's lower bound for a metric of the Evaluator ("
                       + ", ".join(features.EVAL_METRICS) + "), replacing its default ("
                       + ", ".join(f"{name}={value:g}" for name, value in DEFAULT_LOWER_BOUNDS.items())
                       + "); repeatable", kind=flags.REPEAT, metavar="METRIC=VALUE",
                       parse=flags.assignment(float, "METRIC=NUMBER"))
GATE_POPULARITY_MARGIN_FLAG = Flag(
    "--gate-popularity-margin", "how far above the most-popular-products baseline every bounded metric must be, "
    f"as a fraction (0.1: 10%% above; 0: at least as good; off: no popularity rule); default "
    f"{DEFAULT_POPULARITY_MARGIN:g}", metavar="FRACTION", default=DEFAULT_POPULARITY_MARGIN,
    parse=popularity_margin)
EVAL_USERS_FLAG = Flag("--eval-users", "the Evaluator measures the eval purchases of a seeded sample of N eval "
                       "users instead of all (its work grows with N x products, not eval purchases x "
                       "products: docs/benchmarks.md); default 0, all", metavar="N", default=0,
                       parse=flags.integer(0, what="a number of eval users (0: all)"))
SPAN_WINDOW_FLAG = Flag("--span-window", "the Trainer trains on the last N spans of the data directory "
                        "(span-N/ or dated folders; the flat layout is one span); default %(default)s",
                        metavar="N", default=DEFAULT_SPAN_WINDOW,
                        parse=flags.integer(1, what="a number of spans (1 or more)"))
DRIFT_THRESHOLD_FLAG = Flag("--drift-threshold", "a threshold of the drift gate, replacing its default ("
                            + ", ".join(f"{name}={value:g}" for name, value in DEFAULT_DRIFT_THRESHOLDS.items())
                            + "); repeatable", kind=flags.REPEAT, metavar="NAME=VALUE",
                            parse=flags.assignment(float, "NAME=NUMBER"))
ACCEPT_DRIFT_FLAG = Flag("--accept-drift", "train on the newest span even if the drift gate finds it drifted "
                         "from the previous one (or repeating it); later runs on the same two spans accept "
                         "it too", kind=flags.SWITCH)
COLD_START_FLAG = Flag("--cold-start", "train from nothing: no warm start from the served model (which the "
                       "gate still compares with)", kind=flags.SWITCH)
PIPELINE_FLAGS = (PRESET_FLAG, MODEL_PARAM_FLAG, SERVING_TOP_K_FLAG, GATE_BOUND_FLAG, GATE_POPULARITY_MARGIN_FLAG,
                  EVAL_USERS_FLAG, SPAN_WINDOW_FLAG, DRIFT_THRESHOLD_FLAG, ACCEPT_DRIFT_FLAG, COLD_START_FLAG)


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
    extra_beam_args: List[str] = dataclasses.field(default_factory=list)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    min_split_rows: Dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_MIN_SPLIT_ROWS))
    span_window: int = DEFAULT_SPAN_WINDOW
    drift: DriftConfig = dataclasses.field(default_factory=DriftConfig)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root", self.pipeline_name)

    @property
    def drift_acceptances_dir(self) -> str:
        """Where the drift gate records the span pairs --accept-drift let through."""
        return os.path.join(self.pipeline_root, "drift_acceptances")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata", self.pipeline_name, "metadata.db")

    @property
    def serving_model_dir(self) -> str:
        return os.path.join(self.output_dir, "serving_model", MODEL_NAME)

    @property
    def request_log_prefix(self) -> str:
        """The model server's request logs (`make serve` with request logging on) and `make monitor`'s
        input: <prefix>-<start>-<pid>-<seq>.tfrecord (serving/request_log.py)."""
        return request_log_prefix_in(self.output_dir)

    @property
    def monitoring_dir(self) -> str:
        """Where `make monitor` writes its reports (the run report links the latest)."""
        return os.path.join(self.output_dir, "monitoring")

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
        return local_beam_args(self.beam_runner, self.beam_direct_running_mode,
                               self.beam_workers) + list(self.extra_beam_args)


def request_log_prefix_in(output_dir: str, model_name: str = MODEL_NAME) -> str:
    """The request log prefix of an output directory's server (PipelineConfig.request_log_prefix)."""
    return os.path.join(output_dir, "request_logs", model_name)


def request_log_prefix_beside(base_path: str, model_name: str = MODEL_NAME) -> str:
    """The model server's default request log prefix for the models under `base_path`: beside
    them when `base_path` is a local output directory's `<dir>/serving_model/<name>` (so `make
    serve` of a run made with `--output-dir DIR` logs into DIR/request_logs/, where `make monitor
    ARGS="--output-dir DIR"` reads), else the default output directory's."""
    parent, leaf = os.path.split(os.path.normpath(base_path)) if base_path and "://" not in base_path else ("", "")
    output_dir = os.path.dirname(parent) if leaf and os.path.basename(parent) == "serving_model" else DEFAULT_OUTPUT_DIR
    return request_log_prefix_in(output_dir, model_name)


def local_beam_args(runner: str = "FnApiRunner", running_mode: str = "in_memory",
                    workers: int = 1) -> List[str]:
    """Beam arguments for a run on this machine, the project's package declared as the pipeline's
    dependency (what a remote runner would stage: module code and components; a local runner
    stages nothing). Every Beam args list needs a declared dependency: without one, TFX builds a
    throwaway TFX sdist in each Beam component (tfx/utils/dependency_utils.py), 2-6 s and 46 MB
    under /tmp that it never removes (docs/benchmarks.md)."""
    args = [f"--runner={runner}", f"--setup_file={os.path.join(PROJECT_DIR, 'setup.py')}"]
    if runner in ("FnApiRunner", "DirectRunner"):  # both read DirectOptions
        args += [f"--direct_running_mode={running_mode}", f"--direct_num_workers={workers}"]
    return args


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
    # `make monitor`'s reports, which the run report links (none on Vertex: its endpoints log requests
    # their own way)
    monitoring_dir: Optional[str] = None
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
    # The Trainer as a Vertex AI Training custom job on this machine (TFX's Vertex Trainer), with
    # an optional accelerator (type, count); None: inside its pipeline task
    trainer_machine_type: Optional[str] = None
    trainer_accelerator: Optional[Tuple[str, int]] = None
    # What is trained and how it is judged: the local run's defaults, so both runs agree.
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    min_split_rows: Dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_MIN_SPLIT_ROWS))
    span_window: int = DEFAULT_SPAN_WINDOW
    drift: DriftConfig = dataclasses.field(default_factory=DriftConfig)

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

    @property
    def drift_acceptances_dir(self) -> str:
        """Where the drift gate records the span pairs --accept-drift let through."""
        return f"{self.pipeline_root.rstrip('/')}/drift_acceptances/{self.pipeline_name}"

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

    def vertex_training_custom_config(self) -> Optional[Dict[str, Any]]:
        """custom_config keys of TFX's Vertex Trainer (tfx.extensions.google_cloud_ai_platform):
        a Vertex AI CustomJob of one replica of `image` on `trainer_machine_type` (and its
        accelerator) in the pipeline's project and region, which runs the Trainer's executor
        and `run_fn` as the pipeline task would; None without a machine type."""
        if not self.trainer_machine_type:
            return None
        machine: Dict[str, Any] = {"machine_type": self.trainer_machine_type}
        if self.trainer_accelerator:
            machine.update(accelerator_type=self.trainer_accelerator[0],
                           accelerator_count=int(self.trainer_accelerator[1]))
        return {
            "ai_platform_enable_vertex": True,
            "ai_platform_vertex_region": self.region,
            "ai_platform_training_args": {
                "project": self.project,
                "job_spec": {"worker_pool_specs": [{
                    "machine_spec": machine, "replica_count": 1,
                    "container_spec": {"image_uri": self.image}}]},
            },
        }

    def beam_pipeline_args(self) -> List[str]:
        """Arguments every Beam-using component gets (ExampleGen, StatisticsGen, Transform,
        Evaluator...): Dataflow with workers from our image, else the in-container FnApiRunner."""
        if not self.dataflow:
            # named, as the local run's (PipelineConfig.beam_runner): the DirectRunner would try
            # Prism first, and with internet in the container download and run it. The image is
            # the declared dependency (the code is installed there; the FnApiRunner stages
            # nothing), or TFX builds and leaves a TFX sdist in each Beam task (local_beam_args).
            args = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                    f"--direct_num_workers={self.direct_num_workers}",
                    f"--sdk_container_image={self.image}"]
            return _with_extra(args, self.extra_beam_args)
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
        return _with_extra(args, self.extra_beam_args)


def _with_extra(args: List[str], extra: List[str]) -> List[str]:
    """`args` with the `extra` Beam arguments (--beam-arg) in place of those of the same option:
    one value for each, the one asked for (found by exploratory testing: both were compiled in,
    and the compile line showed two running modes)."""
    def option(arg: str) -> str:
        return arg.split("=", 1)[0]

    replaced = {option(arg) for arg in extra}
    return [arg for arg in args if option(arg) not in replaced] + list(extra)


@dataclasses.dataclass
class KfpConfig(VertexConfig):
    """One pipeline compiled for open-source Kubeflow Pipelines 2 (docs/kubeflow.md): the Vertex
    settings (`project` and `region` are empty unless Dataflow or the Vertex endpoint needs them),
    and one difference in the pipeline, because that backend's importer takes bucket URIs only:
    the curated schema is read by TFX's ImportSchemaGen in a task (from the image, or wherever
    `schema_dir` points), not imported by the orchestrator. (It runs no resolver task either;
    the pipeline has none: the baseline is ServedBaseline, components/baseline.py.)
    """

    schema_from_task: ClassVar[bool] = True
