"""The server's start-up: an address it cannot listen on is said in one line (found by
exploratory testing: a port in use or a bad --bind_address ended in a traceback or uvicorn's log)."""

import socket
import subprocess
import sys

import pytest

from serving import server


def test_an_address_it_cannot_listen_on_is_named():
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert server._cannot_listen("127.0.0.1", port) == "Address already in use"
    assert server._cannot_listen("127.0.0.1", port) is None  # free again
    assert server._cannot_listen("999.1.1.1", port)  # no such address


@pytest.mark.parametrize("what, flag", [("REST", "--rest_api_port"), ("gRPC", "--port")])
def test_a_port_in_use_stops_start_up_in_one_line(tmp_path, what, flag):
    """`python -m serving` as make serve runs it (a process of its own: it sets up logging). For
    gRPC, found by exploratory testing: gRPC's C++ core printed its own error line before ours."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--rest_api_port": "0", "--port": "0", flag: str(port)}
        done = subprocess.run([sys.executable, "-m", "serving", "--model_base_path", str(tmp_path),
                               *[arg for item in ports.items() for arg in item]],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"serving: cannot listen on 127.0.0.1:{port} for {what} ({flag}, --bind_address): Address already in use")
    assert "Traceback" not in done.stderr and "add_port" not in done.stderr and "Failed to bind" not in done.stderr


def test_one_port_for_grpc_and_rest_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "serving", "--model_base_path", str(tmp_path),
                           "--rest_api_port", "8599", "--port", "8599"], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (
        2, "serving: --port and --rest_api_port are both 8599: gRPC and REST need a port each\n")


@pytest.mark.parametrize("extra, message", [
    ("model_version_policy { specific { versions: 3 } }",
     "this server serves the latest version only (model_version_policy)"),
    ("model_version_policy { latest { num_versions: 2 } }",
     "this server serves the latest version only (model_version_policy)"),
    ('version_labels { key: "stable" value: 3 }', "version_labels are not supported by this server"),
    ('model_platform: "onnx"', "model_platform 'onnx': this server serves tensorflow only"),
])
def test_a_model_config_file_asking_what_this_server_does_not_do_is_refused(tmp_path, extra, message):
    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "recommender" base_path: "/models" ' + extra + " } }")
    with pytest.raises(ValueError) as e:
        server.read_model_config(str(path))
    assert str(e.value) == f"{path}: {message}"
    path.write_text('model_config_list { config { name: "recommender" base_path: "/models" } }')
    assert server.read_model_config(str(path)) == ("recommender", "/models", None)


def test_request_logs_go_beside_the_models_of_an_output_directory(tmp_path):
    """Found by exploratory testing: a run made with --output-dir DIR and served from there logged
    its requests into outputs/ (the clone's), where neither `make monitor ARGS="--output-dir DIR"`
    nor DIR's run report looks."""
    from pipeline import configs

    def prefix(*argv):
        return server._model_and_logging(server.parser().parse_args(["--request_log_sampling_rate", "1", *argv]),
                                         {})[2].log_collector_config.filename_prefix

    base = tmp_path / "run" / "serving_model" / "recommender"
    assert prefix("--model_base_path", str(base)) == str(tmp_path / "run" / "request_logs" / "recommender")
    assert prefix("--model_base_path", str(base), "--model_name", "shop") == str(
        tmp_path / "run" / "request_logs" / "shop")
    assert prefix() == configs.PipelineConfig().request_log_prefix  # the default output directory's
    # a base path of another shape, or in a bucket: the default output directory's
    default = configs.PipelineConfig().request_log_prefix
    assert prefix("--model_base_path", str(tmp_path / "models")) == default
    assert prefix("--model_base_path", "gs://b/serving_model/recommender") == default
    named = str(tmp_path / "x")
    assert prefix("--model_base_path", str(base), "--request_log_file_prefix", named) == named
