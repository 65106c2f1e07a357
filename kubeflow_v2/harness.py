"""Runs a compiled Vertex AI PipelineSpec (the JSON kubeflow_v2_runner.py writes) on this machine,
task by task, the way Vertex AI Pipelines runs it. With --kfp, a KFP package the way open-source
Kubeflow Pipelines 2 runs it (kubeflow_v2/kfp_harness.py).

    make compile ARGS="... --pipeline-root outputs/vertex/root --data-root data/asos ..."   # local roots
    env/run-in-env python -m kubeflow_v2.harness outputs/vertex/asos-recommender-pipeline.json \\
        --log-dir outputs/vertex/logs [--runs 2]

What Vertex does with the JSON, and what this module does in its place:

- Orders the tasks of `pipelineSpec.root.dag` by `dependentTasks` and by the producers of their
  input artifacts, and runs each one once all of those succeeded (two at a time here).
- For a **container** task, builds the `ExecutorInput` (input artifacts as the producers wrote
  them: name, uri, type, metadata; output artifacts with fresh URIs under the pipeline root;
  parameters from `runtimeValue.constantValue`, in both the `parameters` and `parameterValues`
  forms; the `outputFile`), substitutes it for the `{{$}}` placeholder and runs the container's
  `command` + `args` exactly as compiled, in a subprocess of this Python environment (the image's
  `python`) with the image's environment variables. A `lifecycle.preCacheCheck` container (the
  file-based ExampleGen driver) runs first with the same ExecutorInput; its parameters join the
  cache key. The task's `executor_output.json` gives its output artifacts' metadata to consumers.
- Caches as Vertex does when the task's `cachingOptions.enableCache` is on: same component, same
  executor, same input artifacts and parameters -> the earlier execution's outputs, no process.
- An **importer** task registers its `artifactUri` as an artifact of its type (the same one again
  on a later run when `reimport` is off).
- A **resolver** task evaluates its `outputArtifactQueries` filters (`schema_title=...`,
  `state=LIVE`, `metadata.K.number_value=N`, `name="{{$.inputs.artifacts[...].metadata[...]}}"`)
  against every artifact recorded so far and returns the newest match, or none (first run).

Vertex keeps artifacts in its ML Metadata store; here they are kept in a JSON file in the
pipeline root (`vertex_local_metadata.json`): every artifact (name, uri, type, metadata, creation
time, run) and the cache. Each task's output is logged to `<log_dir>/<run>/<task>.log`.

Only a real Vertex run can show what lies outside the JSON: IAM (the service account's access to
the bucket, Dataflow, Artifact Registry), quotas, the image itself (built from the Dockerfile;
here the project's environment stands in for it), gs:// paths, and Dataflow.
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from kubeflow_v2 import harness_task

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METADATA_FILE = "vertex_local_metadata.json"
# The image's ENV (Dockerfile): what every container starts with.
IMAGE_ENV = {
    "TF_USE_LEGACY_KERAS": "1",
    "GRPC_ENABLE_FORK_SUPPORT": "false",
    "PYTHONUNBUFFERED": "1",
}
_ARTIFACT_NAME = "projects/local/locations/local/metadataStores/default/artifacts/{}"
_PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")
STOP_SECONDS = harness_task.STOP_SECONDS  # how long a stopped task may take to end on its Ctrl-C


class TaskFailed(RuntimeError):
    """A task's container exited with an error; the message names the task and shows its log."""


@dataclasses.dataclass
class TaskResult:
    name: str
    kind: str  # container | importer | resolver
    outputs: Dict[str, List[Dict[str, Any]]]  # output key -> RuntimeArtifact dicts
    cached: bool = False
    seconds: float = 0.0
    inputs: Dict[str, List[Dict[str, Any]]] = dataclasses.field(default_factory=dict)  # as the task got them


@dataclasses.dataclass
class RunResult:
    run_id: str
    tasks: Dict[str, TaskResult]

    def artifact(self, task: str, key: str) -> Optional[Dict[str, Any]]:
        """The single artifact a task wrote under `key` (None when it has none: a resolver)."""
        found = self.tasks[task].outputs.get(key, [])
        return found[0] if found else None


class MetadataStore:
    """The artifacts and cache entries of every run on one pipeline root (Vertex's ML Metadata)."""

    def __init__(self, path: str):
        self.path = path
        self.data = {"artifacts": [], "cache": {}, "runs": []}
        if os.path.exists(path):
            with open(path) as f:
                self.data = json.load(f)

    def save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def add(self, artifact: Dict[str, Any], run_id: str, task: str) -> None:
        record = dict(artifact, state="LIVE", run=run_id, task=task,
                      createTime=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                      order=len(self.data["artifacts"]))
        self.data["artifacts"].append(record)

    def query(self, filter_text: str) -> List[Dict[str, Any]]:
        """Artifacts matching a Vertex filter made of `A=B` clauses joined by AND, newest first."""
        clauses = [_clause(c) for c in filter_text.split(" AND ")]
        found = [a for a in self.data["artifacts"] if all(match(a) for match in clauses)]
        return sorted(found, key=lambda a: a["order"], reverse=True)


def _clause(text: str) -> Callable[[Dict[str, Any]], bool]:
    key, sep, value = text.strip().partition("=")
    if not sep:
        raise ValueError(f"resolver filter clause {text!r} is not KEY=VALUE")
    key, value = key.strip(), value.strip()
    if value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    if key == "schema_title":
        return lambda a: _title(a["type"]) == value
    if key == "state":
        return lambda a: a["state"] == value
    if key == "name":
        return lambda a: a["name"] == value
    m = re.fullmatch(r"metadata\.([\w-]+)\.(number_value|string_value|bool_value)", key)
    if m:
        field, kind = m.groups()
        if kind == "number_value":
            return lambda a: isinstance(a["metadata"].get(field), (int, float)) and \
                float(a["metadata"][field]) == float(value)
        if kind == "bool_value":
            return lambda a: a["metadata"].get(field) is (value == "true")
        return lambda a: a["metadata"].get(field) == value
    raise ValueError(f"resolver filter clause {text!r}: {key!r} is not supported by this harness")


def _title(type_schema: Dict[str, Any]) -> str:
    if "schemaTitle" in type_schema:
        return type_schema["schemaTitle"]
    first = type_schema.get("instanceSchema", "").splitlines()[0]
    if not first.startswith("title:"):
        raise ValueError(f"artifact type without a title: {type_schema}")
    return first.split(":", 1)[1].strip()


def _value(constant: Dict[str, Any]) -> Any:
    """A runtimeValue.constantValue (pipeline_spec Value: intValue/doubleValue/stringValue)."""
    if "stringValue" in constant:
        return constant["stringValue"]
    if "intValue" in constant:
        return int(constant["intValue"])
    if "doubleValue" in constant:
        return float(constant["doubleValue"])
    raise ValueError(f"unsupported constant value {constant}")


# Parameters that name a local path a run reads (the pipeline's data root and catalog): checked
# before anything runs (VertexLocalRunner.missing_inputs).
_INPUT_PATHS = {"input_base": "the data root", "catalog_uri": "the catalog"}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def topological_order(tasks: Dict[str, Any]) -> Dict[str, List[str]]:
    """{task: the tasks it waits for}; raises ValueError on an unknown task or a cycle."""
    deps = {}
    for name, task in tasks.items():
        wanted = set(task.get("dependentTasks", []))
        for spec in task.get("inputs", {}).get("artifacts", {}).values():
            if "taskOutputArtifact" in spec:
                wanted.add(spec["taskOutputArtifact"]["producerTask"])
        unknown = wanted - set(tasks)
        if unknown:
            raise ValueError(f"task {name} depends on unknown tasks {sorted(unknown)}")
        deps[name] = sorted(wanted)
    seen, visiting = set(), set()

    def visit(n):
        if n in visiting:
            raise ValueError(f"the DAG has a cycle through {n}")
        if n not in seen:
            visiting.add(n)
            for d in deps[n]:
                visit(d)
            visiting.discard(n)
            seen.add(n)
    for n in tasks:
        visit(n)
    return deps


class VertexLocalRunner:
    """Runs one compiled pipeline JSON; `run()` once per pipeline run (same store, same cache)."""

    LABEL = "[vertex-local]"
    METADATA_FILE = METADATA_FILE
    LOCAL_IMPORTS = True  # an importer's local artifactUri is read here (KFP's take bucket URIs only)

    def __init__(self, job_path: str, log_dir: str, *, max_parallel: int = 2,
                 python: str = sys.executable, progress: Optional[Callable[[str], None]] = None):
        """ValueError, in one line, for a file that is not a pipeline JSON kubeflow_v2_runner.py wrote."""
        try:
            with open(job_path) as f:
                self.job = json.load(f)
            spec, root = self.job["pipelineSpec"], self.job["runtimeConfig"]["gcsOutputDirectory"]
        except OSError as e:
            raise ValueError(f"cannot read {job_path}: {e.strerror or e}") from None
        except (ValueError, KeyError, TypeError) as e:  # not JSON, or not a compiled PipelineJob
            raise ValueError(f"{job_path} is not a pipeline JSON compiled by kubeflow_v2_runner.py "
                             f"({type(e).__name__}: {e})") from None
        self._setup(spec, root, log_dir, max_parallel, python, progress)

    def _setup(self, spec, root, log_dir, max_parallel, python, progress) -> None:
        self.spec = spec
        self.root = root
        if "://" in self.root:
            raise ValueError(f"pipeline root {self.root} is not local: compile with a local --pipeline-root")
        self.components = self.spec["components"]
        self.executors = self.spec["deploymentSpec"]["executors"]
        self.tasks = self.spec["root"]["dag"]["tasks"]
        self.deps = topological_order(self.tasks)
        missing = self.missing_inputs()
        if missing:
            raise ValueError(
                f"{missing[0]}: not on this machine; nothing ran. Run where it exists, or compile "
                "again with a --data-root (--catalog-uri, --schema-dir) that exists here. Under env/run-in-env's "
                "Debian 13 root filesystem (Debian 12) a command sees /tmp, the clone, ../shared, and the paths "
                "its command line names, the paths in a pipeline JSON/YAML it names included, as they were "
                "when it started")
        self.log_dir = log_dir
        self.max_parallel = max_parallel
        self.python = python
        self.progress = progress or (lambda line: print(line, flush=True))
        os.makedirs(self.root, exist_ok=True)
        self.store = MetadataStore(os.path.join(self.root, self.METADATA_FILE))
        self._processes: Dict[str, subprocess.Popen] = {}  # label -> the task's process, while it runs
        self._processes_lock = threading.Lock()
        self._stopping = False  # stop_tasks has begun: no task starts
        self.last_run: Optional[RunResult] = None
        self.in_flight: List[str] = []

    def compiled_parameter(self, task: str, name: str) -> Any:
        """A task's compiled constant parameter, None when the task or the parameter is not there."""
        from kubeflow_v2.kfp_backend import compiled_constant

        spec = self.tasks.get(task, {}).get("inputs", {}).get("parameters", {}).get(name)
        return compiled_constant(spec.get("runtimeValue")) if spec else None

    def missing_inputs(self) -> List[str]:
        """The compiled local paths a run reads that do not exist here, each as '<path> (<what>, task
        <task>)': the data root (input_base), the catalog (catalog_uri) and imported artifacts (the
        schema). Found by exploratory testing: a data root the environment did not see failed in
        ExampleGen's pre-cache check with 'no train file ... and no span folder in <data root>',
        a folder that exists on the host."""
        from kubeflow_v2.kfp_backend import compiled_constant

        found = []
        for name, task in sorted(self.tasks.items()):
            for key, spec in task.get("inputs", {}).get("parameters", {}).items():
                if key in _INPUT_PATHS:
                    found.append((compiled_constant(spec.get("runtimeValue")), _INPUT_PATHS[key], name))
            importer = self.executors.get(self.components[task["componentRef"]["name"]]["executorLabel"],
                                          {}).get("importer")
            if importer and self.LOCAL_IMPORTS:
                found.append((compiled_constant(importer.get("artifactUri")), "imported artifact", name))
        missing: Dict[str, str] = {}  # path -> what
        for path, what, task in sorted(found, key=lambda f: (len(str(f[0])), f[2])):  # a data root before its catalog
            if not isinstance(path, str) or not path or "://" in path or os.path.exists(path):
                continue
            if not any(path == m or path.startswith(m.rstrip("/") + "/") for m in missing):  # a catalog in it
                missing[path] = f"{path} ({what}, task {task})"
        return list(missing.values())

    # --- the run --------------------------------------------------------------------------------
    def _new_run_id(self) -> str:
        return "run-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S") \
            + "-" + uuid.uuid4().hex[:6]

    def run(self) -> RunResult:
        """One run of the pipeline. A Ctrl-C (KeyboardInterrupt) stops the tasks under way
        (`stop_tasks`) before it goes on up: no task process outlives the harness; so does a
        failed task, or any other error, for the other tasks under way (found by review: a run
        whose task failed waited for a parallel one, minutes of a Transform or a Trainer, before
        it said so). What the run did up to a failure or a stop is `self.last_run` (its tasks
        done) and `self.in_flight` (the tasks under way then, stopped)."""
        run_id = self._new_run_id()
        os.makedirs(os.path.join(self.log_dir, run_id), exist_ok=True)
        self.store.data["runs"].append(run_id)
        done: Dict[str, TaskResult] = {}
        self.last_run, self.in_flight, self._stopping = RunResult(run_id, done), [], False
        running: Dict[concurrent.futures.Future, str] = {}
        prepared_of: Dict[str, Dict[str, Any]] = {}
        with concurrent.futures.ThreadPoolExecutor(self.max_parallel) as pool:
            try:
                self._run_tasks(run_id, pool, done, running, prepared_of)
            except BaseException:
                with self._processes_lock:  # a task's label: its name, or NAME.pre_cache_check
                    labels = set(self._processes)
                self.in_flight = sorted({name for future, name in running.items() if future.running()}
                                        | {label.partition(".")[0] for label in labels})
                for future in running:  # before the pool's shutdown, which waits for its tasks: those not
                    future.cancel()  # started yet are not started, those under way are stopped
                self.stop_tasks()
                raise
        self.store.save()
        return RunResult(run_id, done)

    def _run_tasks(self, run_id: str, pool, done: Dict[str, TaskResult],
                   running: Dict[concurrent.futures.Future, str], prepared_of: Dict[str, Dict[str, Any]]) -> None:
        while len(done) < len(self.tasks):
            ready = [n for n in sorted(self.tasks) if n not in done
                     and n not in running.values() and all(d in done for d in self.deps[n])]
            for name in ready:
                kind = self._kind(name)
                if kind != "container":  # the orchestrator's own work: instant, in this thread
                    done[name] = self._run_in_orchestrator(name, kind, done, run_id)
                    continue
                prepared = self._prepare(name, done, run_id)
                if prepared["cached"] is not None:
                    done[name] = self._from_cache(name, prepared, run_id)
                    continue
                prepared_of[name] = prepared
                running[pool.submit(self._execute, name, prepared, run_id)] = name
            if len(done) == len(self.tasks):
                break
            if not running:
                if ready:  # instant tasks made others ready
                    continue
                raise RuntimeError("no task can run: " + ", ".join(sorted(set(self.tasks) - set(done))))
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    done[name] = self._finish(name, prepared_of[name], future.result(), run_id)
                except BaseException:
                    for other in running:
                        other.cancel()
                    self.store.save()
                    raise

    def _kind(self, name: str) -> str:
        label = self.components[self.tasks[name]["componentRef"]["name"]]["executorLabel"]
        executor = self.executors[label]
        for kind in ("container", "importer", "resolver"):
            if kind in executor:
                return kind
        raise ValueError(f"task {name}: executor kind {sorted(executor)} is not supported")

    def _component(self, name):
        return self.components[self.tasks[name]["componentRef"]["name"]]

    def _executor(self, name):
        return self.executors[self._component(name)["executorLabel"]]

    # --- inputs ---------------------------------------------------------------------------------
    def _input_artifacts(self, name: str, done: Dict[str, TaskResult]) -> Dict[str, Dict[str, Any]]:
        result = {}
        for key, spec in self.tasks[name].get("inputs", {}).get("artifacts", {}).items():
            if "taskOutputArtifact" not in spec:
                raise ValueError(f"task {name}: input artifact {key} {spec} is not supported")
            ref = spec["taskOutputArtifact"]
            produced = done[ref["producerTask"]].outputs.get(ref["outputArtifactKey"])
            if produced is None:
                raise ValueError(f"task {name}: {ref['producerTask']} has no output "
                                 f"{ref['outputArtifactKey']!r}")
            result[key] = {"artifacts": copy.deepcopy(produced)}
        return result

    def _input_parameters(self, name: str):
        parameters, values = {}, {}
        for key, spec in self.tasks[name].get("inputs", {}).get("parameters", {}).items():
            runtime = spec.get("runtimeValue")
            if runtime is None or "constantValue" not in runtime:
                raise ValueError(f"task {name}: parameter {key} {spec} is not a compiled constant; "
                                 "pipeline parameters are not supported by this harness")
            parameters[key] = runtime["constantValue"]
            values[key] = _value(runtime["constantValue"])
        return parameters, values

    # --- importer and resolver: done by Vertex itself --------------------------------------------
    def _run_in_orchestrator(self, name: str, kind: str, done, run_id: str) -> TaskResult:
        start = time.time()
        executor = self._executor(name)[kind]
        outputs_def = self._component(name).get("outputDefinitions", {}).get("artifacts", {})
        if kind == "importer":
            uri = _value(executor["artifactUri"]["constantValue"])
            type_schema = executor["typeSchema"]
            _, params = self._input_parameters(name)
            existing = [a for a in self.store.query(f'schema_title="{_title(type_schema)}"')
                        if a["uri"] == uri]
            if existing and not params.get("reimport"):
                artifact = _public(existing[0])
            else:
                artifact = {"name": _ARTIFACT_NAME.format(uuid.uuid4().hex), "uri": uri,
                            "type": type_schema, "metadata": dict(executor.get("metadata", {}))}
                self.store.add(artifact, run_id, name)
            (key,) = outputs_def
            outputs = {key: [artifact]}
            self.progress(f"{self.LABEL} {name}: imported {uri}")
        else:
            inputs = self._input_artifacts(name, done)
            outputs = {}
            for key, query in executor["outputArtifactQueries"].items():
                text = query["filter"]
                try:
                    text = _PLACEHOLDER.sub(lambda m: _resolve_placeholder(m.group(0), inputs), text)
                except LookupError:
                    outputs[key] = []  # the input it refers to resolved to nothing
                    continue
                found = self.store.query(text)
                outputs[key] = [_public(found[0])] if found else []
            summary = ", ".join(f"{k}: {v[0]['uri'] if v else 'nothing'}" for k, v in outputs.items())
            self.progress(f"{self.LABEL} {name}: resolved {summary}")
        return TaskResult(name, kind, outputs, seconds=time.time() - start)

    # --- containers -----------------------------------------------------------------------------
    def _prepare(self, name: str, done, run_id: str) -> Dict[str, Any]:
        """The ExecutorInput, the pre-cache check's output and the cache lookup of a container task."""
        component = self._component(name)
        container = self._executor(name)["container"]
        task_dir = os.path.join(self.root, "local", run_id, f"{name}_{uuid.uuid4().hex[:8]}")
        parameters, values = self._input_parameters(name)
        outputs = {}
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            outputs[key] = {"artifacts": [{
                "name": _ARTIFACT_NAME.format(uuid.uuid4().hex),
                "uri": os.path.join(task_dir, key),
                "type": definition["artifactType"],
                "metadata": {},
            }]}
        if component.get("outputDefinitions", {}).get("parameters"):
            raise ValueError(f"task {name}: output parameters are not supported by this harness")
        executor_input = {
            "inputs": {"artifacts": self._input_artifacts(name, done),
                       "parameters": parameters, "parameterValues": values},
            "outputs": {"artifacts": outputs,
                        "outputFile": os.path.join(task_dir, "executor_output.json")},
        }
        pre_cache = {}
        check = container.get("lifecycle", {}).get("preCacheCheck")
        if check:
            self._subprocess(name + ".pre_cache_check", check["command"], check["args"],
                             executor_input, run_id)
            with open(executor_input["outputs"]["outputFile"]) as f:
                pre_cache = json.load(f).get("parameterValues", {})
        key = _digest({
            "component": component, "container": container,
            "inputs": {k: [a["name"] for a in v["artifacts"]]
                       for k, v in executor_input["inputs"]["artifacts"].items()},
            "parameters": values, "pre_cache_check": pre_cache,
        })
        enabled = self.tasks[name].get("cachingOptions", {}).get("enableCache", False)
        cached = self.store.data["cache"].get(key) if enabled else None
        return {"executor_input": executor_input, "cache_key": key, "cached": cached,
                "container": container, "started": time.time()}

    def _from_cache(self, name: str, prepared, run_id: str) -> TaskResult:
        self.progress(f"{self.LABEL} {name}: cached (execution of {prepared['cached']['run']})")
        return TaskResult(name, "container", prepared["cached"]["outputs"], cached=True,
                          inputs=_inputs_of(prepared["executor_input"]))

    def _execute(self, name: str, prepared, run_id: str) -> float:
        """Runs in a worker thread: only the subprocess, no bookkeeping."""
        start = time.time()
        container = prepared["container"]
        self._subprocess(name, container["command"], container["args"],
                         prepared["executor_input"], run_id)
        return time.time() - start

    def _finish(self, name: str, prepared, seconds: float, run_id: str) -> TaskResult:
        """The task's executor_output.json -> its output artifacts, recorded and cached."""
        executor_input = prepared["executor_input"]
        path = executor_input["outputs"]["outputFile"]
        written = {}  # no file: the outputs are as declared (Vertex does the same)
        if os.path.exists(path):
            with open(path) as f:
                written = json.load(f).get("artifacts", {})
        outputs = {}
        for key, declared in executor_input["outputs"]["artifacts"].items():
            artifact = dict(declared["artifacts"][0])
            for reported in written.get(key, {}).get("artifacts", []):
                if reported.get("uri", artifact["uri"]).rstrip("/") != artifact["uri"].rstrip("/"):
                    raise TaskFailed(f"task {name}: output {key} reported at {reported.get('uri')}, "
                                     f"expected {artifact['uri']}")
                artifact["metadata"] = reported.get("metadata", {})
            self.store.add(artifact, run_id, name)
            outputs[key] = [artifact]
        self.store.data["cache"][prepared["cache_key"]] = {"run": run_id, "outputs": outputs}
        self.store.save()
        self.progress(f"{self.LABEL} {name}: done in {seconds:.0f} s")
        return TaskResult(name, "container", outputs, seconds=seconds, inputs=_inputs_of(executor_input))

    def _subprocess(self, label: str, command: List[str], args: List[str],
                    executor_input: Dict[str, Any], run_id: str) -> None:
        text = json.dumps(executor_input)
        argv = [self.python if command[0] == "python" else command[0]] + list(command[1:])
        for arg in args:
            if arg == "{{$}}":
                argv.append(text)
            elif _PLACEHOLDER.search(arg):
                raise ValueError(f"task {label}: placeholder in {arg!r} is not supported by this harness")
            else:
                argv.append(arg)
        env = dict(os.environ, **IMAGE_ENV)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_DIR, env.get("PYTHONPATH")]))
        env[harness_task.HARNESS_ENV] = str(os.getpid())
        log_path = os.path.join(self.log_dir, run_id, label + ".log")
        # the command for the log (the harness's own under main()): on the console, the task's name
        # as make run's component lines (found by exploratory testing: 26 of 45 lines of a run were
        # "running (/opt/venvs/.../python -m tfx.orchestration.kubeflow.v2.container... ...)")
        logging.getLogger(__name__).info("task %s: %s ... (log %s)", label, " ".join(argv[:3]), log_path)
        self.progress(f"{self.LABEL} {label}: running")
        with open(log_path, "w") as log:
            # a process group of its own (its Beam workers in it): a Ctrl-C reaches it once, from
            # stop_tasks, which waits for it to end (found by exploratory testing: a Ctrl-C ended
            # the harness in a traceback). Led by kubeflow_v2/harness_task.py, which stops the group
            # when this process dies outright (a SIGKILLed harness left its tasks running to their end)
            with self._processes_lock:  # none starts once stop_tasks has begun
                if self._stopping:
                    raise TaskFailed(f"task {label} not started: the run was stopped")
                process = subprocess.Popen([self.python, "-m", "kubeflow_v2.harness_task", *argv], stdout=log,
                                           stderr=subprocess.STDOUT, env=env, cwd=self.root, process_group=0)
                self._processes[label] = process
            try:
                code = process.wait()
            finally:  # a Ctrl-C in this wait (a pre-cache check, in the main thread): stop_tasks stops it
                if process.poll() is not None:
                    with self._processes_lock:
                        self._processes.pop(label, None)
        if code != 0:
            with open(log_path, errors="replace") as f:
                tail = f.read()[-4000:]
            raise TaskFailed(f"task {label} failed (exit {code}); log {log_path}:\n{tail}")


    def stop_tasks(self, seconds: Optional[float] = None) -> None:
        """Stops the task processes under way as a Ctrl-C stops a local run (runner/supervisor.py):
        the SIGINT of a Ctrl-C to each one's process group, then SIGKILL to what is left of it
        after `seconds` (STOP_SECONDS), or at once on a second Ctrl-C; returns once they ended.
        Also the path of a failed task: the others under way are stopped the same way (run())."""
        from runner import supervisor

        with self._processes_lock:
            self._stopping = True
            processes = list(self._processes.values())
            self._processes.clear()
        supervisor.stop_groups({process.pid: process for process in processes},
                               STOP_SECONDS if seconds is None else seconds)


def _inputs_of(executor_input: Dict[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    return {k: v["artifacts"] for k, v in executor_input["inputs"].get("artifacts", {}).items()}


def _public(record: Dict[str, Any]) -> Dict[str, Any]:
    """A stored artifact as a RuntimeArtifact dict."""
    return {k: copy.deepcopy(record[k]) for k in ("name", "uri", "type", "metadata")}


def _resolve_placeholder(text: str, inputs: Dict[str, Dict[str, Any]]) -> str:
    m = re.fullmatch(r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}", text)
    if not m:
        raise ValueError(f"placeholder {text} is not supported by this harness")
    key, field = m.groups()
    artifacts = inputs.get(key, {}).get("artifacts", [])
    if not artifacts:
        raise LookupError(key)
    value = artifacts[0]["metadata"].get(field)
    if value is None:
        raise LookupError(field)
    return str(value)


def outcome(result: RunResult, serving_model_dir: Optional[str]):
    """What the run did, as runner/console.py's Outcome (the local run's summary, from the same
    components' outputs: the statistics, the drift report, the blessing, the pushed model, the run
    report) with the Trainer's start, which the harness's console does not show as the local
    run's does in its [train] lines. Found by exploratory testing: the result line said nothing of
    warm or cold, of drift accepted, or of the report; and a run the gate refused printed the
    same line as one that pushed."""
    from tfx.utils import path_utils

    from models import trainer
    from runner import console

    def artifact(task: str, key: str) -> Optional[Dict[str, Any]]:
        return result.artifact(task, key) if task in result.tasks else None

    def uri(task: str, key: str) -> Optional[str]:
        return (artifact(task, key) or {}).get("uri")

    def metadata(task: str, key: str) -> Optional[Dict[str, Any]]:
        found = artifact(task, key)
        return None if found is None else found.get("metadata") or {}

    model = uri("Trainer", "model")
    facts = trainer.read_training_facts(path_utils.serving_model_path(model)) if model else None
    return console.outcome_of(
        rows=console.split_rows(uri("StatisticsGen", "statistics")), blessing=metadata("Evaluator", "blessing"),
        pushed_model=metadata("Pusher", "pushed_model"), report_uri=uri("RunReport", "report"),
        evaluation_uri=uri("Evaluator", "evaluation"), drift_uri=uri("DriftGate", "drift_report"),
        serving_model_dir=serving_model_dir or "", start=(facts or {}).get("start") or None)


def run_line(runner: "VertexLocalRunner", result: RunResult, failed: Optional[str] = None,
             stopped: Sequence[str] = ()) -> List[str]:
    """The run's tasks, counted (ran, cached, imported, resolved), not named: a run of the
    pipeline ran 13 of them, and the line named each (found by exploratory testing: about 220
    columns; the console said each one's start and end above it). Named are only the task that
    `failed`, the ones under way then (`stopped` by the failure) and the ones not run, on lines of
    at most WIDTH."""
    from runner import console

    tasks = result.tasks.values()
    counts = [(sum(t.kind == "container" and not t.cached for t in tasks), "ran"),
              (sum(t.kind == "container" and t.cached for t in tasks), "cached"),
              (sum(t.kind == "importer" for t in tasks), "imported"),
              (sum(t.kind == "resolver" for t in tasks), "resolved")]
    parts = [f"{len(runner.tasks)} tasks: " + (", ".join(f"{n} {what}" for n, what in counts if n) or "none done")]
    if failed:
        parts.append(f"failed: {failed}")
    others = [name for name in stopped if name != failed]
    if others:
        parts.append(f"stopped: {', '.join(others)}")
    skipped = sorted(set(runner.tasks) - set(result.tasks) - {failed} - set(others))
    if skipped:
        parts.append(f"not run: {', '.join(skipped)}")
    return console.fit(parts, f"{runner.LABEL} {result.run_id}: ", "  ")


def result_lines(runner: "VertexLocalRunner", result: RunResult, log_path: str) -> Tuple[List[str], int]:
    """The lines that end a run on the console, as `make run`'s end (runner/console.py): the
    gate's table and the summary; and the exit code `make run` gives the same outcome (0 pushed
    or already served, 3 refused by the gate or the model of a version a rollback withdrew, 1 not
    pushed for another reason). A pipeline without a Pusher: its result line only, exit 0."""
    from runner import console

    lines = run_line(runner, result)
    if "Pusher" not in result.tasks:
        return lines, console.EXIT_OK
    done = outcome(result, runner.compiled_parameter("ServedBaseline", "serving_model_dir"))
    if done.evaluation_uri:
        from components import evaluator

        lines += console.fit_text(evaluator.gate_report(done.evaluation_uri)[1])  # as make run's console
    from components import run_report

    report = os.path.join(done.report_uri, run_report.HTML_FILE) if done.report_uri else None
    logs = [log_path, f"each task's: {os.path.join(runner.log_dir, result.run_id, '')}"]
    return lines + console.summary_lines(done, report if report and os.path.exists(report) else None, logs), \
        done.exit_code


def data_rejected_exit(failure: str) -> int:
    """The harness's exit for a failed task: 4, as `make run`'s, when the task's log ends in one of
    the errors that reject the data (the drift gate's, the validator's, ...); else 1. Found by
    exploratory testing: a drift stop exited 1 here and 4 in a local run."""
    from runner import console

    return console.EXIT_DATA_REJECTED if rejection(failure) else console.EXIT_FAILED


def rejection(failure: str) -> Optional[str]:
    """The message of the error that rejected the data (`module.Class: message`, to the end of the
    task's log), None when the task failed otherwise. Found by exploratory testing: the harness
    printed 4 KB of the task's log (Beam's type hints, TensorFlow's start-up, the traceback), the
    reason in its last lines."""
    from runner import console

    found = [(failure.rfind(f"{name}: "), name) for name in console.DATA_REJECTED_ERRORS]
    at, name = max(found)
    return failure[at + len(name) + 2:].strip() if at >= 0 else None


def failure_lines(failure: str, most: int = 20) -> List[str]:
    """A failed task, as the console says it (a TaskFailed's message: "task NAME failed (exit N);
    log PATH:" and the end of the task's log): that first line, then the exception the task ended
    on (after its log's last traceback: not its frames), else the log's last lines; at most `most`.
    Found by exploratory testing: the console showed the last 4 KB of the task's log, TensorFlow's
    start-up lines and Beam's warnings with the traceback."""
    first, _, tail = failure.partition("\n")
    lines = tail.rstrip().splitlines()
    at = max((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")),
             default=None)
    if at is None:
        cause = lines[-10:]
    else:
        cause = [line for line in lines[at + 1:] if line.strip()]
        while cause and cause[0].startswith(" "):  # the frames: "  File ...", their code, ^^^ marks
            cause.pop(0)
    return [first] + ["  " + line for line in cause][:most - 1]


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    from cli import flags
    from cli.flags import Flag

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    flags.add(parser, (
        Flag("pipeline_json", "the JSON kubeflow_v2_runner.py wrote (local roots), or with --kfp its "
             "KFP package (--target kfp)"),
        Flag("--log-dir", "where each task's output is logged", required=True),
        Flag("--runs", "run the pipeline this many times", parse=flags.positive_int, default=1),
        Flag("--kfp", "run it as open-source Kubeflow Pipelines 2 does (kubeflow_v2/kfp_harness.py)",
             kind=flags.SWITCH),
        Flag("--pipeline-root", "with --kfp: the local directory standing in for the run's pipeline root "
             "(default: the package's defaultPipelineRoot)"),
    ))
    args = parser.parse_args(argv)
    if args.kfp:
        from kubeflow_v2 import kfp_backend, kfp_harness
        try:
            runner = kfp_harness.KfpLocalRunner(args.pipeline_json, args.log_dir, pipeline_root=args.pipeline_root)
        except (kfp_backend.BackendError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    else:
        try:
            runner = VertexLocalRunner(args.pipeline_json, args.log_dir)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    # TensorFlow's start-up lines and the libraries' warnings (reading the run's outputs loads
    # them) into a log of the harness's own, as make run's; the console keeps the harness's lines
    from runner import console

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = console.Console(os.path.join(args.log_dir, f"harness-{stamp}.log"), stream=console.terminal(sys.stdout),
                          err_stream=console.terminal(sys.stderr)).start()
    runner.progress = out.say
    previous = _stop_on_signals()
    try:
        return _run(runner, args.runs, out)
    except KeyboardInterrupt:  # the tasks under way were stopped (run()): where, not a traceback
        logging.exception("the harness was interrupted")  # the traceback, in its log
        out.say(interrupted_line(runner), err=True)
        return console.EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001  unforeseen: say it plainly, keep the traceback in the log
        logging.exception("the harness stopped")
        out.say(f"error: the harness stopped: {type(e).__name__}: {console.plain_cause(e)}", err=True)
        out.say(f"full log: {out.log_path}", err=True)
        return console.EXIT_FAILED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        out.close()


def _stop_on_signals() -> Dict[int, Any]:
    """Python's Ctrl-C (KeyboardInterrupt) for SIGINT, SIGTERM and SIGHUP, as a local run takes
    them (runner/supervisor.py): a scheduler's stop or a closed terminal stops the tasks too, now
    that they have process groups of their own. Returns the handlers it replaced."""
    def stop(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig, handler in (
        (signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, stop), (signal.SIGHUP, stop))}


def interrupted_line(runner: "VertexLocalRunner") -> str:
    """The one line a stopped harness ends with: make run's (runner/console.py), with the tasks
    that were under way and whether the Pusher had run."""
    from runner import console

    done = set(runner.last_run.tasks) if runner.last_run else set()
    return console.interrupted_text(runner.in_flight, "Pusher" in done)


def _run(runner: "VertexLocalRunner", runs: int, out) -> int:
    """`runs` runs of the pipeline, each ending as make run's; the last run's exit code."""
    code = 0
    for _ in range(runs):
        try:
            result = runner.run()
        except TaskFailed as e:
            first = str(e).partition("\n")[0]  # task NAME failed (exit N); log PATH:
            task = re.match(r"task (\S+)", first)
            failed = task.group(1).partition(".")[0] if task else None  # NAME.pre_cache_check: NAME
            for line in run_line(runner, runner.last_run, failed, runner.in_flight) if runner.last_run else []:
                out.say(line)
            rejected = rejection(str(e))
            if rejected:  # the reason, as make run says it; the task's log for the rest
                log_path = first.partition("; log ")[2].rstrip(":")
                out.say(f"error: the data was rejected{' at ' + task.group(1) if task else ''}:\n{rejected}"
                        + (f"\n(the task's whole log: {log_path})" if log_path else ""), err=True)
            else:  # the exception, as make run's "error: the pipeline stopped"; the task's log has the rest
                out.say("error: " + "\n".join(failure_lines(str(e))), err=True)
            return data_rejected_exit(str(e))
        lines, code = result_lines(runner, result, out.log_path)
        for line in lines:
            out.say(line)
    return code  # the last run's, as make run's for its one run


if __name__ == "__main__":
    # `python -m kubeflow_v2.harness` runs this file as __main__, a second copy of the module beside
    # the kubeflow_v2.harness that kfp_harness imports: its TaskFailed is another class, which this
    # copy's main() would not catch. Found by exploratory testing: with --kfp, a drift stop ended in
    # a traceback and exit 1 (4 without --kfp). Run the one module's main().
    from kubeflow_v2 import harness as _harness

    sys.exit(_harness.main())
