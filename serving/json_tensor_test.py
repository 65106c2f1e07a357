"""TF Serving's JSON mapping: the cases of tensorflow_serving/util/json_tensor_test.cc (requests to
tensors, tensors to responses, error texts), and the request/response examples of api_rest.md."""

import json

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from serving import json_tensor as jt
from serving.status import ServingError


def parse(body, dtypes):
    doc = jt.parse_json(body.encode() if isinstance(body, str) else body)
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
    assert error_of('{"instances": []}', item) == "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array"
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


# --- responses ----------------------------------------------------------------------------------
def values(text):
    """The response with every number kept as its text (as json_tensor_test's
    CompareJsonAllValuesAsStrings)."""
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


def test_single_tensor_both_formats():
    tensor = np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)
    assert json.loads(jt.make_json_from_tensors({"int_tensor": tensor}, jt.Format.ROW)) == {
        "predictions": tensor.tolist()}
    assert json.loads(jt.make_json_from_tensors({"int_tensor": tensor}, jt.Format.COLUMNAR)) == {
        "outputs": tensor.tolist()}


def test_the_half_plus_three_example_byte_for_byte():
    """api_rest.md's predict example, {"predictions": [3.5, 4.0, 5.5]}, as rapidjson's
    PrettyWriter lays it out (the closing bracket on its own line, as in json_tensor_test.cc)."""
    text = jt.make_json_from_tensors({"y": np.array([3.5, 4.0, 5.5], np.float32)}, jt.Format.ROW)
    assert text == '{\n    "predictions": [3.5, 4.0, 5.5\n    ]\n}'
    assert json.loads(text) == {"predictions": [3.5, 4.0, 5.5]}


def test_float_six_digit_precision():
    tensor = np.array([[9000000, 999999, 0.5], [0.0003, 0.00003, 555557.5]], np.float32)
    assert values(jt.make_json_from_tensors({"float_tensor": tensor}, jt.Format.ROW)) == {
        "predictions": [["9e+06", "999999.0", "0.5"], ["0.0003", "3e-05", "555557.5"]]}


def test_floats_that_need_nine_digits_and_non_finite():
    tensor = np.array([[np.nan, np.inf], [3, -np.inf]], np.float32)
    assert values(jt.make_json_from_tensors({"float_tensor": tensor}, jt.Format.ROW)) == {
        "predictions": [["NaN", "Infinity"], ["3.0", "-Infinity"]]}
    assert jt.format_float(float(np.float32(0.1))) == "0.1"
    assert jt.format_float(float(np.float32(0.0888888889))) == "0.088888891"
    for value in np.random.default_rng(0).standard_normal(1000).astype(np.float32):
        assert np.float32(jt.format_float(float(value))) == value  # always reads back exactly


def test_multiple_named_tensors_both_formats():
    tensors = {
        "int_tensor": np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32),
        "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], object),
        "float_tensor": np.array([[1.0], [2.0]], np.float32),
        "double_scalar_tensor": np.array([8.0, 9.0], np.float64),
        "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], object),
    }
    assert json.loads(jt.make_json_from_tensors(tensors, jt.Format.ROW)) == {"predictions": [
        {"double_scalar_tensor": 8.0, "float_tensor": [1.0], "int_tensor": [[1, 2], [3, 4], [5, 6]],
         "str_tensor": ["foo", "bar"], "str_tensor_bytes": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]},
        {"double_scalar_tensor": 9.0, "float_tensor": [2.0], "int_tensor": [[7, 8], [9, 0], [1, 2]],
         "str_tensor": ["baz", "bat"], "str_tensor_bytes": [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]}]}
    assert json.loads(jt.make_json_from_tensors(tensors, jt.Format.COLUMNAR)) == {"outputs": {
        "double_scalar_tensor": [8.0, 9.0], "float_tensor": [[1.0], [2.0]],
        "int_tensor": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]],
        "str_tensor": [["foo", "bar"], ["baz", "bat"]],
        "str_tensor_bytes": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}}


def test_recommender_outputs_row_layout():
    """Several outputs in the row format: one object per row, its arrays on one line, bools as
    true/false, int64 ids as integers."""
    text = jt.make_json_from_tensors({
        "products": np.array([[2000011, 2000018]], np.int64),
        "scores": np.array([[0.592480659, 0.1]], np.float32),
        "known_item": np.array([True])}, jt.Format.ROW)
    assert text == ('{\n    "predictions": [\n        {\n            "known_item": true,\n'
                    '            "products": [2000011, 2000018],\n'
                    '            "scores": [0.592480659, 0.1]\n        }\n    ]\n}')


def test_response_errors():
    with pytest.raises(ServingError, match="empty tensor map"):
        jt.make_json_from_tensors({}, jt.Format.ROW)
    with pytest.raises(ServingError, match="no shape information"):
        jt.make_json_from_tensors({"t": np.array(1, np.int32)}, jt.Format.ROW)
    with pytest.raises(ServingError, match="inconsistent batch size"):
        jt.make_json_from_tensors({"a": np.zeros((2, 3), np.int32), "b": np.zeros((1, 3), object)}, jt.Format.ROW)
    assert json.loads(jt.make_json_from_tensors({"a": np.zeros((0, 2), np.int32)}, jt.Format.ROW)) == {
        "predictions": []}


def test_error_body():
    assert jt.make_json_from_error("Servable not found for request: Latest(half)") == \
        '{\n    "error": "Servable not found for request: Latest(half)"\n}'


# --- classify / regress requests (json_tensor_test.cc ClassifyRegressRequestTest) ----------------
def classify_error_of(body):
    with pytest.raises(ServingError) as e:
        doc = jt.parse_json(body.encode())
        jt.signature_name(doc)
        jt.check_classify_regress_request(doc)
    assert e.value.code == "INVALID_ARGUMENT" and e.value.http_status == 400
    return e.value.message


def test_classify_regress_requests_with_and_without_context():
    doc = jt.parse_json(b'{"examples": [{"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20},'
                        b' {"names": ["baz"], "ratings": 6.0}]}')
    assert jt.check_classify_regress_request(doc) == 2
    doc = jt.parse_json(b'{"signature_name": "x", "context": {"uid": {"b64": "aGVsbG8="}, "flag": true},'
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


# --- malformed JSON: rapidjson 1.1.0's errors (reader.h, GetParseError_En), as TF Serving reports them
@pytest.mark.parametrize("body, message", [
    ("", "The document is empty"),  # ParseJson's own check of an empty body (no offset)
    ("   ", "The document is empty. at offset: 3"),
    ("]", "The document is empty. at offset: 0"),
    ("x", "Invalid value. at offset: 0"),
    ('{"a": [1,]}', "Invalid value. at offset: 9"),  # a trailing comma: at what follows it
    ('{"a":1,}', "Missing a name for object member. at offset: 7"),
    ('{a:1}', "Missing a name for object member. at offset: 1"),
    ('{"a" 1}', "Missing a colon after a name of object member. at offset: 5"),
    ('{"a": [1', "Missing a comma or ']' after an array element. at offset: 8"),
    ('{"a": [1 2]}', "Missing a comma or ']' after an array element. at offset: 9"),
    ('{"a":1 "b":2}', "Missing a comma or '}' after an object member. at offset: 7"),
    ('{"a": [{"b": 1 ]}', "Missing a comma or '}' after an object member. at offset: 15"),
    ('{"a": [{"b": "]"} 1]}', "Missing a comma or ']' after an array element. at offset: 18"),
    ('{"a": }', "Invalid value. at offset: 6"),
    ('{"a": tru}', "Invalid value. at offset: 9"),  # where the literal stops matching
    ('{"a": -x}', "Invalid value. at offset: 7"),
    ('{"a": "abc', "Missing a closing quotation mark in string. at offset: 10"),
    ('{"a": "a\x01b"}', "Invalid escape character in string. at offset: 8"),  # a control character
    ('{"a": "\\q"}', "Invalid escape character in string. at offset: 7"),
    ('{"a": "\\u12G4"}', "Incorrect hex digit after \\u escape in string. at offset: 7"),
    ('{"a": "x\\ud800"}', "The surrogate pair in string is invalid. at offset: 8"),
    ('{"a": "\\ud800\\u0041"}', "The surrogate pair in string is invalid. at offset: 7"),
    ('{"a": [1.]}', "Miss fraction part in number. at offset: 9"),
    ('{"a": [1e+]}', "Miss exponent in number. at offset: 10"),
    ('{"a": [1e400]}', "Number too big to be stored in double. at offset: 7"),
    ('{"a": [-' + "9" * 400 + "]}", "Number too big to be stored in double. at offset: 7"),
    ('{"a": [' + "1" * 5000 + "]}", "Number too big to be stored in double. at offset: 7"),  # Python: ValueError
])
def test_malformed_json_gets_rapidjsons_error_and_offset(body, message):
    with pytest.raises(ServingError) as e:
        jt.parse_json(body.encode())
    assert (e.value.code, e.value.message) == ("INVALID_ARGUMENT", "JSON Parse error: " + message)


def test_json_that_rapidjson_reads_and_pythons_json_would_read_otherwise():
    # duplicate members: rapidjson keeps both, FindMember finds the first
    assert jt.parse_json(b'{"instances": [1], "instances": ["x"]}') == {"instances": [1]}
    # a surrogate pair, an escaped backslash before "ud800", a lone low surrogate (encoded as is)
    assert jt.parse_json(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {"a": "\U0001F600", "b": "\\ud800"}
    lone_low = jt.parse_json(b'{"a": "\\udc00"}')["a"]
    assert jt.utf8(lone_low) == b"\xed\xb0\x80"
    # bytes that are not UTF-8 (rapidjson does not validate): kept as they came, in and out
    doc = jt.parse_json(b'{"signature_name": "s\xff", "instances": ["caf\xe9"]}')
    tensors, _ = jt.parse_predict_request(doc, {"user_id": types_pb2.DT_STRING}, jt.signature_name(doc))
    assert tensors["user_id"].tolist() == [b"caf\xe9"]
    assert jt.utf8(jt.make_json_from_error(f"not found: {doc['signature_name']}")).endswith(b'not found: s\xff"\n}')
    # whitespace rapidjson skips is JSON's four characters only; text after the object is ignored
    assert jt.parse_json(b' \t\r\n{"a": 1} trailing') == {"a": 1}
    with pytest.raises(ServingError, match="Invalid value. at offset: 0"):
        jt.parse_json(b'\x0c{"a": 1}')


def test_numbers_in_error_texts_are_written_as_rapidjson_writes_them():
    """JsonValueToDebugString writes parsed doubles with rapidjson's dtoa (shortest digits, its own
    layout) and stops at NaN/Infinity, which its Writer refuses."""
    cases = {1.0: "1.0", 1e10: "10000000000.0", 1e-6: "0.000001", 1e-7: "1e-7", 1e21: "1e21", 1e20:
             "100000000000000000000.0", 1.5e300: "1.5e300", -79.39773355813419: "-79.39773355813419",
             5e-324: "5e-324", -0.0: "-0.0", 0.000123: "0.000123"}
    assert {v: jt.rapidjson_double(v) for v in cases} == cases
    item = {"item": types_pb2.DT_INT64}
    assert "JSON Value: 10000000000.0 Type: Number is not of expected type: int64" in error_of(
        '{"instances": [1e10]}', item)
    assert "JSON Value: 18446744073709552000.0 Type: Number" in error_of('{"instances": [18446744073709551616]}', item)
    assert "Error: INVALID_ARGUMENT: JSON Value:  Type: Number is not of expected type: int64" in error_of(
        '{"instances": [NaN]}', item)
    assert jt.debug_string([1.0, float("nan"), 2]) == "[1.0, "


def test_strings_are_escaped_and_kept_as_rapidjsons_writer_does():
    assert jt.json_string('a"b\\c\n\x01\x1f\x7f\u00e9') == '"a\\"b\\\\c\\n\\u0001\\u001F\x7f\u00e9"'
    assert jt.json_string("\\u001f") == '"\\\\u001f"'  # a backslash and text, not an escape
    # a string output's bytes that are not UTF-8 go out as they are (rapidjson writes bytes)
    body = jt.make_json_from_tensors({"s": np.array([b"caf\xe9"], dtype=object)}, jt.Format.COLUMNAR)
    assert jt.utf8(body) == b'{\n    "outputs": [\n        "caf\xe9"\n    ]\n}'


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
