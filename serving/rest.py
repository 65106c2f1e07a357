"""TF Serving's REST API on an ASGI app (FastAPI, run by uvicorn).

Routes are matched as TF Serving matches them (tensorflow_serving/model_servers/
http_rest_api_util.cc): every path under /v1/ goes to one handler, which applies TF Serving's two
regular expressions (case-insensitive, on the raw path, then percent-decoding the names):

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:(predict|classify|regress)
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]

Anything else under /v1/ is `Malformed request: <METHOD> <path>` (400). Every failure is TF
Serving's JSON body `{"error": "<message>"}` with the HTTP status TF Serving maps the error's code
to (400 invalid argument / failed precondition, 404 not found, ...); the server goes on serving.

Vertex AI's custom-container contract adds two routes when its variables are set: a health route
(GET, 200 once a version is loaded, 503 before) and a predict route (POST, the same as
`:predict` on the served model: `{"instances": [...]}` -> `{"predictions": [...]}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Callable, Optional
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import Response

from serving import classify_regress, json_tensor
from serving.model_manager import DEFAULT_SIGNATURE, ModelManager, metadata_json, status_json
from serving.status import ServingError, from_exception, invalid_argument

log = logging.getLogger(__name__)

PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I)
JSON = "application/json"


def _json_response(body: str, status_code: int = 200) -> Response:
    return Response(body.encode("utf-8"), status_code=status_code, media_type=JSON)


def _error_response(error: ServingError) -> Response:
    return _json_response(json_tensor.make_json_from_error(error.message), error.http_status)


def _version(text: Optional[str]) -> Optional[int]:
    if not text:
        return None
    version = int(text)
    if version >= 2**63:
        raise invalid_argument("Failed to convert version: ", text, " to numeric.")
    return version


class RestApi:
    """The handlers, bound to one ModelManager."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    async def predict(self, name: str, version: Optional[int], label: Optional[str], verb: str,
                      body: bytes) -> Response:
        if version is not None and label:  # FillModelSpecWithNameVersionAndLabel
            raise invalid_argument("Both model version (", version, ") and model version label (",
                                   label, ") cannot be supplied.")
        doc = json_tensor.parse_json(body)
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
        return _json_response(json_tensor.make_json_from_tensors(outputs, fmt))

    def status_or_metadata(self, name: Optional[str], version: Optional[int], label: Optional[str],
                           subresource: Optional[str]) -> Response:
        if not name:
            raise invalid_argument("Missing model name in request.")
        if subresource and subresource.lower() == "metadata":
            if version is not None and label:
                raise invalid_argument("Both model version (", version, ") and model version label (",
                                       label, ") cannot be supplied.")
            return _json_response(metadata_json(self.manager.servable(name, version, label).metadata()))
        return _json_response(status_json(self.manager.status(name, version)))  # the label: ignored, as TF Serving

    async def v1(self, request: Request) -> Response:
        """Every /v1/ path: HttpRestApiHandler::ProcessRequest."""
        method = request.method
        path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        try:
            if method == "POST" and (m := PREDICT_PATH.fullmatch(path)):
                name, version, label, verb = m.groups()
                return await self.predict(unquote(name), _version(version), label and unquote(label),
                                          verb.lower(), await request.body())
            if method == "GET" and (m := STATUS_PATH.fullmatch(path)):
                name, version, label, sub = m.groups()
                return self.status_or_metadata(name and unquote(name), _version(version),
                                               label and unquote(label), sub)
            raise invalid_argument("Malformed request: ", method, " ", path)
        except Exception as e:  # noqa: BLE001 - every failure is an answer; the server goes on
            error = from_exception(e)
            if error.http_status >= 500:
                log.error("%s %s: %s", method, path, error)
            return _error_response(error)

    async def vertex_health(self, request: Request) -> Response:
        current = self.manager.current
        if current is None:
            return _json_response(json_tensor.make_json_from_error("no model version is loaded yet"), 503)
        return _json_response('{"model": "%s", "version": "%d", "state": "AVAILABLE"}'
                              % (self.manager.name, current.version))

    async def vertex_predict(self, request: Request) -> Response:
        try:
            return await self.predict(self.manager.name, None, None, "predict", await request.body())
        except Exception as e:  # noqa: BLE001
            return _error_response(from_exception(e))


def create_app(manager: ModelManager, health_route: Optional[str] = None,
               predict_route: Optional[str] = None, on_shutdown: Optional[Callable[[], None]] = None) -> FastAPI:
    """The ASGI app. Handlers are plain Starlette routes on the FastAPI app: the request body is
    TF Serving's JSON, parsed by json_tensor with TF Serving's rules, not by a pydantic model.
    `on_shutdown` runs when the ASGI server shuts down (uvicorn re-raises SIGTERM afterwards, so
    code after its run() would not)."""
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if on_shutdown is not None:
            on_shutdown()

    api = RestApi(manager)
    app = FastAPI(title="TF-Serving-compatible model server", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    if health_route:
        app.add_route(health_route, api.vertex_health, methods=["GET"])
    if predict_route:
        app.add_route(predict_route, api.vertex_predict, methods=["POST"])
    app.add_route("/v1/{path:path}", api.v1, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    app.add_route("/v1", api.v1, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    app.state.api = api
    return app
