"""Errors with TensorFlow Serving's status codes, and the HTTP and gRPC codes TF Serving maps them to.

TF Serving answers every failure with a status (absl/TensorFlow error code + message); its REST
server turns the code into an HTTP status (`ToHTTPStatusCode` in
tensorflow_serving/model_servers/http_server.cc) and the message into `{"error": "<message>"}`;
its gRPC server sends the same code and message as the call's status.
"""

from __future__ import annotations

import re

import grpc

# tensorflow.error.Code (tensorflow/core/protobuf/error_codes.proto) by name
CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

# http_server.cc ToHTTPStatusCode
HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
    "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """A failed request: `code` is a TF status code name (INVALID_ARGUMENT, NOT_FOUND, ...)."""

    def __init__(self, code: str, message: str):
        if code not in CODES or code == "OK":
            raise ValueError(f"not an error code: {code}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return grpc.StatusCode[self.code]

    def __str__(self) -> str:  # absl::Status::ToString()
        return f"{self.code}: {self.message}"


def invalid_argument(*parts) -> ServingError:
    return ServingError("INVALID_ARGUMENT", "".join(str(p) for p in parts))


def not_found(*parts) -> ServingError:
    return ServingError("NOT_FOUND", "".join(str(p) for p in parts))


# What TensorFlow's Python layer wraps around the runtime's message (TF Serving, calling the C++
# Session, reports the runtime's message alone): eager's "Graph execution error:" header, the
# "Detected at node ... defined at (most recent call last):" block with its Python stack (or
# "<stack traces unavailable>"), and the " [Op:__inference_...]" suffix.
_PYTHON_WRAPPING = [
    re.compile(r"\AGraph execution error:\n\n"),
    re.compile(r"^Detected at node .*? defined at \(most recent call last\):\n(?:<stack traces unavailable>\n|"
               r"(?:(?:[ \t].*)?\n)*)", re.M),
    re.compile(r" \[Op:[^\]\n]*\](?: name: [^\n]*)?\Z"),
    # the function's tag, which the Python layer turns into the "Detected at node" block (left
    # as it is when it could not decode the message)
    re.compile(r"\A\{\{function_node [^}\n]*\}\} "),
]


def runtime_message(message: str) -> str:
    """A TensorFlow error's message without the Python layer's wrapping."""
    for pattern in _PYTHON_WRAPPING:
        message = pattern.sub("", message)
    return message


def from_exception(error: BaseException) -> ServingError:
    """A TensorFlow error keeps its code (tf.errors.OpError carries TF's status) and the runtime's
    message; anything else (a bug, a model that raises in Python) is INTERNAL with the exception's text."""
    if isinstance(error, ServingError):
        return error
    if isinstance(error, UnicodeDecodeError) and isinstance(error.object, bytes):
        # TensorFlow's Python layer could not decode the runtime's message, and lost its code: the
        # message quotes the request's bytes (an "example" that is not UTF-8 and no tf.Example), so
        # the request is at fault. TF Serving sends the message's bytes as they are.
        return ServingError("INVALID_ARGUMENT",
                            runtime_message(error.object.decode("utf-8", errors="backslashreplace")))
    code = getattr(error, "error_code", None)  # tf.errors.OpError
    if isinstance(code, int):
        name = next((n for n, c in CODES.items() if c == code and n != "OK"), "UNKNOWN")
        return ServingError(name, runtime_message(getattr(error, "message", str(error))))
    return ServingError("INTERNAL", f"{type(error).__name__}: {error}")
