"""Error codes and messages: a TensorFlow runtime error keeps its code and the runtime's message,
without what TensorFlow's Python layer wraps around it (TF Serving runs the C++ Session, whose
status carries the runtime's message only)."""

import pytest
import tensorflow as tf

from serving import status


def _runtime_error(function, *args):
    with pytest.raises(tf.errors.OpError) as e:
        function(*args)
    return e.value


def test_a_signatures_runtime_error_loses_the_python_wrapping():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def parse(examples):
        return tf.io.parse_example(examples, {"a": tf.io.FixedLenFeature([], tf.int64)})

    raw = _runtime_error(parse.get_concrete_function(), tf.constant([b"garbage"]))
    assert "Graph execution error" in raw.message or "[Op:" in raw.message  # what Python adds
    error = status.from_exception(raw)
    assert (error.code, error.http_status) == ("INVALID_ARGUMENT", 400)
    assert error.message.startswith("Could not parse example input, value: 'garbage'"), error.message
    assert "Graph execution error" not in error.message and "[Op:" not in error.message
    assert "Detected at node" not in error.message and "stack traces" not in error.message


def test_a_runtime_message_python_cannot_decode_is_the_requests_fault():
    """Found by exploratory testing: bytes that are not UTF-8 sent to `evaluate` made TensorFlow's
    Python layer fail decoding the runtime's message (a UnicodeDecodeError, its code lost), and the
    server answered 500."""
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def parse(examples):
        return tf.io.parse_example(examples, {"a": tf.io.FixedLenFeature([], tf.int64)})

    with pytest.raises(UnicodeDecodeError) as raised:
        parse.get_concrete_function()(tf.constant([b"\xff\xff\xff\xff"]))
    error = status.from_exception(raised.value)
    assert (error.code, error.http_status) == ("INVALID_ARGUMENT", 400)
    assert error.message.startswith("Could not parse example input, value: '\\xff\\xff\\xff\\xff'"), error.message
    assert "Graph execution error" not in error.message


def test_the_wrapping_is_removed_and_nothing_else():
    wrapped = ("Graph execution error:\n\nDetected at node while/ParseExample/ParseExampleV2 defined at (most recent "
               "call last):\n<stack traces unavailable>\nCould not parse example input, value: 'x'\n\t "
               "[[{{node while/ParseExample/ParseExampleV2}}]] [Op:__inference_signature_wrapper_1935]")
    assert status.runtime_message(wrapped) == (
        "Could not parse example input, value: 'x'\n\t [[{{node while/ParseExample/ParseExampleV2}}]]")
    plain = "indices[0] = 7 is not in [0, 5) [Op:GatherV2] name: lookup"
    assert status.runtime_message(plain) == "indices[0] = 7 is not in [0, 5)"
    assert status.runtime_message("Graph execution error: a model's own words") == (
        "Graph execution error: a model's own words")


def test_other_exceptions_are_internal_with_their_text():
    error = status.from_exception(ValueError("boom"))
    assert (error.code, error.http_status, error.message) == ("INTERNAL", 500, "ValueError: boom")
    assert error.grpc_status.name == "INTERNAL"
