"""Contract test of kfp_submit.py: the real kfp.Client, driven by kfp_submit.py, against a local
stand-in of KFP's v2beta1 REST API (tests/kfp_api_standin.py), checking the requests it sends:
upload or new version, experiment, run or recurring run, namespace, bearer token, pipeline root,
service account, the cron KFP will read. A contract test, not a cluster run (docs/kubeflow.md)."""

import json
import os
import shutil

import pytest

import kfp_submit
import kubeflow_v2_runner
from kubeflow_v2 import settings
from tests.kfp_api_standin import KfpApiStandIn

IMAGE = "europe-west1-docker.pkg.dev/test-project/recsys/asos-recommender:test"


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    out = tmp_path_factory.mktemp("kfp")
    config, _, _ = settings.parse_compile_args(
        ["--target", "kfp", "--bucket", "test-bucket", "--image", IMAGE], environ={})
    package, _ = kubeflow_v2_runner.compile_pipeline(config, str(out / "kfp"))
    config, _, _ = settings.parse_compile_args(
        ["--project", "p", "--region", "europe-west1", "--bucket", "test-bucket", "--image", IMAGE], environ={})
    vertex, _ = kubeflow_v2_runner.compile_pipeline(config, str(out / "vertex"))
    return {"kfp": package, "vertex": vertex}


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    """No RECSYS_* or KF_PIPELINES_* variables, and kfp.Client's context file in a temp dir."""
    from kfp.client import client

    for name in list(os.environ):
        if name.startswith(("RECSYS_", "KF_PIPELINES_")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp" / "context.json"))


def _one(api, call):
    found = [r for r, c in zip(api.requests, api.calls()) if c == call]
    assert len(found) == 1, (call, api.calls())
    return found[0]


def test_first_submission_uploads_the_pipeline_and_starts_a_run(packages, capsys):
    with KfpApiStandIn() as api:
        argv = ["--host", api.url, "--package", packages["kfp"], "--experiment", "recsys",
                "--run-name", "nightly-1", "--service-account", "recsys-runner"]
        assert kfp_submit.main(argv) == 0
    assert api.calls() == [
        "GET /healthz",  # no namespace given: the client asks whether KFP is multi-user
        "GET /experiments", "POST /experiments",
        "GET /pipelines", "POST /pipelines/upload", "GET /pipelines/p-1/versions",
        "POST /runs",
    ]
    assert all("authorization" not in r.headers for r in api.requests)  # standalone: no auth
    assert json.loads(_one(api, "GET /experiments").query["filter"])["predicates"][0]["stringValue"] == "recsys"
    assert _one(api, "POST /experiments").body == {"display_name": "recsys", "namespace": ""}
    upload = _one(api, "POST /pipelines/upload")
    assert upload.query["name"] == "asos-recommender"
    with open(packages["kfp"], "rb") as f:
        assert upload.files["uploadfile"] == f.read()  # the package as compiled
    run = _one(api, "POST /runs").body
    assert run["display_name"] == "nightly-1" and run["experiment_id"] == "exp-1"
    assert run["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "p-1-v1"}
    assert run["runtime_config"]["pipeline_root"] == "gs://test-bucket/pipeline_root"  # compiled in
    assert run["service_account"] == "recsys-runner"
    assert "pipeline_spec" not in run  # the uploaded version runs, not a copy of the package
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"[submit] new pipeline asos-recommender: {api.url}/#/pipelines/details/p-1/version/p-1-v1",
                   f"[submit] run nightly-1 in experiment recsys: {api.url}/#/runs/details/run-1"]


def test_a_second_submission_is_a_new_version_of_the_same_pipeline(packages, capsys, tmp_path):
    changed = tmp_path / "changed.yaml"
    shutil.copyfile(packages["kfp"], changed)
    with KfpApiStandIn() as api:
        assert kfp_submit.main(["--host", api.url, "--package", packages["kfp"]]) == 0
        n = len(api.requests)
        argv = ["--host", api.url, "--package", str(changed), "--pipeline-root", "gs://other/root"]
        assert kfp_submit.main(argv) == 0
    second = api.calls()[n:]
    assert second == ["GET /healthz", "GET /experiments", "GET /pipelines",
                      "POST /pipelines/upload_version", "POST /runs"]
    version = api.requests[n + 3]
    assert version.query["pipelineid"] == "p-1"
    assert version.query["name"].startswith("asos-recommender-")  # PIPELINE-<UTC time>-<package hash>
    assert len(api.experiments) == 1  # the experiment (default: the pipeline's name) was found, not made again
    run = api.requests[-1].body
    assert run["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "p-1-v2"}
    assert run["runtime_config"]["pipeline_root"] == "gs://other/root"
    assert api.packages["p-1-v2"] == changed.read_bytes()
    out = capsys.readouterr().out
    assert "new version asos-recommender-" in out
    # the drift gate's acceptances are compiled in: a --pipeline-root at submit does not move them
    assert ("[submit] the drift gate's acceptances stay where they were compiled, "
            "gs://test-bucket/pipeline_root/drift_acceptances/asos-recommender (compiled in)") in out
    assert out.count("the drift gate's acceptances") == 1  # the first submission (compiled root): nothing


def test_multi_user_recurring_run_with_a_token_and_a_namespace(packages, capsys, monkeypatch):
    monkeypatch.setenv("RECSYS_KFP_TOKEN", "secret-token")
    with KfpApiStandIn(token="secret-token") as api:
        argv = ["--host", api.url, "--namespace", "team-a", "--package", packages["kfp"],
                "--cron", "0 3 * * 1", "--run-name", "weekly", "--max-concurrency", "2"]
        assert kfp_submit.main(argv) == 0
    assert "GET /healthz" not in api.calls()  # the namespace is given
    assert all(r.headers.get("authorization") == "Bearer secret-token" for r in api.requests)
    assert _one(api, "GET /experiments").query["namespace"] == "team-a"
    assert _one(api, "POST /experiments").body["namespace"] == "team-a"
    assert _one(api, "GET /pipelines").query["namespace"] == "team-a"
    assert _one(api, "POST /pipelines/upload").query["namespace"] == "team-a"
    assert "POST /runs" not in api.calls()  # a schedule starts nothing by itself
    recurring = _one(api, "POST /recurringruns").body
    assert recurring["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * 1"}}  # seconds first, as KFP reads it
    assert recurring["display_name"] == "weekly" and recurring["mode"] == "ENABLE"
    assert int(recurring["max_concurrency"]) == 2  # an int64: JSON text or number
    assert recurring["no_catchup"] is True
    assert recurring["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "p-1-v1"}
    assert recurring["runtime_config"]["pipeline_root"] == "gs://test-bucket/pipeline_root"
    out = capsys.readouterr().out
    assert "cron '0 3 * * 1' has 5 fields; KFP's has seconds first: sent as '0 0 3 * * 1'" in out
    assert f"{api.url}/#/recurringrun/details/recurringrun-1" in out


def test_wait_follows_the_run_to_its_end(packages, capsys):
    for state, code in [("SUCCEEDED", 0), ("FAILED", 1)]:
        with KfpApiStandIn(run_state=state) as api:
            assert kfp_submit.main(["--host", api.url, "--package", packages["kfp"], "--wait"]) == code
        assert api.calls()[-1] == "GET /runs/run-1"
        assert "[submit] run asos-recommender-20" in capsys.readouterr().out


def test_a_server_refusal_is_one_line_with_the_servers_words(packages, capsys):
    with KfpApiStandIn(token="right") as api:
        argv = ["--host", api.url, "--namespace", "team-a", "--token", "wrong", "--package", packages["kfp"]]
        assert kfp_submit.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: KFP at {api.url} answered 401"), err
    assert "Unauthenticated" in err
    with KfpApiStandIn() as api:
        assert kfp_submit.main(["--host", api.url, "--package", packages["kfp"]]) == 0
        api.fail_next = (500, {"code": 13, "message": "Internal error: database is down", "details": []})
        assert kfp_submit.main(["--host", api.url, "--namespace", "ns", "--package", packages["kfp"]]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "answered 500" in err and "database is down" in err, err


def test_an_unreachable_host_is_one_line(packages, capsys):
    with KfpApiStandIn() as api:
        url = api.url  # closed when the block ends
    assert kfp_submit.main(["--host", url, "--namespace", "ns", "--package", packages["kfp"]]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: cannot reach KFP at {url}"), err


@pytest.mark.parametrize("argv, named", [
    ([], "pass --host or set RECSYS_KFP_HOST"),
    (["--host", "localhost:8080"], "is not a URL"),
    (["--host", "{url}", "--token", "t"], "--namespace"),
    (["--host", "{url}", "--package", "/nonexistent/p.yaml"], "no KFP package at /nonexistent/p.yaml"),
    (["--host", "{url}", "--package", "{vertex}"], "is not a .yaml KFP package"),
    (["--host", "{url}", "--cron", "TZ=Europe/London 0 3 * * 1"], "no time zone"),
    (["--host", "{url}", "--cron", "0 3 * *"], "has 4 fields"),
    (["--host", "{url}", "--cron", "0 3 * * 1", "--wait"], "--wait"),
    (["--host", "{url}", "--pipeline-root", "minio://mlpipeline/v2/artifacts"], "cannot write s3:// or minio://"),
    (["--host", "{url}", "--pipeline-root", "/local/root"], "is not a gs:// URI"),
    (["--host", "{url}", "--max-concurrency", "0"], "--max-concurrency"),
])
def test_bad_settings_fail_in_one_line_before_any_call(packages, capsys, argv, named):
    with KfpApiStandIn() as api:
        argv = [a.format(url=api.url, vertex=packages["vertex"]) for a in argv]
        if "--package" not in argv:
            argv += ["--package", packages["kfp"]]
        assert kfp_submit.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert api.requests == []


def test_a_package_kfp_would_refuse_is_named_before_any_call(packages, capsys, tmp_path):
    """The Vertex pipeline's spec in YAML (its importer task's name, `schema_importer`, is not a
    name KFP accepts) or schema 2.0.0."""
    import yaml

    with open(packages["vertex"]) as f:
        vertex_spec = json.load(f)["pipelineSpec"]
    for name, spec, words in [
        ("vertex.yaml", dict(vertex_spec, schemaVersion="2.1.0"), "'schema_importer' is invalid"),
        ("old.yaml", vertex_spec, "KFP only supports schema version 2.1.0"),
    ]:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec))
        with KfpApiStandIn() as api:
            assert kfp_submit.main(["--host", api.url, "--package", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err and api.requests == [], err


def test_a_package_compiled_for_the_local_harness_is_refused_naming_every_local_path(packages, capsys,
                                                                                      tmp_path):
    """Found by exploratory testing: with --pipeline-root gs://... such a package reached the host, its
    data root, schema, serving directory and drift acceptances still paths of this machine."""
    from tests import pipeline_helpers as helpers

    config, _, _ = settings.parse_compile_args(
        ["--target", "kfp"] + helpers.harness_compile_flags(str(tmp_path), str(tmp_path / "data")), environ={})
    package, _ = kubeflow_v2_runner.compile_pipeline(config, str(tmp_path / "compiled"))
    local = [config.data_root, config.catalog_uri, f"{config.schema_dir}/schema.pbtxt", config.serving_model_dir,
             config.drift_acceptances_dir]
    for extra, root_named in [([], True), (["--pipeline-root", "gs://b/root"], False)]:
        with KfpApiStandIn() as api:
            assert kfp_submit.main(["--host", api.url, "--package", package] + extra) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and api.requests == [], err
        assert err.startswith(f"error: {package} was compiled with locations outside Cloud Storage"), err
        for location in local:
            assert f" {location} (" in err, (location, err)
        assert (f"pipeline root {config.pipeline_root} " in err) is root_named, err
        assert "pass --pipeline-root" not in err and "make compile-kfp" in err, err
    # a package compiled with gs:// locations goes on to the host
    with KfpApiStandIn() as api:
        assert kfp_submit.main(["--host", api.url, "--package", packages["kfp"], "--pipeline-root", "gs://b/root"]) == 0
    assert "POST /runs" in api.calls()
