"""TF Serving's REST API on an ASGI app (FastAPI, run by uvicorn).

Routes are matched as TF Serving matches them (tensorflow_serving/model_servers/http_server.cc,
http_rest_api_util.cc): every path matching `(?i)/v1/.*` goes to one handler, which applies TF
Serving's two regular expressions (case-insensitive, on the raw path with its query string, then
percent-decoding the names; the verb and `metadata` are then compared case-sensitively):

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:(predict|classify|regress)
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]

Anything else under /v1/ is `Malformed request: <METHOD> <path>` (400); other paths are 404; an
OPTIONS request (CORS preflight) is 200 with an `Origin: http(s)://...` header, else 400, with no
body; `--rest_api_enable_cors_support` adds TF Serving's CORS headers. Every failure is TF
Serving's JSON body `{"error": "<message>"}` with the HTTP status TF Serving maps the error's code
to (400 invalid argument / failed precondition, 404 not found, ...), but for a version too large
for int64, which TF Serving answers 400 with no body; the server goes on serving.

Vertex AI's custom-container contract adds two routes when its variables are set: a health route
(GET, 200 once a version is loaded, 503 before) and a predict route (POST, the same as
`:predict` on the served model: `{"instances": [...]}` -> `{"predictions": [...]}`).

With request logging on (request_log.py), a sampled predict call that succeeds is logged as the
PredictRequest and PredictResponse TF Serving builds from the JSON, with its latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import zlib
from typing import Callable, Optional
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from serving import classify_regress, json_format, json_parse, json_tensor, request_log
from serving.model_manager import DEFAULT_SIGNATURE, ModelManager, metadata_json, status_json
from serving.status import ServingError, from_exception, invalid_argument

log = logging.getLogger(__name__)

PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I)
DISPATCH_PATH = re.compile(r"/v1/.*", re.I)  # kHTTPRestApiHandlerPathRegex
JSON = "application/json"
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, GET",
                "Access-Control-Allow-Headers": "Content-Type"}  # AddCORSHeaders
METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]  # what TF Serving's libevent server allows


def _json_response(body: str, status_code: int = 200) -> Response:
    return Response(json_format.utf8(body), status_code=status_code, media_type=JSON)


def _error_response(error: ServingError) -> Response:
    return _json_response(json_format.make_json_from_error(error.message), error.http_status)


def _decode(text: str) -> str:
    """DecodeArg (curl_easy_unescape): %XX decoded to bytes, `+` left as it is; bytes that are not
    UTF-8 kept (surrogateescape), to be written back as they came."""
    return unquote(text, errors="surrogateescape")


class _UnparsedPath(ServingError):
    """A failure of ParseModelInfo, which HttpRestApiHandler::ProcessRequest returns before
    MakeJsonFromStatus writes the error: TF Serving answers its status with an empty body."""


def _version(text: Optional[str]) -> Optional[int]:
    if not text:
        return None
    version = int(text)
    if version >= 2**63:
        raise _UnparsedPath("INVALID_ARGUMENT", f"Failed to convert version: {text} to numeric.")
    return version


class RestApi:
    """The handlers, bound to one ModelManager."""

    def __init__(self, manager: ModelManager, enable_cors: bool = False,
                 requests_log: Optional[request_log.RequestLog] = None):
        self.manager = manager
        self.enable_cors = enable_cors
        self.requests_log = requests_log

    async def predict(self, name: str, version: Optional[int], label: Optional[str], verb: str,
                      body: bytes) -> Response:
        start = time.perf_counter()
        if version is not None and label:  # FillModelSpecWithNameVersionAndLabel
            raise invalid_argument("Both model version (", version, ") and model version label (",
                                   label, ") cannot be supplied.")
        doc = json_parse.parse_json(body)
        signature_name = json_tensor.signature_name(doc)
        if verb != "predict":  # ProcessClassifyRequest / ProcessRegressRequest
            json_tensor.check_classify_regress_request(doc)
            servable = self.manager.servable(name, version, label)
            classify_regress.signature_def(servable.meta_graph, signature_name, verb)
            raise classify_regress.not_run(verb)
        servable = self.manager.servable(name, version, label)
        key = signature_name or DEFAULT_SIGNATURE
        signature = servable.signatures.get(key)
        if signature is None:  # HttpRestApiHandler::GetInfoMap
            raise invalid_argument('Serving signature name: "', key, '" not found in signature def')
        inputs, fmt = json_tensor.parse_predict_request(doc, signature.input_dtypes, signature_name)
        future = servable.predict(signature, inputs)
        outputs = await asyncio.wrap_future(future)
        response = _json_response(json_format.make_json_from_tensors(outputs, fmt))
        logger = self.requests_log.sample() if self.requests_log is not None else None
        if logger is not None:
            logger.log(lambda: request_log.rest_predict_messages(
                name, version, label, signature_name or "", servable.version, signature.name, inputs, outputs),
                servable.version, signature.name, time.perf_counter() - start, "rest")
        return response

    def status_or_metadata(self, name: Optional[str], version: Optional[int], label: Optional[str],
                           subresource: Optional[str]) -> Response:
        if not name:
            raise invalid_argument("Missing model name in request.")
        if subresource == "metadata":
            if version is not None and label:
                raise invalid_argument("Both model version (", version, ") and model version label (",
                                       label, ") cannot be supplied.")
            return _json_response(metadata_json(self.manager.servable(name, version, label).metadata()))
        return _json_response(status_json(self.manager.status(name, version)))  # the label: ignored, as TF Serving

    async def dispatch(self, request: Request) -> Response:
        """Every request not taken by a Vertex AI route: RestApiRequestDispatcher (http_server.cc).
        The path it matches is libevent's uri_path(), the raw path *with* its query string, so
        `/v1/models/m:predict?x=1` is malformed there as here; paths outside `(?i)/v1/.*` are 404."""
        path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        query = request.scope.get("query_string", b"")
        if query:
            path += "?" + query.decode("latin-1")
        if not DISPATCH_PATH.fullmatch(path):
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        if request.method == "OPTIONS":  # a CORS preflight: no body either way
            ok = re.search(r"https?://", request.headers.get("origin", "")) is not None
            response = Response(b"", status_code=200 if ok else 400)
            if not ok:
                log.debug("OPTIONS %s: Origin header is missing in CORS preflight", path)
        else:
            response = await self.v1(request.method, path, request)
        if self.enable_cors:
            response.headers.update(CORS_HEADERS)
        return response

    async def v1(self, method: str, path: str, request: Request) -> Response:
        """A /v1/ request: HttpRestApiHandler::ProcessRequest. The regular expressions ignore case,
        the verb and `metadata` are then compared as written (`:PREDICT` is malformed,
        `/METADATA` is the model status), as TF Serving compares them."""
        try:
            if method == "POST" and (m := PREDICT_PATH.fullmatch(path)):
                name, version, label, verb = m.groups()
                name, version, label = _decode(name), _version(version), label and _decode(label)
                if verb in ("classify", "regress", "predict"):
                    return await self.predict(name, version, label, verb, await _body(request))
            elif method == "GET" and (m := STATUS_PATH.fullmatch(path)):
                name, version, label, sub = m.groups()
                return self.status_or_metadata(name and _decode(name), _version(version),
                                               label and _decode(label), sub)
            raise invalid_argument("Malformed request: ", method, " ", path)
        except _UnparsedPath as e:
            log.debug("%s %s: %s", method, path, e)
            return Response(b"", status_code=e.http_status, media_type=JSON)
        except Exception as e:  # noqa: BLE001 - every failure is an answer; the server goes on
            error = from_exception(e)
            if error.http_status >= 500:
                log.error("%s %s: %s", method, path, error)
            return _error_response(error)

    async def vertex_health(self, request: Request) -> Response:
        current = self.manager.current
        if current is None:
            return _json_response(json_format.make_json_from_error("no model version is loaded yet"), 503)
        return _json_response('{"model": "%s", "version": "%d", "state": "AVAILABLE"}'
                              % (self.manager.name, current.version))

    async def vertex_predict(self, request: Request) -> Response:
        try:
            return await self.predict(self.manager.name, None, None, "predict", await _body(request))
        except Exception as e:  # noqa: BLE001
            return _error_response(from_exception(e))


async def _body(request: Request) -> bytes:
    """The request's body; a client gone before sending all of it is CANCELLED (499, nobody reads
    it), not the server's error (INTERNAL, logged). A body sent with `Content-Encoding: gzip` is
    uncompressed first, as TF Serving's HTTP server does (`_gunzip`)."""
    try:
        body = await request.body()
    except ClientDisconnect:
        raise ServingError("CANCELLED", "the client disconnected before sending its whole request") from None
    if "gzip" in request.headers.get("content-encoding", ""):
        body = _gunzip(body)
    return body


GZIP_MAX_BYTES = 10 * 1024 * 1024  # ZLib::kMaxUncompressedBytes of TF Serving's net_http


def _gunzip(body: bytes) -> bytes:
    """As TF Serving's EvHTTPRequest (auto_uncompress_input, on by default, for any
    Content-Encoding containing "gzip"; found by exploratory testing: a gzipped body read as bad
    JSON): the uncompressed body, at most 10 MiB; a body that is not gzip or uncompresses to more
    is read as empty (TF Serving logs "Failed to uncompress the gzipped body" and answers the
    empty document's parse error), and the log says why."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, GZIP_MAX_BYTES + 1)
    except zlib.error as e:
        log.warning("failed to uncompress the gzipped body (%s): read as empty", e)
        return b""
    if len(out) > GZIP_MAX_BYTES or not inflater.eof:
        log.warning("failed to uncompress the gzipped body (%s): read as empty",
                    "over 10 MiB uncompressed" if len(out) > GZIP_MAX_BYTES else "cut short")
        return b""
    return out


def create_app(manager: ModelManager, health_route: Optional[str] = None,
               predict_route: Optional[str] = None, on_shutdown: Optional[Callable[[], None]] = None,
               enable_cors: bool = False, requests_log: Optional[request_log.RequestLog] = None) -> FastAPI:
    """The ASGI app. Handlers are plain Starlette routes on the FastAPI app: the request body is
    TF Serving's JSON, read by json_parse and json_tensor with TF Serving's rules, not by a pydantic model.
    `on_shutdown` runs when the ASGI server shuts down (uvicorn re-raises SIGTERM afterwards, so
    code after its run() would not)."""
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if on_shutdown is not None:
            on_shutdown()

    api = RestApi(manager, enable_cors=enable_cors, requests_log=requests_log)
    app = FastAPI(title="TF-Serving-compatible model server", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    if health_route:
        app.add_route(health_route, api.vertex_health, methods=["GET"])
    if predict_route:
        app.add_route(predict_route, api.vertex_predict, methods=["POST"])
    app.add_route("/{path:path}", api.dispatch, methods=METHODS)
    app.state.api = api
    return app
