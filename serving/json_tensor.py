"""TF Serving's JSON -> tensor mapping for the REST API, ported from
tensorflow_serving/util/json_tensor.cc (same rules, same error texts). The body is parsed by
serving/json_parse.py; responses are written by serving/json_format.py.

Requests (`FillPredictRequestFromJson`): a JSON object with an optional string `signature_name`
and exactly one of `instances` (row format: a non-empty list, one element per batch row; a list of
objects when the signature has several inputs) or `inputs` (columnar: one value, or an object of
named values). Each tensor's shape is read from the nesting of its lists; every value must have
the signature's type (integers for ints, numbers for floats, strings or `{"b64": ...}` for
strings, true/false for bools). Classify and regress requests (`examples`, optional `context`)
are checked by the same rules (`FillClassifyRegressRequestFromJson`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
from tensorflow.core.framework import types_pb2

from serving.json_format import B64_KEY, Format, debug_string, json_type, utf8
from serving.status import ServingError, invalid_argument

SIGNATURE_KEY = "signature_name"
INSTANCES_KEY = "instances"
INPUTS_KEY = "inputs"
CONTEXT_KEY = "context"
EXAMPLES_KEY = "examples"

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


def dtype_name(dtype: int) -> str:
    """TensorFlow's DataTypeString: DT_INT64 -> int64, DT_FLOAT -> float."""
    return types_pb2.DataType.Name(dtype)[3:].lower()


# --- predict requests ---------------------------------------------------------------------------
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


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_B64_SPACE = str.maketrans("", "", " \t\n\v\f\r")  # absl::ascii_isspace
_B64_PAD = {0: 0, 2: 2, 3: 1}  # data characters mod 4 -> the padding they need


def absl_base64_unescape(text: str) -> Optional[bytes]:
    """absl::Base64Unescape (absl/strings/escaping.cc, Base64UnescapeInternal), which TF Serving's
    JsonDecodeBase64Object calls: the standard alphabet; whitespace anywhere is skipped (so base64
    wrapped in lines, as `base64` and MIME encoders write it, is read); the padding (`=`, or `.`)
    is optional but, when present, exactly what the data needs; None when it is not base64."""
    text = text.translate(_B64_SPACE)
    data = text.rstrip("=.")
    pad = len(text) - len(data)
    need = _B64_PAD.get(len(data) % 4)
    if need is None or pad not in (0, need) or not _B64_ALPHABET.issuperset(data):
        return None
    try:
        return base64.b64decode(data + "=" * need, validate=True)
    except (binascii.Error, ValueError):
        return None


def _decode_b64(value: Any) -> bytes:
    if not _is_b64_object(value):
        raise invalid_argument("JSON Value: ", debug_string(value), " not formatted correctly for base64 data")
    decoded = absl_base64_unescape(value[B64_KEY])
    if decoded is None:
        raise invalid_argument("Unable to base64 decode")
    return decoded


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
                                           " of 'instances' list. Error: ", e) from None
            if set(element) != set(names):
                raise invalid_argument("Failed to process element: ", index, " of 'instances' list. JSON object: ",
                                       debug_string(element), " keys must be equal to: ", ",".join(names))
        else:
            if is_element_object(element):
                raise invalid_argument("Expecting value/list but got object at item ", index, " of input list")
            try:
                add(element, names[0])
            except ServingError as e:
                raise invalid_argument("Failed to process element: ", index,
                                       " of 'instances' list. Error: ", e) from None
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
