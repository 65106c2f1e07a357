"""The model server: flags as TensorFlow Serving names them, REST and gRPC side by side.

    make serve                                       # the Pusher's models, REST 8501, gRPC 8500; full
                                                     # log (TensorFlow's own lines) in outputs/logs/
    make serve ARGS="--model_base_path DIR --rest_api_port 9000 --port 9001"
    env/run-in-env python -m serving --help

TF Serving's flag names are accepted with underscores (its spelling) and with dashes, and its
`--rest-port`/`--grpc-port` aliases. On Vertex AI the container contract's variables take over
when set: AIP_HTTP_PORT (REST port, listening on all interfaces), AIP_STORAGE_URI (the model),
AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE (extra routes, see rest.py).

Request logging (request_log.py) is off unless asked for: TF Serving's way, a
`--model_config_file` whose model has a `logging_config`, or this server's shorthand for the same,
`--request_log_sampling_rate` (and `--request_log_file_prefix`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional, Tuple

from cli import flags
from cli.flags import Flag
from pipeline import configs
from serving import DEFAULT_LOAD_RETRY_INTERVAL_MICROS, DEFAULT_MAX_NUM_LOAD_RETRIES

log = logging.getLogger("serving")

DEFAULT_REST_PORT = 8501
DEFAULT_GRPC_PORT = 8500
DEFAULT_BATCH_THREADS = 2
DEFAULT_REQUEST_LOG_PREFIX = configs.PipelineConfig().request_log_prefix


FLAGS = (
    Flag("--model_base_path", "directory (or gs:// path) of numbered SavedModel versions; default AIP_STORAGE_URI "
         "(Vertex AI), else MODEL_BASE_PATH (as TF Serving's image), else the Pusher's "
         f"{os.path.relpath(configs.PipelineConfig().serving_model_dir, configs.PROJECT_DIR)}",
         aliases=("--model-base-path",)),
    Flag("--model_name", f"the name in /v1/models/NAME (default MODEL_NAME, else {configs.MODEL_NAME})",
         aliases=("--model-name",)),
    Flag("--rest_api_port", f"REST port (default {DEFAULT_REST_PORT}, or AIP_HTTP_PORT when set; 0: no REST)",
         aliases=("--rest-api-port", "--rest-port"), parse=flags.port),
    Flag("--port", "gRPC port (default %(default)s; 0: no gRPC)", aliases=("--grpc_port", "--grpc-port"),
         parse=flags.port, default=DEFAULT_GRPC_PORT),
    Flag("--bind_address", "address to listen on (default 127.0.0.1; 0.0.0.0 when AIP_HTTP_PORT is set)",
         aliases=("--bind-address",)),
    Flag("--file_system_poll_wait_seconds", "how often to look for a new version (default %(default)s s; "
         "0: once, at start-up)", aliases=("--file-system-poll-wait-seconds",),
         parse=flags.number(0.0, what="a number of seconds (0 or more; 0: look once, at start-up)"), default=1.0),
    Flag("--max_num_load_retries", "how many times a failed load is retried (default %(default)s; 0: tried once)",
         aliases=("--max-num-load-retries",), parse=flags.integer(0, what="a number of retries (0 or more)"),
         default=DEFAULT_MAX_NUM_LOAD_RETRIES),
    Flag("--load_retry_interval_micros", "wait between load retries, in microseconds (default %(default)s: one "
         "minute; negative: no wait)", aliases=("--load-retry-interval-micros",), parse=int,
         default=DEFAULT_LOAD_RETRY_INTERVAL_MICROS),
    Flag("--enable_batching", "merge concurrent requests into one TensorFlow call (default true)",
         aliases=("--enable-batching",), kind=flags.OPTIONAL, parse=flags.boolean, default=True),
    Flag("--max_batch_size", "most rows in one request, and in one merged call (default %(default)s); a larger "
         "request is refused with 400", aliases=("--max-batch-size",), parse=flags.positive_int, default=1000),
    Flag("--batch_timeout_micros", "how long a batch waits for more requests (default 0: takes what is queued)",
         aliases=("--batch-timeout-micros",), parse=int, default=0),
    Flag("--num_batch_threads", "TensorFlow calls in flight at once, per signature (default %(default)s)",
         aliases=("--num-batch-threads",), parse=flags.positive_int, default=DEFAULT_BATCH_THREADS),
    Flag("--tensorflow_intra_op_parallelism", "threads one TensorFlow op may use (default 0: TensorFlow "
         "decides, one per core)", aliases=("--tensorflow-intra-op-parallelism",), parse=int, default=0),
    Flag("--tensorflow_inter_op_parallelism", "TensorFlow ops run at once (default 0: TensorFlow decides)",
         aliases=("--tensorflow-inter-op-parallelism",), parse=int, default=0),
    Flag("--rest_api_enable_cors_support", "add TF Serving's CORS headers to every /v1/ response (default false)",
         aliases=("--rest-api-enable-cors-support",), kind=flags.OPTIONAL, parse=flags.boolean, default=False),
    Flag("--model_config_file", "TF Serving's model config: a text ModelServerConfig with one model, whose name, "
         "base_path and logging_config (request logging) are used; --model_name and --model_base_path are then "
         "ignored, as TF Serving ignores them", aliases=("--model-config-file",)),
    Flag("--request_log_sampling_rate", "log this share of requests and responses (0 to 1; default 0: off) as "
         "TF Serving's logging_config would, to PREFIX-<start>-<pid>-<seq>.tfrecord files (docs/serving.md)",
         aliases=("--request-log-sampling-rate",), metavar="RATE",
         parse=flags.number(0.0, 1.0, what="a sampling rate (0 to 1)")),
    Flag("--request_log_file_prefix", "where the request logs go (logging_config's filename_prefix); default "
         "beside the models: DIR/request_logs/MODEL_NAME for a --model_base_path DIR/serving_model/..., else "
         f"{os.path.relpath(DEFAULT_REQUEST_LOG_PREFIX, configs.PROJECT_DIR)}",
         aliases=("--request-log-file-prefix",), metavar="PREFIX"),
    Flag("--request_log_max_file_mb", "start a new request log file past this size (default %(default)s MB)",
         aliases=("--request-log-max-file-mb",), parse=flags.number(0.0, what="a size in MB"), default=64.0,
         metavar="MB"),
    Flag("--request_log_max_file_seconds", "... or when it is this old (default %(default)s s)",
         aliases=("--request-log-max-file-seconds",), parse=flags.number(0.0, what="a number of seconds"),
         default=3600.0, metavar="SECONDS"),
    Flag("--log_file", "write the full log to this file (TensorFlow's C++ lines and library warnings go only "
         "there; the console keeps the server's own lines)", aliases=("--log-file",)),
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m serving", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add(p, FLAGS)
    return p


def _setup_logging(log_file: Optional[str]) -> None:
    """The server's log on standard error; with a log file, the file gets everything (TensorFlow's
    C++ lines, library warnings, every logger) and the console only the server's own lines and
    errors, as `make run` keeps its console (make serve gives one: outputs/logs/serve-TIME.log).
    Without one (a container, whose output is its log) everything stays on standard error."""
    console = sys.stderr
    handlers: List[logging.Handler] = []
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        if sys.stderr is sys.__stderr__:  # the process's own, not a caller's capture
            console = sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)  # tracebacks stay in view
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)  # what C++ and libraries write to the file descriptors
        os.dup2(fd, 2)
        os.close(fd)
        handlers.append(logging.FileHandler(log_file))
        logging.captureWarnings(True)  # library warnings: records, into the file
    shown = logging.StreamHandler(console)
    if log_file:
        shown.addFilter(lambda record: record.levelno >= logging.ERROR or record.name.split(".")[0] in (
            "serving", "uvicorn"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[shown] + handlers, force=True)
    if log_file:
        log.info("full log: %s", log_file)


def read_model_config(path: str):
    """(name, base_path, logging_config or None) of a TF Serving model config file with one model.
    ValueError naming what this server cannot do (several models, a version policy other than
    the latest version, version labels, another platform)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        with open(path) as f:
            text_format.Parse(f.read(), config)
    except (OSError, text_format.ParseError) as e:
        raise ValueError(f"cannot read the model config file {path}: {e}") from None
    if config.WhichOneof("config") != "model_config_list" or len(config.model_config_list.config) != 1:
        raise ValueError(f"{path}: this server serves one model: give one model_config_list.config")
    model = config.model_config_list.config[0]
    if not model.name or not model.base_path:
        raise ValueError(f"{path}: the model config needs a name and a base_path")
    from serving.model_manager import unsupported_config

    problem = unsupported_config(model)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return model.name, model.base_path, (model.logging_config if model.HasField("logging_config") else None)


def _model_and_logging(args, env) -> Tuple[str, str, Optional[object]]:
    """(model name, base path, logging_config or None) from the flags, the model config file and
    the environment. ValueError for a setting that cannot work."""
    from serving import request_log

    logging_config = None
    if args.model_config_file:
        name, base_path, logging_config = read_model_config(args.model_config_file)
    else:
        base_path = (args.model_base_path or env.get("AIP_STORAGE_URI") or env.get("MODEL_BASE_PATH")
                     or configs.PipelineConfig().serving_model_dir)
        name = args.model_name or env.get("MODEL_NAME") or configs.MODEL_NAME
    if args.request_log_sampling_rate is not None or args.request_log_file_prefix:
        if logging_config is not None:
            raise ValueError("request logging is set twice: by the model config file's logging_config and by "
                             "--request_log_* flags; keep one")
        prefix = args.request_log_file_prefix or configs.request_log_prefix_beside(base_path, name)
        logging_config = request_log.logging_config(prefix, args.request_log_sampling_rate or 0.0)
    if logging_config is not None:
        try:
            request_log.check_config(logging_config)
        except Exception as e:  # noqa: BLE001 - ServingError: said in one line
            raise ValueError(f"logging_config: {e}") from None
    if args.request_log_max_file_mb <= 0 or args.request_log_max_file_seconds <= 0:
        raise ValueError("--request_log_max_file_mb and --request_log_max_file_seconds must be above 0")
    return name, base_path, logging_config


def _reason(error: BaseException) -> str:
    return getattr(error, "message", None) or getattr(error, "strerror", None) or str(error)


def _cannot_listen(host: str, port: int) -> Optional[str]:
    """Why a server could not listen on host:port (an address that is not this machine's, a port
    in use), None when it can: checked before start-up, so that it is said in one line rather
    than in uvicorn's log or gRPC's."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        return e.strerror or str(e)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as e:
            return e.strerror or str(e)
    return None


def _stop_on_ctrl_c() -> None:
    """Python's Ctrl-C handler, even when the server was started with SIGINT ignored (a script's
    `make serve &`: Python then installs none). Found in CI, started in the background: the
    gRPC-only server (REST's uvicorn sets its own handlers) ignored the SIGINT that stops it."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    _stop_on_ctrl_c()
    env = os.environ
    rest_port = args.rest_api_port if args.rest_api_port is not None else int(
        env.get("AIP_HTTP_PORT", DEFAULT_REST_PORT))
    host = args.bind_address or ("0.0.0.0" if "AIP_HTTP_PORT" in env else "127.0.0.1")
    if rest_port == 0 and args.port == 0:
        print("serving: both --rest_api_port and --port are 0: nothing to serve on", file=sys.stderr)
        return 2
    if rest_port and rest_port == args.port:  # TF Serving logs it and skips REST: stopped here
        print(f"serving: --port and --rest_api_port are both {rest_port}: gRPC and REST need a port each",
              file=sys.stderr)
        return 2
    _setup_logging(args.log_file)
    try:
        args.model_name, base_path, logging_config = _model_and_logging(args, env)
    except ValueError as e:
        print(f"serving: {e}", file=sys.stderr)
        return 2

    import tensorflow as tf  # after the flags: --help stays fast
    import uvicorn

    if args.tensorflow_intra_op_parallelism:
        tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    if args.tensorflow_inter_op_parallelism:
        tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)

    from serving import grpc_service, request_log, rest
    from serving.model_manager import ModelManager

    manager = ModelManager(args.model_name, base_path, poll_seconds=args.file_system_poll_wait_seconds,
                           max_batch_size=args.max_batch_size, enable_batching=args.enable_batching,
                           batch_timeout_micros=args.batch_timeout_micros,
                           num_batch_threads=args.num_batch_threads,
                           max_num_load_retries=args.max_num_load_retries,
                           load_retry_interval_micros=args.load_retry_interval_micros)
    try:
        requests_log = request_log.RequestLog(args.model_name, request_log.Rotation(
            int(args.request_log_max_file_mb * 2**20), args.request_log_max_file_seconds), logging_config)
    except (OSError, tf.errors.OpError) as e:
        print(f"serving: cannot write the request logs ({_reason(e)})", file=sys.stderr)
        return 2
    for port, what, flag in ((rest_port, "REST", "--rest_api_port"), (args.port, "gRPC", "--port")):
        busy = _cannot_listen(host, port) if port else None
        if busy:  # for gRPC also before its C++ core logs its own line
            print(f"serving: cannot listen on {host}:{port} for {what} ({flag}, --bind_address): {busy}",
                  file=sys.stderr)
            requests_log.close()
            return 1
    manager.start()
    if manager.current is None:
        from serving.model_manager import find_versions

        versions = find_versions(base_path)
        if versions:  # found by exploratory testing: this said "run 'make run' to push one"
            log.warning("version %d of %s under %s could not be loaded (the error above), and a server serves "
                        "only the newest version; serving starts now and loads it when it changes: restore it, "
                        "or delete it to serve the version below it", max(versions), args.model_name, base_path)
        else:
            log.warning("no servable version of %s under %s yet (run 'make run' to push one); "
                        "serving starts now and loads it when it appears", args.model_name, base_path)
    grpc_server = None
    if args.port:
        grpc_server = grpc_service.GrpcServer(manager, f"{host}:{args.port}", requests_log=requests_log)
        try:
            grpc_server.start()
        except RuntimeError as e:  # grpc: "Failed to bind to address ..."
            print(f"serving: cannot listen on {host}:{args.port} for gRPC (--port, --bind_address): {e}",
                  file=sys.stderr)
            manager.stop()
            requests_log.close()
            return 1
        log.info("Running gRPC ModelServer at %s:%d", host, args.port)
    stopped = []

    def shutdown() -> None:
        if not stopped:
            stopped.append(True)
            manager.stop()
            if grpc_server is not None:
                grpc_server.stop(grace=1)
            requests_log.close()

    try:
        if rest_port:
            app = rest.create_app(manager, health_route=env.get("AIP_HEALTH_ROUTE"),
                                  predict_route=env.get("AIP_PREDICT_ROUTE"), on_shutdown=shutdown,
                                  enable_cors=args.rest_api_enable_cors_support, requests_log=requests_log)
            log.info("Exporting HTTP/REST API at %s:%d (model %s, batching %s, max batch size %d)", host,
                     rest_port, args.model_name, "on" if args.enable_batching else "off", args.max_batch_size)
            # the app's router itself: its routes and lifespan without FastAPI's middleware stack
            # (error pages, telemetry, body limits), which these handlers do not need: each
            # answers every failure itself, as TF Serving does
            uvicorn.Server(uvicorn.Config(app.router, host=host, port=rest_port, loop="uvloop", http="httptools",
                                          lifespan="on", access_log=False, log_level="warning",
                                          timeout_keep_alive=30)).run()
        else:
            grpc_server.wait_for_termination()
    except KeyboardInterrupt:  # Ctrl-C: stopped as asked, with 130 as a shell reports it, and no traceback
        # (uvicorn hands the SIGINT it caught back once it has stopped: the traceback ended its log)
        log.info("stopped: Ctrl-C (SIGINT)")
        return 130
    finally:
        shutdown()
    return 0
