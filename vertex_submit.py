"""Submits the compiled pipeline JSON (kubeflow_v2_runner.py) to Vertex AI Pipelines, once or on a
schedule, with `google.cloud.aiplatform.PipelineJob`.

    env/run-in-env python vertex_submit.py --project P --region europe-west1 \\
        --service-account pipelines@P.iam.gserviceaccount.com --label team=recsys
    env/run-in-env python vertex_submit.py ... --schedule-cron "0 3 * * 1"   # Mondays 03:00 UTC

Credentials: Application Default Credentials (`gcloud auth application-default login`, or
GOOGLE_APPLICATION_CREDENTIALS, or the VM's service account). Every setting: --help.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from typing import Dict, List, Mapping, Optional

from cli import flags
from cli.flags import Flag
from kubeflow_v2 import settings

PIPELINE_JSON = Flag("--pipeline-json", "the compiled pipeline (kubeflow_v2_runner.py output)",
                     env="RECSYS_PIPELINE_JSON", default=settings.DEFAULT_PIPELINE_JSON)
PIPELINE_ROOT = dataclasses.replace(
    settings.PIPELINE_ROOT, help="override the pipeline root compiled into the JSON (gs://...)")
CACHE = Flag("--cache", "override the caching compiled into the JSON", env="RECSYS_ENABLE_CACHE",
             dest="enable_caching", kind=flags.TOGGLE, parse=flags.boolean)
NETWORK = Flag("--network", "VPC network to peer with: projects/NUMBER/global/networks/NAME",
               env="RECSYS_VERTEX_NETWORK")
JOB_ID = Flag("--job-id", "job id (default: pipeline name + timestamp)", env="RECSYS_VERTEX_JOB_ID")
SCHEDULE_CRON = Flag("--schedule-cron", "create a schedule with this cron expression (UTC; 'TZ=Europe/London "
                     "0 3 * * *' for another zone) instead of one run", env="RECSYS_VERTEX_SCHEDULE_CRON")
SCHEDULE_NAME = Flag("--schedule-name", "display name of the schedule (default: PIPELINE-schedule)",
                     env="RECSYS_VERTEX_SCHEDULE_NAME")
MAX_CONCURRENT = Flag("--max-concurrent-runs", "scheduled runs allowed at once",
                      env="RECSYS_VERTEX_MAX_CONCURRENT_RUNS", parse=flags.positive_int, default=1)
WAIT = Flag("--wait", "block until the run ends (not with a schedule)", kind=flags.SWITCH)

SETTINGS = (settings.PROJECT, settings.REGION, PIPELINE_JSON, PIPELINE_ROOT, settings.SERVICE_ACCOUNT,
            settings.LABELS, CACHE, NETWORK, JOB_ID, SCHEDULE_CRON, SCHEDULE_NAME, MAX_CONCURRENT)

# Vertex AI label rules: lowercase letters, digits, '_' and '-'; keys start with a letter.
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


@dataclasses.dataclass
class SubmitOptions:
    project: str
    region: str
    pipeline_json: str
    pipeline_root: Optional[str] = None
    service_account: Optional[str] = None
    labels: Dict[str, str] = dataclasses.field(default_factory=dict)
    enable_caching: Optional[bool] = None
    network: Optional[str] = None
    job_id: Optional[str] = None
    schedule_cron: Optional[str] = None
    schedule_name: Optional[str] = None
    max_concurrent_runs: int = 1
    wait: bool = False
    spec: Dict = dataclasses.field(default_factory=dict, repr=False)  # the compiled JSON, read once


def parse_args(argv: Optional[List[str]] = None,
               environ: Optional[Mapping[str, str]] = None) -> SubmitOptions:
    """Flags > RECSYS_* variables > defaults. Raises settings.SettingError (one line)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add(p, SETTINGS + (WAIT,))
    args = p.parse_args(argv)
    values = flags.resolve(args, SETTINGS + (WAIT,), environ)
    options = SubmitOptions(**values)
    if not os.path.isfile(options.pipeline_json):
        raise settings.SettingError(
            f"no pipeline JSON at {options.pipeline_json}: run kubeflow_v2_runner.py first, or pass "
            f"{PIPELINE_JSON.name} / set {PIPELINE_JSON.env}")
    try:  # before any Google Cloud call: a truncated or foreign file would end in a traceback
        with open(options.pipeline_json) as f:
            options.spec = json.load(f)
        name = pipeline_name(options.spec)
        has_dag = isinstance(options.spec["pipelineSpec"].get("root"), dict)
        problem = "" if name and has_dag else " (no pipeline root DAG)"
    except (ValueError, AttributeError, KeyError, TypeError) as e:  # JSONDecodeError, UnicodeDecodeError, ...
        name, problem = None, f" ({type(e).__name__}: {e})"
    if not name or problem:
        hint = ("; a KFP package (YAML) goes to kfp_submit.py" if options.pipeline_json.endswith((".yaml", ".yml"))
                else "")
        raise settings.SettingError(
            f"{options.pipeline_json} is not a pipeline JSON compiled by kubeflow_v2_runner.py{problem}: "
            f"compile it again (make compile){hint}")
    for key, value in options.labels.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise settings.SettingError(
                f"label {key}={value} breaks Vertex AI's rules (lowercase letters, digits, _ and -; "
                "keys start with a letter; at most 63 characters)")
    settings.submit_root(options.pipeline_root, compiled_root(options.spec), options.pipeline_json, "make compile",
                         options.spec["pipelineSpec"])  # every location compiled in: in a bucket
    settings.refuse_wait_with_schedule(options.wait, options.schedule_cron, WAIT, SCHEDULE_CRON)
    return options


def pipeline_name(spec: Mapping) -> str:
    """The pipeline's name in the compiled JSON (`spec`, as read)."""
    return spec["pipelineSpec"]["pipelineInfo"]["name"]


def compiled_root(spec: Mapping) -> str:
    return (spec.get("runtimeConfig") or {}).get("gcsOutputDirectory") or ""


def notes(options: SubmitOptions) -> List[str]:
    """What to say before anything is sent: what a --pipeline-root does not move."""
    note = settings.acceptances_note(options.spec.get("pipelineSpec") or {}, compiled_root(options.spec),
                                     options.pipeline_root)
    return [note] if note else []


def build_job(options: SubmitOptions, credentials=None):
    """The PipelineJob for the compiled JSON (nothing is sent yet). credentials=None: ADC."""
    from google.cloud import aiplatform

    name = pipeline_name(options.spec)
    return aiplatform.PipelineJob(
        display_name=name,
        template_path=options.pipeline_json,
        job_id=options.job_id,
        pipeline_root=options.pipeline_root,
        enable_caching=options.enable_caching,
        labels=options.labels or None,
        project=options.project,
        location=options.region,
        credentials=credentials,
    )


def submit(job, options: SubmitOptions):
    """Sends the job to Vertex AI: one run, or a schedule when a cron expression is set."""
    if options.schedule_cron:
        return job.create_schedule(
            cron=options.schedule_cron,
            # not job.display_name: a job not yet created has none to read (found by exploratory testing)
            display_name=options.schedule_name or f"{pipeline_name(options.spec)}-schedule",
            max_concurrent_run_count=options.max_concurrent_runs,
            service_account=options.service_account,
            network=options.network,
        )
    job.submit(service_account=options.service_account, network=options.network)
    if options.wait:
        job.wait()
    return job


def main(argv: Optional[List[str]] = None, credentials=None) -> int:
    try:
        options = parse_args(argv)
    except settings.SettingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in notes(options):
        print(f"[submit] {note}", flush=True)
    import google.api_core.exceptions
    import google.auth.exceptions

    try:
        job = build_job(options, credentials)
        result = submit(job, options)
    except google.auth.exceptions.DefaultCredentialsError:
        print("error: no Google Cloud credentials: run 'gcloud auth application-default login' or set "
              "GOOGLE_APPLICATION_CREDENTIALS", file=sys.stderr)
        return 1
    except ValueError as e:  # aiplatform's own checks: an unsupported region, a bad job id, ...
        print(f"error: Vertex AI refuses the settings: {e}", file=sys.stderr)
        return 2
    except (google.api_core.exceptions.GoogleAPIError, google.auth.exceptions.GoogleAuthError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: Vertex AI did not take the {'schedule' if options.schedule_cron else 'run'}: "
              f"{type(e).__name__}: {first}", file=sys.stderr)
        return 1
    what = "schedule" if options.schedule_cron else "pipeline job"
    print(f"[submit] {what} {result.resource_name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
