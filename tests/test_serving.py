"""The model server end to end: `python -m serving` started on free loopback ports against an
exported recommender, queried over REST (httpx) and gRPC (the official tensorflow-serving-api
stubs), compared with the SavedModel called in process and with TF Serving's documented
request/response examples (tensorflow_serving/g3doc/api_rest.md)."""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     inference_pb2, model_management_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)

from models import testing
from models.examples import purchase_example
from pipeline import configs
from serving.json_format import format_float

pytestmark = pytest.mark.e2e
NAME = configs.MODEL_NAME
MAX_BATCH = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push(saved_model: str, base: str, version: int) -> str:
    """Copies a SavedModel as TFX's Pusher does: everything, then saved_model.pb last."""
    target = os.path.join(base, str(version))
    shutil.copytree(saved_model, target, ignore=shutil.ignore_patterns("saved_model.pb"))
    shutil.copy(os.path.join(saved_model, "saved_model.pb"), os.path.join(target, "saved_model.pb"))
    return target


class Server:
    """`python -m serving` in a subprocess, its log in a file."""

    def __init__(self, base_path, workdir, *flags):
        self.base_path = base_path
        self.rest_port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self.log_path = os.path.join(workdir, f"server-{self.rest_port}.log")
        args = [sys.executable, "-m", "serving", "--model_base_path", base_path, "--rest_api_port",
                str(self.rest_port), "--port", str(self.grpc_port), "--file_system_poll_wait_seconds", "0.2", *flags]
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=configs.PROJECT_DIR)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def wait_until(self, path="/v1/models/" + NAME, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.process.poll() is None, f"server exited:\n{self.log_text()}"
            try:
                if self.http.get(path).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log_text()}")

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def predict(self, body, path=f"/v1/models/{NAME}:predict"):
        return self.http.post(path, content=body if isinstance(body, (str, bytes)) else json.dumps(body))

    def alive(self):
        """The server still answers a good request after whatever came before."""
        response = self.predict({"signature_name": "call_item_item", "instances": [testing.PRODUCTS[0]]})
        return response.status_code == 200 and response.json()["predictions"][0]["known_item"] is True

    def stop(self):
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory, curated_schema):
    return testing.build(str(tmp_path_factory.mktemp("serving_model")), curated_schema).export_dir


@pytest.fixture(scope="session")
def reference(saved_model):
    """The same model called in process, as plain TensorFlow (what the server must agree with)."""
    return tf.saved_model.load(saved_model)


@pytest.fixture(scope="module")
def server(saved_model, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("served"))
    base = os.path.join(workdir, "models")
    push(saved_model, base, 1)
    running = Server(base, workdir, "--max_batch_size", str(MAX_BATCH)).wait_until()
    yield running
    running.stop()


def grpc_stubs(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return (prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel), channel)


# --- REST: predict ------------------------------------------------------------------------------
def test_the_workshops_request_as_written(server, reference):
    response = server.predict('{"signature_name":"call_item_item","inputs":{"item":[123123]}}')
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    outputs = response.json()["outputs"]
    assert set(outputs) == {"known_item", "products", "scores"}
    assert outputs["known_item"] == [False]
    assert len(outputs["products"]) == 1 and len(outputs["products"][0]) == testing.TOP_K
    popular = reference.signatures["serving_default"](user_id=tf.constant([b"nobody"]))
    assert outputs["products"][0] == popular["products"].numpy()[0].tolist()


@pytest.mark.parametrize("batch", [1, 7])
def test_item_item_row_format_known_and_unknown(server, reference, batch):
    items = ([testing.UNKNOWN_PRODUCT] + testing.PRODUCTS)[:batch]
    response = server.predict({"signature_name": "call_item_item", "instances": items})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    expected = reference.signatures["call_item_item"](item=tf.constant(items, tf.int64))
    assert len(predictions) == batch
    for i, row in enumerate(predictions):
        assert set(row) == {"known_item", "products", "scores"}
        assert row["known_item"] == (items[i] != testing.UNKNOWN_PRODUCT)
        assert row["products"] == expected["products"].numpy()[i].tolist()
        assert np.array(row["scores"], np.float32).tolist() == expected["scores"].numpy()[i].tolist()


@pytest.mark.parametrize("batch", [1, 9])
def test_user_recommendations_both_formats(server, reference, batch):
    users = (["nobody"] + testing.USERS)[:batch]
    expected = reference.signatures["serving_default"](user_id=tf.constant([u.encode() for u in users]))
    row = server.predict({"instances": users})  # no signature_name: serving_default
    columnar = server.predict({"inputs": {"user_id": users}})
    assert row.status_code == 200 and columnar.status_code == 200
    predictions, outputs = row.json()["predictions"], columnar.json()["outputs"]
    assert [p["known_user"] for p in predictions] == outputs["known_user"] == [u != "nobody" for u in users]
    assert [p["products"] for p in predictions] == outputs["products"] == expected["products"].numpy().tolist()
    assert [p["scores"] for p in predictions] == outputs["scores"]
    # columnar with the one input given bare (api_rest.md: "inputs": <value>|<(nested)list>|<object>)
    assert server.predict({"inputs": users}).json() == columnar.json()


def test_numbers_are_printed_as_tf_serving_prints_them(server):
    """An unknown product gets the ten most popular products, scored by their share of the 90
    generated purchases (testing.purchases(): 9, 8, 7, 7, 7, 6, 6, 5, 5 and 4 of them), as float32.
    TF Serving writes a float32 with six significant digits when they read back as the same
    float32 (9/90: "0.1"), else with nine (8/90 = 0.08888889104...: "0.088888891")."""
    response = server.predict({"signature_name": "call_item_item", "instances": [testing.UNKNOWN_PRODUCT]})
    scores = json.loads(response.text, parse_float=str)["predictions"][0]["scores"]
    assert scores == ["0.1", "0.088888891", "0.0777777806", "0.0777777806", "0.0777777806",
                      "0.0666666701", "0.0666666701", "0.055555556", "0.055555556", "0.0444444455"]
    assert all(isinstance(p, int) for p in response.json()["predictions"][0]["products"])


def test_named_outputs_and_binary_inputs_are_b64(server, reference):
    """`evaluate` has two outputs (ranks, popularity_ranks): each row is an object of both, the
    columnar answer an object of lists (api_rest.md; one output alone would be given bare:
    serving/json_format_test.py). Its input is serialized tf.Examples, sent as {"b64": ...};
    whole floats print with ".0"."""
    examples = [purchase_example(testing.USERS[0].encode(), testing.PRODUCTS[1]),
                purchase_example(b"nobody", 5)]
    encoded = [{"b64": base64.b64encode(e).decode()} for e in examples]
    expected = reference.signatures["evaluate"](examples=tf.constant(examples))
    ranks, popular = expected["ranks"].numpy().tolist(), expected["popularity_ranks"].numpy().tolist()
    row = server.predict({"signature_name": "evaluate", "instances": encoded})
    columnar = server.predict({"signature_name": "evaluate", "inputs": encoded})
    assert row.json() == {"predictions": [{"popularity_ranks": p, "ranks": r} for r, p in zip(ranks, popular)]}
    assert columnar.json() == {"outputs": {"popularity_ranks": popular, "ranks": ranks}}
    as_text = json.loads(row.text, parse_float=str)["predictions"]
    assert [r["ranks"] for r in as_text] == [[format_float(v) for v in r] for r in ranks]  # "2.0"


def _raw_http(server, request: bytes) -> bytes:
    """What the server sends back on one connection for `request` (bytes as written), up to the
    server closing the connection, as the last request asks (HTTP/1.0, or `Connection: close`).
    A server that keeps it open fails the test (socket.timeout after 30 s)."""
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as s:
        s.sendall(request)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    return received


def test_what_tf_serving_accepts_besides_the_usual_request(server):
    """Clients written against TF Serving: any Content-Type (TF Serving never reads it), the /v1/
    prefix and names in any case, a percent-encoded model name, HTTP/1.0, several requests on one
    keep-alive connection, a chunked body."""
    body = json.dumps({"signature_name": "call_item_item", "instances": [testing.PRODUCTS[0]]})
    expected = server.predict(body).json()
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        assert server.http.post(f"/v1/models/{NAME}:predict", content=body, headers=headers).json() == expected
    encoded = "".join(f"%{ord(c):02X}" for c in NAME)
    assert server.predict(body, f"/V1/MODELS/{encoded}/VERSIONS/1:predict").json() == expected
    data = body.encode()
    http10 = _raw_http(server, b"POST /v1/models/%s:predict HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s"
                       % (NAME.encode(), len(data), data))
    assert http10.split(b"\r\n")[0].endswith(b"200 OK") and json.loads(http10.split(b"\r\n\r\n", 1)[1]) == expected
    one, last = (b"POST /v1/models/%s:predict HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (
        NAME.encode(), close, len(data), data) for close in (b"", b"Connection: close\r\n"))
    assert _raw_http(server, one + one + last).count(b" 200 OK\r\n") == 3
    chunked = (b"POST /v1/models/%s:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (NAME.encode(), len(data), data))
    response = _raw_http(server, chunked)
    assert b" 200 OK\r\n" in response.split(b"\r\n")[0] + b"\r\n"
    assert json.loads(response.split(b"\r\n\r\n", 1)[1]) == expected


def test_versions_path_answers_like_the_plain_path(server):
    body = {"signature_name": "call_item_item", "instances": [testing.PRODUCTS[0]]}
    assert server.predict(body, f"/v1/models/{NAME}/versions/1:predict").json() == server.predict(body).json()


# --- REST: status and metadata ------------------------------------------------------------------
def test_model_status_is_api_rest_md_example(server):
    """api_rest.md: GET /v1/models/saved_model_half_plus_three, with our model and version."""
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert server.http.get(f"/v1/models/{NAME}").json() == expected
    assert server.http.get(f"/v1/models/{NAME}/versions/1").json() == expected


def test_model_status_ignores_a_version_label(server):
    """GetModelStatusImpl reads the spec's name and version only: /labels/L answers every version
    (where predict and metadata refuse an unknown label)."""
    assert server.http.get(f"/v1/models/{NAME}/labels/stable").json() == server.http.get(f"/v1/models/{NAME}").json()


def test_metadata_is_the_signature_def_map(server, saved_model):
    response = server.http.get(f"/v1/models/{NAME}/metadata")
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"] == {"name": NAME, "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "call_item_item", "evaluate"} <= set(signatures)
    item = signatures["call_item_item"]
    assert item["method_name"] == "tensorflow/serving/predict"
    assert item["inputs"]["item"]["dtype"] == "DT_INT64"
    assert item["inputs"]["item"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert set(item["outputs"]) == {"known_item", "products", "scores"}
    assert item["outputs"]["products"]["tensor_shape"]["dim"][1]["size"] == str(testing.TOP_K)
    assert server.http.get(f"/v1/models/{NAME}/versions/1/metadata").json() == body


# --- REST: bad requests -------------------------------------------------------------------------
BAD_REQUESTS = [
    # (name, method, path, body, HTTP status, the error message or a part of it)
    ("malformed JSON", "POST", f"/v1/models/{NAME}:predict", "{not json", 400, "JSON Parse error: "),
    ("empty body", "POST", f"/v1/models/{NAME}:predict", "", 400, "JSON Parse error: The document is empty"),
    ("a trailing comma", "POST", f"/v1/models/{NAME}:predict", '{"instances": ["a",]}', 400,
     "JSON Parse error: Invalid value. at offset: 19"),
    ("a lone surrogate escape in an id", "POST", f"/v1/models/{NAME}:predict", '{"instances": ["\\ud800"]}', 400,
     "JSON Parse error: The surrogate pair in string is invalid. at offset: 16"),
    ("an id too big for a double", "POST", f"/v1/models/{NAME}:predict",
     '{"signature_name":"call_item_item","instances":[1e999]}', 400,
     "JSON Parse error: Number too big to be stored in double. at offset: 48"),
    ("lists nested 900 deep", "POST", f"/v1/models/{NAME}:predict",
     '{"signature_name":"call_item_item","instances":' + "[" * 900 + "1" + "]" * 900 + "}", 400,
     "is nested 899 lists deep (and batched): a tensor of at most 64 dimensions is supported"),
    ("an id of 5000 digits (Python's int() refuses more than 4300)", "POST", f"/v1/models/{NAME}:predict",
     '{"signature_name":"call_item_item","instances":[' + "7" * 5000 + "]}", 400,
     "JSON Parse error: Number too big to be stored in double. at offset: 48"),
    ("not an object", "POST", f"/v1/models/{NAME}:predict", "[1]", 400, "JSON Value: [1] Is not object"),
    ("wrong type", "POST", f"/v1/models/{NAME}:predict",
     '{"signature_name":"call_item_item","inputs":{"item":["123123"]}}', 400,
     'JSON Value: "123123" Type: String is not of expected type: int64'),
    ("float id", "POST", f"/v1/models/{NAME}:predict",
     '{"signature_name":"call_item_item","instances":[1.5]}', 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1.5 Type: Number"),
    ("an example that is not UTF-8", "POST", f"/v1/models/{NAME}:predict",  # found by exploratory testing: 500
     '{"signature_name":"evaluate","inputs":{"examples":[{"b64":"/////w=="}]}}', 400,
     "Could not parse example input, value: '\\xff\\xff\\xff\\xff'"),
    ("missing input", "POST", f"/v1/models/{NAME}:predict",
     '{"signature_name":"call_item_item","inputs":{"itm":[1]}}', 400, "Missing named input: item in 'inputs' object."),
    ("no inputs", "POST", f"/v1/models/{NAME}:predict", '{"signature_name":"call_item_item"}', 400,
     "Missing 'inputs' or 'instances' key"),
    ("both formats", "POST", f"/v1/models/{NAME}:predict", '{"instances":["a"],"inputs":["a"]}', 400,
     "JSON Value: {"),
    ("wrong shape", "POST", f"/v1/models/{NAME}:predict",
     '{"signature_name":"call_item_item","inputs":{"item":[[1],[2]]}}', 400,
     "Input 'item' of signature 'call_item_item' has shape [2,1] but the signature expects [-1]"),
    ("unknown signature", "POST", f"/v1/models/{NAME}:predict", '{"signature_name":"nope","instances":[1]}', 400,
     'Serving signature name: "nope" not found in signature def'),
    ("signature_name not a string", "POST", f"/v1/models/{NAME}:predict", '{"signature_name":1,"instances":[1]}',
     400, "not formatted correctly. 'signature_name' key must be a string value."),
    ("batch too large", "POST", f"/v1/models/{NAME}:predict",
     json.dumps({"signature_name": "call_item_item", "instances": list(range(MAX_BATCH + 1))}), 400,
     f"Task size {MAX_BATCH + 1} is larger than maximum input batch size {MAX_BATCH}"),
    ("unknown model", "POST", "/v1/models/half:predict", '{"instances":[1.0,5.0]}', 404,
     "Servable not found for request: Latest(half)"),
    ("unknown version", "POST", f"/v1/models/{NAME}/versions/99:predict", '{"instances":["a"]}', 404,
     f"Servable not found for request: Specific({NAME}, 99)"),
    ("unknown label", "POST", f"/v1/models/{NAME}/labels/stable:predict", '{"instances":["a"]}', 400,
     "Unrecognized servable version label: stable"),
    # :classify / :regress on predict signatures: TF Serving's checks with its default flags
    # (classifier.cc, regressor.cc; --enable_signature_method_name_check is off)
    ("classify on a predict signature", "POST", f"/v1/models/{NAME}:classify", '{"examples":[{}]}', 400,
     "Expected one or two output Tensors, found 3"),
    ("regress on a predict signature", "POST", f"/v1/models/{NAME}:regress", '{"examples":[{"item":1}]}', 400,
     "Expected one output Tensor."),
    ("classify on the evaluate signature", "POST", f"/v1/models/{NAME}:classify",
     '{"signature_name":"evaluate","examples":[{"item":1}]}', 400,
     'No classification inputs found in SignatureDef: inputs {\n  key: "examples"'),
    ("classify an unknown signature", "POST", f"/v1/models/{NAME}:regress",
     '{"signature_name":"nope","examples":[{"item":1}]}', 400, "No signature was found with the name: nope"),
    ("classify with a predict body", "POST", f"/v1/models/{NAME}:classify",
     '{"signature_name":"call_item_item","inputs":{"item":[123123]}}', 400,
     "When method is classify, key 'examples' is expected and was not found"),
    ("classify an unknown model", "POST", "/v1/models/half:classify", '{"examples":[{"x":1.0}]}', 404,
     "Servable not found for request: Latest(half)"),
    ("status of an unknown model", "GET", "/v1/models/half", None, 404, "Could not find any versions of model half"),
    ("status of an unknown version", "GET", f"/v1/models/{NAME}/versions/99", None, 404,
     f"Could not find version 99 of model {NAME}"),
    ("metadata of an unknown model", "GET", "/v1/models/half/metadata", None, 404,
     "Servable not found for request: Latest(half)"),
    ("no model name", "GET", "/v1/models", None, 400, "Missing model name in request."),
    ("malformed path", "GET", "/v1/foo", None, 400, "Malformed request: GET /v1/foo"),
    ("a query string (TF Serving matches the path with it)", "POST", f"/v1/models/{NAME}:predict?debug=1",
     '{"instances":["a"]}', 400, f"Malformed request: POST /v1/models/{NAME}:predict?debug=1"),
    ("the verb in capitals", "POST", f"/v1/models/{NAME}:PREDICT", '{"instances":["a"]}', 400,
     f"Malformed request: POST /v1/models/{NAME}:PREDICT"),
    ("predict with GET", "GET", f"/v1/models/{NAME}:predict", None, 400,
     f"Malformed request: GET /v1/models/{NAME}:predict"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_tf_servings_error_and_the_server_keeps_serving(server, case):
    _, method, path, body, status, message = case
    response = server.http.request(method, path, content=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error"} and message in response.json()["error"], response.text
    assert server.alive()


def test_no_request_body_gets_a_5xx(server):
    """1500 random JSON bodies for the three verbs, a fifth of them with bytes overwritten at random: every
    answer is TF Serving's 200 or 4xx (501 only for a real classification signature, absent here).
    (Fuzzing like this found four 500s: a lone surrogate escape, an integer of 5000 digits, lists
    nested deeper than 64, a signature name that is not UTF-8.)"""
    import random
    rng = random.Random(0)
    atoms = [0, -1, 1.5, 1e308, 2**63, 2**64, True, None, "", "a", "\u0000", "\udc80", "\ud800", "é", {"b64": "!!"},
             {"b64": "YQ=="}, [], {}, [[]]]
    keys = ["signature_name", "instances", "inputs", "examples", "context", "item", "user_id", "b64"]

    def value(depth=0):
        r = rng.random()
        if depth > 3 or r < 0.4:
            return rng.choice(atoms)
        if r < 0.7:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 3))}

    answers = []
    for _ in range(1500):
        doc = {"signature_name": rng.choice(["", "call_item_item", "evaluate", "serving_default", "nope", 1])}
        doc[rng.choice(["instances", "inputs", "examples"])] = value()
        body = bytearray(json.dumps(doc).encode("utf-8", "surrogatepass"))
        if rng.random() < 0.2:
            for _ in range(rng.randint(1, 3)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        verb = rng.choice(["predict", "classify", "regress"])
        response = server.http.post(f"/v1/models/{NAME}:{verb}", content=bytes(body))
        answers.append(response.status_code)
        assert response.status_code < 500, (verb, bytes(body)[:300], response.text[:300])
    assert 200 in answers and 400 in answers  # the bodies reach the model as well as the checks
    assert server.alive()


def test_unknown_ids_are_answers_not_errors(server):
    response = server.predict({"signature_name": "call_item_item", "instances": [0, -5, 2**62]})
    assert response.status_code == 200
    assert [p["known_item"] for p in response.json()["predictions"]] == [False, False, False]
    response = server.predict({"instances": ["", "x" * 1000]})
    assert [p["known_user"] for p in response.json()["predictions"]] == [False, False]
    # ids in bytes that are not UTF-8, a NUL, a lone low surrogate: TF Serving (rapidjson) passes them on
    response = server.predict(b'{"instances": ["caf\xe9", "a\\u0000b", "\\udc00"]}')
    assert response.status_code == 200, response.text
    assert [p["known_user"] for p in response.json()["predictions"]] == [False, False, False]


def test_many_concurrent_clients_each_get_their_own_answer(server, reference):
    """Batching merges concurrent requests into one call: every client must still get its rows."""
    items = testing.PRODUCTS
    expected = reference.signatures["call_item_item"](item=tf.constant(items, tf.int64))["products"].numpy()
    failures = []

    def client(offset):
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for n in range(20):
                i = (offset + n) % len(items)
                got = http.post(f"/v1/models/{NAME}:predict", content=json.dumps(
                    {"signature_name": "call_item_item", "instances": [items[i]]}))
                if got.status_code != 200 or got.json()["predictions"][0]["products"] != expected[i].tolist():
                    failures.append((i, got.status_code, got.text[:200]))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# --- gRPC ---------------------------------------------------------------------------------------
def _predict_request(signature, key, values, dtype):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = NAME
    request.model_spec.signature_name = signature
    request.inputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
    return request


def test_grpc_predict_with_the_official_client(server, reference):
    stub, _, channel = grpc_stubs(server)
    with channel:
        items = [testing.UNKNOWN_PRODUCT, testing.PRODUCTS[2]]
        response = stub.Predict(_predict_request("call_item_item", "item", items, tf.int64), timeout=30)
        assert response.model_spec.name == NAME and response.model_spec.version.value == 1
        assert response.model_spec.signature_name == "call_item_item"
        expected = reference.signatures["call_item_item"](item=tf.constant(items, tf.int64))
        for key in ("products", "scores", "known_item"):
            assert tf.make_ndarray(response.outputs[key]).tolist() == expected[key].numpy().tolist()
        assert response.outputs["scores"].float_val  # as TF Serving: values in the typed field
        users = [testing.USERS[0].encode(), b"nobody"]
        response = stub.Predict(_predict_request("", "user_id", users, tf.string), timeout=30)
        assert response.model_spec.signature_name == "serving_default"
        assert tf.make_ndarray(response.outputs["known_user"]).tolist() == [True, False]
        request = _predict_request("call_item_item", "item", items, tf.int64)
        request.output_filter.append("products")
        assert set(stub.Predict(request, timeout=30).outputs) == {"products"}


def test_calls_past_their_deadline_do_not_stop_a_signature(server):
    """Found by exploratory testing: after gRPC calls hit their deadline, call_item_item never
    answered again (its batch threads had died) while the model still said AVAILABLE."""
    import concurrent.futures

    stub, _, channel = grpc_stubs(server)
    with channel:
        many = _predict_request("call_item_item", "item", [testing.PRODUCTS[1]] * MAX_BATCH, tf.int64)

        def impatient(_):
            try:
                stub.Predict(many, timeout=0.001)
            except grpc.RpcError as e:
                return e.code()
            return grpc.StatusCode.OK

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(impatient, range(20)))
        assert grpc.StatusCode.DEADLINE_EXCEEDED in codes, codes
        for _ in range(3):  # the threads that served them are all still there
            response = stub.Predict(_predict_request("call_item_item", "item", [testing.PRODUCTS[2]], tf.int64),
                                    timeout=30)
            assert tf.make_ndarray(response.outputs["known_item"]).tolist() == [True]


def test_grpc_metadata_and_status(server):
    stub, model_stub, channel = grpc_stubs(server)
    with channel:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = NAME
        request.metadata_field.append("signature_def")
        response = stub.GetModelMetadata(request, timeout=30)
        assert response.model_spec.version.value == 1
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        assert signatures.signature_def["call_item_item"].inputs["item"].dtype == tf.int64.as_datatype_enum
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = NAME
        status = model_stub.GetModelStatus(status_request, timeout=30).model_version_status
        assert [(s.version, s.state, s.status.error_code) for s in status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)]


@pytest.mark.parametrize("change, code, message", [
    (lambda r: r.model_spec.__setattr__("name", "half"), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(half)"),
    (lambda r: r.model_spec.__setattr__("signature_name", "nope"), grpc.StatusCode.FAILED_PRECONDITION,
     'Serving signature key "nope" not found.'),
    # TensorFlow's message for a feed of the wrong type (FunctionCallFrame::SetArgs; tensorflow/serving#1495)
    (lambda r: r.inputs["item"].CopyFrom(tf.make_tensor_proto(["x"])), grpc.StatusCode.INVALID_ARGUMENT,
     "Expects arg[0] to be int64 but string is provided"),
    (lambda r: r.inputs["item"].CopyFrom(tf.make_tensor_proto([1], tf.int32)), grpc.StatusCode.INVALID_ARGUMENT,
     "Expects arg[0] to be int64 but int32 is provided"),
    (lambda r: r.inputs["other"].CopyFrom(tf.make_tensor_proto([1])), grpc.StatusCode.INVALID_ARGUMENT,
     "input size does not match signature: 2!=1 len({item,other}) != len({item}). Sent extra: {other}. "
     "Missing but required: {}."),
    (lambda r: r.model_spec.version.__setattr__("value", 99), grpc.StatusCode.NOT_FOUND,
     f"Servable not found for request: Specific({NAME}, 99)"),
    (lambda r: r.ClearField("model_spec"), grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"),
    # output_filter is checked alias by alias, before the input's type (which only running would find wrong)
    (lambda r: (r.output_filter.extend(["scores", "scores", "nope"]),
                r.inputs["item"].CopyFrom(tf.make_tensor_proto([1], tf.int32))), grpc.StatusCode.INVALID_ARGUMENT,
     "duplicate output tensor alias: scores"),
    # one input, under another name: the sizes agree, GetInputValues (tensorflow/cc/saved_model/util.cc) does not
    (lambda r: (r.inputs["itm"].CopyFrom(r.inputs["item"]), r.inputs.pop("item")), grpc.StatusCode.INVALID_ARGUMENT,
     "Signature input alias: item(feed name: call_item_item_item:0) not found in request and no default value "
     "provided. Inputs expected to be in the request {itm}, or default input alias set: "),
    (lambda r: r.inputs["item"].__setattr__("tensor_content", b"\0" * 3), grpc.StatusCode.INVALID_ARGUMENT,
     "tensor parsing error: item"),
])
def test_grpc_errors_have_tf_servings_codes(server, change, code, message):
    stub, _, channel = grpc_stubs(server)
    with channel:
        request = _predict_request("call_item_item", "item", [1], tf.int64)
        change(request)
        with pytest.raises(grpc.RpcError) as e:
            stub.Predict(request, timeout=30)
        assert e.value.code() == code and e.value.details() == message
    assert server.alive()


def test_grpc_classify_regress_and_multi_inference_get_tf_servings_checks(server):
    """A model with predict signatures only: TF Serving's INVALID_ARGUMENT naming what the signature
    lacks (classifier.cc / regressor.cc / multi_inference.cc), and the status of an empty name."""
    stub, model_stub, channel = grpc_stubs(server)
    with channel:
        classify = classification_pb2.ClassificationRequest()
        classify.model_spec.name = NAME
        example = classify.input.example_list.examples.add()
        example.features.feature["item"].int64_list.value.append(1)
        regress = regression_pb2.RegressionRequest(model_spec=classify.model_spec, input=classify.input)
        multi = inference_pb2.MultiInferenceRequest(input=classify.input)
        multi.tasks.add(model_spec=classify.model_spec, method_name="tensorflow/serving/classify")
        for call, request, code, message in [
            (stub.Classify, classify, grpc.StatusCode.INVALID_ARGUMENT, "Expected one or two output Tensors, found 3"),
            (stub.Regress, regress, grpc.StatusCode.INVALID_ARGUMENT, "Expected one output Tensor."),
            (stub.MultiInference, multi, grpc.StatusCode.INVALID_ARGUMENT,
             "Expected one or two output Tensors, found 3"),
            (stub.Classify, classification_pb2.ClassificationRequest(), grpc.StatusCode.INVALID_ARGUMENT,
             "Missing ModelSpec"),
            (model_stub.GetModelStatus, get_model_status_pb2.GetModelStatusRequest(model_spec={"name": ""}),
             grpc.StatusCode.NOT_FOUND, "Could not find any versions of model "),
        ]:
            with pytest.raises(grpc.RpcError) as e:
                call(request, timeout=30)
            assert (e.value.code(), e.value.details()) == (code, message)
        reload = model_management_pb2.ReloadConfigRequest()
        with pytest.raises(grpc.RpcError) as e:  # no config: TF Serving's INVALID_ARGUMENT
            model_stub.HandleReloadConfigRequest(reload, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "Only ModelConfigList" in e.value.details()
        other = reload.config.model_config_list.config.add(name="other", base_path="/elsewhere")
        with pytest.raises(grpc.RpcError) as e:
            model_stub.HandleReloadConfigRequest(reload, timeout=30)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        other.name, other.base_path = NAME, server.base_path  # the served model: a no-op, OK
        assert model_stub.HandleReloadConfigRequest(reload, timeout=30).status.error_code == 0
        # the served model pinned to a version, or labelled: refused as at start-up (found by
        # exploratory testing: answered OK and changed nothing)
        for change, message in [
                (lambda c: c.model_version_policy.specific.versions.append(1), "serves the latest version only"),
                (lambda c: c.model_version_policy.all.SetInParent(), "serves the latest version only"),
                (lambda c: c.version_labels.__setitem__("stable", 1), "version_labels are not supported")]:
            pinned = model_management_pb2.ReloadConfigRequest()
            pinned.config.model_config_list.config.add().CopyFrom(other)
            change(pinned.config.model_config_list.config[0])
            with pytest.raises(grpc.RpcError) as e:
                model_stub.HandleReloadConfigRequest(pinned, timeout=30)
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED and message in e.value.details()
        labelled = get_model_status_pb2.GetModelStatusRequest()
        labelled.model_spec.name, labelled.model_spec.version_label = NAME, "stable"
        assert len(model_stub.GetModelStatus(labelled, timeout=30).model_version_status) == 1
    assert server.alive()


# --- versions -----------------------------------------------------------------------------------
def _push_as_the_pipeline_does(saved_model: str, base: str, workdir: str) -> int:
    """Pushes `saved_model` with the pipeline's Pusher (components/pusher.py) as a blessed model:
    a new version directory named by the time, saved_model.pb copied last. Returns the version."""
    from google.protobuf import json_format
    from tfx.proto import pusher_pb2
    from tfx.types import standard_artifacts

    from components import pusher

    model, blessing, pushed = (standard_artifacts.Model(), standard_artifacts.ModelBlessing(),
                               standard_artifacts.PushedModel())
    model.uri, blessing.uri, pushed.uri = (os.path.join(workdir, name) for name in ("model", "blessing", "pushed"))
    shutil.copytree(saved_model, os.path.join(model.uri, "Format-Serving"))  # as the Trainer writes it
    blessing.set_int_custom_property("blessed", 1)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    pusher.Executor().Do({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
                         {"push_destination": json_format.MessageToJson(destination)})
    assert pushed.get_int_custom_property("pushed") == 1
    return int(pushed.get_string_custom_property("pushed_version"))


def test_the_pushers_next_model_is_swapped_in_under_load_and_a_broken_one_never_serves(
        saved_model, curated_schema, tmp_path):
    """Version 1 is served; under load from REST clients the Pusher pushes a different blessed
    model (trained on other purchases) as a new version: every request is answered, and then the
    new model answers. A broken push is reported and never serves; the next good one serves."""
    other = testing.build(str(tmp_path / "other"), curated_schema, seed=1).export_dir
    users = [u.encode() for u in testing.USERS[:5]]
    answers = {path: tf.saved_model.load(path).signatures["serving_default"](user_id=tf.constant(users))
               ["products"].numpy().tolist() for path in (saved_model, other)}
    assert answers[saved_model] != answers[other]  # two different models
    base = str(tmp_path / "models")
    push(saved_model, base, 1)
    # a broken version ends after one retry, 0.2 s later (TF Serving's defaults: 5, a minute apart)
    running = Server(base, str(tmp_path), "--max_num_load_retries", "1",
                     "--load_retry_interval_micros", "200000").wait_until()
    stub, model_stub, channel = grpc_stubs(running)
    results, stop, answered = [], threading.Event(), threading.Condition()

    def client(k):
        with httpx.Client(base_url=running.url, timeout=30) as http:
            while not stop.is_set():
                try:
                    got = http.post(f"/v1/models/{NAME}:predict", content=json.dumps(
                        {"signature_name": "call_item_item", "instances": [testing.PRODUCTS[k]]}))
                    result = got.status_code
                except httpx.HTTPError as e:
                    result = repr(e)
                with answered:
                    results.append(result)
                    answered.notify_all()

    def wait_for_answers(count, what):
        with answered:
            assert answered.wait_for(lambda: len(results) >= count, timeout=120), (what, len(results))

    def versions():
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = NAME
        return {s.version: (get_model_status_pb2.ModelVersionStatus.State.Name(s.state), s.status.error_code,
                            s.status.error_message)
                for s in model_stub.GetModelStatus(request, timeout=30).model_version_status}

    def wait_for(predicate, what):
        deadline = time.time() + 120
        while time.time() < deadline:
            if predicate(versions()):
                return
            time.sleep(0.2)
        raise AssertionError(f"{what}: {versions()}\n{running.log_text()}")

    def served_version():
        response = stub.Predict(_predict_request("call_item_item", "item", [1], tf.int64), timeout=30)
        return response.model_spec.version.value

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    try:
        for t in threads:
            t.start()
        wait_for_answers(20, "answers before the push")
        new = _push_as_the_pipeline_does(other, base, str(tmp_path / "push"))
        assert new > 1
        wait_for(lambda v: v.get(new, ("",))[0] == "AVAILABLE" and v[1][0] == "END", "the new version never replaced 1")
        with answered:
            swapped_at = len(results)
        wait_for_answers(swapped_at + 20, "answers after the swap")
        stop.set()
        for t in threads:
            t.join()
        assert set(results) == {200}, [r for r in results if r != 200][:5]
        assert served_version() == new
        response = running.predict({"instances": [u.decode() for u in users]})
        assert [p["products"] for p in response.json()["predictions"]] == answers[other]  # the new model
        assert running.predict({"instances": ["a"]}, f"/v1/models/{NAME}/versions/{new}:predict").status_code == 200
        assert running.predict({"instances": ["a"]}, f"/v1/models/{NAME}/versions/1:predict").status_code == 404

        # a broken push: saved_model.pb that is not a SavedModel
        broken = new + 1
        os.makedirs(os.path.join(base, str(broken)))
        with open(os.path.join(base, str(broken), "saved_model.pb"), "wb") as f:
            f.write(b"this is not a SavedModel")
        wait_for(lambda v: broken in v and v[broken][0] == "END", "the broken version never reported")
        state, code, message = versions()[broken]
        assert code != 0 and message
        assert served_version() == new and running.alive()
        status = running.http.get(f"/v1/models/{NAME}/versions/{broken}").json()["model_version_status"][0]
        assert status["state"] == "END" and status["status"]["error_code"] != "OK"
        assert status["status"]["error_message"] == message
        assert f"version: {broken}}} failed" in running.log_text()
        assert f"version {new} keeps serving" in running.log_text()

        push(saved_model, base, broken + 1)  # the next good push is served again
        wait_for(lambda v: v.get(broken + 1, ("",))[0] == "AVAILABLE", "the next version never loaded")
        assert served_version() == broken + 1
    finally:
        stop.set()
        channel.close()
        running.stop()


# --- flags ----------------------------------------------------------------------------------------
def test_grpc_only_without_batching_with_a_log_file(saved_model, reference, tmp_path):
    """--rest_api_port 0: gRPC only, no REST port open. --enable_batching=false: every request is
    its own TensorFlow call, even with a batch timeout (2 s) that would merge concurrent ones.
    --log_file: the log also goes to that file (the counts of calls are logged at shutdown)."""
    import psutil

    base = str(tmp_path / "models")
    push(saved_model, base, 1)
    grpc_port, log_file = free_port(), tmp_path / "logs" / "serving.log"
    args = [sys.executable, "-m", "serving", "--model_base_path", base, "--rest_api_port", "0",
            "--port", str(grpc_port), "--enable_batching=false", "--batch_timeout_micros", "2000000",
            "--num_batch_threads", "1", "--log_file", str(log_file)]
    # started with SIGINT ignored, as a script's `make serve &` starts it (found in CI, run in the
    # background: the server ignored the Ctrl-C below); PYTHONFAULTHANDLER: its threads' stacks on
    # SIGABRT, should it hang
    with open(tmp_path / "output.log", "w") as output:
        process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, cwd=configs.PROJECT_DIR,
                                   env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=180)  # the model is loaded before gRPC starts
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        start, answers = threading.Barrier(8), {}

        def client(k):
            start.wait()
            response = stub.Predict(_predict_request("call_item_item", "item", [testing.PRODUCTS[k]], tf.int64),
                                    timeout=60)
            answers[k] = tf.make_ndarray(response.outputs["products"]).tolist()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expected = reference.signatures["call_item_item"](item=tf.constant(testing.PRODUCTS[:8], tf.int64))
        assert [answers[k][0] for k in range(8)] == expected["products"].numpy().tolist()
        listening = {c.laddr.port for c in psutil.Process(process.pid).net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {grpc_port}
    finally:
        channel.close()
        process.send_signal(signal.SIGINT)  # Ctrl-C: the server stops and logs its counts
        try:
            assert process.wait(60) == 130  # as a shell reports a Ctrl-C, with no traceback (below)
        except subprocess.TimeoutExpired:  # say where it hung: the threads' stacks go to its log file
            process.send_signal(signal.SIGABRT)
            process.wait(30)
            pytest.fail("the server did not stop within 60 s of Ctrl-C; its threads, in its log:\n"
                        + log_file.read_text()[-20000:])
    log = log_file.read_text()
    assert f"Running gRPC ModelServer at 127.0.0.1:{grpc_port}" in log
    assert "HTTP/REST" not in log
    assert "signature call_item_item of version 1: 8 requests in 8 TensorFlow calls (1.0 per call)" in log, log
    shown = [line for line in (tmp_path / "output.log").read_text().splitlines()
             if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", line)]  # log records
    assert shown and all(line in log for line in shown)  # the file has every record the console showed
    assert "Traceback" not in (tmp_path / "output.log").read_text() and "stopped: Ctrl-C (SIGINT)" in log


# --- versions on disk ---------------------------------------------------------------------------
def _status(server, version=None):
    path = f"/v1/models/{NAME}" + (f"/versions/{version}" if version else "")
    response = server.http.get(path)
    return {int(s["version"]): (s["state"], s["status"]["error_code"])
            for s in response.json()["model_version_status"]} if response.status_code == 200 else {}


def _served_version(server):
    assert server.alive()
    status = _status(server)
    return max(v for v, (state, _) in status.items() if state == "AVAILABLE")


def _wait(predicate, what, server, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: {_status(server)}\n{server.log_text()}")


def test_a_slow_copy_is_served_once_complete_and_a_rollback_at_the_next_poll(saved_model, curated_schema,
                                                                              tmp_path):
    """The issue's slow copy (saved_model.pb first, the rest seconds later) is retried as TF
    Serving retries it and served once complete; a copy in TFX's order (saved_model.pb last) is
    not a version until complete; a rollback (a new version holding an old one) is served with no
    restart; `make history` lists them all."""
    from components import model_versions
    from runner import versions

    base = str(tmp_path / "models")
    first = model_versions.publish(saved_model, base, now=1796000000)
    # the later versions hold another model: a rollback to the same model as the served one is a no-op
    newer = testing.build(str(tmp_path / "newer"), curated_schema, seed=1).export_dir
    running = Server(base, str(tmp_path), "--load_retry_interval_micros", "500000").wait_until()
    try:
        assert _served_version(running) == first.number
        # 1. saved_model.pb alone: the loads fail (no variables) and are retried, LOADING meanwhile
        slow = os.path.join(base, "1796000100")
        os.makedirs(slow)
        shutil.copy(os.path.join(newer, "saved_model.pb"), slow)
        _wait(lambda: "Retrying of Loading servable version {name: recommender version: 1796000100} retry: 1"
              in running.log_text(), "no retry", running)
        assert _status(running, 1796000100) == {1796000100: ("LOADING", "OK")}
        assert _served_version(running) == first.number  # the old version serves meanwhile
        shutil.copytree(newer, slow, dirs_exist_ok=True)  # the rest arrives
        _wait(lambda: _status(running).get(1796000100, ("",))[0] == "AVAILABLE", "the slow copy never served",
              running)
        assert _served_version(running) == 1796000100
        # 2. TFX's order, slowly: not a version (not listed, not loaded) until saved_model.pb is there
        ordered = os.path.join(base, "1796000200")
        shutil.copytree(newer, ordered, ignore=shutil.ignore_patterns("saved_model.pb"))
        time.sleep(1.0)  # five polls
        assert 1796000200 not in _status(running) and _served_version(running) == 1796000100
        shutil.copy(os.path.join(newer, "saved_model.pb"), ordered)
        _wait(lambda: _status(running).get(1796000200, ("",))[0] == "AVAILABLE", "the ordered copy never served",
              running)
        # 3. a rollback to the first version: a new number, loaded at the next poll, no restart
        rolled = versions.rollback(base, first.number, "the new model hurt sales", configs.MODEL_NAME)
        _wait(lambda: _status(running).get(rolled.number, ("",))[0] == "AVAILABLE", "the rollback never served",
              running)
        assert _served_version(running) == rolled.number and running.process.poll() is None
        assert "retry" not in running.log_text().split(f"version: {rolled.number}}}", 1)[1]
        history = versions.history_text(base).splitlines()
        assert history[2].startswith(f"* {rolled.number}") and history[2].endswith(
            f"rollback to {first.number}: the new model hurt sales")
        assert [line.split()[0] for line in history[3:]] == ["1796000200", "1796000100", str(first.number)]
    finally:
        running.stop()


# --- Vertex AI's custom-container contract ------------------------------------------------------
def test_vertex_ai_container_contract(saved_model, tmp_path):
    """AIP_STORAGE_URI points at the SavedModel itself (no version directory), AIP_HTTP_PORT is the
    port, AIP_HEALTH_ROUTE answers once the model is loaded, AIP_PREDICT_ROUTE takes
    {"instances": [...]} and answers {"predictions": [...]}."""
    port = free_port()
    env = {"AIP_HTTP_PORT": str(port), "AIP_STORAGE_URI": saved_model,
           "AIP_HEALTH_ROUTE": "/v1/endpoints/1/deployedModels/2",
           "AIP_PREDICT_ROUTE": "/v1/endpoints/1/deployedModels/2:predict"}
    args = [sys.executable, "-m", "serving", "--port", "0"]  # no --rest_api_port: AIP_HTTP_PORT decides
    log = open(os.path.join(str(tmp_path), "vertex.log"), "w")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=configs.PROJECT_DIR,
                               env={**os.environ, **env})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.time() + 180
            while time.time() < deadline:
                try:
                    if http.get(env["AIP_HEALTH_ROUTE"]).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None
                time.sleep(0.2)
            assert http.get(env["AIP_HEALTH_ROUTE"]).status_code == 200
            response = http.post(env["AIP_PREDICT_ROUTE"], json={"instances": ["nobody", testing.USERS[0]]})
            assert response.status_code == 200
            assert [p["known_user"] for p in response.json()["predictions"]] == [False, True]
            response = http.post(env["AIP_PREDICT_ROUTE"], json={
                "signature_name": "call_item_item", "instances": [testing.UNKNOWN_PRODUCT]})
            assert response.json()["predictions"][0]["known_item"] is False
            assert http.post(env["AIP_PREDICT_ROUTE"], json={"instances": [1]}).status_code == 400
            status = http.get(f"/v1/models/{NAME}").json()["model_version_status"][0]
            assert status["version"] == "1" and status["state"] == "AVAILABLE"
    finally:
        process.terminate()
        process.wait(30)
        log.close()
