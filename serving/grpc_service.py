"""TF Serving's gRPC API with grpcio and the tensorflow-serving-api protos: PredictionService
(Predict, GetModelMetadata) and ModelService (GetModelStatus), so the official client stubs
(`prediction_service_pb2_grpc.PredictionServiceStub`, `model_service_pb2_grpc.ModelServiceStub`)
work unchanged. Failures are the call's status, with TF Serving's code and message. Classify,
Regress and MultiInference make TF Serving's checks of the signature (classify_regress.py: a
predict-only model gets TF Serving's INVALID_ARGUMENT) and answer UNIMPLEMENTED past them.

The server is grpc.aio on its own thread and event loop: a request waiting for its batch holds no
thread (as the REST side), so many concurrent clients cost no thread switches.

With request logging on (request_log.py), a sampled Predict that succeeds is logged (its request
and response as they are) with its latency; HandleReloadConfigRequest applies the config's
`logging_config` to it, as TF Serving's ServerCore does on a reload.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (model_management_pb2, model_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from serving import classify_regress, request_log
from serving.model_manager import SIGNATURE_DEF_FIELD, ModelManager, model_spec, unsupported_config
from serving.status import ServingError, from_exception, invalid_argument

log = logging.getLogger(__name__)

_FIELDS = {  # Tensor::AsProtoField, which TF Serving's Predict uses for outputs
    np.dtype(np.float32): (types_pb2.DT_FLOAT, "float_val"),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, "double_val"),
    np.dtype(np.int32): (types_pb2.DT_INT32, "int_val"),
    np.dtype(np.int16): (types_pb2.DT_INT16, "int_val"),
    np.dtype(np.int8): (types_pb2.DT_INT8, "int_val"),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, "int_val"),
    np.dtype(np.int64): (types_pb2.DT_INT64, "int64_val"),
    np.dtype(np.uint32): (types_pb2.DT_UINT32, "uint32_val"),
    np.dtype(np.uint64): (types_pb2.DT_UINT64, "uint64_val"),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, "bool_val"),
    np.dtype(object): (types_pb2.DT_STRING, "string_val"),
}


_VALUE_FIELDS = {  # ProtoHelper<T>: the repeated field each type's values are read from
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val", types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val", types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val", types_pb2.DT_INT64: "int64_val", types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val", types_pb2.DT_STRING: "string_val", types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_HALF: "half_val", types_pb2.DT_BFLOAT16: "half_val",
}


def tensor_from_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Tensor::FromProto as TensorFlow's C++ reads a request's TensorProto: a shape with an unknown
    rank or a negative size is refused; values in a repeated field beyond the shape's element count
    are ignored (FromProtoField copies the first N; fewer are padded with the last, as
    tf.make_ndarray does too)."""
    shape = proto.tensor_shape
    if shape.unknown_rank or any(d.size < 0 for d in shape.dim):
        raise ValueError("invalid shape")
    field = _VALUE_FIELDS.get(proto.dtype)
    if field is not None and not proto.tensor_content:
        count = int(np.prod([d.size for d in shape.dim], dtype=np.int64))
        if len(getattr(proto, field)) > count:
            trimmed = tensor_pb2.TensorProto()
            trimmed.CopyFrom(proto)
            del getattr(trimmed, field)[count:]
            proto = trimmed
    return tf.make_ndarray(proto)


def as_proto_field(array: np.ndarray) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto()
    dtype, field = _FIELDS.get(array.dtype, (None, None))
    if dtype is None:
        return tf.make_tensor_proto(array)
    proto.dtype = dtype
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, field).extend(array.ravel().tolist())
    return proto


def _spec_version(spec) -> Optional[int]:
    return spec.version.value if spec.HasField("version") else None


GRPC_MESSAGE_LIMIT = 1024  # kErrorMessageLimit of TF Serving's ToGRPCStatus (model_servers/grpc_status_util.cc)


def grpc_details(message: str) -> str:
    """The status message as TF Serving's ToGRPCStatus sends it: past 1024 bytes, the first 1024
    and `...TRUNCATED` (found by exploratory testing: a 20 kB message, e.g. NOT_FOUND for a long
    model name, went out whole and the client got RESOURCE_EXHAUSTED for its trailers instead)."""
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= GRPC_MESSAGE_LIMIT:
        return message
    return data[:GRPC_MESSAGE_LIMIT].decode("utf-8", "ignore") + "...TRUNCATED"


async def _abort(context: grpc.aio.ServicerContext, error: Exception):
    error = from_exception(error)
    if error.code in ("INTERNAL", "UNKNOWN"):
        log.error("gRPC request failed: %s", error)
    await context.abort(error.grpc_status, grpc_details(error.message))


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, requests_log: Optional[request_log.RequestLog] = None):
        self.manager = manager
        self.requests_log = requests_log

    async def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        start = time.perf_counter()
        try:
            if not request.HasField("model_spec"):  # TensorflowPredictor::Predict
                raise invalid_argument("Missing ModelSpec")
            spec = request.model_spec
            servable = self.manager.servable(spec.name, _spec_version(spec), spec.version_label)
            signature = servable.signature(spec.signature_name)
            signature.check_input_names(request.inputs)  # before parsing, as predict_util.cc
            inputs = {}
            for name in sorted(request.inputs):
                try:
                    inputs[name] = tensor_from_proto(request.inputs[name])
                except Exception:  # noqa: BLE001 - Tensor::FromProto failed (GetInputValues' words)
                    raise invalid_argument("tensor parsing error: ", name) from None
            outputs = await asyncio.wrap_future(servable.predict(signature, inputs, list(request.output_filter)))
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(model_spec(servable.name, servable.version, signature.name))
            for name in (request.output_filter or sorted(outputs)):
                response.outputs[name].CopyFrom(as_proto_field(outputs[name]))
            logger = self.requests_log.sample() if self.requests_log is not None else None
            if logger is not None:
                logger.log(lambda: (request, response), servable.version, signature.name,
                           time.perf_counter() - start, "grpc")
            return response
        except Exception as e:  # noqa: BLE001
            await _abort(context, e)

    def _checked_classify_regress(self, request, verb: str):
        """TensorflowClassificationServiceImpl::Classify / TensorflowRegressionServiceImpl::Regress
        up to running the model (classify_regress.py)."""
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        servable = self.manager.servable(spec.name, _spec_version(spec), spec.version_label)
        classify_regress.signature_def(servable.meta_graph, spec.signature_name, verb)
        raise classify_regress.not_run(verb)

    async def Classify(self, request, context):
        try:
            self._checked_classify_regress(request, classify_regress.CLASSIFY)
        except Exception as e:  # noqa: BLE001
            await _abort(context, e)

    async def Regress(self, request, context):
        try:
            self._checked_classify_regress(request, classify_regress.REGRESS)
        except Exception as e:  # noqa: BLE001
            await _abort(context, e)

    async def MultiInference(self, request, context):
        """RunMultiInferenceWithServerCore: the first task's model spec names the servable."""
        try:
            spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
            servable = self.manager.servable(spec.name, _spec_version(spec), spec.version_label)
            classify_regress.check_multi_inference(servable.meta_graph, request.tasks)
            raise classify_regress.not_run("MultiInference")
        except Exception as e:  # noqa: BLE001
            await _abort(context, e)

    async def GetModelMetadata(self, request, context):
        try:
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            if not request.metadata_field:
                raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
            for field in request.metadata_field:
                if field != SIGNATURE_DEF_FIELD:
                    raise invalid_argument("Metadata field ", field, " is not supported")
            spec = request.model_spec
            return self.manager.servable(spec.name, _spec_version(spec), spec.version_label).metadata()
        except Exception as e:  # noqa: BLE001
            await _abort(context, e)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, requests_log: Optional[request_log.RequestLog] = None):
        self.manager = manager
        self.requests_log = requests_log

    async def GetModelStatus(self, request, context):
        try:
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            spec = request.model_spec
            return self.manager.status(spec.name, _spec_version(spec))  # version_label is not read
        except Exception as e:  # noqa: BLE001
            await _abort(context, e)

    async def HandleReloadConfigRequest(self, request, context):
        """ModelServiceImpl::HandleReloadConfigRequest: only a ModelConfigList is accepted. This
        server serves the one model of --model_base_path (new versions are picked up by polling),
        so a config that is exactly that model reloads nothing but its `logging_config` (kept when
        unchanged, replaced when changed, stopped when absent, as TF Serving's request logger
        does); any other is refused (UNIMPLEMENTED), nothing is reloaded."""
        try:
            config = request.config
            if config.WhichOneof("config") != "model_config_list":
                raise invalid_argument("ServerModelConfig type not supported by HandleReloadConfigRequest. "
                                       "Only ModelConfigList is currently supported")
            models = config.model_config_list.config
            if not (len(models) == 1 and models[0].name == self.manager.name
                    and models[0].base_path.rstrip("/") == self.manager.base_path.rstrip("/")):
                raise ServingError("UNIMPLEMENTED", f"this server serves one model, {self.manager.name} from "
                                                    f"{self.manager.base_path} (--model_base_path); it cannot "
                                                    "load another model config")
            problem = unsupported_config(models[0])
            if problem:  # found by exploratory testing: answered OK, and nothing changed
                raise ServingError("UNIMPLEMENTED", problem)
            if self.requests_log is not None:
                self.requests_log.update(models[0].logging_config if models[0].HasField("logging_config") else None)
            elif models[0].HasField("logging_config"):
                raise ServingError("UNIMPLEMENTED", "request logging is not set up on this server")
            response = model_management_pb2.ReloadConfigResponse()
            response.status.SetInParent()  # error_code OK
            return response
        except Exception as e:  # noqa: BLE001
            await _abort(context, e)


class GrpcServer:
    """grpc.aio serving both services on `address` ('host:port'), in a thread of its own."""

    def __init__(self, manager: ModelManager, address: str,
                 requests_log: Optional[request_log.RequestLog] = None):
        self.manager = manager
        self.address = address
        self.requests_log = requests_log
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._started = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="grpc", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except Exception as e:  # noqa: BLE001 - reported to start()
            self._error = e
            self._started.set()

    async def _serve(self) -> None:
        # gRPC's default SO_REUSEPORT would let a second server bind a port in use and share its
        # calls with the first, each answering with its own model: refuse the port instead.
        self._server = grpc.aio.server(options=[("grpc.max_receive_message_length", -1),
                                                ("grpc.max_send_message_length", -1),
                                                ("grpc.so_reuseport", 0)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.manager, self.requests_log), self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(self.manager, self.requests_log), self._server)
        if self._server.add_insecure_port(self.address) == 0:
            raise OSError(f"cannot listen for gRPC on {self.address}")
        await self._server.start()
        self._started.set()
        await self._server.wait_for_termination()

    def stop(self, grace: float = 1.0) -> None:
        """Stops accepting calls and gives running ones `grace` seconds (best effort: the thread is a
        daemon, and the process is ending)."""
        if self._server is not None and self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop)
            try:
                done.result(grace + 1)
            except Exception:  # noqa: BLE001 - a slow stop must not hold the process
                log.debug("gRPC server did not stop within %.1f s", grace + 1)

    def wait_for_termination(self) -> None:
        self._thread.join()
