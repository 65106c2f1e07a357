"""`make compile` and `make serve` keep their consoles as `make run` does: TensorFlow's C++
start-up lines (oneDNN, CUDA, CPU features), TFX's log and library warnings (aiplatform's
FutureWarning) go to a log file; the console keeps the command's own lines."""

import os
import subprocess
import sys
import time

import kubeflow_v2_runner
from pipeline import configs

REQUIRED = ["--project", "p", "--region", "europe-west1", "--bucket", "b", "--image", "img:1"]
# what TensorFlow and absl write before anything else, whatever the machine
NOISE = ("I0000 ", "W0000 ", "absl::InitializeLog", "oneDNN", "cuda", "cpu_feature_guard", "Warning:")


def _noise(text):
    return [line for line in text.splitlines() if any(mark in line for mark in NOISE)]


def test_compile_prints_its_lines_only_and_logs_the_rest(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "kubeflow_v2_runner.py", *REQUIRED, "--output-dir", str(out)],
                          capture_output=True, text=True, cwd=configs.PROJECT_DIR, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines and all(line.startswith("[compile] ") for line in lines), lines
    log_path = lines[-1].split("[compile] full log ", 1)[1]
    assert os.path.dirname(log_path) == str(out / "logs") and lines[-2] == (
        f"[compile] wrote {out / configs.VERTEX_PIPELINE_JSON}")
    with open(log_path) as f:
        log = f.read()
    assert _noise(log), "TensorFlow's start-up lines and the warnings are in the log"


def test_a_bad_gate_bound_stops_the_compile_naming_the_log(tmp_path, capsys):
    code = kubeflow_v2_runner.main(REQUIRED + ["--output-dir", str(tmp_path), "--gate-bound", "precision=0.5"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: gate configuration: no such metric to gate on: ['precision']", err
    assert err[1].startswith(f"full log: {tmp_path / 'logs' / 'compile-'}") and len(err) == 2
    assert not (tmp_path / configs.VERTEX_PIPELINE_JSON).exists()


def _started_server(tmp_path, base_path, *flags):
    """A server started, its console until gRPC runs, stopped; (console text, log path)."""
    log_path = tmp_path / "logs" / "serve.log"
    started = tmp_path / "started.txt"
    with open(started, "w") as console:
        server = subprocess.Popen(
            [sys.executable, "-m", "serving", "--model_base_path", str(base_path),
             "--rest_api_port", "0", "--port", str(_free_port()), "--log_file", str(log_path), *flags],
            stdout=console, stderr=subprocess.STDOUT, cwd=configs.PROJECT_DIR)
    try:
        deadline = time.time() + 180
        while "Running gRPC ModelServer" not in started.read_text():
            assert server.poll() is None and time.time() < deadline, started.read_text()
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(30)
    return started.read_text(), log_path


def test_serve_with_a_log_file_keeps_the_servers_lines_on_the_console(tmp_path):
    shown, log_path = _started_server(tmp_path, tmp_path / "no-model")
    assert not _noise(shown), shown
    assert f"full log: {log_path}" in shown and "no servable version" in shown
    log = log_path.read_text()
    assert _noise(log) and "Running gRPC ModelServer" in log


def test_a_server_whose_newest_version_fails_names_it_rather_than_asking_for_a_push(tmp_path):
    """Found by exploratory testing: it said "no servable version ... (run 'make run' to push one)"."""
    (tmp_path / "models" / "5").mkdir(parents=True)
    (tmp_path / "models" / "5" / "saved_model.pb").write_bytes(b"garbage")
    shown, _ = _started_server(tmp_path, tmp_path / "models", "--max_num_load_retries", "0")
    assert "version 5 of recommender under" in shown and "could not be loaded" in shown, shown
    assert "make run" not in shown


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
