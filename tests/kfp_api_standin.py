"""A local stand-in of the Kubeflow Pipelines v2beta1 REST API (the endpoints kfp.Client calls to
upload a pipeline, start a run and create a recurring run), for the contract test of
kfp_submit.py. It records every request as it arrived and answers as the KFP 2.17 API server does
for the calls it knows (response fields and error shapes: /work/notes/research-kfp.md §5; upload
checks: apiserver/template). Not a KFP: it runs nothing.

    with KfpApiStandIn(token=None) as api:    # token="T": multi-user, Bearer T required
        ... kfp_submit.main(["--host", api.url, ...])
        api.requests   # [Request(method, path, query, headers, body, files)]
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import http.server
import json
import threading
import urllib.parse
from typing import Any, Dict, List, Optional

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

API = "/apis/v2beta1"


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    files: Dict[str, bytes] = dataclasses.field(default_factory=dict)  # multipart parts by name


class KfpApiStandIn:
    def __init__(self, token: Optional[str] = None, run_state: str = "SUCCEEDED"):
        self.token = token  # multi-user: every call needs "authorization: Bearer <token>"
        self.run_state = run_state
        self.requests: List[Request] = []
        self.experiments: Dict[str, Dict[str, Any]] = {}  # id -> experiment
        self.pipelines: Dict[str, Dict[str, Any]] = {}  # id -> pipeline
        self.versions: Dict[str, List[Dict[str, Any]]] = {}  # pipeline id -> versions, oldest first
        self.packages: Dict[str, bytes] = {}  # version id -> the file uploaded
        self.runs: Dict[str, Dict[str, Any]] = {}
        self.recurring_runs: Dict[str, Dict[str, Any]] = {}
        self.fail_next: Optional[tuple] = None  # (status, body) answered to the next call

    # --- the server -------------------------------------------------------------------------------
    def __enter__(self) -> "KfpApiStandIn":
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, answer = standin._answer(self.command, self.path, dict(self.headers.items()), raw)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls(self) -> List[str]:
        """'METHOD /path' of every request, in order (path without the API prefix)."""
        return [f"{r.method} {r.path[len(API):] if r.path.startswith(API) else r.path}" for r in self.requests]

    # --- the API ----------------------------------------------------------------------------------
    def _answer(self, method: str, target: str, headers: Dict[str, str], raw: bytes):
        parsed = urllib.parse.urlsplit(target)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        lower = {k.lower(): v for k, v in headers.items()}
        files, body = {}, None
        if lower.get("content-type", "").startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {lower['content-type']}\r\n\r\n".encode() + raw)
            files = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                     for part in message.iter_parts()}
        elif raw:
            body = json.loads(raw)
        self.requests.append(Request(method, parsed.path, query, lower, body, files))
        if self.fail_next:
            answer, self.fail_next = self.fail_next, None
            return answer
        if self.token is not None and lower.get("authorization") != f"Bearer {self.token}":
            return 401, {"code": 16, "message": "Unauthenticated: Request header error: there is no user identity "
                                                "header.", "details": []}
        route = (method, parsed.path[len(API):])
        if route == ("GET", "/healthz"):
            return 200, {"multi_user": self.token is not None}
        if route == ("GET", "/experiments"):
            name = _filter_value(query.get("filter"))
            found = [e for e in self.experiments.values()
                     if e["display_name"] == name and e.get("namespace", "") == query.get("namespace", "")]
            return 200, ({"experiments": found, "total_size": len(found)} if found else {})
        if route == ("POST", "/experiments"):
            experiment = dict(body, experiment_id=f"exp-{len(self.experiments) + 1}")
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if route == ("GET", "/pipelines"):
            name = _filter_value(query.get("filter"))
            found = [p for p in self.pipelines.values() if name is None or p["display_name"] == name]
            return 200, ({"pipelines": found, "total_size": len(found)} if found else {})
        if route == ("POST", "/pipelines/upload"):
            return self._upload(files, query.get("name", ""), query.get("namespace", ""))
        if route == ("POST", "/pipelines/upload_version"):
            return self._upload_version(files, query.get("name", ""), query.get("pipelineid", ""))
        if method == "GET" and parsed.path.startswith(f"{API}/pipelines/") and parsed.path.endswith("/versions"):
            versions = self.versions.get(parsed.path.split("/")[-2], [])
            if query.get("sort_by") == "created_at desc":
                versions = versions[::-1]
            size = int(query.get("page_size") or 10)
            return 200, {"pipeline_versions": versions[:size], "total_size": len(versions)}
        if route == ("POST", "/runs"):
            return self._create("run", body, self.runs)
        if route == ("POST", "/recurringruns"):
            return self._create("recurring_run", body, self.recurring_runs)
        if method == "GET" and parsed.path.startswith(f"{API}/runs/"):
            run = self.runs.get(parsed.path.split("/")[-1])
            if run is None:
                return 404, {"code": 5, "message": "Run not found", "details": []}
            return 200, dict(run, state=self.run_state)
        return 404, {"code": 5, "message": f"Not Found: {method} {parsed.path}", "details": []}

    def _check_spec(self, files: Dict[str, bytes]):
        """The upload server's checks (template.go): one bare PipelineSpec, strict, schema 2.1.0."""
        content = files.get("uploadfile")
        if content is None:
            return {"error_message": "Failed to create a pipeline: the file is missing (uploadfile)"}
        try:
            spec = yaml.safe_load(content)
            json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
        except Exception:  # noqa: BLE001  any parse error is the server's "unknown template format"
            return {"error_message": "Failed to create a pipeline: unknown template format"}
        if spec.get("schemaVersion") != "2.1.0":
            return {"error_message": "KFP only supports schema version 2.1.0, but the pipeline spec has "
                                     f"version {spec.get('schemaVersion')}"}
        return None

    def _upload(self, files, name: str, namespace: str):
        problem = self._check_spec(files)
        if problem:
            return 400, problem
        if any(p["display_name"] == name for p in self.pipelines.values()):
            return 409, {"error_message": "Failed to create a pipeline and a pipeline version: "
                                          f"pipeline {name} already exists"}
        pipeline_id = f"p-{len(self.pipelines) + 1}"
        self.pipelines[pipeline_id] = {"pipeline_id": pipeline_id, "display_name": name, "namespace": namespace}
        self.versions[pipeline_id] = [{"pipeline_id": pipeline_id, "pipeline_version_id": f"{pipeline_id}-v1",
                                       "display_name": name}]
        self.packages[f"{pipeline_id}-v1"] = files["uploadfile"]
        return 200, self.pipelines[pipeline_id]

    def _upload_version(self, files, name: str, pipeline_id: str):
        problem = self._check_spec(files)
        if problem:
            return 400, problem
        if pipeline_id not in self.pipelines:
            return 404, {"error_message": f"Failed to create a pipeline version: pipeline {pipeline_id} not found"}
        versions = self.versions[pipeline_id]
        if any(v["display_name"] == name for v in versions):
            return 409, {"error_message": f"Failed to create a pipeline version: version {name} already exists"}
        version = {"pipeline_id": pipeline_id, "pipeline_version_id": f"{pipeline_id}-v{len(versions) + 1}",
                   "display_name": name}
        versions.append(version)
        self.packages[version["pipeline_version_id"]] = files["uploadfile"]
        return 200, version

    def _create(self, kind: str, body: Dict[str, Any], store: Dict[str, Dict[str, Any]]):
        reference = body.get("pipeline_version_reference") or {}
        known = [v["pipeline_version_id"] for v in self.versions.get(reference.get("pipeline_id"), [])]
        if reference.get("pipeline_version_id") not in known:
            return 404, {"code": 5, "message": f"Failed to create a {kind}: pipeline version "
                                               f"{reference} not found", "details": []}
        if body.get("experiment_id") not in self.experiments:
            return 404, {"code": 5, "message": f"Failed to create a {kind}: experiment not found", "details": []}
        key = f"{kind}_id"
        created = dict(body, **{key: f"{kind.replace('_', '')}-{len(store) + 1}"})
        store[created[key]] = created
        return 200, created


def _filter_value(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    predicates = json.loads(text).get("predicates", [])
    return predicates[0].get("stringValue") if predicates else None
