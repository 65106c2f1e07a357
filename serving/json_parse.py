"""Request bodies parsed as TF Serving parses them (`ParseJson` of
tensorflow_serving/util/json_tensor.cc): rapidjson 1.1.0's reading of a JSON document, and its
errors in rapidjson's words at rapidjson's offsets, from what Python's json reports.
serving/json_tensor.py turns the parsed document into tensors.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Tuple

from serving.json_format import debug_string
from serving.status import invalid_argument

# rapidjson 1.1.0 (TF Serving's version, tensorflow_serving/workspace.bzl): GetParseError_En's texts
_DOCUMENT_EMPTY = "The document is empty."
_VALUE_INVALID = "Invalid value."
_MISS_NAME = "Missing a name for object member."
_MISS_COLON = "Missing a colon after a name of object member."
_MISS_COMMA_OR_CURLY = "Missing a comma or '}' after an object member."
_MISS_COMMA_OR_SQUARE = "Missing a comma or ']' after an array element."
_BAD_HEX = "Incorrect hex digit after \\u escape in string."
_BAD_SURROGATE = "The surrogate pair in string is invalid."
_BAD_ESCAPE = "Invalid escape character in string."
_MISS_QUOTE = "Missing a closing quotation mark in string."
_NUMBER_TOO_BIG = "Number too big to be stored in double."
_MISS_FRACTION = "Miss fraction part in number."
_MISS_EXPONENT = "Miss exponent in number."
_JSON_SPACE = " \t\n\r"  # what rapidjson's SkipWhitespace skips
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
# a \uD800-\uDBFF escape (an even number of backslashes before it) not followed by a \uDC00-\uDFFF one
_LONE_HIGH_SURROGATE = re.compile(r'(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2})(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})')


class _NumberTooBig(ValueError):
    def __init__(self, literal: str):
        super().__init__(literal)
        self.literal = literal


def _float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # rapidjson refuses it; Python would read inf
        raise _NumberTooBig(literal)
    return value


def _int(literal: str) -> int:
    """An integer literal; one too big for a double is refused, as rapidjson refuses it (checked by
    its length first: Python would not even convert more than 4300 digits)."""
    digits = len(literal) - (literal[0] == "-")
    if digits < 309:
        return int(literal)
    if digits > 309 or abs(int(literal)) >= _DOUBLE_OVERFLOW:
        raise _NumberTooBig(literal)
    return int(literal)


_DOUBLE_OVERFLOW = 17976931348623157 * 10**292


def _first_member_wins(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """rapidjson keeps duplicate members and FindMember returns the first: so does this."""
    obj: Dict[str, Any] = {}
    for key, value in pairs:
        obj.setdefault(key, value)
    return obj


_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, object_pairs_hook=_first_member_wins)


def _innermost_open_bracket(text: str) -> str:
    """'{' or '[' that is open at the end of `text` (a prefix of a JSON document), '' if none."""
    stack: List[str] = []
    for c in re.findall(r"[\[\]{}]", _STRING.sub('""', text)):
        if c in "[{":
            stack.append(c)
        elif stack:
            stack.pop()
    return stack[-1] if stack else ""


def _rapidjson_error(text: str, message: str, pos: int) -> Tuple[str, int]:
    """The error rapidjson's iterative parser reports where Python's json says `message` at `pos`."""
    def next_token(i: int) -> int:
        while i < len(text) and text[i] in _JSON_SPACE:
            i += 1
        return i

    at_end = pos >= len(text)
    if message.startswith("Illegal trailing comma before end of array"):  # Python 3.13: at the comma
        return _VALUE_INVALID, next_token(pos + 1)
    if message.startswith("Illegal trailing comma before end of object"):
        return _MISS_NAME, next_token(pos + 1)
    if message.startswith("Expecting property name"):
        return _MISS_NAME, pos
    if message.startswith("Expecting ':'"):
        return _MISS_COLON, pos
    if message.startswith("Expecting ','"):
        before = text[pos - 1] if pos > 0 else ""
        if not at_end and before.isdigit() and text[pos] == ".":
            return _MISS_FRACTION, pos + 1
        if not at_end and before.isdigit() and text[pos] in "eE":
            return _MISS_EXPONENT, pos + (2 if text[pos + 1:pos + 2] in ("+", "-") else 1)
        in_object = _innermost_open_bracket(text[:pos]) == "{"
        return (_MISS_COMMA_OR_CURLY if in_object else _MISS_COMMA_OR_SQUARE), pos
    if message.startswith("Unterminated string"):
        return _MISS_QUOTE, len(text)
    if message.startswith("Invalid control character"):
        return _BAD_ESCAPE, pos
    if message.startswith("Invalid \\uXXXX"):
        return _BAD_HEX, text.rfind("\\", 0, pos + 1)
    if message.startswith("Invalid \\escape"):
        return _BAD_ESCAPE, text.rfind("\\", 0, pos + 1)
    # "Expecting value"
    if not text[:pos].strip(_JSON_SPACE):
        start = text[pos:pos + 1]
        if at_end or start in ",:]}":  # rapidjson's start state: nothing it can begin with
            return _DOCUMENT_EMPTY, pos
    if at_end:
        return _VALUE_INVALID, pos
    for word in ("true", "false", "null"):  # a misspelled literal: rapidjson stops where it differs
        if text[pos] == word[0]:
            n = 1
            while n < len(word) and text[pos + n:pos + n + 1] == word[n]:
                n += 1
            return _VALUE_INVALID, pos + n
    return _VALUE_INVALID, pos + (1 if text[pos] == "-" else 0)


def parse_json(body: bytes) -> Dict[str, Any]:
    """ParseJson: a JSON object, parsed as rapidjson 1.1.0 parses it with TF Serving's flags
    (kParseIterativeFlag | kParseNanAndInfFlag | kParseStopWhenDoneFlag): NaN/Infinity allowed,
    anything after the object ignored, bytes that are not UTF-8 kept as they are (rapidjson does not
    validate the encoding), duplicate keys: the first counts; errors in rapidjson's words and offsets."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    text = body.decode("utf-8", errors="surrogateescape")
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        doc, end = _DECODER.raw_decode(text, start) if start < len(text) else (None, -1)
        if end < 0:
            raise json.JSONDecodeError("Expecting value", text, start)
        error = None
    except json.JSONDecodeError as e:
        doc, end, error = None, e.pos, _rapidjson_error(text, e.msg, e.pos)
    except _NumberTooBig as e:  # the literal's start, not in a string that happens to hold the same text
        masked = _STRING.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', text)
        doc, end, error = None, len(text), (_NUMBER_TOO_BIG, max(masked.find(e.literal), 0))
    except RecursionError:
        raise invalid_argument("JSON Parse error: The document is nested too deeply") from None
    surrogate = _LONE_HIGH_SURROGATE.search(text, 0, end if error is None else len(text)) if "\\u" in text else None
    if surrogate is not None and (error is None or surrogate.start(1) < error[1]):
        error = (_BAD_SURROGATE, surrogate.start(1))  # rapidjson stops there, Python reads on
    if error is not None:  # rapidjson's offset counts bytes (MemoryStream::Tell), Python's characters
        offset = len(text[:error[1]].encode("utf-8", errors="surrogateescape"))
        raise invalid_argument("JSON Parse error: ", error[0], " at offset: ", offset)
    if not isinstance(doc, dict):
        raise invalid_argument("JSON Value: ", debug_string(doc), " Is not object")
    return doc
