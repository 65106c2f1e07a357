"""Request bodies read as TF Serving reads them: rapidjson 1.1.0's errors and offsets
(reader.h, GetParseError_En) and what rapidjson reads that Python's json would read otherwise."""

import pytest
from tensorflow.core.framework import types_pb2

from serving import json_format, json_tensor
from serving.json_parse import parse_json
from serving.status import ServingError


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
    # offsets count bytes, as rapidjson's MemoryStream::Tell does (found by exploratory testing:
    # they counted characters, short by one to three for each non-ASCII character before the error)
    ('{"instances": ["ééé" x]}', "Missing a comma or ']' after an array element. at offset: 24"),
    ('{"instances": ["日本語",]}', "Invalid value. at offset: 27"),
    (b'{"instances": ["\xe9t\xe9",]}', "Invalid value. at offset: 21"),  # not UTF-8: one byte each
    ('{"é": "\\ud800"}', "The surrogate pair in string is invalid. at offset: 8"),
    ('{"日": "1e999", "instances": [1e999]}', "Number too big to be stored in double. at offset: 31"),
])
def test_malformed_json_gets_rapidjsons_error_and_offset(body, message):
    with pytest.raises(ServingError) as e:
        parse_json(body if isinstance(body, bytes) else body.encode())
    assert (e.value.code, e.value.message) == ("INVALID_ARGUMENT", "JSON Parse error: " + message)


def test_json_that_rapidjson_reads_and_pythons_json_would_read_otherwise():
    # duplicate members: rapidjson keeps both, FindMember finds the first
    assert parse_json(b'{"instances": [1], "instances": ["x"]}') == {"instances": [1]}
    # a surrogate pair, an escaped backslash before "ud800", a lone low surrogate (encoded as is)
    assert parse_json(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {"a": "\U0001F600", "b": "\\ud800"}
    lone_low = parse_json(b'{"a": "\\udc00"}')["a"]
    assert json_format.utf8(lone_low) == b"\xed\xb0\x80"
    # bytes that are not UTF-8 (rapidjson does not validate): kept as they came, in and out
    doc = parse_json(b'{"signature_name": "s\xff", "instances": ["caf\xe9"]}')
    tensors, _ = json_tensor.parse_predict_request(doc, {"user_id": types_pb2.DT_STRING},
                                                   json_tensor.signature_name(doc))
    assert tensors["user_id"].tolist() == [b"caf\xe9"]
    body = json_format.utf8(json_format.make_json_from_error(f"not found: {doc['signature_name']}"))
    assert body.endswith(b'not found: s\xff"\n}')
    # whitespace rapidjson skips is JSON's four characters only; text after the object is ignored
    assert parse_json(b' \t\r\n{"a": 1} trailing') == {"a": 1}
    with pytest.raises(ServingError, match="Invalid value. at offset: 0"):
        parse_json(b'\x0c{"a": 1}')
