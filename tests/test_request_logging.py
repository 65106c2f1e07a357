"""Request logging end to end: `python -m serving` logging at sampling rate 1.0 (REST and gRPC,
files rotated small), then `python -m serving.monitor` (make monitor) counting every request,
row, cold start and latency exactly; rate 0 logs nothing; TF Serving's model config file with a
`logging_config` works as the flags do, and a config reload without it stops the logging."""

import json
import os
import subprocess
import sys

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from models import testing
from pipeline import configs
from serving import monitor, request_log
from tests.test_serving import NAME, Server, free_port, push

pytestmark = pytest.mark.e2e
VERSION = 3
UNKNOWN_USER = b"nobody-at-all"


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, curated_schema):
    saved_model = testing.build(str(tmp_path_factory.mktemp("model")), curated_schema).export_dir
    base = str(tmp_path_factory.mktemp("served"))
    push(saved_model, base, VERSION)
    return base


def _grpc_predict(server, signature, key, values, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = NAME
    request.model_spec.signature_name = signature
    request.inputs[key].CopyFrom(tf.make_tensor_proto(values))
    request.output_filter.extend(output_filter)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


def _monitor(tmp_path, logs, base, *extra):
    """`python -m serving.monitor` as make monitor runs it; (exit code, report, console)."""
    out = tmp_path / "monitoring"
    done = subprocess.run([sys.executable, "-m", "serving.monitor", "--request-logs", logs, "--model-base-path",
                           base, "--report-dir", str(out), *extra], cwd=configs.PROJECT_DIR, capture_output=True,
                          text=True)
    if not (out / monitor.LATEST).exists():
        return done.returncode, None, done.stdout + done.stderr
    latest = json.loads((out / monitor.LATEST).read_text())
    with open(latest["json"]) as f:
        return done.returncode, json.load(f), done.stdout


def test_every_request_logged_at_rate_1_is_counted_exactly(base_path, tmp_path):
    prefix = str(tmp_path / "logs" / NAME)
    server = Server(base_path, str(tmp_path), "--request_log_sampling_rate", "1.0", "--request_log_file_prefix",
                    prefix, "--request_log_max_file_mb", "0.004").wait_until()
    users = [u.encode() for u in testing.USERS]
    products = testing.PRODUCTS
    try:
        for i in range(12):  # REST: 12 user requests of 1-3 rows, the third row unknown
            rows = [users[i].decode(), users[i + 1].decode(), UNKNOWN_USER.decode()][:1 + i % 3]
            assert server.predict({"instances": rows}).status_code == 200
        for i in range(9):  # REST: 9 item requests, one in three for an unknown product
            item = testing.UNKNOWN_PRODUCT if i % 3 == 0 else products[i]
            assert server.predict({"signature_name": "call_item_item", "instances": [item]}).status_code == 200
        for i in range(7):  # gRPC: 7 user requests of 2 rows (one unknown), 5 item requests of 2 rows
            _grpc_predict(server, "serving_default", "user_id", np.array([users[i], UNKNOWN_USER], object))
        for i in range(5):
            _grpc_predict(server, "call_item_item", "item", np.array([products[i], products[i + 1]], np.int64))
        # the client drops known_user from the answer: its rows' cold start is not said
        _grpc_predict(server, "serving_default", "user_id", np.array([users[0]], object), ["products"])
        # failures are not logged (TF Serving's logger takes a request and its response)
        assert server.predict({"signature_name": "nope", "instances": [1]}).status_code == 400
        assert server.http.get(f"/v1/models/{NAME}").status_code == 200  # not a predict call
    finally:
        server.stop()
    assert "request log of recommender: 34 records" in server.log_text()

    files = request_log.log_files(prefix)
    assert len(files) > 1  # rotated at 4 KB
    records = list(request_log.read_logs(files))
    assert len(records) == 34 and all(r.latency_us is not None for r in records)
    meta = records[0].log.log_metadata
    assert (meta.model_spec.name, meta.model_spec.version.value, meta.model_spec.signature_name) == (
        NAME, VERSION, "serving_default")
    assert meta.sampling_config.sampling_rate == 1.0 and list(meta.saved_model_tags) == ["serve"]

    # a few dozen rows: judged with a smaller minimum than the default 100
    code, report, console = _monitor(tmp_path, prefix, base_path, "--threshold", "min_rows=10")
    figures = report["figures"]
    user, item = figures["signatures"]["serving_default"], figures["signatures"]["call_item_item"]
    assert figures["requests"] == 34
    assert (user["requests"], item["requests"]) == (12 + 7 + 1, 9 + 5)
    assert (user["rows"], item["rows"]) == (sum(1 + i % 3 for i in range(12)) + 14 + 1, 9 + 10)
    assert user["apis"] == {"rest": 12, "grpc": 8} and item["apis"] == {"rest": 9, "grpc": 5}
    assert user["versions"] == {str(VERSION): 20} and user["latency_ms"]["measured"] == 20
    assert figures["cold_starts"]["users"] == {"known": sum(min(1 + i % 3, 2) for i in range(12)) + 7,
                                               "unknown": 4 + 7, "not_said": 1}
    assert figures["cold_starts"]["products"] == {"known": 6 + 10, "unknown": 3, "not_said": 0}
    assert report["popularity"]["requested"] == 19 and report["popularity"]["asked_not_in_training"] == 3
    # 11 of 38 users and 3 of 19 products unknown: over the default 20% for users, not for products
    crossed = {c["name"] for c in report["checks"] if c["crossed"]}
    assert crossed == {"unknown_users_share"} and code == monitor.EXIT_SIGNAL
    assert "RETRAIN SIGNAL: unknown_users_share" in console


def test_sampling_rate_0_logs_nothing(base_path, tmp_path):
    prefix = str(tmp_path / "logs" / NAME)
    server = Server(base_path, str(tmp_path), "--request_log_sampling_rate", "0",
                    "--request_log_file_prefix", prefix).wait_until()
    try:
        for _ in range(5):
            assert server.alive()
    finally:
        server.stop()
    assert request_log.log_files(prefix) == [] and not os.path.exists(os.path.dirname(prefix))
    code, report, console = _monitor(tmp_path, prefix, base_path)
    assert code == monitor.EXIT_ERROR and report is None and "no request logs at" in console


def test_a_model_config_file_sets_the_logging_and_a_reload_stops_it(base_path, tmp_path):
    prefix = str(tmp_path / "cfg" / NAME)
    config = tmp_path / "models.config"
    model = (f'name: "{NAME}" base_path: "{base_path}" model_platform: "tensorflow" logging_config {{ '
             f'log_collector_config {{ type: "tfrecord" filename_prefix: "{prefix}" }} '
             'sampling_config { sampling_rate: 1.0 } }')
    config.write_text(f"model_config_list {{ config {{ {model} }} }}\n")
    server = Server("/nonexistent", str(tmp_path), "--model_config_file", str(config)).wait_until()
    try:
        for _ in range(3):
            assert server.alive()
        reload = model_management_pb2.ReloadConfigRequest()
        entry = reload.config.model_config_list.config.add(name=NAME, base_path=base_path)
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            answer = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(reload, timeout=30)
        assert answer.status.error_code == 0 and not entry.HasField("logging_config")
        for _ in range(4):
            assert server.alive()  # no longer logged
    finally:
        server.stop()
    records = list(request_log.read_logs(request_log.log_files(prefix)))
    assert len(records) == 3
    assert {r.log.log_metadata.model_spec.signature_name for r in records} == {"call_item_item"}


def test_an_unknown_log_collector_is_refused_at_start_up(base_path, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "{NAME}" base_path: "{base_path}" logging_config {{ '
                      'log_collector_config { type: "bigquery" filename_prefix: "x" } '
                      'sampling_config { sampling_rate: 1.0 } } } }\n')
    done = subprocess.run([sys.executable, "-m", "serving", "--model_config_file", str(config), "--port",
                           str(free_port()), "--rest_api_port", str(free_port())], cwd=configs.PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Cannot find LogCollector::Factory for type: bigquery" in done.stderr
