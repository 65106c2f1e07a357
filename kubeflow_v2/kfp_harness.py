"""The harness's open-source-KFP mode: runs a KFP pipeline package (kubeflow_v2_runner.py
--target kfp) on this machine, task by task, the way the KFP 2 backend (kubeflow/pipelines
2.17.0) runs it where its source says how (kubeflow_v2/kfp_backend.py has the rules, with their
files and lines).

    make compile-kfp ARGS="--bucket unused --image unused --pipeline-root outputs/kfp/root \\
        --data-root data/asos --schema-dir $PWD/schema --serving-model-dir outputs/kfp/serving"
    env/run-in-env python -m kubeflow_v2.harness outputs/kfp/asos-recommender-pipeline.yaml \\
        --kfp --log-dir outputs/kfp/logs [--runs 2]

What the backend does, and what this mode does the same way:

- Reads the package as the API server does: one bare PipelineSpec, schema version 2.1.0 only.
- Before the run, compiles it as the backend does: a resolver task (or any executor other than
  a container or an importer) is refused with the API server's message, and so is a task name
  Argo would refuse; nothing runs.
- Container tasks: no lifecycle hook runs (KFP ignores `lifecycle.preCacheCheck`). The
  ExecutorInput is the driver's: parameters only as `parameterValues` (2.1 constants, checked
  against their declared types, component defaults added); input artifacts named by their ML
  Metadata id, with an empty type (`instanceSchema: ""`), their metadata as ML Metadata returns
  it (numbers as doubles) plus `display_name` and `store_session_info`; output artifacts named by
  their key, at `<root>/<pipeline>/<run id>/<task>/<uuid>/<key>`, with the launcher's extra
  `executor-logs` output (the task's log is kept there); the output file
  `<task dir>/output_metadata.json`, read strictly after the container exits 0; a reported URI or
  metadata replaces the declared one (only the first artifact per key).
- The cache: only where a task's `cachingOptions.enableCache` is on; the key is KFP's (the input
  artifacts' ids, parameter values, declared outputs, image, command and args), per pipeline name.
- Importers: the artifact URI must be a bucket URI (else the launcher's error); the same URI,
  type and metadata gives the same artifact again unless `reimport`.

What this mode cannot be: the pipeline root here is a local directory standing in for the
bucket (the backend takes only gs://, s3://, minio:// roots, and its launcher then copies every
input artifact into the pod and fails on directory markers: docs/kubeflow.md), the image is
this environment, and there is no Argo, Kubernetes or service account.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import time
import uuid
from typing import Any, Callable, Dict, Optional

from kubeflow_v2 import harness, kfp_backend
from kubeflow_v2.harness import TaskFailed, TaskResult

METADATA_FILE = "kfp_local_metadata.json"
# What the launcher records as the provider of a gs:// root with credentials from the pod
# (metadata/client.go RecordArtifact): the local root stands in for such a bucket.
_STORE_SESSION = json.dumps({"Provider": "gs", "Params": {"fromEnv": "true"}}, separators=(",", ":"))


class KfpLocalRunner(harness.VertexLocalRunner):
    """Runs one KFP package; `run()` once per pipeline run (same store, same cache)."""

    LABEL = "[kfp-local]"
    METADATA_FILE = METADATA_FILE
    LOCAL_IMPORTS = False  # an importer's URI must be a bucket's: refused when the task runs, as the launcher does

    def __init__(self, package_path: str, log_dir: str, *, pipeline_root: Optional[str] = None,
                 namespace: str = "", max_parallel: int = 2, python: str = sys.executable,
                 progress: Optional[Callable[[str], None]] = None):
        with open(package_path) as f:
            spec = kfp_backend.load_package(f.read())
        kfp_backend.check_schema_version(spec)
        kfp_backend.check_compiles(spec)
        root = pipeline_root or spec.get("defaultPipelineRoot")
        if not root:
            raise ValueError("no pipeline root: the package has no defaultPipelineRoot; pass one")
        self.pipeline_name = spec["pipelineInfo"]["name"]
        self.namespace = namespace
        self._setup(spec, root, log_dir, max_parallel, python, progress)

    def _new_run_id(self) -> str:
        return str(uuid.uuid4())  # KFP's run ids

    # --- ML Metadata ----------------------------------------------------------------------------
    def _register(self, artifact: Dict[str, Any], run_id: str, task: str) -> Dict[str, Any]:
        """Records an artifact; its ML Metadata id becomes its name (as consumers see it)."""
        record = dict(artifact, name=str(len(self.store.data["artifacts"]) + 1), pipeline=self.pipeline_name)
        self.store.add(record, run_id, task)
        return {k: copy.deepcopy(record[k]) for k in ("name", "uri", "type", "metadata")} | {
            "display_name": artifact.get("display_name", "")}

    # --- inputs ---------------------------------------------------------------------------------
    def _input_artifacts(self, name: str, done: Dict[str, TaskResult]) -> Dict[str, Dict[str, Any]]:
        result = {}
        for key, found in super()._input_artifacts(name, done).items():
            result[key] = {"artifacts": [{
                "name": a["name"],
                "uri": a["uri"],
                "type": {"instanceSchema": ""},  # metadata/client.go:1144: the schema is not read back
                "metadata": {**{k: kfp_backend.mlmd_value(v) for k, v in a.get("metadata", {}).items()},
                             "display_name": a.get("display_name", ""), "store_session_info": _STORE_SESSION},
            } for a in found["artifacts"]]}
        return result

    def _input_parameters(self, name: str):
        """(None, parameterValues): 2.1 constants, the component's defaults for the others."""
        declared = self._component(name).get("inputDefinitions", {}).get("parameters", {})
        values = {}
        for key, spec in self.tasks[name].get("inputs", {}).get("parameters", {}).items():
            runtime = spec.get("runtimeValue")
            if runtime is None or "constant" not in runtime:
                raise ValueError(f"task {name}: parameter {key} {spec} is not a compiled 2.1 constant "
                                 "(runtimeValue.constant); pipeline parameters are not supported by this harness")
            values[key] = runtime["constant"]
        for key, definition in declared.items():
            if key not in values and "defaultValue" in definition:
                values[key] = definition["defaultValue"]  # launcher_v2.go addDefaultParams
        return None, {k: kfp_backend.parameter_value(k, v, declared.get(k, {}).get("parameterType"))
                      for k, v in values.items()}

    # --- importers ------------------------------------------------------------------------------
    def _run_in_orchestrator(self, name: str, kind: str, done, run_id: str) -> TaskResult:
        if kind != "importer":  # check_compiles refused it before the run
            raise ValueError(f"task {name}: {kind} tasks do not run on KFP")
        start = time.time()
        importer = self._executor(name)["importer"]
        uri = importer["artifactUri"].get("constant", "")
        try:
            kfp_backend.check_importer_uri(uri)
        except kfp_backend.BackendError as e:
            raise TaskFailed(f"task {name} failed: {e}") from None
        metadata = {**importer.get("metadata", {}), "store_session_info": _STORE_SESSION}
        title = harness._title(importer["typeSchema"])
        existing = [a for a in self.store.query(f'schema_title="{title}"')
                    if a["uri"] == uri and a["metadata"] == metadata and a.get("pipeline") == self.pipeline_name]
        (key,) = self._component(name).get("outputDefinitions", {}).get("artifacts", {})
        if existing and not importer.get("reimport", False):
            artifact = {k: copy.deepcopy(existing[0][k]) for k in ("name", "uri", "type", "metadata")}
            artifact["display_name"] = key
        else:
            artifact = self._register({"uri": uri, "type": importer["typeSchema"], "metadata": metadata,
                                       "display_name": key}, run_id, name)
        self.progress(f"{self.LABEL} {name}: imported {uri} (artifact {artifact['name']})")
        return TaskResult(name, kind, {key: [artifact]}, seconds=time.time() - start)

    # --- containers -----------------------------------------------------------------------------
    def _prepare(self, name: str, done, run_id: str) -> Dict[str, Any]:
        component = self._component(name)
        container = self._executor(name)["container"]
        if container.get("lifecycle"):
            self.progress(f"{self.LABEL} {name}: lifecycle hooks {sorted(container['lifecycle'])} not run "
                          "(the KFP backend ignores them)")
        task_dir = kfp_backend.task_root(kfp_backend.run_root(self.root, self.pipeline_name, run_id),
                                         name, str(uuid.uuid4()))
        _, values = self._input_parameters(name)
        outputs_spec = component.get("outputDefinitions", {})
        if outputs_spec.get("parameters"):
            raise ValueError(f"task {name}: output parameters are not supported by this harness")
        outputs = {}
        for key, definition in outputs_spec.get("artifacts", {}).items():
            artifact = {"name": key, "uri": f"{task_dir}/{key}", "type": definition["artifactType"]}
            if definition.get("metadata"):
                artifact["metadata"] = definition["metadata"]
            outputs[key] = {"artifacts": [artifact]}
        outputs[kfp_backend.EXECUTOR_LOGS] = {"artifacts": [{
            "name": kfp_backend.EXECUTOR_LOGS, "uri": f"{task_dir}/{kfp_backend.EXECUTOR_LOGS}",
            "type": kfp_backend.EXECUTOR_LOGS_TYPE}]}
        inputs = self._input_artifacts(name, done)
        executor_input = {  # Go's protojson leaves out empty maps
            "inputs": {k: v for k, v in (("artifacts", inputs), ("parameterValues", values)) if v},
            "outputs": {"artifacts": outputs,
                        "outputFile": f"{task_dir}/{kfp_backend.OUTPUT_METADATA_FILE}"},
        }
        fingerprint = kfp_backend.cache_fingerprint(
            {k: [a["name"] for a in v["artifacts"]] for k, v in inputs.items()}, values, outputs_spec,
            container["image"], list(container.get("command", [])) + list(container.get("args", [])))
        key = f"pipeline/{self.pipeline_name}\0{self.namespace}\0{fingerprint}"
        enabled = kfp_backend.caching_enabled(self.tasks[name])
        cached = self.store.data["cache"].get(key) if enabled else None
        return {"executor_input": executor_input, "cache_key": key if enabled else None, "cached": cached,
                "container": container, "started": time.time(), "task_dir": task_dir}

    def _finish(self, name: str, prepared, seconds: float, run_id: str) -> TaskResult:
        """launcher_v2.go: the output metadata file (strict), merged into the declared outputs
        (a reported URI and metadata win), every output recorded, the log as `executor-logs`."""
        from google.protobuf import json_format
        from kfp.pipeline_spec import pipeline_spec_pb2

        executor_input = prepared["executor_input"]
        path = executor_input["outputs"]["outputFile"]
        reported = {}
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            try:
                message = json_format.Parse(text, pipeline_spec_pb2.ExecutorOutput())  # strict, as protojson
            except json_format.ParseError as e:
                raise TaskFailed(f"task {name}: failed to parse the executor output {path}: {e}") from None
            reported = json_format.MessageToDict(message).get("artifacts", {})
        outputs = {}
        for key, declared in executor_input["outputs"]["artifacts"].items():
            artifact = dict(declared["artifacts"][0])
            if key == kfp_backend.EXECUTOR_LOGS:
                os.makedirs(os.path.dirname(artifact["uri"]), exist_ok=True)
                shutil.copyfile(os.path.join(self.log_dir, run_id, name + ".log"), artifact["uri"])
            else:
                found = reported.get(key, {}).get("artifacts", [])
                if found:
                    artifact["uri"] = found[0].get("uri") or artifact["uri"]
                    artifact["metadata"] = {**artifact.get("metadata", {}), **found[0].get("metadata", {})}
            artifact.setdefault("metadata", {})
            outputs[key] = [self._register(dict(artifact, display_name=key), run_id, name)]
        if prepared["cache_key"]:
            self.store.data["cache"][prepared["cache_key"]] = {"run": run_id, "outputs": outputs}
        self.store.save()
        self.progress(f"{self.LABEL} {name}: done in {seconds:.0f} s")
        return TaskResult(name, "container", outputs, seconds=seconds, inputs=harness._inputs_of(executor_input))
