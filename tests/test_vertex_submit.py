"""vertex_submit.py for real up to the network: flags and RECSYS_* variables, the
aiplatform.PipelineJob built from a freshly compiled JSON, and the request submit() sends. Only the
RPCs to Vertex AI (create_pipeline_job, create_schedule) and the pipeline-root bucket check against
Cloud Storage are replaced; credentials are anonymous, so nothing looks for real ones."""

import json
import os

import pytest

import kubeflow_v2_runner
import vertex_submit
from kubeflow_v2 import settings
from pipeline import configs

IMAGE = "europe-west1-docker.pkg.dev/test-project/recsys/asos-recommender:test"


@pytest.fixture(scope="module")
def pipeline_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("vertex")
    config, _, _ = settings.parse_compile_args(
        ["--project", "test-project", "--region", "europe-west1", "--bucket", "test-bucket",
         "--image", IMAGE], environ={})
    path, _ = kubeflow_v2_runner.compile_pipeline(config, str(out))
    return path


@pytest.fixture
def sent(monkeypatch):
    """Replaces the calls that leave the machine; records what would have been sent."""
    from google.auth import credentials as auth_credentials
    from google.cloud.aiplatform import pipeline_jobs
    from google.cloud.aiplatform_v1.services.pipeline_service.client import PipelineServiceClient
    from google.cloud.aiplatform_v1.services.schedule_service.client import ScheduleServiceClient

    monkeypatch.setenv("NO_GCE_CHECK", "True")  # never probe a metadata server
    for name in list(os.environ):
        if name.startswith("RECSYS_"):
            monkeypatch.delenv(name)
    calls = {}

    def create_pipeline_job(self, parent, pipeline_job, pipeline_job_id, timeout=None, **_):
        calls["job"] = dict(parent=parent, pipeline_job=pipeline_job, job_id=pipeline_job_id)
        result = type(pipeline_job).deserialize(type(pipeline_job).serialize(pipeline_job))
        result.name = f"{parent}/pipelineJobs/{pipeline_job_id}"
        return result

    def create_schedule(self, parent, schedule, timeout=None, **_):
        calls["schedule"] = dict(parent=parent, schedule=schedule)
        result = type(schedule).deserialize(type(schedule).serialize(schedule))
        result.name = f"{parent}/schedules/123"
        return result

    monkeypatch.setattr(PipelineServiceClient, "create_pipeline_job", create_pipeline_job)
    monkeypatch.setattr(ScheduleServiceClient, "create_schedule", create_schedule)
    monkeypatch.setattr(pipeline_jobs.gcs_utils,
                        "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist",
                        lambda **kwargs: calls.setdefault("bucket_check", kwargs))
    calls["credentials"] = auth_credentials.AnonymousCredentials()
    return calls


def test_submit_sends_the_compiled_pipeline(pipeline_json, sent, capsys):
    argv = ["--project", "test-project", "--region", "europe-west1", "--pipeline-json", pipeline_json,
            "--service-account", "runner@test-project.iam.gserviceaccount.com",
            "--label", "team=recsys", "--label", "env=test", "--job-id", "asos-test-1"]
    assert vertex_submit.main(argv, credentials=sent["credentials"]) == 0
    request = sent["job"]
    assert request["parent"] == "projects/test-project/locations/europe-west1"
    assert request["job_id"] == "asos-test-1"
    job = request["pipeline_job"]
    assert job.service_account == "runner@test-project.iam.gserviceaccount.com"
    assert job.labels["team"] == "recsys" and job.labels["env"] == "test"
    assert job.runtime_config.gcs_output_directory == "gs://test-bucket/pipeline_root"
    with open(pipeline_json) as f:
        compiled = json.load(f)["pipelineSpec"]
    spec = dict(job.pipeline_spec)
    assert spec["pipelineInfo"]["name"] == configs.PIPELINE_NAME
    assert set(spec["root"]["dag"]["tasks"]) == set(compiled["root"]["dag"]["tasks"])
    assert "pipelineJobs/asos-test-1" in capsys.readouterr().out


def test_environment_and_overrides(pipeline_json, sent, monkeypatch):
    monkeypatch.setenv("RECSYS_GCP_PROJECT", "env-project")
    monkeypatch.setenv("RECSYS_GCP_REGION", "us-central1")
    monkeypatch.setenv("RECSYS_PIPELINE_JSON", pipeline_json)
    monkeypatch.setenv("RECSYS_VERTEX_LABELS", "team=recsys,cost-center=ml")
    monkeypatch.setenv("RECSYS_VERTEX_SERVICE_ACCOUNT", "sa@env-project.iam.gserviceaccount.com")
    options = vertex_submit.parse_args(["--pipeline-root", "gs://elsewhere/root", "--no-cache"])
    job = vertex_submit.build_job(options, credentials=sent["credentials"])
    vertex_submit.submit(job, options)
    request = sent["job"]
    assert request["parent"] == "projects/env-project/locations/us-central1"
    sent_job = request["pipeline_job"]
    assert sent_job.runtime_config.gcs_output_directory == "gs://elsewhere/root"
    assert dict(sent_job.labels) == {"team": "recsys", "cost-center": "ml"}
    assert sent_job.service_account == "sa@env-project.iam.gserviceaccount.com"
    tasks = dict(sent_job.pipeline_spec)["root"]["dag"]["tasks"]
    assert all(not t["cachingOptions"].get("enableCache", False) for t in tasks.values())


def test_a_pipeline_root_given_at_submit_says_where_the_drift_acceptances_stay(pipeline_json, sent, capsys):
    """Found by exploratory testing: the drift gate's acceptances folder is compiled in, under the
    compiled root; a --pipeline-root at submit moves the artifacts only, which is now said."""
    argv = ["--project", "p", "--region", "europe-west1", "--pipeline-json", pipeline_json]
    assert vertex_submit.main(argv + ["--pipeline-root", "gs://elsewhere/root"], credentials=sent["credentials"]) == 0
    assert capsys.readouterr().out.startswith(
        "[submit] the drift gate's acceptances stay where they were compiled, "
        "gs://test-bucket/pipeline_root/drift_acceptances/asos-recommender (compiled in): gs://elsewhere/root "
        "takes the run's artifacts only; compile with --pipeline-root gs://elsewhere/root to keep both there\n")
    assert vertex_submit.main(argv + ["--pipeline-root", "gs://test-bucket/pipeline_root/"],
                              credentials=sent["credentials"]) == 0
    assert "acceptances" not in capsys.readouterr().out  # the compiled root: nothing to say


def test_schedule(pipeline_json, sent):
    argv = ["--project", "test-project", "--region", "europe-west1", "--pipeline-json", pipeline_json,
            "--schedule-cron", "TZ=Europe/London 0 3 * * 1", "--schedule-name", "weekly",
            "--service-account", "runner@test-project.iam.gserviceaccount.com"]
    assert vertex_submit.main(argv, credentials=sent["credentials"]) == 0
    assert "job" not in sent, "a schedule starts no run by itself"
    schedule = sent["schedule"]["schedule"]
    assert sent["schedule"]["parent"] == "projects/test-project/locations/europe-west1"
    assert schedule.cron == "TZ=Europe/London 0 3 * * 1" and schedule.display_name == "weekly"
    request = schedule.create_pipeline_job_request
    assert request.pipeline_job.service_account == "runner@test-project.iam.gserviceaccount.com"
    assert dict(request.pipeline_job.pipeline_spec)["pipelineInfo"]["name"] == configs.PIPELINE_NAME


@pytest.mark.parametrize("argv, named", [
    (["--region", "europe-west1"], "--project"),
    (["--project", "p"], "RECSYS_GCP_REGION"),
    (["--project", "p", "--region", "europe-west1", "--pipeline-json", "/nonexistent/x.json"], "--pipeline-json"),
    (["--project", "p", "--region", "europe-west1", "--label", "Team=x"], "label"),
])
def test_bad_settings_are_one_line(pipeline_json, sent, capsys, argv, named):
    if "--pipeline-json" not in argv:
        argv = argv + ["--pipeline-json", pipeline_json]
    assert vertex_submit.main(argv, credentials=sent["credentials"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert "job" not in sent and "schedule" not in sent


@pytest.mark.parametrize("content", ['{"pipelineSpec": {"pipelineInfo"', "[1, 2]", "{}", "\udcff",
                                     '{"displayName": "x"}', '{"pipelineSpec": {"pipelineInfo": {"name": "x"}}}'])
def test_a_file_that_is_not_a_compiled_pipeline_is_one_line(tmp_path, sent, capsys, content):
    """A truncated JSON (or another file) used to end in a JSONDecodeError traceback, exit 1."""
    path = tmp_path / "pipeline.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    argv = ["--project", "p", "--region", "europe-west1", "--pipeline-json", str(path)]
    assert vertex_submit.main(argv, credentials=sent["credentials"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path} is not a pipeline JSON compiled"), err
    assert "job" not in sent and "schedule" not in sent


def test_a_schedule_without_a_name_is_named_after_the_pipeline(pipeline_json, sent):
    """Found by exploratory testing: without --schedule-name, the default name read the display name
    of a job not yet created, and every such call ended in a RuntimeError traceback."""
    argv = ["--project", "p", "--region", "europe-west1", "--pipeline-json", pipeline_json,
            "--schedule-cron", "0 3 * * 1"]
    assert vertex_submit.main(argv, credentials=sent["credentials"]) == 0
    assert sent["schedule"]["schedule"].display_name == f"{configs.PIPELINE_NAME}-schedule"


def test_settings_vertex_would_refuse_are_one_line(pipeline_json, sent, capsys, tmp_path):
    """Found by exploratory testing: a pipeline compiled for the local harness (a local root) went on
    to Vertex AI; an unsupported region and --wait with a schedule ended in tracebacks or were taken."""
    with open(pipeline_json) as f:
        spec = json.load(f)
    spec["runtimeConfig"]["gcsOutputDirectory"] = str(tmp_path / "root")
    local = tmp_path / "local.json"
    local.write_text(json.dumps(spec))
    common = ["--project", "p", "--region", "europe-west1"]
    cases = [(common + ["--pipeline-json", str(local)], 2, "was compiled with the pipeline root"),
             (common + ["--pipeline-json", pipeline_json, "--wait", "--schedule-cron", "0 3 * * 1"], 2,
              "--wait waits for one run"),
             (["--project", "p", "--region", "mars-central9", "--pipeline-json", pipeline_json], 2,
              "Vertex AI refuses the settings: Unsupported region")]
    for argv, code, said in cases:
        assert vertex_submit.main(argv, credentials=sent["credentials"]) == code
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and said in err, err
    assert "job" not in sent and "schedule" not in sent
    # a local root compiled in, moved to gs:// at submit, is fine
    assert vertex_submit.main(common + ["--pipeline-json", str(local), "--pipeline-root", "gs://b/root"],
                              credentials=sent["credentials"]) == 0
    assert vertex_submit.main(common + ["--pipeline-json", pipeline_json, "--max-concurrent-runs", "0"]) == 2
    assert "--max-concurrent-runs" in capsys.readouterr().err


@pytest.fixture(scope="module")
def harness_json(tmp_path_factory):
    """A pipeline JSON compiled for the local harness: every location on this machine."""
    from tests import pipeline_helpers as helpers

    root = tmp_path_factory.mktemp("vertex_harness")
    config, _, _ = settings.parse_compile_args(
        ["--project", "p", "--region", "europe-west1"] + helpers.harness_compile_flags(str(root), str(root / "data")),
        environ={})
    path, _ = kubeflow_v2_runner.compile_pipeline(config, str(root / "compiled"))
    return path, config


def test_a_pipeline_compiled_for_the_local_harness_is_refused_naming_every_local_path(
        harness_json, pipeline_json, sent, capsys):
    """Found by exploratory testing: with --pipeline-root gs://... such a JSON went on to Vertex AI, its
    data root, schema, serving directory and drift acceptances still paths of this machine; without
    it, the error suggested that --pipeline-root."""
    path, config = harness_json
    common = ["--project", "p", "--region", "europe-west1", "--pipeline-json", path]
    local = [config.data_root, config.catalog_uri, f"{config.schema_dir}", config.serving_model_dir,
             config.drift_acceptances_dir]
    for extra, root_named in [([], True), (["--pipeline-root", "gs://b/root"], False)]:
        assert vertex_submit.main(common + extra, credentials=sent["credentials"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith(f"error: {path} was compiled with locations outside Cloud Storage"), err
        for location in local:
            assert f" {location} (" in err, (location, err)
        assert (f"pipeline root {config.pipeline_root} " in err) is root_named, err
        assert "pass --pipeline-root" not in err and "make compile" in err, err
    assert "job" not in sent and "schedule" not in sent
    # the same settings with gs:// locations: still sent
    assert vertex_submit.main(["--project", "p", "--region", "europe-west1", "--pipeline-json", pipeline_json,
                               "--pipeline-root", "gs://b/root"], credentials=sent["credentials"]) == 0
    assert "job" in sent
