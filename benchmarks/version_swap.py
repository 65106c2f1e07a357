"""What `make serve` does with a slow copy and a rollback, timed (not a test: it prints).

    make run && env/run-in-env python benchmarks/version_swap.py [--model-dir DIR] [--late-seconds 6]

Copies the served model of `make run` into a temporary base directory (the outputs are left
alone) and starts the server on it with its default flags (a poll every second, a failed load
retried every minute, five times). Then, as the issue did: a new version whose `saved_model.pb`
arrives first and the rest `--late-seconds` later, timed until it is served; and a rollback to
the first version (`runner/versions.py`, as `make rollback`), timed from its return until it is
served. Prints what the status API showed meanwhile, and `make history` at the end.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import httpx

from components import model_versions
from pipeline import configs
from runner import metadata, versions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=None, help="a SavedModel; default the served one of make run")
    p.add_argument("--late-seconds", type=float, default=6.0, help="how late the rest of the slow copy comes")
    args = p.parse_args(argv)
    served = args.model_dir or metadata.latest_pushed_model(configs.PipelineConfig().serving_model_dir)
    workdir = tempfile.mkdtemp(prefix="version-swap-")
    base = os.path.join(workdir, configs.MODEL_NAME)
    first = model_versions.publish(served, base)
    port = _free_port()
    log_path = os.path.join(workdir, "serve.log")
    server = subprocess.Popen([sys.executable, "-m", "serving", "--model_base_path", base, "--rest_api_port",
                               str(port), "--port", "0", "--log_file", log_path], cwd=configs.PROJECT_DIR,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def states():
        try:
            found = http.get(f"/v1/models/{configs.MODEL_NAME}").json().get("model_version_status", [])
        except (httpx.HTTPError, ValueError):
            return {}
        return {int(s["version"]): f"{s['state']} {s['status']['error_code']}" for s in found}

    def until_served(version: int, timeout: float = 600) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if states().get(version, "").startswith("AVAILABLE"):
                return time.monotonic() - start
            time.sleep(0.05)
        raise SystemExit(f"version {version} not served after {timeout} s: {states()}; log {log_path}")

    try:
        print(f"[swap] {served} as version {first.number} in {base}; server log {log_path}")
        print(f"  start-up: served after {until_served(first.number):.1f} s")
        slow = os.path.join(base, str(first.number + 1))
        os.makedirs(slow)
        start = time.monotonic()
        shutil.copy(os.path.join(first.path, model_versions.SAVED_MODEL), slow)
        time.sleep(args.late_seconds)
        print(f"  slow copy: status {args.late_seconds:g} s after saved_model.pb alone: {states()}")
        # the rest, as a copy by hand: no model card, and no fingerprint.pb, so that it stands for a
        # newer model (a rollback to the same model as the served one publishes nothing)
        shutil.copytree(first.path, slow, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(model_versions.ASSETS_EXTRA, model_versions.FINGERPRINT))
        until_served(first.number + 1)
        print(f"  slow copy: served {time.monotonic() - start:.1f} s after its first file")
        start = time.monotonic()
        rolled = versions.rollback(base, first.number, "benchmarks/version_swap.py", configs.MODEL_NAME)
        copied = time.monotonic() - start
        print(f"  rollback: version {rolled.number} published in {copied:.1f} s, served "
              f"{until_served(rolled.number):.1f} s later")
        print(versions.history_text(base, configs.MODEL_NAME))
    finally:
        server.terminate()
        server.wait(30)
        http.close()
    shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
