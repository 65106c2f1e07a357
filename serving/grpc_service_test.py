"""Request tensors read as TensorFlow's C++ Tensor::FromProto reads them (what TF Serving's Predict
does with a TensorProto), without a server."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

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
def test_what_from_proto_refuses_is_refused(bad):
    with pytest.raises(Exception):
        tensor_from_proto(bad)
