"""Load on the model server (not a test: it prints): requests/s, p50 and p99 over HTTP and gRPC.

    env/run-in-env python benchmarks/serving_load.py [--model-base-path DIR] [--seconds 5]
    env/run-in-env python benchmarks/serving_load.py --compare-batching   # with and without batching

Starts `python -m serving` on free loopback ports against the pushed models (default the Pusher's
directory; after `make run`), then, for each signature (`serving_default` with a user id,
`call_item_item` with a product id; batch 1, ids drawn from the model's own vocabularies) and 1, 8
and 50 concurrent clients, sends requests for `--seconds` over REST (aiohttp, one connection per
client) and over gRPC (the official tensorflow-serving-api stubs on grpc.aio) and prints
requests/s, p50 and p99 in milliseconds and the failures; then the in-process figure (the
signature called directly, what serving adds nothing to). Targets on 2 cores: one client p99
<= 10 ms over HTTP; 50 clients >= 1,500 requests/s with p99 <= 60 ms. The clients share the
machine with the server: on 2 cores they take a good part of it.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from benchmarks import console  # noqa: F401  (TensorFlow's own lines to outputs/logs/benchmarks.log)

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

from pipeline import configs

SIGNATURES = {"serving_default": ("user_id", "user_vocab"), "call_item_item": ("item", "product_vocab")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def latest_version_dir(base: str):
    versions = sorted((int(d) for d in os.listdir(base) if d.isdigit() and
                       os.path.exists(os.path.join(base, d, "saved_model.pb")))) if os.path.isdir(base) else []
    return os.path.join(base, str(versions[-1])) if versions else None


def vocabulary(model_dir: str, name: str):
    with open(os.path.join(model_dir, "assets", name)) as f:
        return [line.strip() for line in f if line.strip()]


def start_server(base: str, rest: int, grpc_port: int, extra, log_path: str) -> subprocess.Popen:
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "serving", "--model_base_path", base,
                             "--rest_api_port", str(rest), "--port", str(grpc_port), *extra],
                            stdout=log, stderr=subprocess.STDOUT, cwd=configs.PROJECT_DIR)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{rest}/v1/models/{configs.MODEL_NAME}", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the server did not answer within 180 s; see {log_path}")


def summary(latencies, errors, seconds):
    ms = np.array(latencies) * 1000
    if not len(ms):
        return 0.0, float("nan"), float("nan"), errors
    return len(ms) / seconds, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), errors


async def http_load(port, signature, key, ids, clients, seconds, as_int):
    import aiohttp

    url = f"http://127.0.0.1:{port}/v1/models/{configs.MODEL_NAME}:predict"
    latencies, errors = [], 0
    rng = np.random.default_rng(clients)
    bodies = [json.dumps({"signature_name": signature, "instances": [int(v) if as_int else str(v)]}).encode()
              for v in rng.choice(ids, 512)]
    stop = time.perf_counter() + seconds

    async def client(i):
        nonlocal errors
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            n = i
            while time.perf_counter() < stop:
                start = time.perf_counter()
                async with session.post(url, data=bodies[n % len(bodies)],
                                        headers={"Content-Type": "application/json"}) as response:
                    await response.read()
                    if response.status == 200:
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors += 1
                n += clients

    await asyncio.gather(*(client(i) for i in range(clients)))
    return summary(latencies, errors, seconds)


async def grpc_load(port, signature, key, ids, clients, seconds, as_int):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    rng = np.random.default_rng(clients)
    requests = []
    for v in rng.choice(ids, 512):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = configs.MODEL_NAME
        request.model_spec.signature_name = signature
        request.inputs[key].CopyFrom(tf.make_tensor_proto([int(v)] if as_int else [v.encode()],
                                                          dtype=tf.int64 if as_int else tf.string))
        requests.append(request)
    latencies, errors = [], 0
    stop = time.perf_counter() + seconds
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        async def client(i):
            nonlocal errors
            n = i
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    await stub.Predict(requests[n % len(requests)], timeout=30)
                    latencies.append(time.perf_counter() - start)
                except grpc.aio.AioRpcError:
                    errors += 1
                n += clients

        await asyncio.gather(*(client(i) for i in range(clients)))
    return summary(latencies, errors, seconds)


def in_process(model_dir, signature, key, ids, as_int, repeats=300):
    import tensorflow as tf

    fn = tf.saved_model.load(model_dir).signatures[signature]
    rng = np.random.default_rng(0)
    values = [tf.constant([int(v)] if as_int else [v.encode()], dtype=tf.int64 if as_int else tf.string)
              for v in rng.choice(ids, 64)]
    for v in values[:5]:
        fn(**{key: v})
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(**{key: values[i % len(values)]})
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def run(args, extra, label):
    model_dir = latest_version_dir(args.model_base_path)
    rest, grpc_port = free_port(), free_port()
    log_path = os.path.join(args.log_dir, f"serving_load_server_{label}.log")
    server = start_server(args.model_base_path, rest, grpc_port, extra, log_path)
    rows = []
    try:
        for signature, (key, vocab) in SIGNATURES.items():
            ids = vocabulary(model_dir, vocab)
            as_int = signature == "call_item_item"
            for clients in args.clients:
                for transport in ("http", "grpc"):
                    if transport == "http":
                        result = asyncio.run(http_load(rest, signature, key, ids, clients, args.seconds, as_int))
                    else:
                        result = asyncio.run(grpc_load(grpc_port, signature, key, ids, clients, args.seconds,
                                                       as_int))
                    rows.append((label, transport, signature, clients, *result))
                    print(f"  {label:<10}{transport:<6}{signature:<17}{clients:>8}{result[0]:>10.0f}"
                          f"{result[1]:>9.2f}{result[2]:>9.2f}{result[3]:>8}", flush=True)
    finally:
        server.terminate()
        server.wait(30)
    with open(log_path) as f:  # what batching did: requests per TensorFlow call, per signature
        for line in f:
            if "TensorFlow calls" in line:
                print(f"  {label:<10}{line.split(': ', 1)[1].strip()}")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-base-path", default=configs.PipelineConfig().serving_model_dir)
    p.add_argument("--seconds", type=float, default=5.0, help="per cell (default %(default)s)")
    p.add_argument("--clients", default="1,8,50", help="concurrent clients (default %(default)s)")
    p.add_argument("--compare-batching", action="store_true", help="run with and without --enable_batching")
    p.add_argument("--server-arg", action="append", default=[], help="extra server flag (repeatable)")
    p.add_argument("--log-dir", default=os.path.join(configs.DEFAULT_OUTPUT_DIR, "logs"))
    args = p.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",")]
    model_dir = latest_version_dir(args.model_base_path)
    if model_dir is None:
        print(f"[serving-load] no pushed model in {args.model_base_path}: run 'make run' first")
        return 1
    os.makedirs(args.log_dir, exist_ok=True)
    load = os.getloadavg()
    print(f"[serving-load] {model_dir}; {os.cpu_count()} cores; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{args.seconds:g} s per cell; batch 1; milliseconds")
    print(f"  {'server':<10}{'proto':<6}{'signature':<17}{'clients':>8}{'req/s':>10}{'p50':>9}{'p99':>9}{'errors':>8}")
    configs_to_run = [("batching", ["--enable_batching=true"])]
    if args.compare_batching:
        configs_to_run.append(("no-batch", ["--enable_batching=false"]))
    for label, extra in configs_to_run:
        run(args, extra + args.server_arg, label)
    print("  in-process (the signature called directly, one caller):")
    for signature, (key, vocab) in SIGNATURES.items():
        p50, p99 = in_process(model_dir, signature, key, vocabulary(model_dir, vocab), signature == "call_item_item")
        print(f"  {'':<10}{'-':<6}{signature:<17}{1:>8}{'':>10}{p50:>9.2f}{p99:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
