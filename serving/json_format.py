"""TF Serving's JSON output, byte for byte, ported from tensorflow_serving/util/json_tensor.cc:
predict responses (`MakeJsonFromTensors`), error bodies (`MakeJsonFromStatus`) and JSON values
quoted in error texts (`JsonValueToDebugString`), laid out as rapidjson's PrettyWriter lays them
out. The requests' side: serving/json_parse.py (the body) and serving/json_tensor.py (tensors).

Responses: `{"predictions": [...]}` for the row format (one element per row; an object per row
when there are several outputs) or `{"outputs": ...}` for the columnar format (the tensor, or an
object of named tensors). Written as rapidjson's PrettyWriter writes them (4-space indent, rows'
arrays on one line), floats as TF Serving prints them: `%g` (six digits) when that reads back to
the same float, else `%.9g` (`%.17g` for doubles), with `.0` added to whole numbers; `NaN`,
`Infinity`, `-Infinity` for non-finite values.
"""

from __future__ import annotations

import base64
import enum
import json
import math
import re
import struct
from typing import Any, List, Mapping, Optional

import numpy as np

from serving.status import invalid_argument

PREDICTIONS_KEY = "predictions"
OUTPUTS_KEY = "outputs"
ERROR_KEY = "error"
B64_KEY = "b64"
BYTES_SUFFIX = "_bytes"
MAX_DEBUG_STRING_BYTES = 256


class Format(enum.Enum):
    """The request's format, which its response keeps."""
    ROW = "row"  # instances -> predictions
    COLUMNAR = "columnar"  # inputs -> outputs


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
        # the limit counts bytes, as StringBuffer::GetSize does (a response has no limit: no need)
        self.size += len(text) if self.limit is None else len(utf8(text))

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
    if kind.kind in "OSU":
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


def utf8(text: str) -> bytes:
    """`text` as the bytes rapidjson would hold: invalid UTF-8 of the request kept as it came
    (decoded with surrogateescape), a lone \\uDC00-style escape as its 3 bytes."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return b"".join(c.encode("utf-8", "surrogateescape" if "\udc80" <= c <= "\udcff" else "surrogatepass")
                        for c in text)
