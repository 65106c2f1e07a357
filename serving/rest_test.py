"""The REST routing as TF Serving's (http_server.cc's dispatcher, http_rest_api_util.cc's regular
expressions, HttpRestApiHandler::ProcessRequest), on a server with no model loaded: every answer
here is an error whose text shows which handler took the request."""

import asyncio

import httpx
import pytest

from serving import model_manager, rest


class Client:
    """Requests straight to the ASGI app (httpx's ASGITransport: raw_path without the query string,
    the query in query_string, as uvicorn passes them)."""

    def __init__(self, app):
        self.app = app

    def request(self, method, path, **kwargs):
        async def send():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                         base_url="http://127.0.0.1") as c:
                return await c.request(method, path, **kwargs)
        return asyncio.run(send())

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def options(self, path, **kwargs):
        return self.request("OPTIONS", path, **kwargs)


def app_client(tmp_path, **options):
    manager = model_manager.ModelManager("m", str(tmp_path / "no-models"), poll_seconds=60)
    return Client(rest.create_app(manager, **options))


@pytest.fixture()
def client(tmp_path):
    return app_client(tmp_path)


def error(response):
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()["error"]


def test_the_v1_prefix_and_the_path_regexes_ignore_case(client):
    assert error(client.post("/V1/MODELS/m:predict", content=b'{"instances": [1]}')) == (
        404, "Servable not found for request: Latest(m)")
    assert error(client.get("/v1/Models/m")) == (404, "Could not find any versions of model m")


def test_the_verb_and_metadata_are_compared_as_written(client):
    """The regexes match `:PREDICT` and `/METADATA`, then ProcessRequest compares them with
    "predict" and "metadata": the first is malformed, the second is a model status request."""
    assert error(client.post("/v1/models/m:PREDICT", content=b"{}")) == (
        400, "Malformed request: POST /v1/models/m:PREDICT")
    assert error(client.get("/v1/models/m/METADATA")) == (404, "Could not find any versions of model m")
    assert error(client.get("/v1/models/m/metadata")) == (404, "Servable not found for request: Latest(m)")


def test_the_query_string_is_part_of_the_path_tf_serving_matches(client):
    """libevent's uri_path() is the path and its query: a client that adds one fails on TF Serving too."""
    assert error(client.post("/v1/models/m:predict?x=1", content=b"{}")) == (
        400, "Malformed request: POST /v1/models/m:predict?x=1")
    assert error(client.get("/v1/models/m?x=1")) == (404, "Could not find any versions of model m?x=1")


def test_names_are_percent_decoded_and_outside_v1_is_404(client):
    assert error(client.get("/v1/models/m%2Fx")) == (404, "Could not find any versions of model m/x")
    assert error(client.get("/v1/models/a+b%20c")) == (404, "Could not find any versions of model a+b c")
    response = client.get("/v1/models/caf%E9")  # not UTF-8: the bytes come back as they were sent
    assert response.status_code == 404 and response.content.endswith(b'model caf\xe9"\n}')
    for request in (client.get("/v1/models/m/versions/99999999999999999999"),  # ParseModelInfo fails: no body
                    client.post("/v1/models/m/versions/99999999999999999999:predict", content=b"{}")):
        assert (request.status_code, request.content, request.headers["content-type"]) == (
            400, b"", "application/json")
    assert error(client.put("/v1/models/m:predict", content=b"{}")) == (
        400, "Malformed request: PUT /v1/models/m:predict")
    for path in ("/v1", "/", "/v2/models/m", "/models/m"):
        response = client.get(path)
        assert response.status_code == 404 and "error" not in response.text, path


def test_options_is_a_cors_preflight(client):
    ok = client.options("/v1/models/m:predict", headers={"Origin": "https://example.com"})
    assert (ok.status_code, ok.content) == (200, b"")
    refused = client.options("/v1/models/m:predict")
    assert (refused.status_code, refused.content) == (400, b"")
    assert "access-control-allow-origin" not in ok.headers  # only with --rest_api_enable_cors_support


def test_a_client_gone_mid_body_is_no_server_error(client, caplog):
    """Found by exploratory testing: a client that disconnected before sending its whole body was
    logged at ERROR as the server's failure (INTERNAL)."""
    import logging

    sent = []
    messages = iter([{"type": "http.request", "body": b'{"inputs": ', "more_body": True},
                     {"type": "http.disconnect"}])

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/models/m:predict", "raw_path": b"/v1/models/m:predict",
             "query_string": b"", "headers": [(b"content-length", b"100")], "server": ("127.0.0.1", 8501),
             "client": ("127.0.0.1", 5000)}
    with caplog.at_level(logging.INFO):
        asyncio.run(client.app(scope, receive, send))
    assert sent[0]["status"] == 499
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_cors_headers_with_the_flag(tmp_path):
    c = app_client(tmp_path, enable_cors=True)
    for response in (c.get("/v1/models/m"), c.options("/v1/models/m", headers={"Origin": "http://x"})):
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["access-control-allow-methods"] == "POST, GET"
        assert response.headers["access-control-allow-headers"] == "Content-Type"


def test_a_gzipped_body_is_uncompressed_as_tf_serving_does(client, caplog):
    """Found by exploratory testing: `Content-Encoding: gzip` bodies, which TF Serving's HTTP server
    uncompresses (auto_uncompress_input), read as bad JSON."""
    import gzip

    path = "/v1/models/m:predict"
    zipped = gzip.compress(b'{"instances": [1]}')
    # uncompressed: past the JSON, to the model lookup (none is loaded here)
    assert error(client.post(path, content=zipped, headers={"Content-Encoding": "gzip"})) == \
        error(client.post(path, content=b'{"instances": [1]}'))
    # not gzip, or over 10 MiB uncompressed: an empty document, as TF Serving reads it, and a log line
    empty = error(client.post(path, content=b""))
    assert "document is empty" in empty[1]
    assert error(client.post(path, content=b'{"instances": [1]}', headers={"Content-Encoding": "gzip"})) == empty
    bomb = gzip.compress(b" " * (rest.GZIP_MAX_BYTES + 1))
    assert error(client.post(path, content=bomb, headers={"Content-Encoding": "x-gzip"})) == empty
    assert "over 10 MiB uncompressed" in caplog.text
