"""Settings of the Vertex path that are wrong stop with a SettingError naming flag and variable."""

import json

import pytest

from kubeflow_v2 import settings
from pipeline import configs

REQUIRED = ["--project", "p", "--region", "europe-west1", "--bucket", "my-bucket", "--image", "img:1"]


@pytest.mark.parametrize("flag, value, expected", [
    ("--bucket", "gs://", "--bucket or RECSYS_GCS_BUCKET: 'gs://' is not a Cloud Storage bucket"),
    ("--bucket", "My Bucket", "is not a Cloud Storage bucket"),
    ("--pipeline-name", "Bad Name!", "--pipeline-name or RECSYS_PIPELINE_NAME: 'Bad Name!' is not a pipeline name"),
    ("--dataflow-max-workers", "-3", "--dataflow-max-workers or RECSYS_DATAFLOW_MAX_WORKERS: -3 is not a positive"),
    ("--dataflow-disk-size-gb", "0", "--dataflow-disk-size-gb or RECSYS_DATAFLOW_DISK_SIZE_GB: 0 is not a positive"),
    # found by exploratory testing: compiled, to fail only in the cloud
    ("--beam-arg", "garbage", "--beam-arg or RECSYS_BEAM_ARGS: 'garbage' is not a Beam pipeline option"),
    ("--beam-arg", "--ok=1 -x", "'-x' is not a Beam pipeline option"),
    ("--region", "nowhere", "--region or RECSYS_GCP_REGION: 'nowhere' is not a Google Cloud region"),
    ("--region", "Europe-West1", "is not a Google Cloud region"),
])
def test_a_malformed_setting_is_named(flag, value, expected):
    with pytest.raises(settings.SettingError, match=expected.replace("(", "\\(")):
        settings.parse_compile_args(REQUIRED + [flag, value], environ={})


@pytest.mark.parametrize("runner, expected", [
    ("Nope", "'--runner=Nope' is not a Beam runner: Unexpected pipeline runner: Nope"),
    ("no.such.Runner", "'--runner=no.such.Runner' is not a Beam runner"),
])
def test_a_beam_runner_beam_does_not_know_is_named(runner, expected):
    """Found by exploratory testing: `--beam-arg=--runner=Nope` compiled, to fail in the cloud."""
    with pytest.raises(settings.SettingError, match="--beam-arg or RECSYS_BEAM_ARGS: " + expected):
        settings.parse_compile_args(REQUIRED + [f"--beam-arg=--runner={runner}"], environ={})


def test_region_names():
    for region in ("europe-west1", "us-central1", "northamerica-northeast1", "me-central2", " asia-south1 "):
        config, _, _ = settings.parse_compile_args(["--project", "p", "--region", region, "--bucket", "b",
                                                    "--image", "i"], environ={})
        assert config.region == region.strip()


def test_beam_args_are_pipeline_options():
    config, _, _ = settings.parse_compile_args(
        REQUIRED + ["--beam-arg=--experiments=use_runner_v2 --no_use_public_ips", "--beam-arg", "--x='a b'"],
        environ={})
    assert config.extra_beam_args[-3:] == ["--experiments=use_runner_v2", "--no_use_public_ips", "--x=a b"]
    # found by exploratory testing: a separate value starting with -- was argparse's "expected one argument"
    config, _, _ = settings.parse_compile_args(REQUIRED + ["--beam-arg", "--runner=DataflowRunner", "--beam-arg",
                                                           "--num_workers=3", "--no-cache"], environ={})
    assert config.extra_beam_args[-2:] == ["--runner=DataflowRunner", "--num_workers=3"] and not config.enable_cache
    for name in ("DataflowRunner", "DirectRunner", "PrismRunner"):  # Beam's names
        config, _, _ = settings.parse_compile_args(REQUIRED + [f"--beam-arg=--runner={name}"], environ={})
        assert config.extra_beam_args[-1] == f"--runner={name}"


def test_a_beam_arg_replaces_the_default_of_its_option():
    """Found by exploratory testing: the harness's --beam-arg=--direct_running_mode=in_memory was
    compiled in after the default multi_processing, both there."""
    config, _, _ = settings.parse_compile_args(
        REQUIRED + ["--beam-arg=--direct_running_mode=in_memory", "--beam-arg=--direct_num_workers=1"], environ={})
    args = config.beam_pipeline_args()
    assert [a for a in args if a.startswith("--direct_")] == ["--direct_running_mode=in_memory",
                                                             "--direct_num_workers=1"]
    assert "--runner=FnApiRunner" in args
    config, _, _ = settings.parse_compile_args(
        REQUIRED + ["--dataflow", "--beam-arg=--region=us-east1", "--beam-arg=--experiments=a"], environ={})
    args = config.beam_pipeline_args()
    assert [a for a in args if a.startswith("--region")] == ["--region=us-east1"] and "--experiments=a" in args


def test_bucket_forms():
    for given, bucket in [("my-bucket", "gs://my-bucket"), ("gs://my-bucket/", "gs://my-bucket"),
                          ("gs://my.bucket_1/team/x", "gs://my.bucket_1/team/x")]:
        config, _, _ = settings.parse_compile_args(REQUIRED + ["--bucket", given], environ={})
        assert config.bucket == bucket
        assert config.pipeline_root == bucket + "/pipeline_root"


def test_the_model_and_gate_flags_of_a_local_run():
    """--serving-top-k, --gate-bound, --preset, --model-param and --cold-start: declared once
    (pipeline/configs.py) for both runners."""
    config, _, _ = settings.parse_compile_args(REQUIRED + [
        "--serving-top-k", "20", "--gate-bound", "recall_at_10=0.3", "--gate-bound", "mrr=0.01",
        "--preset", "notebook", "--model-param", "epochs=2", "--gate-popularity-margin", "0.2", "--cold-start"],
        environ={})
    assert config.training.cold_start
    assert config.training.serving_top_k == 20 and config.training.custom_config()["serving_top_k"] == 20
    assert config.training.preset == "notebook" and config.training.overrides == {"epochs": 2}
    assert config.gate.lower_bounds == {**configs.DEFAULT_LOWER_BOUNDS, "recall_at_10": 0.3, "mrr": 0.01}
    assert config.gate.popularity_margin == 0.2
    config, _, _ = settings.parse_compile_args(REQUIRED, environ={})
    assert config.training == configs.TrainingConfig() and config.gate == configs.GateConfig()
    assert config.span_window == configs.DEFAULT_SPAN_WINDOW and config.drift == configs.DriftConfig()


def test_the_span_and_drift_flags_of_a_local_run():
    config, _, _ = settings.parse_compile_args(REQUIRED + [
        "--span-window", "5", "--drift-threshold", "repeated_rows=0.2", "--accept-drift"], environ={})
    assert config.span_window == 5 and config.drift.accept
    assert config.drift.thresholds == {**configs.DEFAULT_DRIFT_THRESHOLDS, "repeated_rows": 0.2}
    assert config.drift_acceptances_dir == "gs://my-bucket/pipeline_root/drift_acceptances/asos-recommender"


@pytest.mark.parametrize("flag, value, message", [
    ("--serving-top-k", "0", "argument --serving-top-k: 0 is not a number of products (1 or more)"),
    ("--gate-bound", "recall_at_10", "argument --gate-bound: 'recall_at_10' is not METRIC=NUMBER"),
    ("--gate-popularity-margin", "-1", "argument --gate-popularity-margin: -1 is not a margin (0 or more: "
                                       "0.1 means 10% above popularity; or off)"),
])
def test_a_malformed_model_or_gate_flag_is_a_usage_error(capsys, flag, value, message):
    with pytest.raises(SystemExit) as e:
        settings.parse_compile_args(REQUIRED + [flag, value], environ={})
    assert e.value.code == 2 and capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


@pytest.mark.parametrize("given, compiled, expected", [
    (None, "gs://b/root", "gs://b/root"),
    ("gs://other/root", "/local/root", "gs://other/root"),
    ("/local/root", "gs://b/root", "--pipeline-root or RECSYS_PIPELINE_ROOT: /local/root is not a gs:// URI"),
    ("s3://b/root", "", "cannot write s3:// or minio://"),
    ("gs://", "", "gs:// is not a gs:// URI"),
    (None, "/local/root", "p.json was compiled with the pipeline root /local/root, not a gs:// URI (the runs' "
                          "artifacts live in a bucket): a local root is for the local harness only; compile with a "
                          "gs:// root (make compile ARGS=\"--bucket ...\")"),
    (None, "minio://b/root", "p.json was compiled with the pipeline root minio://b/root, not a gs:// URI "
                             "(TensorFlow 2.21 on Python 3.13 cannot write"),
    (None, "", "compiled with the pipeline root (none)"),
])
def test_both_submit_scripts_send_runs_to_a_bucket_only(given, compiled, expected):
    if expected.startswith("gs://") and "is not" not in expected:
        assert settings.submit_root(given, compiled, "p.json", "make compile") == expected
    else:
        with pytest.raises(settings.SettingError) as raised:
            settings.submit_root(given, compiled, "p.json", "make compile")
        assert expected in str(raised.value)


def test_every_missing_setting_is_named_at_once():
    """Found by exploratory testing: `make compile` named one missing setting a try."""
    with pytest.raises(settings.SettingError) as e:
        settings.parse_compile_args([], environ={})
    said = str(e.value)
    assert said.startswith("missing required settings: Google Cloud project id (pass --project or set "
                           "RECSYS_GCP_PROJECT); region of Vertex AI Pipelines and Dataflow"), said
    assert "--bucket" in said and "--image" in said and "\n" not in said


def _task(**parameters):
    return {"inputs": {"parameters": {k: {"runtimeValue": v} for k, v in parameters.items()}}}


def test_every_location_compiled_in_must_be_in_a_bucket():
    """Found by exploratory testing: a package compiled for the local harness was submitted with a
    gs:// --pipeline-root, its data, schema, serving and acceptances directories still local. Both
    forms of a constant: Vertex AI's JSON (constantValue.stringValue), a KFP package (constant)."""
    spec = {"root": {"dag": {"tasks": {
        "ExampleGen": _task(input_base={"constant": "/data"}, input_config={"constant": '{"splits": []}'}),
        "Pusher": _task(push_destination={"constantValue": {"stringValue": '{"filesystem": {"base_directory": '
                                                                             '"/serving", "versioning": "AUTO"}}'}},
                        data_files={"constant": '["/data/train_*.parquet", "/data/products.csv"]'}),
        "CatalogCheck": _task(catalog_uri={"constant": "/data/products.csv"}),
        "DriftGate": _task(acceptances_dir={"constant": "/root/drift_acceptances/p"}, accept_drift={"constant": 1}),
        "Other": _task(scratch={"constant": "/scratch"}, name={"constant": "not/a/path"}),
        "ImportSchemaGen": _task(schema_file={"constant": configs.IMAGE_SCHEMA_DIR + "/schema.pbtxt"}),
    }}}}
    with pytest.raises(settings.SettingError) as raised:
        settings.submit_root("gs://b/root", "/root", "p.yaml", "make compile-kfp", spec)
    said = str(raised.value)
    assert said.startswith(
        "p.yaml was compiled with locations outside Cloud Storage, for the local harness only: data root /data "
        "(--data-root), catalog /data/products.csv (--catalog-uri), serving model dir /serving "
        "(--serving-model-dir), drift acceptances /root/drift_acceptances/p (under --pipeline-root), Other's scratch "
        "/scratch; "), said  # the data files under the data root and the image's schema are not named
    assert "pass --pipeline-root" not in said and "make compile-kfp ARGS" in said
    with pytest.raises(settings.SettingError, match="pipeline root /root .--pipeline-root., data root /data"):
        settings.submit_root(None, "/root", "p.yaml", "make compile-kfp", spec)
    in_buckets = json.loads(json.dumps(spec).replace('"/', '"gs://b/'))
    assert settings.submit_root(None, "gs://b/root", "p.yaml", "make compile-kfp", in_buckets) == "gs://b/root"
    # only the root is local (the rest in buckets): --pipeline-root is the way out, and said
    with pytest.raises(settings.SettingError, match="or pass --pipeline-root gs://BUCKET/pipeline_root"):
        settings.submit_root(None, "/root", "p.yaml", "make compile-kfp", in_buckets)
