"""TF Serving's JSON -> tensor mapping: the request cases of tensorflow_serving/util/json_tensor_test.cc
(requests to tensors, error texts), and the request examples of api_rest.md (responses:
json_format_test.py; malformed bodies: json_parse_test.py)."""

import json

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from serving import json_format
from serving import json_tensor as jt
from serving.json_parse import parse_json
from serving.status import ServingError


def parse(body, dtypes):
    doc = parse_json(body.encode() if isinstance(body, str) else body)
    return jt.parse_predict_request(doc, dtypes, jt.signature_name(doc))


def error_of(body, dtypes):
    with pytest.raises(ServingError) as e:
        parse(body, dtypes)
    assert e.value.code == "INVALID_ARGUMENT" and e.value.http_status == 400
    return e.value.message


INT32 = {"default": types_pb2.DT_INT32}


# --- requests -----------------------------------------------------------------------------------
def test_single_unnamed_tensor_row_format():
    tensors, fmt = parse('{"instances": [[1,2],[3,4],[5,6]]}', INT32)
    assert fmt is jt.Format.ROW
    assert tensors["default"].dtype == np.int32 and tensors["default"].tolist() == [[1, 2], [3, 4], [5, 6]]


def test_scalar_instances_and_the_workshop_request():
    tensors, fmt = parse('{"instances": [123123, 2000001]}', {"item": types_pb2.DT_INT64})
    assert tensors["item"].shape == (2,) and tensors["item"].dtype == np.int64
    tensors, fmt = parse('{"signature_name":"call_item_item","inputs":{"item":[123123]}}',
                         {"item": types_pb2.DT_INT64})
    assert fmt is jt.Format.COLUMNAR and tensors["item"].tolist() == [123123]


def test_columnar_single_value_and_named_map():
    tensors, fmt = parse('{"inputs": [[1,2],[3,4]]}', INT32)
    assert fmt is jt.Format.COLUMNAR and tensors["default"].shape == (2, 2)
    dtypes = {"int_tensor": types_pb2.DT_INT32, "str_tensor": types_pb2.DT_STRING}
    tensors, _ = parse('{"inputs": {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}}', dtypes)
    assert tensors["int_tensor"].shape == (3, 2) and tensors["str_tensor"].tolist() == [b"foo", b"bar"]


def test_multiple_named_tensors_row_format():
    dtypes = {"int_tensor": types_pb2.DT_INT32, "str_tensor": types_pb2.DT_STRING}
    tensors, _ = parse('''{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}]}''', dtypes)
    assert tensors["int_tensor"].shape == (2, 3, 2)
    assert tensors["str_tensor"].tolist() == [[b"foo", b"bar"], [b"baz", b"bat"]]


def test_base64_strings_and_floats_with_precision_loss_and_overflow():
    tensors, _ = parse('{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}',
                       {"default": types_pb2.DT_STRING})
    assert tensors["default"].tolist() == [b"hello", b"world"]
    tensors, _ = parse('{"instances": [1, 1435774380, 1e39, -1e39, 1.5]}', {"x": types_pb2.DT_FLOAT})
    assert tensors["x"].tolist() == [1.0, 1435774336.0, np.inf, -np.inf, 1.5]
    tensors, _ = parse('{"instances": [NaN, Infinity, -Infinity]}', {"x": types_pb2.DT_DOUBLE})
    assert np.isnan(tensors["x"][0]) and tensors["x"][1:].tolist() == [np.inf, -np.inf]


@pytest.mark.parametrize("text, decoded", [
    ("aGVsbG8=", b"hello"), ("aGVsbG8", b"hello"), ("aGVsbG8.", b"hello"), ("", b""),
    ("aGVs\nbG8=", b"hello"), (" aGVs bG8=\r\n", b"hello"), ("aGVsbG8\n=\n", b"hello"),  # wrapped lines
    ("aGVsbA=", None), ("aGVsbG8==", None), ("aGVsbA===", None),  # padding that is not what the data needs
    ("aGVs=bG8", None), ("aGVsbG8=aGVs", None), ("a", None), ("aGVs-G8_", None), ("aGVs\u0000bG8=", None),
])
def test_base64_is_read_as_abseils_base64unescape_reads_it(text, decoded):
    """Found by exploratory testing: base64 wrapped in lines (`base64`, MIME encoders) was refused
    with "Unable to base64 decode"; TF Serving's absl::Base64Unescape skips whitespace, takes `.`
    for `=`, and refuses padding that does not fit the data (which was read)."""
    body = json.dumps({"instances": [{"b64": text}]})
    if decoded is None:
        assert error_of(body, {"s": types_pb2.DT_STRING}).endswith("Unable to base64 decode")
    else:
        assert parse(body, {"s": types_pb2.DT_STRING})[0]["s"].tolist() == [decoded]


def test_single_unnamed_tensor_errors():
    assert "document is empty" in error_of("", INT32)
    assert "must be a string value" in error_of('{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}', INT32)
    assert "Not formatted correctly" in error_of('{"instances": [[1,2]], "inputs": [[1,2]]}', INT32)
    assert "Expecting tensor size" in error_of('{"instances": [[1,2],[3,4],[5,6,7]]}', INT32)
    assert "Expecting shape" in error_of('{"instances": [[1,2],[3,4],[[5,6]]]}', INT32)
    assert "Expecting shape" in error_of('{"instances": [1, [1]]}', INT32)
    assert "not of expected type" in error_of('{"instances": [[1,2],["a", "b"]]}', INT32)


def test_multiple_named_tensor_errors():
    dtypes = {"int_tensor": types_pb2.DT_INT32, "str_tensor": types_pb2.DT_STRING}
    assert "Expecting shape" in error_of('''{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]},
        {"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}''', dtypes)
    assert "Expecting tensor size" in error_of('''{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo", "bar"]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}]}''', dtypes)
    assert "Expecting object but got list" in error_of('''{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}, [1, 20, 30]]}''', dtypes)
    assert "Expecting value/list but got object" in error_of(
        '{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}', {"str_tensor": types_pb2.DT_STRING})
    assert "keys must be equal to: int_tensor,str_tensor" in error_of(
        '{"instances": [{"int_tensor": [1]}]}', dtypes)
    assert error_of('{"inputs": {"int_tensor": [1]}}', dtypes) == "Missing named input: str_tensor in 'inputs' object."
    assert "expecting list of objects" in error_of('{"instances": [1]}', dtypes)


def test_error_texts_are_tf_servings():
    item = {"item": types_pb2.DT_INT64}
    assert error_of('{"instances": ["123"]}', item) == (
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "123" Type: String is not of expected type: int64')
    assert error_of('{"inputs": {"item": [1.5]}}', item) == \
        "JSON Value: 1.5 Type: Number is not of expected type: int64"
    assert error_of('{"inputs": {"item": [true]}}', item) == \
        "JSON Value: true Type: True is not of expected type: int64"
    assert error_of('{"inputs": {"item": [null]}}', item) == \
        "JSON Value: null Type: Null is not of expected type: int64"
    assert error_of('{"inputs": {"item": [9223372036854775808]}}', item).endswith("is not of expected type: int64")
    assert error_of('{"signature_name": "x"}', item) == "Missing 'inputs' or 'instances' key"
    assert error_of('{"instances": []}', item) == (
        "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array")
    assert error_of('{"instances": 5}', item).endswith("Expecting 'instances' to be an list/array")
    assert error_of("[1, 2]", item) == "JSON Value: [1, 2] Is not object"
    assert error_of("{bad", item).startswith("JSON Parse error: ")
    assert error_of('{"inputs": {"item": [[1], 2]}}', item).startswith("JSON Value: 2 found at incorrect level: 2")
    assert error_of('{"inputs": {"item": {"b64": "x"}}}', item) == \
        'JSON Value: {\n    "b64": "x"\n} Type: Object is not of expected type: int64'
    assert error_of('{"inputs": {"s": [{"b64": 1}]}}', {"s": types_pb2.DT_STRING}).endswith(
        "not formatted correctly for base64 data")


def test_trailing_text_after_the_object_is_ignored_as_rapidjson_does():
    tensors, _ = parse('{"instances": [1]} trailing', {"item": types_pb2.DT_INT64})
    assert tensors["item"].tolist() == [1]


def test_debug_strings_are_cut_after_256_characters():
    message = error_of('{"instances": ' + json.dumps(list(range(500))) + ', "inputs": 1}', INT32)
    assert len(message) < 400 and message.startswith("JSON Value: {")


# --- classify / regress requests (json_tensor_test.cc ClassifyRegressRequestTest) ----------------
def classify_error_of(body):
    with pytest.raises(ServingError) as e:
        doc = parse_json(body.encode())
        jt.signature_name(doc)
        jt.check_classify_regress_request(doc)
    assert e.value.code == "INVALID_ARGUMENT" and e.value.http_status == 400
    return e.value.message


def test_classify_regress_requests_with_and_without_context():
    doc = parse_json(b'{"examples": [{"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20},'
                        b' {"names": ["baz"], "ratings": 6.0}]}')
    assert jt.check_classify_regress_request(doc) == 2
    doc = parse_json(b'{"signature_name": "x", "context": {"uid": {"b64": "aGVsbG8="}, "flag": true},'
                        b' "examples": [{"rating": [1e3, 2.5]}, {"empty": []}]}')
    assert jt.check_classify_regress_request(doc) == 2


@pytest.mark.parametrize("body, message", [
    ('{"signature_name": ["hello"], "examples": [{"names": ["foo"]}]}', "'signature_name' key must be a string"),
    ('{"context": [{"names": ["foo", "bar"]}]}', "Example must be JSON object but got JSON Array"),
    ('{"examples": {"names": ["foo", "bar"]}}', "Expecting 'examples' value to be an list/array"),
    ('{"examples": [[{"names": ["foo", "bar"]}]]}', "Example must be JSON object but got JSON Array"),
    ('{"examples": [{"names": [10, null]}]}', "Feature: names has element with unexpected JSON type: Null"),
    ('{"examples": [{"names": [10, 10.0]}]}', "Unexpected element type in feature: names expecting type: int64"),
    ('{"examples": [{"names": ["a", 1.5]}]}', "Unexpected element type in feature: names expecting type: bytes"),
    ('{"examples": [{"rating": [1e3, 2]}]}', "Unexpected element type in feature: rating expecting type: float"),
    ('{"examples": [{"names": [10, {"test": 10}]}]}', "Feature: names has element with unexpected JSON type: Object"),
    ('{"examples": [{"names": [[10], 20]}]}', "Feature: names has element with unexpected JSON type: Array"),
    ('{"examples": [{"names": [20, 18446744073709551603]}]}',
     "Feature: names has uint64_t element. Only int64_t is supported."),
    ('{"examples": [{"names": {"b64": "!"}}]}', "Unable to base64 decode"),
    ('{"examples": []}', "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array"),
    ('{"signature_name": "call_item_item", "inputs": {"item": [1]}}',
     "When method is classify, key 'examples' is expected and was not found"),
])
def test_classify_regress_request_errors_are_tf_servings(body, message):
    assert message in classify_error_of(body)


def test_numbers_in_error_texts_are_written_as_rapidjson_writes_them():
    """JsonValueToDebugString writes parsed doubles with rapidjson's dtoa (shortest digits, its own
    layout) and stops at NaN/Infinity, which its Writer refuses."""
    cases = {1.0: "1.0", 1e10: "10000000000.0", 1e-6: "0.000001", 1e-7: "1e-7", 1e21: "1e21", 1e20:
             "100000000000000000000.0", 1.5e300: "1.5e300", -79.39773355813419: "-79.39773355813419",
             5e-324: "5e-324", -0.0: "-0.0", 0.000123: "0.000123"}
    assert {v: json_format.rapidjson_double(v) for v in cases} == cases
    item = {"item": types_pb2.DT_INT64}
    assert "JSON Value: 10000000000.0 Type: Number is not of expected type: int64" in error_of(
        '{"instances": [1e10]}', item)
    assert "JSON Value: 18446744073709552000.0 Type: Number" in error_of('{"instances": [18446744073709551616]}', item)
    assert "Error: INVALID_ARGUMENT: JSON Value:  Type: Number is not of expected type: int64" in error_of(
        '{"instances": [NaN]}', item)
    assert json_format.debug_string([1.0, float("nan"), 2]) == "[1.0, "


def test_instances_of_64_nested_lists_would_need_65_dimensions():
    body = '{"instances": [' + "[" * 64 + "1" + "]" * 64 + "]}"
    assert "is nested 64 lists deep (and batched): a tensor of at most 64 dimensions is supported" in error_of(
        body, {"item": types_pb2.DT_INT64})
    tensors, _ = parse('{"instances": [' + "[" * 63 + "1" + "]" * 63 + "]}", {"item": types_pb2.DT_INT64})
    assert tensors["item"].ndim == 64


@pytest.mark.parametrize("depth", [65, 500, 990])
def test_lists_nested_deeper_than_an_array_can_be_are_a_clear_400(depth):
    """(Were a 500: numpy's 64-dimension limit, then Python's recursion limit.)"""
    body = '{"inputs": ' + "[" * depth + "1" + "]" * depth + "}"
    assert f"is nested {depth} lists deep: a tensor of at most 64 dimensions is supported" in error_of(
        body, {"item": types_pb2.DT_INT64})
    assert "Failed to process element: 0 of 'instances' list" in error_of(
        '{"instances": [' + "[" * depth + "1" + "]" * depth + "]}", {"item": types_pb2.DT_INT64})
