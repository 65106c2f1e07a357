"""TF Serving's JSON <-> tensor mapping for the REST predict API, ported from
tensorflow_serving/util/json_tensor.cc (same rules, same error texts, same output bytes).

Requests (`FillPredictRequestFromJson`): a JSON object with an optional string `signature_name`
and exactly one of `instances` (row format: a non-empty list, one element per batch row; a list of
objects when the signature has several inputs) or `inputs` (columnar: one value, or an object of
named values). Each tensor's shape is read from the nesting of its lists; every value must have
the signature's type (integers for ints, numbers for floats, strings or `{"b64": ...}` for
strings, true/false for bools).

Responses (`MakeJsonFromTensors`): `{"predictions": [...]}` for the row format (one element per
row; an object per row when there are several outputs) or `{"outputs": ...}` for the columnar
format (the tensor, or an object of named tensors). Written as rapidjson's PrettyWriter writes
them (4-space indent, rows' arrays on one line), floats as TF Serving prints them: `%g` (six
digits) when that reads back to the same float, else `%.9g` (`%.17g` for doubles), with `.0`
added to whole numbers; `NaN`, `Infinity`, `-Infinity` for non-finite values.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
import struct
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
from tensorflow.core.framework import types_pb2

from serving.status import ServingError, invalid_argument

SIGNATURE_KEY = "signature_name"
INSTANCES_KEY = "instances"
INPUTS_KEY = "inputs"
PREDICTIONS_KEY = "predictions"
OUTPUTS_KEY = "outputs"
ERROR_KEY = "error"
CONTEXT_KEY = "context"
EXAMPLES_KEY = "examples"
B64_KEY = "b64"
BYTES_SUFFIX = "_bytes"
MAX_DEBUG_STRING_BYTES = 256

NUMPY_DTYPES = {
    types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64, types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT16: np.int16, types_pb2.DT_INT8: np.int8, types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT64: np.int64, types_pb2.DT_UINT32: np.uint32, types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_STRING: object, types_pb2.DT_BOOL: np.bool_,
}
_INT_RANGES = {  # rapidjson's IsInt / IsInt64 / IsUint / IsUint64
    types_pb2.DT_INT32: (-2**31, 2**31 - 1), types_pb2.DT_INT16: (-2**31, 2**31 - 1),
    types_pb2.DT_INT8: (-2**31, 2**31 - 1), types_pb2.DT_UINT8: (-2**31, 2**31 - 1),
    types_pb2.DT_INT64: (-2**63, 2**63 - 1), types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}


class Format(enum.Enum):
    ROW = "row"  # instances -> predictions
    COLUMNAR = "columnar"  # inputs -> outputs


def dtype_name(dtype: int) -> str:
    """TensorFlow's DataTypeString: DT_INT64 -> int64, DT_FLOAT -> float."""
    return types_pb2.DataType.Name(dtype)[3:].lower()


# --- rapidjson's PrettyWriter -------------------------------------------------------------------
class PrettyWriter:
    """The output of rapidjson::PrettyWriter (indent 4), including kFormatSingleLineArray, which
    TF Serving switches on and off while writing; `limit` stops writing once the output reaches
    that many characters, as json_tensor.cc's JsonWriterWithLimit does for error messages."""

    def __init__(self, limit: Optional[int] = None):
        self.parts: List[str] = []
        self.size = 0
        self.stack: List[List] = []  # [in_array, value_count]
        self.single_line = False
        self.limit = limit

    def _put(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def _in_limit(self) -> bool:
        return self.limit is None or self.size < self.limit

    def _prefix(self) -> None:
        if not self.stack:
            return
        level = self.stack[-1]
        if level[0]:
            if level[1] > 0:
                self._put(", " if self.single_line else ",")
            if not self.single_line:
                self._put("\n" + " " * (4 * len(self.stack)))
        else:
            if level[1] > 0:
                self._put(",\n" if level[1] % 2 == 0 else ": ")
            else:
                self._put("\n")
            if level[1] % 2 == 0:
                self._put(" " * (4 * len(self.stack)))
        level[1] += 1

    def raw(self, token: str) -> bool:
        """A scalar already written as JSON text (number, string, true/false/null)."""
        if not self._in_limit():
            return False
        self._prefix()
        self._put(token)
        return True

    def key(self, name: str) -> bool:
        return self.raw(json_string(name))

    def scalars(self, tokens: List[str]) -> bool:
        """An array of scalars: the same bytes as StartArray, raw(...) each, EndArray."""
        if not self.start_array():
            return False
        if tokens:
            if self.single_line:
                self._put(", ".join(tokens))
            else:
                pad = "\n" + " " * (4 * len(self.stack))
                self._put(pad + ("," + pad).join(tokens))
            self.stack[-1][1] = len(tokens)
        return self.end_array()

    def start_object(self) -> bool:
        return self._open("{", array=False)

    def end_object(self) -> bool:
        return self._close("}", line_break=True)

    def start_array(self) -> bool:
        return self._open("[", array=True)

    def end_array(self) -> bool:
        return self._close("]", line_break=not self.single_line)

    def _open(self, bracket: str, array: bool) -> bool:
        if not self._in_limit():
            return False
        self._prefix()
        self._put(bracket)
        self.stack.append([array, 0])
        return True

    def _close(self, bracket: str, line_break: bool) -> bool:
        """Closes the innermost object or array; a non-empty one gets its closing bracket on a
        line of its own when `line_break`."""
        if not self._in_limit():
            return False
        empty = self.stack.pop()[1] == 0
        if not empty and line_break:
            self._put("\n" + " " * (4 * len(self.stack)))
        self._put(bracket)
        return True

    def text(self) -> str:
        return "".join(self.parts)


_LOWER_HEX_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u00([01][0-9a-f])")


def json_string(text: str) -> str:
    """`text` as a JSON string the way rapidjson's Writer escapes it: `"` `\\` and control
    characters only (\\n, \\t, ...; others as \\u001F, upper-case hex), everything else as it is
    (bytes that were not UTF-8 go back out unchanged through `utf8`)."""
    quoted = json.dumps(text, ensure_ascii=False)
    if "\\u00" not in quoted:
        return quoted
    return _LOWER_HEX_ESCAPE.sub(lambda m: m.group(1) + "\\u00" + m.group(2).upper(), quoted)


def rapidjson_double(value: float) -> str:
    """rapidjson 1.1.0's Writer::Double of a finite double (internal/dtoa.h: the shortest digits,
    laid out by Prettify): 1.0, 10000000000.0, 0.000001, 1e-7, 1e21, 1.5e300."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign, value = ("-", -value) if value < 0 else ("", value)
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    k = int(exponent or 0) - len(fraction)
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    digits = stripped
    length = len(digits)
    kk = length + k  # 10^(kk-1) <= value < 10^kk
    if 0 <= k and kk <= 21:
        text = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        text = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        text = "0." + "0" * -kk + digits
    elif length == 1:
        text = digits + "e" + str(kk - 1)
    else:
        text = digits[0] + "." + digits[1:] + "e" + str(kk - 1)
    return sign + text


def _scalar_token(value: Any) -> str:
    """A parsed JSON scalar as rapidjson's Writer writes it back (JsonValueToDebugString)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return rapidjson_double(value)
    if isinstance(value, int):  # beyond 64 bits rapidjson holds a double
        return str(value) if -2**63 <= value < 2**64 else rapidjson_double(float(value))
    return json_string(value)


def _write_value(writer: PrettyWriter, value: Any) -> bool:
    if isinstance(value, dict):
        if not writer.start_object():
            return False
        for k, v in value.items():
            if not (writer.key(str(k)) and _write_value(writer, v)):
                return False
        return writer.end_object()
    if isinstance(value, list):
        if not writer.start_array():
            return False
        for v in value:
            if not _write_value(writer, v):
                return False
        return writer.end_array()
    if isinstance(value, float) and not math.isfinite(value):
        writer.raw("")  # rapidjson's Writer refuses NaN and Infinity: the text stops after the separator
        return False
    return writer.raw(_scalar_token(value))


def debug_string(value: Any) -> str:
    """JsonValueToDebugString: pretty, arrays on one line, cut after 256 characters."""
    writer = PrettyWriter(limit=MAX_DEBUG_STRING_BYTES)
    writer.single_line = True
    _write_value(writer, value)
    return writer.text()


def json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


# --- numbers as TF Serving prints them ----------------------------------------------------------
_F32 = struct.Struct("f")


def _to_float32(x: float) -> float:
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def _nonfinite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "-Infinity" if value < 0 else "Infinity"


def _finish(text: str) -> str:
    return text if ("." in text or "e" in text) else text + ".0"


def format_float(value: float) -> str:
    """WriteDecimal<float>: StrCat's six digits if they read back to the same float32, else %.9g."""
    if not math.isfinite(value):
        return _nonfinite(value)
    text = "%g" % value
    if _to_float32(float(text)) != value:
        text = "%.9g" % value
    return _finish(text)


def _format_double(value: float) -> str:
    """WriteDecimal<double>: six digits if they read back to the same double, else %.17g."""
    if not math.isfinite(value):
        return _nonfinite(value)
    text = "%g" % value
    if float(text) != value:
        text = "%.17g" % value
    return _finish(text)


def _tokens(flat: np.ndarray) -> List[str]:
    """JSON tokens of a 1-D array's values (AddSingleValueAndAdvance)."""
    kind = flat.dtype
    if kind == np.float32:
        return [format_float(v) for v in flat.tolist()]
    if kind == np.float64:
        return [_format_double(v) for v in flat.tolist()]
    if kind == np.bool_:
        return ["true" if v else "false" for v in flat.tolist()]
    if kind.kind in "iu":
        return [str(v) for v in flat.tolist()]
    if kind == object or kind.kind in "SU":
        return [json_string(v.decode("utf-8", errors="surrogateescape") if isinstance(v, bytes) else str(v))
                for v in flat.tolist()]
    raise invalid_argument("Failed to write JSON value for tensor type: ", kind.name)


def _write_b64(writer: PrettyWriter, value: bytes) -> None:
    writer.start_object()
    writer.key(B64_KEY)
    writer.raw('"%s"' % base64.b64encode(value).decode())
    writer.end_object()


def _write_tensor(writer: PrettyWriter, array: np.ndarray, name: str) -> None:
    """AddTensorValues: nested lists following the array's shape (a scalar as a bare value).
    String tensors whose name ends in `_bytes` are written as {"b64": ...} objects."""
    if not isinstance(array, np.ndarray):  # one element: a numpy scalar, or bytes of a string tensor
        array = np.asarray(array) if isinstance(array, np.generic) else np.array(array, dtype=object)
    as_b64 = name.endswith(BYTES_SUFFIX) and array.dtype == object
    if array.ndim == 0:
        if as_b64:
            _write_b64(writer, array.item())
        else:
            writer.raw(_tokens(array.reshape(1))[0])
    elif array.ndim == 1 and not as_b64:
        writer.scalars(_tokens(array))
    else:
        writer.start_array()
        for sub in array:
            _write_tensor(writer, sub, name)
        writer.end_array()


def make_json_from_tensors(outputs: Mapping[str, np.ndarray], fmt: Format) -> str:
    """MakeJsonFromTensors: the predict response body (outputs in name order)."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    writer = PrettyWriter()
    writer.start_object()
    several = len(names) > 1
    if fmt is Format.ROW:
        batch = -1
        for name in names:
            array = outputs[name]
            if array.ndim == 0:
                raise invalid_argument("Tensor name: ", name, " has no shape information ")
            if batch >= 0 and array.shape[0] != batch:
                raise invalid_argument("Tensor name: ", name, " has inconsistent batch size: ",
                                       array.shape[0], " expecting: ", batch)
            batch = array.shape[0]
        writer.key(PREDICTIONS_KEY)
        writer.start_array()
        for row in range(batch):
            if several:
                writer.start_object()
            writer.single_line = True
            for name in names:
                if several:
                    writer.key(name)
                _write_tensor(writer, outputs[name][row], name)
            writer.single_line = False
            if several:
                writer.end_object()
        writer.end_array()
    else:
        writer.key(OUTPUTS_KEY)
        if several:
            writer.start_object()
        for name in names:
            if several:
                writer.key(name)
            _write_tensor(writer, outputs[name], name)
        if several:
            writer.end_object()
    writer.end_object()
    return writer.text()


def make_json_from_error(message: str) -> str:
    """MakeJsonFromStatus: {"error": "<message>"}, pretty-printed."""
    writer = PrettyWriter()
    writer.start_object()
    writer.key(ERROR_KEY)
    writer.raw(json_string(message))
    writer.end_object()
    return writer.text()


# --- requests -----------------------------------------------------------------------------------
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


def utf8(text: str) -> bytes:
    """`text` as the bytes rapidjson would hold: invalid UTF-8 of the request kept as it came
    (decoded with surrogateescape), a lone \\uDC00-style escape as its 3 bytes."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return b"".join(c.encode("utf-8", "surrogateescape" if "\udc80" <= c <= "\udcff" else "surrogatepass")
                        for c in text)


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
    except _NumberTooBig as e:
        doc, end, error = None, len(text), (_NUMBER_TOO_BIG, max(text.find(e.literal), 0))
    except RecursionError:
        raise invalid_argument("JSON Parse error: The document is nested too deeply") from None
    surrogate = _LONE_HIGH_SURROGATE.search(text, 0, end if error is None else len(text)) if "\\u" in text else None
    if surrogate is not None and (error is None or surrogate.start(1) < error[1]):
        error = (_BAD_SURROGATE, surrogate.start(1))  # rapidjson stops there, Python reads on
    if error is not None:
        raise invalid_argument("JSON Parse error: ", error[0], " at offset: ", error[1])
    if not isinstance(doc, dict):
        raise invalid_argument("JSON Value: ", debug_string(doc), " Is not object")
    return doc


def signature_name(doc: Mapping[str, Any]) -> str:
    """FillSignature: the optional string `signature_name` ("" when absent)."""
    if SIGNATURE_KEY not in doc:
        return ""
    name = doc[SIGNATURE_KEY]
    if not isinstance(name, str):
        raise invalid_argument("JSON Value: ", debug_string(doc),
                               " not formatted correctly. 'signature_name' key must be a string value.")
    return name


def _is_b64_object(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64_KEY), str)


def _decode_b64(value: Any) -> bytes:
    if not _is_b64_object(value):
        raise invalid_argument("JSON Value: ", debug_string(value), " not formatted correctly for base64 data")
    text = value[B64_KEY]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode")


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid_argument("JSON Value: ", debug_string(value), " Type: ", json_type(value),
                            " is not of expected type: ", dtype_name(dtype))


def _checked_value(value: Any, dtype: int) -> Any:
    """AddValueToTensor: `value` as the signature's type, or a type error."""
    if isinstance(value, dict):
        if dtype == types_pb2.DT_STRING:
            return _decode_b64(value)
        raise _type_error(value, dtype)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        return float(value)
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return utf8(value)
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    raise ServingError("UNIMPLEMENTED", f"Conversion of JSON Value: {debug_string(value)} to type: "
                                        f"{dtype_name(dtype)}")


def _dense_shape(value: Any) -> List[int]:
    """GetDenseTensorShape: the sizes of the first element at each nesting level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: List[int], dtype: int, flat: List[Any]) -> None:
    """FillTensorProto: walks the nested lists, checking every level's size and every value's type."""
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid_argument("JSON Value: ", debug_string(value), " found at incorrect level: ",
                                   level + 1, " in the JSON DOM. Expected at level: ", len(shape))
        flat.append(_checked_value(value, dtype))
        return
    if level >= len(shape):
        raise invalid_argument("Encountered list at unexpected level: ", level, " expected < ", len(shape))
    if len(value) != shape[level]:
        raise invalid_argument("Encountered list at unexpected size: ", len(value), " at level: ", level,
                               " expected size: ", shape[level])
    if level == len(shape) - 1 and not any(isinstance(v, list) for v in value):
        flat.extend(_checked_value(v, dtype) for v in value)  # the innermost lists: most values
        return
    for v in value:
        _fill(v, level + 1, shape, dtype, flat)


def _to_array(flat: List[Any], shape: List[int], dtype: int) -> np.ndarray:
    np_dtype = NUMPY_DTYPES.get(dtype)
    if np_dtype is None:
        raise ServingError("UNIMPLEMENTED", f"Conversion of JSON to type: {dtype_name(dtype)}")
    if np_dtype is object:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    elif np_dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):
            array = np.array(flat, dtype=np.float64).astype(np_dtype)  # too large for float: inf
    elif np_dtype == np.bool_:
        array = np.array(flat, dtype=np.bool_)
    elif np_dtype == np.uint64:
        array = np.array(flat, dtype=np.uint64)
    else:
        array = np.array(flat, dtype=np.int64).astype(np_dtype)  # int8/16/uint8 wrap as a proto cast does
    return array.reshape(shape)


MAX_DIMS = 64  # numpy's limit (NPY_MAXDIMS); TensorFlow's is 254


def _tensor_from_value(value: Any, dtype: int, batch_dim: bool = False) -> Tuple[np.ndarray, int]:
    """The tensor of one JSON value (`batch_dim`: an element of `instances`, to be stacked)."""
    shape = _dense_shape(value)
    if len(shape) + batch_dim > MAX_DIMS:  # deeper than any array can be: refused before walking it
        raise invalid_argument("JSON Value: ", debug_string(value), " is nested ", len(shape), " lists deep",
                               " (and batched)" if batch_dim else "", ": a tensor of at most ", MAX_DIMS,
                               " dimensions is supported")
    flat: List[Any] = []
    _fill(value, 0, shape, dtype, flat)
    return _to_array(flat, shape, dtype), len(flat)


def _from_instances(instances: List[Any], input_dtypes: Mapping[str, int]) -> Dict[str, np.ndarray]:
    """FillTensorMapFromInstancesList: one element per row, batched on a new dimension 0."""
    def is_element_object(v):
        return isinstance(v, dict) and not _is_b64_object(v)

    if not isinstance(instances[0], dict) and len(input_dtypes) > 1:
        raise invalid_argument("instances is a plain list, but expecting list of objects as multiple "
                               "input tensors required as per tensorinfo_map")
    objects = is_element_object(instances[0])
    names = sorted(input_dtypes)
    rows: Dict[str, List[np.ndarray]] = {}
    sizes: Dict[str, int] = {}
    shapes: Dict[str, Tuple[int, ...]] = {}

    def add(item, name):
        if name not in input_dtypes:
            raise invalid_argument("JSON object: does not have named input: ", name)
        array, size = _tensor_from_value(item, input_dtypes[name], batch_dim=True)
        if name not in sizes:
            sizes[name], shapes[name] = size, array.shape
        elif sizes[name] != size:
            raise invalid_argument("Expecting tensor size: ", sizes[name], " but got: ", size)
        elif shapes[name] != array.shape:
            raise invalid_argument("Expecting shape ", _shape_text(shapes[name]), " but got: ",
                                   _shape_text(array.shape))
        rows.setdefault(name, []).append(array)

    for index, element in enumerate(instances):
        if objects:
            if not is_element_object(element):
                raise invalid_argument("Expecting object but got list at item ", index, " of input list")
            for name, item in element.items():
                try:
                    add(item, name)
                except ServingError as e:
                    raise invalid_argument("Failed to process element: ", index, " key: ", name,
                                           " of 'instances' list. Error: ", e)
            if set(element) != set(names):
                raise invalid_argument("Failed to process element: ", index, " of 'instances' list. JSON object: ",
                                       debug_string(element), " keys must be equal to: ", ",".join(names))
        else:
            if is_element_object(element):
                raise invalid_argument("Expecting value/list but got object at item ", index, " of input list")
            try:
                add(element, names[0])
            except ServingError as e:
                raise invalid_argument("Failed to process element: ", index, " of 'instances' list. Error: ", e)
    return {name: np.stack(arrays) for name, arrays in rows.items()}


def _shape_text(shape: Tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _from_inputs(inputs: Any, input_dtypes: Mapping[str, int]) -> Dict[str, np.ndarray]:
    """FillTensorMapFromInputsMap: one tensor, or an object with every named input."""
    if not isinstance(inputs, dict) or _is_b64_object(inputs):
        if len(input_dtypes) > 1:
            raise invalid_argument("inputs is a plain value/list, but expecting an object as multiple "
                                   "input tensors required as per tensorinfo_map")
        name = next(iter(input_dtypes))
        return {name: _tensor_from_value(inputs, input_dtypes[name])[0]}
    tensors = {}
    for name in sorted(input_dtypes):
        if name not in inputs:
            raise invalid_argument("Missing named input: ", name, " in 'inputs' object.")
        tensors[name] = _tensor_from_value(inputs[name], input_dtypes[name])[0]
    return tensors


def parse_predict_request(doc: Mapping[str, Any], input_dtypes: Mapping[str, int],
                          signature: str) -> Tuple[Dict[str, np.ndarray], Format]:
    """FillPredictRequestFromJson, after the signature's inputs (name -> DataType) are known."""
    if not input_dtypes:
        raise invalid_argument("Failed to get input map for signature: ", signature or "DEFAULT")
    has_instances, has_inputs = INSTANCES_KEY in doc, INPUTS_KEY in doc
    if has_instances and has_inputs:
        raise invalid_argument("JSON Value: ", debug_string(doc), " Not formatted correctly expecting only",
                               " one of '", INPUTS_KEY, "' or '", INSTANCES_KEY, "' keys to exist ")
    if has_instances:
        instances = doc[INSTANCES_KEY]
        if not isinstance(instances, list):
            raise invalid_argument("JSON Value: ", debug_string(doc), " Expecting '", INSTANCES_KEY,
                                   "' to be an list/array")
        if not instances:
            raise invalid_argument("JSON Value: ", debug_string(doc), " No values in '", INSTANCES_KEY, "' array")
        return _from_instances(instances, input_dtypes), Format.ROW
    if has_inputs:
        return _from_inputs(doc[INPUTS_KEY], input_dtypes), Format.COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


# --- classify / regress requests ----------------------------------------------------------------
_INT64_MIN, _UINT64_MAX = -2**63, 2**64 - 1


def _feature_kind(value: Any, name: str, kind: Optional[str]) -> str:
    """AddValueToFeature: the kind of feature list (`int64`, `float`, `bytes`) one JSON value goes
    to, given the kind the feature already has (None: not set yet)."""
    def incompatible(want: str) -> None:
        if kind is not None and kind != want:
            raise invalid_argument("Unexpected element type in feature: ", name, " expecting type: ", kind)

    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64_object(value)):
        raise invalid_argument("Feature: ", name, " has element with unexpected JSON type: ", json_type(value))
    if isinstance(value, bool):
        incompatible("int64")
        return "int64"
    if isinstance(value, dict):
        incompatible("bytes")
        _decode_b64(value)
        return "bytes"
    if isinstance(value, str):
        incompatible("bytes")
        return "bytes"
    if isinstance(value, float) or not _INT64_MIN <= value <= _UINT64_MAX:  # rapidjson: a double
        incompatible("float")
        return "float"
    incompatible("int64")
    if value > 2**63 - 1:
        raise invalid_argument("Feature: ", name, " has uint64_t element. Only int64_t is supported.")
    return "int64"


def _check_example(value: Any) -> None:
    """MakeExampleFromJsonObject: an object of features, each a value or a list of values of one kind."""
    if not isinstance(value, dict):
        raise invalid_argument("Example must be JSON object but got JSON ", json_type(value))
    for name, content in value.items():
        kind = None
        for item in content if isinstance(content, list) else [content]:
            kind = _feature_kind(item, name, kind)


def check_classify_regress_request(doc: Mapping[str, Any]) -> int:
    """FillClassifyRegressRequestFromJson after ParseJson and FillSignature: the optional `context`
    example and the non-empty `examples` list (TF Serving's message says "classify" for regress
    too). Returns the number of examples."""
    if CONTEXT_KEY in doc:
        _check_example(doc[CONTEXT_KEY])
    if EXAMPLES_KEY not in doc:
        raise invalid_argument("JSON Value: ", debug_string(doc), " When method is classify, key '", EXAMPLES_KEY,
                               "' is expected and was not found")
    examples = doc[EXAMPLES_KEY]
    if not isinstance(examples, list):
        raise invalid_argument("JSON Value: ", debug_string(doc), " Expecting '", EXAMPLES_KEY,
                               "' value to be an list/array")
    if not examples:
        raise invalid_argument("JSON Value: ", debug_string(doc), " '", EXAMPLES_KEY, "' value is an empty array")
    for example in examples:
        _check_example(example)
    return len(examples)
