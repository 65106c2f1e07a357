"""TF Serving's JSON output: the response cases of tensorflow_serving/util/json_tensor_test.cc
(tensors to responses, byte for byte), error bodies, and strings and numbers as rapidjson's Writer
writes them."""

import json

import numpy as np
import pytest

from serving import json_format as jf
from serving.status import ServingError


def values(text):
    """The response with every number kept as its text (as json_tensor_test's
    CompareJsonAllValuesAsStrings)."""
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


def test_single_tensor_both_formats():
    tensor = np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)
    assert json.loads(jf.make_json_from_tensors({"int_tensor": tensor}, jf.Format.ROW)) == {
        "predictions": tensor.tolist()}
    assert json.loads(jf.make_json_from_tensors({"int_tensor": tensor}, jf.Format.COLUMNAR)) == {
        "outputs": tensor.tolist()}


def test_the_half_plus_three_example_byte_for_byte():
    """api_rest.md's predict example, {"predictions": [3.5, 4.0, 5.5]}, as rapidjson's
    PrettyWriter lays it out (the closing bracket on its own line, as in json_tensor_test.cc)."""
    text = jf.make_json_from_tensors({"y": np.array([3.5, 4.0, 5.5], np.float32)}, jf.Format.ROW)
    assert text == '{\n    "predictions": [3.5, 4.0, 5.5\n    ]\n}'
    assert json.loads(text) == {"predictions": [3.5, 4.0, 5.5]}


def test_float_six_digit_precision():
    tensor = np.array([[9000000, 999999, 0.5], [0.0003, 0.00003, 555557.5]], np.float32)
    assert values(jf.make_json_from_tensors({"float_tensor": tensor}, jf.Format.ROW)) == {
        "predictions": [["9e+06", "999999.0", "0.5"], ["0.0003", "3e-05", "555557.5"]]}


def test_floats_that_need_nine_digits_and_non_finite():
    tensor = np.array([[np.nan, np.inf], [3, -np.inf]], np.float32)
    assert values(jf.make_json_from_tensors({"float_tensor": tensor}, jf.Format.ROW)) == {
        "predictions": [["NaN", "Infinity"], ["3.0", "-Infinity"]]}
    assert jf.format_float(float(np.float32(0.1))) == "0.1"
    assert jf.format_float(float(np.float32(0.0888888889))) == "0.088888891"
    for value in np.random.default_rng(0).standard_normal(1000).astype(np.float32):
        assert np.float32(jf.format_float(float(value))) == value  # always reads back exactly


def test_multiple_named_tensors_both_formats():
    tensors = {
        "int_tensor": np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32),
        "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], object),
        "float_tensor": np.array([[1.0], [2.0]], np.float32),
        "double_scalar_tensor": np.array([8.0, 9.0], np.float64),
        "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], object),
    }
    assert json.loads(jf.make_json_from_tensors(tensors, jf.Format.ROW)) == {"predictions": [
        {"double_scalar_tensor": 8.0, "float_tensor": [1.0], "int_tensor": [[1, 2], [3, 4], [5, 6]],
         "str_tensor": ["foo", "bar"], "str_tensor_bytes": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]},
        {"double_scalar_tensor": 9.0, "float_tensor": [2.0], "int_tensor": [[7, 8], [9, 0], [1, 2]],
         "str_tensor": ["baz", "bat"], "str_tensor_bytes": [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]}]}
    assert json.loads(jf.make_json_from_tensors(tensors, jf.Format.COLUMNAR)) == {"outputs": {
        "double_scalar_tensor": [8.0, 9.0], "float_tensor": [[1.0], [2.0]],
        "int_tensor": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]],
        "str_tensor": [["foo", "bar"], ["baz", "bat"]],
        "str_tensor_bytes": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}}


def test_recommender_outputs_row_layout():
    """Several outputs in the row format: one object per row, its arrays on one line, bools as
    true/false, int64 ids as integers."""
    text = jf.make_json_from_tensors({
        "products": np.array([[2000011, 2000018]], np.int64),
        "scores": np.array([[0.592480659, 0.1]], np.float32),
        "known_item": np.array([True])}, jf.Format.ROW)
    assert text == ('{\n    "predictions": [\n        {\n            "known_item": true,\n'
                    '            "products": [2000011, 2000018],\n'
                    '            "scores": [0.592480659, 0.1]\n        }\n    ]\n}')


def test_response_errors():
    with pytest.raises(ServingError, match="empty tensor map"):
        jf.make_json_from_tensors({}, jf.Format.ROW)
    with pytest.raises(ServingError, match="no shape information"):
        jf.make_json_from_tensors({"t": np.array(1, np.int32)}, jf.Format.ROW)
    with pytest.raises(ServingError, match="inconsistent batch size"):
        jf.make_json_from_tensors({"a": np.zeros((2, 3), np.int32), "b": np.zeros((1, 3), object)}, jf.Format.ROW)
    assert json.loads(jf.make_json_from_tensors({"a": np.zeros((0, 2), np.int32)}, jf.Format.ROW)) == {
        "predictions": []}


def test_error_body():
    assert jf.make_json_from_error("Servable not found for request: Latest(half)") == \
        '{\n    "error": "Servable not found for request: Latest(half)"\n}'


def test_debug_strings_are_cut_after_256_bytes_not_characters():
    """JsonWriterWithLimit stops once its StringBuffer holds 256 bytes: a value quoted in an error
    text is cut there (found by exploratory testing: the cut counted characters, so text in a
    non-ASCII script was quoted up to twice or three times as far)."""
    item = "\u00e9" * 10
    text = jf.debug_string({"instances": [item] * 100})
    last = ', "' + item + '"'
    assert text.endswith(last) and len(jf.utf8(text)) >= 256 > len(jf.utf8(text)) - len(jf.utf8(last))
    assert jf.debug_string(["a" * 300]) == '["' + "a" * 300 + '"'  # one value is written whole


def test_strings_are_escaped_and_kept_as_rapidjsons_writer_does():
    assert jf.json_string('a"b\\c\n\x01\x1f\x7f\u00e9') == '"a\\"b\\\\c\\n\\u0001\\u001F\x7f\u00e9"'
    assert jf.json_string("\\u001f") == '"\\\\u001f"'  # a backslash and text, not an escape
    # a string output's bytes that are not UTF-8 go out as they are (rapidjson writes bytes)
    body = jf.make_json_from_tensors({"s": np.array([b"caf\xe9"], dtype=object)}, jf.Format.COLUMNAR)
    assert jf.utf8(body) == b'{\n    "outputs": [\n        "caf\xe9"\n    ]\n}'
