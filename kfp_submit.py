"""Submits the KFP package (kubeflow_v2_runner.py --target kfp) to open-source Kubeflow Pipelines 2
with `kfp.Client`: uploads it (a new pipeline, or a new version of the pipeline of that name),
then starts one run in an experiment, or creates a recurring run on a cron schedule.

    # KFP standalone (no auth): kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80
    env/run-in-env python kfp_submit.py --host http://localhost:8080
    # multi-user Kubeflow: the profile's namespace and a bearer token
    RECSYS_KFP_TOKEN=$(kubectl -n team-a create token default-editor) env/run-in-env python kfp_submit.py \\
        --host https://kubeflow.example.com/pipeline --namespace team-a --cron "0 3 * * 1"

It prints the run's (or recurring run's) URL. Every setting: --help; docs/kubeflow.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import io
import json
import os
import sys
import warnings
from typing import Any, Callable, List, Mapping, Optional

from cli import flags
from cli.flags import Flag
from kubeflow_v2 import kfp_backend, settings

RUN_TIMEOUT_S = 24 * 3600  # --wait gives up after a day


def _host(text: str) -> str:
    value = text.strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise flags.BadValue(f"{text!r} is not a URL: give http://HOST:PORT (a port-forward) or "
                             "https://KUBEFLOW/pipeline")
    return value


def _name(text: str) -> str:
    value = text.strip()
    if not value:
        raise flags.BadValue("an empty name")
    return value


HOST = Flag("--host", "the KFP API: http://localhost:8080 after `kubectl -n kubeflow port-forward "
            "svc/ml-pipeline-ui 8080:80` (standalone), or https://KUBEFLOW/pipeline (multi-user)",
            env="RECSYS_KFP_HOST", required=True, parse=_host)
TOKEN = Flag("--token", "bearer token for multi-user Kubeflow, e.g. `kubectl -n PROFILE create token "
             "default-editor` (better in the variable: a flag shows in the process list)", env="RECSYS_KFP_TOKEN")
NAMESPACE = Flag("--namespace", "the profile namespace of a multi-user Kubeflow (its pipeline, experiment and "
                 "runs live there); none on KFP standalone", env="RECSYS_KFP_NAMESPACE", parse=_name)
PACKAGE = Flag("--package", "the KFP package (kubeflow_v2_runner.py --target kfp)", env="RECSYS_KFP_PACKAGE",
               default=settings.DEFAULT_KFP_PACKAGE)
PIPELINE_ROOT = dataclasses.replace(
    settings.PIPELINE_ROOT, help="gs:// root of the run's artifacts; default the one compiled into the package")
PIPELINE_DISPLAY_NAME = Flag("--pipeline-name", "the pipeline's name in KFP; default the package's "
                             "(uploads of the same name are its versions)", env="RECSYS_KFP_PIPELINE_NAME",
                             parse=_name)
VERSION = Flag("--version-name", "name of the uploaded version; default PIPELINE-<UTC time>-<package hash>",
               env="RECSYS_KFP_VERSION_NAME", parse=_name)
EXPERIMENT = Flag("--experiment", "experiment of the run (created if missing); default the pipeline's name",
                  env="RECSYS_KFP_EXPERIMENT", parse=_name)
RUN_NAME = Flag("--run-name", "name of the run (or recurring run); default PIPELINE-<UTC time>",
                env="RECSYS_KFP_RUN_NAME", parse=_name)
SERVICE_ACCOUNT = Flag("--service-account", "Kubernetes service account the run's pods use; default the "
                       "install's (pipeline-runner standalone, default-editor multi-user)",
                       env="RECSYS_KFP_SERVICE_ACCOUNT", parse=_name)
CRON = Flag("--cron", "create a recurring run on this schedule instead of one run: KFP's 6 fields (second first) "
            "or a crontab's 5 (converted, said so), UTC unless the install says otherwise",
            env="RECSYS_KFP_CRON")
MAX_CONCURRENCY = Flag("--max-concurrency", "runs of the recurring run allowed at once",
                       env="RECSYS_KFP_MAX_CONCURRENCY", parse=flags.integer(1, 10, what="a number of runs (1-10)"),
                       default=1)
CATCHUP = Flag("--catchup", "a recurring run that fell behind runs every missed time (default: only the latest)",
               env="RECSYS_KFP_CATCHUP", kind=flags.TOGGLE, parse=flags.boolean, default=False)
UI_HOST = Flag("--ui-host", "where the printed URLs point; default --host", env="RECSYS_KFP_UI_HOST", parse=_host)
WAIT = Flag("--wait", "block until the run ends; exit 0 only if it succeeded (not with --cron)", kind=flags.SWITCH)

SETTINGS = (HOST, TOKEN, NAMESPACE, PACKAGE, PIPELINE_ROOT, PIPELINE_DISPLAY_NAME, VERSION, EXPERIMENT, RUN_NAME,
            SERVICE_ACCOUNT, CRON, MAX_CONCURRENCY, CATCHUP, UI_HOST)


@dataclasses.dataclass
class SubmitOptions:
    host: str
    package: str
    pipeline_name: str
    version_name: str
    experiment: str
    run_name: str
    pipeline_root: str
    token: Optional[str] = None
    namespace: Optional[str] = None
    service_account: Optional[str] = None
    cron: Optional[str] = None
    max_concurrency: int = 1
    catchup: bool = False
    ui_host: Optional[str] = None
    wait: bool = False
    notes: List[str] = dataclasses.field(default_factory=list)  # said before anything is sent


def parse_args(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None,
               now: Optional[datetime.datetime] = None) -> SubmitOptions:
    """Flags > RECSYS_* variables > defaults, every check that needs no server. Raises
    settings.SettingError (one line)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add(p, SETTINGS + (WAIT,))
    args = p.parse_args(argv)
    values = flags.resolve(args, SETTINGS, environ)
    if values["token"] and not values["namespace"]:
        raise settings.SettingError(f"{TOKEN.name} (multi-user Kubeflow) needs {NAMESPACE.name} or "
                                    f"{NAMESPACE.env}: the profile namespace the token may use")
    spec = read_package(values["package"])
    notes = []
    if values["cron"]:
        settings.refuse_wait_with_schedule(args.wait, values["cron"], WAIT, CRON)
        try:
            values["cron"], note = kfp_backend.cron(values["cron"])
        except ValueError as e:
            raise settings.SettingError(f"bad value for {CRON.describe()}: {e}") from None
        notes += [note] if note else []
    root = settings.submit_root(values["pipeline_root"], spec.get("defaultPipelineRoot") or "", values["package"],
                                "make compile-kfp", spec)  # every location compiled in: in a bucket
    moved = settings.acceptances_note(spec, spec.get("defaultPipelineRoot") or "", values["pipeline_root"])
    notes += [moved] if moved else []
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    name = values["pipeline_name"] or spec["pipelineInfo"]["name"]
    with open(values["package"], "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:8]
    return SubmitOptions(
        host=values["host"], package=values["package"], pipeline_name=name,
        version_name=values["version_name"] or f"{name}-{stamp}-{digest}",
        experiment=values["experiment"] or name, run_name=values["run_name"] or f"{name}-{stamp}",
        pipeline_root=root, token=values["token"], namespace=values["namespace"],
        service_account=values["service_account"], cron=values["cron"], max_concurrency=values["max_concurrency"],
        catchup=values["catchup"], ui_host=values["ui_host"], wait=bool(args.wait), notes=notes)


def read_package(path: str) -> Mapping[str, Any]:
    """The package's PipelineSpec if KFP would take it (kfp_backend); else a SettingError."""
    if not os.path.isfile(path):
        raise settings.SettingError(f"no KFP package at {path}: run `make compile-kfp` first, or pass "
                                    f"{PACKAGE.name} / set {PACKAGE.env}")
    if not path.endswith((".yaml", ".yml")):
        raise settings.SettingError(f"{path} is not a .yaml KFP package (a Vertex JSON? compile with --target kfp)")
    try:
        with open(path) as f:
            spec = kfp_backend.load_package(f.read())
        kfp_backend.check_schema_version(spec)
        kfp_backend.check_compiles(spec)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as e:  # BackendError is a ValueError
        problem = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise settings.SettingError(f"{path} is not a KFP package KFP would run ({problem}): compile it again "
                                    "(make compile-kfp)") from None
    return spec


def connect(options: SubmitOptions):
    """A kfp.Client for the host; nothing is sent before the first call (with a namespace) or
    the healthz check (without one)."""
    import kfp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "This client only works with KFP v2.0.0-beta.2 and later"
        kwargs = {"host": options.host, "existing_token": options.token, "ui_host": options.ui_host or options.host}
        if options.namespace:
            kwargs["namespace"] = options.namespace
        return kfp.Client(**kwargs)


def _pipeline_id(client, options: SubmitOptions) -> Optional[str]:
    predicate = {"operation": 1, "key": "display_name", "stringValue": options.pipeline_name}  # 1 = EQUALS
    found = client.list_pipelines(filter=json.dumps({"predicates": [predicate]}), namespace=options.namespace)
    pipelines = found.pipelines or []
    if len(pipelines) > 1:
        raise RuntimeError(f"{len(pipelines)} pipelines are named {options.pipeline_name!r}: "
                           f"pass {PIPELINE_DISPLAY_NAME.name} with another name")
    return pipelines[0].pipeline_id if pipelines else None


def submit(client, options: SubmitOptions, say: Callable[[str], None] = print) -> Any:
    """Uploads the package, then one run (returned) or a recurring run (returned)."""
    ui = (options.ui_host or options.host).rstrip("/")
    with contextlib.redirect_stdout(io.StringIO()):  # the client prints its own links; ours follow
        experiment = client.create_experiment(options.experiment, namespace=options.namespace)
        pipeline_id = _pipeline_id(client, options)
        if pipeline_id is None:
            pipeline = client.upload_pipeline(options.package, pipeline_name=options.pipeline_name,
                                              description=f"{options.pipeline_name} (kfp_submit.py)",
                                              namespace=options.namespace)
            pipeline_id = pipeline.pipeline_id
            versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
            version_id = versions.pipeline_versions[0].pipeline_version_id
            what = "new pipeline"
        else:
            version = client.upload_pipeline_version(options.package, options.version_name,
                                                     pipeline_id=pipeline_id)
            version_id = version.pipeline_version_id
            what = f"new version {options.version_name} of"
    say(f"[submit] {what} {options.pipeline_name}: {ui}/#/pipelines/details/{pipeline_id}/version/{version_id}")
    common = dict(pipeline_id=pipeline_id, version_id=version_id, pipeline_root=options.pipeline_root,
                  service_account=options.service_account)
    with contextlib.redirect_stdout(io.StringIO()):
        if options.cron:
            result = client.create_recurring_run(
                experiment.experiment_id, options.run_name, cron_expression=options.cron,
                max_concurrency=options.max_concurrency, no_catchup=not options.catchup, enabled=True, **common)
        else:
            result = client.run_pipeline(experiment.experiment_id, options.run_name, **common)
    if options.cron:
        say(f"[submit] recurring run {options.run_name} ({options.cron}) in experiment {options.experiment}: "
            f"{ui}/#/recurringrun/details/{result.recurring_run_id}")
    else:
        say(f"[submit] run {options.run_name} in experiment {options.experiment}: {ui}/#/runs/details/{result.run_id}")
    return result


def _server_message(e) -> str:
    """The server's own words from an ApiException (grpc-gateway or upload error bodies)."""
    try:
        body = json.loads(e.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") or body.get("error_message") or (e.body or "").strip() or e.reason
    return " ".join(str(message).split())[:500]


def main(argv: Optional[List[str]] = None) -> int:
    try:
        options = parse_args(argv)
    except settings.SettingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in options.notes:
        print(f"[submit] {note}", flush=True)
    import kfp_server_api
    import urllib3

    try:
        client = connect(options)
        result = submit(client, options)
        if options.wait:
            run = client.wait_for_run_completion(result.run_id, timeout=RUN_TIMEOUT_S)
            print(f"[submit] run {options.run_name}: {run.state}", flush=True)
            return 0 if str(run.state).upper() == "SUCCEEDED" else 1
    except kfp_server_api.ApiException as e:
        print(f"error: KFP at {options.host} answered {e.status} {e.reason}: {_server_message(e)}", file=sys.stderr)
        return 1
    except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as e:
        print(f"error: cannot reach KFP at {options.host}: {type(e).__name__}: {str(e).splitlines()[0][:300]}",
              file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
