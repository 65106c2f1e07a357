"""Request tensors read as TensorFlow's C++ Tensor::FromProto reads them (what TF Serving's Predict
does with a TensorProto), and the status a tensor it refuses gets: TF Serving's INVALID_ARGUMENT
"tensor parsing error", from this gRPC service in process on a one-signature SavedModel."""

import socket

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import grpc_service, model_manager
from serving.grpc_service import tensor_from_proto


def proto(dtype, dims, **values):
    p = tensor_pb2.TensorProto(dtype=dtype, **values)
    for d in dims:
        p.tensor_shape.dim.add(size=d)
    return p


def test_values_beyond_the_shape_are_ignored_and_missing_ones_repeat_the_last():
    assert tensor_from_proto(proto(types_pb2.DT_INT64, [2], int64_val=[7, 8, 9])).tolist() == [7, 8]
    assert tensor_from_proto(proto(types_pb2.DT_STRING, [1], string_val=[b"a", b"b"])).tolist() == [b"a"]
    assert tensor_from_proto(proto(types_pb2.DT_INT64, [0], int64_val=[1])).shape == (0,)
    assert tensor_from_proto(proto(types_pb2.DT_INT64, [3], int64_val=[5])).tolist() == [5, 5, 5]
    assert tensor_from_proto(proto(types_pb2.DT_INT64, [2])).tolist() == [0, 0]
    made = tf.make_tensor_proto(np.array([1, 2, 3], np.int64))  # tensor_content: read as it is
    assert tensor_from_proto(made).tolist() == [1, 2, 3]


@pytest.mark.parametrize("bad", [
    proto(types_pb2.DT_INT64, [-1], int64_val=[1, 2]),
    tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, tensor_shape={"unknown_rank": True}, int64_val=[1]),
    proto(types_pb2.DT_INT64, [2], tensor_content=b"\0" * 3),
    proto(types_pb2.DT_INVALID, [1]),
])
def test_what_from_proto_refuses_is_refused(predict, bad):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["item"].CopyFrom(bad)
    with pytest.raises(grpc.RpcError) as e:
        predict(request, timeout=30)
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: item")
    request.inputs["item"].CopyFrom(tf.make_tensor_proto([3], tf.int64))  # the same request, readable
    assert tf.make_ndarray(predict(request, timeout=30).outputs["double"]).tolist() == [6]


@pytest.mark.parametrize("length", [900, 2000, 20000])
def test_long_messages_are_cut_as_tf_serving_cuts_them(predict, length):
    """ToGRPCStatus sends at most 1024 bytes of a message, then `...TRUNCATED`: a client gets the
    call's own code, not RESOURCE_EXHAUSTED for trailers past its metadata limit (16 kB)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "é" * (length // 2)
    request.inputs["item"].CopyFrom(tf.make_tensor_proto([3], tf.int64))
    with pytest.raises(grpc.RpcError) as e:
        predict(request, timeout=30)
    message = f"Servable not found for request: Latest({request.model_spec.name})"
    expected = message if len(message.encode()) <= 1024 else (
        message.encode()[:1024].decode("utf-8", "ignore") + "...TRUNCATED")
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.NOT_FOUND, expected)


def test_a_second_server_on_a_port_in_use_is_refused(served):
    """Found by exploratory testing: with gRPC's default SO_REUSEPORT a second server bound the
    first one's port without a word, and the two shared its calls."""
    manager, port = served
    second = grpc_service.GrpcServer(manager, f"127.0.0.1:{port}")
    with pytest.raises(RuntimeError, match="bind"):
        second.start()


@pytest.fixture(scope="module")
def predict(served):
    """PredictionService.Predict of a GrpcServer on loopback serving model "m": one signature,
    int64 item -> double."""
    _, port = served
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
    channel.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(model manager, port) of a GrpcServer on loopback serving model "m"."""
    base = tmp_path_factory.mktemp("models")
    module = tf.Module()
    module.double = tf.function(lambda item: {"double": item * 2},
                                input_signature=[tf.TensorSpec([None], tf.int64, name="item")])
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.double})
    manager = model_manager.ModelManager("m", str(base), poll_seconds=60)
    manager.poll_once()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = grpc_service.GrpcServer(manager, f"127.0.0.1:{port}")
    server.start()
    yield manager, port
    server.stop()
    manager.stop()
