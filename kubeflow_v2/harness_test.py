"""The harness's own mechanics on small hand-written PipelineSpecs whose containers are one-line
Python programs (no TFX): ExecutorInput in, executor_output.json out, artifacts passed on,
Vertex's cache, resolver filters, and a failing task named with its log. The compiled pipeline
itself: tests/test_kubeflow_v2_harness.py."""

import contextlib
import json
import os
import signal

import pytest

from kubeflow_v2 import harness
from runner import console

TYPE = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
# Writes {"n": <parameter n>} as its output artifact's metadata, and a file under its uri.
PRODUCE = ("import json, os, sys; e = json.loads(sys.argv[1]); out = e['outputs']; "
           "a = out['artifacts']['model']['artifacts'][0]; os.makedirs(a['uri']); "
           "open(os.path.join(a['uri'], 'n'), 'w').write(str(e['inputs']['parameterValues']['n'])); "
           "os.makedirs(os.path.dirname(out['outputFile']), exist_ok=True); "
           "json.dump({'artifacts': {'model': {'artifacts': [dict(a, metadata={'n': "
           "e['inputs']['parameterValues']['n'], 'blessed': 1})]}}}, open(out['outputFile'], 'w'))")
# Checks that its input arrived with the producer's metadata, then fails or succeeds.
CONSUME = ("import json, sys; e = json.loads(sys.argv[1]); "
           "m = e['inputs']['artifacts']['model']['artifacts'][0]['metadata']; "
           "print('got', m); sys.exit(0 if m['n'] == 7 else 3)")


def _spec(tmp_path, n=7, consume=CONSUME, cache=True):
    def container(code):
        return {"container": {"image": "unused", "command": ["python", "-c", code], "args": ["{{$}}"]}}

    job = {
        "runtimeConfig": {"gcsOutputDirectory": str(tmp_path / "root")},
        "pipelineSpec": {
            "components": {
                "produce": {"executorLabel": "produce_executor",
                            "inputDefinitions": {"parameters": {"n": {"type": "INT"}}},
                            "outputDefinitions": {"artifacts": {"model": {"artifactType": TYPE}}}},
                "consume": {"executorLabel": "consume_executor",
                            "inputDefinitions": {"artifacts": {"model": {"artifactType": TYPE}}}},
                "latest": {"executorLabel": "latest_executor",
                           "outputDefinitions": {"artifacts": {"model": {"artifactType": TYPE}}}},
            },
            "deploymentSpec": {"executors": {
                "produce_executor": container(PRODUCE),
                "consume_executor": container(consume),
                "latest_executor": {"resolver": {"outputArtifactQueries": {"model": {
                    "filter": 'schema_title="tfx.Model" AND state=LIVE AND metadata.blessed.number_value=1'}}}},
            }},
            "root": {"dag": {"tasks": {
                "produce": {"componentRef": {"name": "produce"}, "cachingOptions": {"enableCache": cache},
                            "inputs": {"parameters": {"n": {"runtimeValue": {"constantValue": {"intValue": str(n)}}}}}},
                "consume": {"componentRef": {"name": "consume"}, "dependentTasks": ["produce"],
                            "inputs": {"artifacts": {"model": {"taskOutputArtifact": {
                                "producerTask": "produce", "outputArtifactKey": "model"}}}}},
                "latest": {"componentRef": {"name": "latest"}},
            }}},
        },
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return str(path)


def _runner(path, tmp_path):
    return harness.VertexLocalRunner(path, str(tmp_path / "logs"), progress=lambda line: None)


def test_artifacts_flow_from_producer_to_consumer_and_the_cache_is_used(tmp_path):
    runner = _runner(_spec(tmp_path), tmp_path)
    first = runner.run()
    model = first.artifact("produce", "model")
    assert model["metadata"] == {"n": 7, "blessed": 1}
    assert open(os.path.join(model["uri"], "n")).read() == "7"
    assert model["uri"].startswith(str(tmp_path / "root") + os.sep)
    assert first.artifact("latest", "model") is None  # nothing blessed before this run
    second = runner.run()
    assert second.tasks["produce"].cached and not second.tasks["consume"].cached  # caching off
    assert second.artifact("produce", "model") == model
    assert second.artifact("latest", "model")["name"] == model["name"]  # the newest blessed one


def test_a_changed_parameter_misses_the_cache(tmp_path):
    _runner(_spec(tmp_path, n=7), tmp_path).run()
    again = _runner(_spec(tmp_path, n=8, consume="import sys"), tmp_path).run()
    assert not again.tasks["produce"].cached
    assert again.artifact("produce", "model")["metadata"]["n"] == 8


def test_a_failing_task_is_named_with_its_log(tmp_path):
    runner = _runner(_spec(tmp_path, n=5), tmp_path)
    with pytest.raises(harness.TaskFailed, match=r"(?s)task consume failed \(exit 3\).*got \{"):
        runner.run()


def test_a_task_that_rejects_the_data_exits_4_as_a_local_run(tmp_path, capsys):
    drift = "import sys; print('components.drift.DriftError: the newest span drifted'); sys.exit(1)"
    assert harness.main([_spec(tmp_path, consume=drift), "--log-dir", str(tmp_path / "logs")]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: the data was rejected at consume:\nthe newest span drifted\n(the task's whole log: ")
    assert err.rstrip().endswith("consume.log)")
    assert harness.main([_spec(tmp_path, consume="import sys; sys.exit(1)"), "--log-dir",
                         str(tmp_path / "logs")]) == 1


def test_a_failed_task_is_said_by_its_exception_not_its_logs_end(tmp_path, capsys):
    """Found by exploratory testing: the console showed the last 4 KB of the task's log,
    TensorFlow's start-up lines and Beam's warnings before the traceback."""
    failing = ("import sys; print('I0000 00:00:17 cpu_feature_guard.cc:227] This TensorFlow binary is optimized'); "
               "print('WARNING:apache_beam.typehints: ignored'); "
               "exec('def load():\\n    raise ValueError(\\'no model under /x\\\\nsee the Trainer\\')'); load()")
    assert harness.main([_spec(tmp_path, consume=failing), "--log-dir", str(tmp_path / "logs")]) == 1
    said = capsys.readouterr()
    err = said.err.splitlines()
    assert err[0].startswith("error: task consume failed (exit 1); log ") and err[0].endswith("consume.log:")
    assert err[1:] == ["  ValueError: no model under /x", "  see the Trainer"]
    # before it, the run's tasks counted and the failed one named (found by exploratory testing:
    # a run's line named every task that ran, about 220 columns)
    [line] = [line for line in said.out.splitlines() if line.startswith("[vertex-local] run-")]
    assert line.endswith(": 3 tasks: 1 ran, 1 resolved; failed: consume"), line
    tail = "I0000 noise\nWARNING: more\nsomething went wrong\n"
    assert harness.failure_lines("task t failed (exit 2); log /l/t.log:\n" + tail) == [
        "task t failed (exit 2); log /l/t.log:", "  I0000 noise", "  WARNING: more", "  something went wrong"]


def test_a_runs_line_counts_its_tasks_and_names_only_those_that_did_not_finish(tmp_path):
    runner = _runner(_spec(tmp_path), tmp_path)
    result = runner.run()
    assert harness.run_line(runner, result) == [f"[vertex-local] {result.run_id}: 3 tasks: 2 ran, 1 resolved"]
    again = runner.run()  # produce from the cache
    assert harness.run_line(runner, again) == [f"[vertex-local] {again.run_id}: 3 tasks: 1 ran, 1 cached, 1 resolved"]
    stopped = harness.RunResult("r", {"latest": again.tasks["latest"]})
    assert harness.run_line(runner, stopped, stopped=["produce"]) == [
        "[vertex-local] r: 3 tasks: 1 resolved; stopped: produce; not run: consume"]
    # many names: lines of at most 100 columns
    runner.tasks = {f"Component{n:02d}WithALongName": {} for n in range(12)}
    lines = harness.run_line(runner, harness.RunResult("r", {}), failed="Component00WithALongName")
    assert lines[0] == "[vertex-local] r: 12 tasks: none done; failed: Component00WithALongName"
    assert len(lines) > 2 and all(len(line) <= console.WIDTH for line in lines)


# A task that starts a child (its Beam worker, say), says both pids, and sleeps; with `IGNORE`, both
# ignore a Ctrl-C
SLOW = ("import json, os, signal, subprocess, sys, time; e = json.loads(sys.argv[1]); IGNORE = {ignore}; "
        "IGNORE and signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "{ignore} and signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(300)']); "
        "open(e['inputs']['parameterValues']['pids'] + '.tmp', 'w').write(f'{{os.getpid()}} {{child.pid}}'); "
        "os.rename(e['inputs']['parameterValues']['pids'] + '.tmp', e['inputs']['parameterValues']['pids']); "
        "time.sleep(300)")


def _slow_pipeline(tmp_path, ignore=False):
    """A pipeline of a slow task (SLOW) and a Pusher after it; returns its path and the pids file."""
    pids = tmp_path / "pids"
    path = _fake_pipeline(tmp_path, {"slow": ("model", {}, {}), "Pusher": ("pushed_model", {"pushed": 1}, {})},
                          parameters={"slow": {"pids": str(pids)}})
    job = json.loads(open(path).read())
    job["pipelineSpec"]["deploymentSpec"]["executors"]["slow_executor"]["container"]["command"][2] = SLOW.format(
        ignore=ignore)
    job["pipelineSpec"]["root"]["dag"]["tasks"]["Pusher"]["dependentTasks"] = ["slow"]
    open(path, "w").write(json.dumps(job))
    return path, pids


def _pids_of(pids, timeout=60):
    import time

    deadline = time.time() + timeout
    while not pids.exists():
        assert time.time() < deadline, "the slow task did not start"
        time.sleep(0.1)
    return [int(pid) for pid in pids.read_text().split()]


def _gone(pid, timeout=10):
    import time

    import psutil

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", ["the harness alone", "the terminal's process group"])
def test_a_ctrl_c_stops_the_tasks_under_way_and_ends_in_one_line(tmp_path, how):
    """Found by exploratory testing: a Ctrl-C ended the harness in a Python traceback. It stops the
    tasks under way (their process groups: their children too) and says so in one line, as make
    run does, with its exit code (130); no task process outlives it, whoever got the SIGINT."""
    import signal
    import subprocess
    import sys

    path, pids = _slow_pipeline(tmp_path)
    started = subprocess.Popen([sys.executable, "-m", "kubeflow_v2.harness", path, "--log-dir", str(tmp_path / "logs")],
                               cwd=harness.PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               process_group=0)
    try:
        task, child = _pids_of(pids)
        if how == "the harness alone":
            started.send_signal(signal.SIGINT)
        else:  # a Ctrl-C in a terminal: its foreground process group (the tasks have their own)
            os.killpg(started.pid, signal.SIGINT)
        out, err = started.communicate(timeout=60)
    finally:
        if started.poll() is None:
            started.kill()
    assert started.returncode == console.EXIT_INTERRUPTED == 130, err
    assert err.splitlines() == [
        "error: interrupted during slow (exit code 130); nothing was pushed; the served model is unchanged"]
    assert "Traceback" not in out and "[vertex-local] Pusher" not in out
    assert _gone(task) and _gone(child)
    [log] = (tmp_path / "logs").glob("harness-*.log")
    assert "KeyboardInterrupt" in log.read_text()  # the traceback, in the harness's log


def test_a_task_that_ignores_the_ctrl_c_is_killed_with_its_children(tmp_path):
    import threading

    path, pids = _slow_pipeline(tmp_path, ignore=True)
    runner = _runner(path, tmp_path)
    os.makedirs(tmp_path / "logs" / "r")
    executor_input = {"inputs": {"parameterValues": {"pids": str(pids)}}}
    command = json.loads(open(path).read())["pipelineSpec"]["deploymentSpec"]["executors"]["slow_executor"][
        "container"]["command"]
    failed = []

    def run():
        try:
            runner._subprocess("slow", command, ["{{$}}"], executor_input, "r")
        except harness.TaskFailed as e:
            failed.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    task, child = _pids_of(pids)
    runner.stop_tasks(seconds=0.5)
    thread.join(timeout=10)
    assert _gone(task) and _gone(child) and failed  # killed: its exit is a failure, not a result


def _harness(path, tmp_path):
    """`python -m kubeflow_v2.harness` on `path`, as docs/vertex.md runs it."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "kubeflow_v2.harness", path, "--log-dir", str(tmp_path / "logs")],
                            cwd=harness.PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            process_group=0)


def test_a_harness_killed_outright_leaves_no_task_running(tmp_path):
    """A SIGKILLed harness (the kernel's out-of-memory killer, `kill -9`) left its tasks and their
    children running to their end, writing outputs nobody reads. Each task's group is led by
    kubeflow_v2/harness_task.py, which stops it as a Ctrl-C would when the harness dies."""
    path, pids = _slow_pipeline(tmp_path)
    started = _harness(path, tmp_path)
    try:
        task, child = _pids_of(pids)
        started.kill()
        started.communicate(timeout=60)
        assert _gone(task, timeout=5) and _gone(child, timeout=5)
    finally:
        if started.poll() is None:
            started.kill()
        for pid in _pids_of(pids):  # the orphans of a failed assertion: not into the next tests
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    [log] = (tmp_path / "logs").glob("run-*/slow.log")
    assert "[harness-task] the harness (pid {}) has ended".format(started.pid) in log.read_text()
    assert not list((tmp_path / "logs").glob("run-*/Pusher.log"))


# Fails once the slow task has started (its pids file exists), with an exception.
BROKEN = ("import json, os, sys, time\n"
          "pids = json.loads(sys.argv[1])['inputs']['parameterValues']['pids']\n"
          "while not os.path.exists(pids):\n"
          "    time.sleep(0.05)\n"
          "raise RuntimeError('broken on purpose')\n")


def test_a_failed_task_stops_the_others_under_way_and_is_named_at_once(tmp_path):
    """A task that failed beside a slow one was said only once the slow one had ended (a Transform
    or a Trainer: minutes). The others under way are stopped as a Ctrl-C stops them (the same
    path), and the failure is said at once."""
    import time

    path, pids = _slow_pipeline(tmp_path)
    job = json.loads(open(path).read())
    spec = job["pipelineSpec"]
    spec["components"]["broken"] = {"executorLabel": "broken_executor"}
    spec["deploymentSpec"]["executors"]["broken_executor"] = {
        "container": {"image": "unused", "command": ["python", "-c", BROKEN], "args": ["{{$}}"]}}
    spec["root"]["dag"]["tasks"]["broken"] = {"componentRef": {"name": "broken"}, "inputs": {"parameters": {
        "pids": {"runtimeValue": {"constantValue": {"stringValue": str(pids)}}}}}}
    open(path, "w").write(json.dumps(job))
    started = _harness(path, tmp_path)
    try:
        task, child = _pids_of(pids)
        since = time.time()
        out, err = started.communicate(timeout=30)  # without the stop: the slow task's 300 s
        seconds = time.time() - since
    finally:
        if started.poll() is None:
            started.kill()
        for pid in _pids_of(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert started.returncode == console.EXIT_FAILED, err
    assert seconds < 10 and _gone(task, timeout=1) and _gone(child, timeout=1)
    said = out.splitlines()
    [at] = [n for n, line in enumerate(said) if line.startswith("[vertex-local] run-")]
    block = [said[at]] + [line.strip() for line in said[at + 1:] if line.startswith("  ")]
    assert "; ".join(block).endswith(": 3 tasks: none done; failed: broken; stopped: slow; not run: Pusher"), said
    lines = err.splitlines()
    assert lines[0].startswith("error: task broken failed (exit 1); log ") and lines[0].endswith("broken.log:")
    assert lines[1:] == ["  RuntimeError: broken on purpose"]
    assert all(len(line) <= console.WIDTH for line in out.splitlines() + lines[1:])


def test_a_file_that_is_not_a_compiled_pipeline_is_one_line(tmp_path, capsys):
    """Found by exploratory testing: a missing file or `{}` ended in a traceback."""
    (tmp_path / "empty.json").write_text("{}")
    (tmp_path / "text.json").write_text("not json")
    foreign = "{path} is not a pipeline JSON compiled by kubeflow_v2_runner.py"
    for name, said in (("nope.json", "cannot read {path}: No such file or directory"),
                       ("empty.json", foreign + " (KeyError: "), ("text.json", foreign + " (JSONDecodeError")):
        path = str(tmp_path / name)
        assert harness.main([path, "--log-dir", str(tmp_path / "logs")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: " + said.format(path=path)) and len(err.splitlines()) == 1, err


def test_resolver_filters():
    store = harness.MetadataStore("/nonexistent/metadata.json")
    for i, blessed in enumerate([1, 0, 1.0]):
        store.add({"name": f"a{i}", "uri": f"/u{i}", "type": TYPE, "metadata": {"blessed": blessed}},
                  "run", "task")
    found = store.query('schema_title="tfx.Model" AND state=LIVE AND metadata.blessed.number_value=1')
    assert [a["name"] for a in found] == ["a2", "a0"]
    assert [a["name"] for a in store.query('name="a1"')] == ["a1"]
    with pytest.raises(ValueError, match="create_time"):
        store.query("create_time>5")


def test_a_cycle_is_refused():
    tasks = {"a": {"dependentTasks": ["b"]}, "b": {"dependentTasks": ["a"]}}
    with pytest.raises(ValueError, match="cycle"):
        harness.topological_order(tasks)
    with pytest.raises(ValueError, match="unknown tasks"):
        harness.topological_order({"a": {"dependentTasks": ["c"]}})


# --- the open-source KFP mode (kubeflow_v2/kfp_harness.py) ------------------------------------------
# Writes the ExecutorInput it got into its output artifact, and reports {"n": <parameter n>} (and,
# when asked, another URI than the one it was given).
KFP_PRODUCE = ("import json, os, sys; e = json.loads(sys.argv[1]); out = e['outputs']; "
               "a = out['artifacts']['model']['artifacts'][0]; n = e['inputs']['parameterValues']['n']; "
               "uri = a['uri'] + '-moved' if n == 9 else a['uri']; os.makedirs(uri); "
               "open(os.path.join(uri, 'executor_input.json'), 'w').write(sys.argv[1]); "
               "os.makedirs(os.path.dirname(out['outputFile']), exist_ok=True); "
               "json.dump({'artifacts': {'model': {'artifacts': [{'uri': uri, 'metadata': {'n': n, 'ok': True}}]}}}, "
               "open(out['outputFile'], 'w'))")
KFP_CONSUME = ("import json, os, sys; e = json.loads(sys.argv[1]); "
               "a = e['outputs']['artifacts']['seen']['artifacts'][0]; os.makedirs(a['uri']); "
               "open(os.path.join(a['uri'], 'executor_input.json'), 'w').write(sys.argv[1])")


def _kfp_package(tmp_path, n=7, consume_cache=True, produce_cache=True, extra_tasks=None, version="2.1.0",
                 name="package.yaml"):
    import yaml

    def container(code):
        return {"container": {"image": "img:1", "command": ["python", "-c", code], "args": ["{{$}}"]}}

    spec = {
        "schemaVersion": version,
        "pipelineInfo": {"name": "tiny"},
        "defaultPipelineRoot": str(tmp_path / "root"),
        "components": {
            "produce": {"executorLabel": "produce_executor",
                        "inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"},
                                                            "label": {"parameterType": "STRING",
                                                                      "defaultValue": "from-default"}}},
                        "outputDefinitions": {"artifacts": {"model": {"artifactType": TYPE}}}},
            "consume": {"executorLabel": "consume_executor",
                        "inputDefinitions": {"artifacts": {"model": {"artifactType": TYPE}}},
                        "outputDefinitions": {"artifacts": {"seen": {"artifactType": TYPE}}}},
        },
        "deploymentSpec": {"executors": {"produce_executor": container(KFP_PRODUCE),
                                         "consume_executor": container(KFP_CONSUME)}},
        "root": {"dag": {"tasks": {
            "produce": {"componentRef": {"name": "produce"}, "taskInfo": {"name": "produce"},
                        "cachingOptions": {"enableCache": True} if produce_cache else {},
                        "inputs": {"parameters": {"n": {"runtimeValue": {"constant": float(n)}}}}},
            "consume": {"componentRef": {"name": "consume"}, "taskInfo": {"name": "consume"},
                        "dependentTasks": ["produce"],
                        "cachingOptions": {"enableCache": True} if consume_cache else {},
                        "inputs": {"artifacts": {"model": {"taskOutputArtifact": {
                            "producerTask": "produce", "outputArtifactKey": "model"}}}}},
        }}},
    }
    for task, (component, executor) in (extra_tasks or {}).items():
        spec["components"][task] = component
        spec["deploymentSpec"]["executors"][component["executorLabel"]] = executor
        spec["root"]["dag"]["tasks"][task] = {"componentRef": {"name": task}, "taskInfo": {"name": task}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _kfp_runner(path, tmp_path):
    from kubeflow_v2 import kfp_harness

    return kfp_harness.KfpLocalRunner(path, str(tmp_path / "logs"), progress=lambda line: None)


def _seen(result, task, key):
    with open(os.path.join(result.artifact(task, key)["uri"], "executor_input.json")) as f:
        return json.load(f)


def test_kfp_the_executor_input_is_the_kfp_drivers(tmp_path):
    result = _kfp_runner(_kfp_package(tmp_path), tmp_path).run()
    produced = _seen(result, "produce", "model")
    assert set(produced["inputs"]) == {"parameterValues"}  # no 2.0 `parameters`
    assert produced["inputs"]["parameterValues"] == {"n": 7.0, "label": "from-default"}  # + the default
    [declared] = produced["outputs"]["artifacts"]["model"]["artifacts"]
    assert declared["name"] == "model" and declared["type"] == TYPE
    # <root>/<pipeline>/<run id>/<task>/<uuid>/<key>, and the output file beside the outputs
    root, pipeline, run_id, task, salt, key = declared["uri"].rsplit("/", 5)
    assert (root, pipeline, run_id, task, key) == (str(tmp_path / "root"), "tiny", result.run_id, "produce", "model")
    assert produced["outputs"]["outputFile"] == f"{root}/tiny/{run_id}/produce/{salt}/output_metadata.json"
    [logs] = produced["outputs"]["artifacts"]["executor-logs"]["artifacts"]
    assert logs["type"] == {"schemaTitle": "system.Artifact"}
    # the consumer gets the artifact as ML Metadata gives it back
    [model] = _seen(result, "consume", "seen")["inputs"]["artifacts"]["model"]["artifacts"]
    producer = result.artifact("produce", "model")
    assert model["name"] == producer["name"] and model["name"].isdigit()  # its ML Metadata id
    assert model["type"] == {"instanceSchema": ""}
    assert model["metadata"]["n"] == 7.0 and model["metadata"]["ok"] == 1.0  # a boolean comes back a number
    assert model["metadata"]["display_name"] == "model" and "store_session_info" in model["metadata"]
    assert result.tasks["consume"].inputs["model"][0]["name"] == producer["name"]
    with open(result.artifact("produce", "executor-logs")["uri"]) as f:  # the launcher keeps the log there
        assert f.read() == ""


def test_kfp_a_reported_uri_replaces_the_declared_one(tmp_path):
    result = _kfp_runner(_kfp_package(tmp_path, n=9), tmp_path).run()
    model = result.artifact("produce", "model")
    assert model["uri"].endswith("/model-moved") and model["metadata"]["n"] == 9
    assert _seen(result, "consume", "seen")["inputs"]["artifacts"]["model"]["artifacts"][0]["uri"] == model["uri"]


def test_kfp_cache_by_input_ids_and_only_where_enabled(tmp_path):
    runner = _kfp_runner(_kfp_package(tmp_path), tmp_path)
    first, second = runner.run(), runner.run()
    assert second.tasks["produce"].cached and second.tasks["consume"].cached
    assert second.artifact("produce", "model")["name"] == first.artifact("produce", "model")["name"]
    # the producer uncached (as ExampleGen is on KFP): a new artifact id, so its consumer runs again
    runner = _kfp_runner(_kfp_package(tmp_path, produce_cache=False), tmp_path)
    third = runner.run()
    assert not third.tasks["produce"].cached and not third.tasks["consume"].cached
    assert third.artifact("produce", "model")["name"] != first.artifact("produce", "model")["name"]
    assert not runner.run().tasks["produce"].cached


def test_kfp_refuses_before_running_what_the_backend_refuses(tmp_path):
    from kubeflow_v2 import kfp_backend

    resolver = ({"executorLabel": "latest_executor",
                 "outputDefinitions": {"artifacts": {"model": {"artifactType": TYPE}}}},
                {"resolver": {"outputArtifactQueries": {"model": {"filter": 'schema_title="tfx.Model"'}}}})
    with pytest.raises(kfp_backend.BackendError, match='Failed to compile job: error processing component '
                                                       'name="latest": .*non-container and non-importer'):
        _kfp_runner(_kfp_package(tmp_path, extra_tasks={"latest": resolver}), tmp_path)
    with pytest.raises(kfp_backend.BackendError, match="schema version 2.1.0, but the pipeline spec has version 2.0.0"):
        _kfp_runner(_kfp_package(tmp_path, version="2.0.0"), tmp_path)
    with pytest.raises(kfp_backend.BackendError, match="unknown template format"):
        _kfp_runner(_spec(tmp_path), tmp_path)  # the Vertex PipelineJob JSON
    assert not (tmp_path / "logs").exists() and not (tmp_path / "root").exists()  # nothing ran


def _importer(uri):
    return ({"executorLabel": "schema-importer_executor",
             "outputDefinitions": {"artifacts": {"result": {"artifactType": TYPE}}}},
            {"importer": {"artifactUri": {"constant": uri}, "typeSchema": TYPE}})


def test_kfp_importers_take_bucket_uris_and_reuse_the_artifact(tmp_path):
    runner = _kfp_runner(_kfp_package(tmp_path, extra_tasks={"schema-importer": _importer("gs://b/schema")}),
                         tmp_path)
    first, second = runner.run(), runner.run()
    imported = first.artifact("schema-importer", "result")
    assert imported["uri"] == "gs://b/schema" and second.artifact("schema-importer", "result") == imported
    runner = _kfp_runner(_kfp_package(tmp_path, extra_tasks={"schema-importer": _importer("/pipeline/schema")}),
                         tmp_path)
    with pytest.raises(harness.TaskFailed, match="no provider scheme found in artifact URI: /pipeline/schema"):
        runner.run()


def test_kfp_the_output_file_is_read_strictly(tmp_path):
    bad = KFP_PRODUCE.replace("{'artifacts': {'model'", "{'unknownField': 1, 'artifacts': {'model'")
    path = _kfp_package(tmp_path)
    text = open(path).read()
    import yaml
    spec = yaml.safe_load(text)
    spec["deploymentSpec"]["executors"]["produce_executor"]["container"]["command"][2] = bad
    open(path, "w").write(yaml.safe_dump(spec))
    with pytest.raises(harness.TaskFailed, match="task produce: failed to parse the executor output"):
        _kfp_runner(path, tmp_path).run()


def test_a_run_says_what_it_did_with_its_model():
    """Found by exploratory testing: a run whose model the gate refused printed the same line as
    one that pushed."""
    def run(pushed=None, blessed=None):
        tasks = {}
        if blessed is not None:
            tasks["Evaluator"] = harness.TaskResult("Evaluator", "container", {
                "blessing": [{"uri": "/nonexistent", "metadata": {"blessed": blessed}}]})
        if pushed is not None:
            tasks["Pusher"] = harness.TaskResult("Pusher", "container", {
                "pushed_model": [{"uri": "/nonexistent", "metadata": pushed}]})
        return harness.RunResult("r", tasks)

    def said(result):
        done = harness.outcome(result, "/nonexistent/serving")
        verdict = next(line for line in console.summary_lines(done, None, "l") if line.startswith("  verdict"))
        return verdict[len("  verdict        "):], done.exit_code

    assert said(run({"pushed": 1, "pushed_version": 17}, 1)) == ("blessed and pushed as version 17", 0)
    assert said(run({"pushed": 1, "pushed_version": 17, "already_served": 1}, 1)) == (
        "blessed; already served as version 17: nothing new pushed", 0)
    # the exit codes make run gives the same outcomes (found by exploratory testing: 0 here, 3 there)
    verdict, code = said(run({"pushed": 0}, 0))
    assert verdict.startswith("NOT blessed: the gate refused the model") and code == 3
    withdrawn = {"pushed": 0, "not_pushed_reason": "this model is version 5 again, which a rollback took out"}
    assert said(run(withdrawn, 1)) == (
        "blessed, NOT pushed: this model is version 5 again, which a rollback took out", 3)
    assert said(run({"pushed": 0}, 1)) == ("no model pushed", 1)
    # KFP's ML Metadata gives numbers back as doubles
    assert said(run({"pushed": 1.0, "pushed_version": "17", "already_served": 1.0}, 1.0))[1] == 0


# A task of the pipeline's name, as a one-line program: its output artifact `key` with the files
# and the metadata of its parameters
FAKE_TASK = ("import json, os, sys; e = json.loads(sys.argv[1]); out = e['outputs']; "
             "p = e['inputs']['parameterValues']; a = out['artifacts'][p['key']]['artifacts'][0]; "
             "os.makedirs(a['uri'], exist_ok=True); "
             "[os.makedirs(os.path.dirname(os.path.join(a['uri'], f)), exist_ok=True) or "
             "open(os.path.join(a['uri'], f), 'w').write(t) for f, t in json.loads(p['files']).items()]; "
             "os.makedirs(os.path.dirname(out['outputFile']), exist_ok=True); "
             "json.dump({'artifacts': {p['key']: {'artifacts': [dict(a, metadata=json.loads(p['metadata']))]}}}, "
             "open(out['outputFile'], 'w'))")


def _fake_pipeline(tmp_path, tasks, parameters=None):
    """A pipeline JSON of tasks {name: (output key, metadata, {file: text})} run by FAKE_TASK;
    `parameters`: more compiled parameters {task: {name: value}}."""
    def constant(value):
        return {"runtimeValue": {"constantValue": {"stringValue": value}}}

    components, executors, dag = {}, {}, {}
    for name, (key, metadata, files) in tasks.items():
        components[name] = {"executorLabel": f"{name}_executor",
                            "outputDefinitions": {"artifacts": {key: {"artifactType": TYPE}}}}
        executors[f"{name}_executor"] = {"container": {"image": "unused", "command": ["python", "-c", FAKE_TASK],
                                                       "args": ["{{$}}"]}}
        given = {"key": key, "metadata": json.dumps(metadata), "files": json.dumps(files),
                 **(parameters or {}).get(name, {})}
        dag[name] = {"componentRef": {"name": name},
                     "inputs": {"parameters": {k: constant(v) for k, v in given.items()}}}
    job = {"runtimeConfig": {"gcsOutputDirectory": str(tmp_path / "root")},
           "pipelineSpec": {"components": components, "deploymentSpec": {"executors": executors},
                            "root": {"dag": {"tasks": dag}}}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return str(path)


def test_a_run_ends_as_make_run_does_and_keeps_tensorflows_lines_in_its_log(tmp_path):
    """`python -m kubeflow_v2.harness`, as docs/vertex.md runs it: the run's end says what make
    run's summary says (the drift accepted, the verdict, the served model, the report, the log,
    the exit code and what next) and how the Trainer started, which make run says in its [train]
    lines; TensorFlow's start-up lines (reading the outputs loads it) go to the harness's log.
    Found by exploratory testing: its result line said nothing of warm or cold, drift accepted or
    the report, and TensorFlow's start-up lines came out on its standard error."""
    import subprocess
    import sys

    serving = tmp_path / "serving"
    (serving / "8").mkdir(parents=True)
    over = {"name": "productId L-infinity distance", "value": 0.0073, "limit": "<= 0.006", "over": True,
            "detail": ""}
    drift = {"compared": True, "drifted": True, "accepted": "--accept-drift", "measures": [over],
             "newest": {"span": 2, "name": "span-2"}, "previous": {"span": 1, "name": "span-1"}}
    start = {"kind": "warm", "from_version": "7", "carried_products": 70, "new_products": 2, "dropped_products": 1}
    path = _fake_pipeline(tmp_path, {
        "DriftGate": ("drift_report", {}, {"drift.json": json.dumps(drift)}),
        "ServedBaseline": ("model", {}, {}),
        "Trainer": ("model", {}, {"Format-Serving/assets.extra/training.json": json.dumps({"start": start})}),
        "Pusher": ("pushed_model", {"pushed": 1, "pushed_version": "8",
                                    "pushed_destination": str(serving / "8")}, {}),
        "RunReport": ("report", {}, {"index.html": "<html></html>"}),
    }, parameters={"ServedBaseline": {"serving_model_dir": str(serving)}})
    # as a user's shell starts it: importing `serving` (this test session's serving tests) quiets
    # TensorFlow's start-up lines with TF_CPP_MIN_LOG_LEVEL, and the harness would inherit it
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "kubeflow_v2.harness", path, "--log-dir", str(tmp_path / "logs")],
                          cwd=harness.PROJECT_DIR, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    at = lines.index("summary")
    [report] = [str(p) for p in (tmp_path / "root").rglob("index.html")]
    [log] = [str(p) for p in (tmp_path / "logs").glob("harness-*.log")]
    run_id = lines[at - 2].split()[1].rstrip(":")
    # the tasks counted, not named (found by exploratory testing: a run of the pipeline's 13 tasks
    # named each, about 220 columns; each has its lines above)
    assert lines[at - 2] == f"[vertex-local] {run_id}: 5 tasks: 5 ran"
    assert lines[at + 1:at + 6] == [
        "  rows read      -",
        "  start          warm from version 7: 70 products carried over, 2 new, 1 dropped",
        "  drift          span-2 vs span-1 OVER the thresholds, accepted (--accept-drift)",
        "                   over: productId L-infinity distance 0.0073, allowed <= 0.006",
        "  verdict        blessed and pushed as version 8"]
    assert console.summary_rows(lines) == {
        "rows read": "-", "start": "warm from version 7: 70 products carried over, 2 new, 1 dropped",
        "drift": "span-2 vs span-1 OVER the thresholds, accepted (--accept-drift)\n"
                 "over: productId L-infinity distance 0.0073, allowed <= 0.006",
        "verdict": "blessed and pushed as version 8", "served model": str(serving / "8"), "report": report,
        "full log": f"{log}\neach task's: {tmp_path / 'logs' / run_id}/", "exit code": "0",
        "next": f'make serve ARGS="--model_base_path {serving}"\n(serves the pushed model)'}
    assert all(len(line) <= console.WIDTH for line in lines if str(tmp_path) not in line)
    assert "[vertex-local] Trainer: running" in lines  # its name, as make run's component lines
    text = open(log).read()
    assert "cpu_feature_guard" in text or "oneDNN" in text, "TensorFlow's start-up lines are in the log"
    assert f"task Trainer: {sys.executable} -c import json" in text  # the command, in the log only
    assert "  exit code      0" in text  # and the console's lines


def test_a_rejection_is_said_in_its_own_words_with_make_runs_exit_code():
    """Found by exploratory testing: the harness printed 4 KB of the task's log with the reason in
    its last lines, and a layout it could not read as spans exited 1 (make run: 4)."""
    tail = ("WARNING: apache_beam type hints ...\nI0000 cpu_feature_guard ...\nTraceback (most recent call last):\n"
            '  File "x.py", line 1\ncomponents.drift.DriftError: The newest span span-2 drifted from span-1\n'
            "rows, newest / previous: 0.1\n")
    assert harness.rejection(tail) == "The newest span span-2 drifted from span-1\nrows, newest / previous: 0.1"
    assert harness.data_rejected_exit(tail) == 4
    layout = "Traceback\ncomponents.spans.SpanLayoutError: span-x: not a span folder\n"
    assert harness.rejection(layout) == "span-x: not a span folder" and harness.data_rejected_exit(layout) == 4
    assert harness.rejection("Traceback\nValueError: boom\n") is None
    assert harness.data_rejected_exit("Traceback\nValueError: boom\n") == 1


def test_a_compiled_input_path_missing_here_is_named_before_anything_runs(tmp_path, capsys):
    """Found by exploratory testing: a data root the environment did not see (env/run-in-env's
    rootfs, before it bound the paths in the pipeline JSON) failed in ExampleGen with 'no train
    file ... and no span folder in <data root>', a folder that exists on the host."""
    data = tmp_path / "srv" / "spans"
    job = json.loads(open(_spec(tmp_path)).read())
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    tasks["produce"]["inputs"]["parameters"]["input_base"] = {
        "runtimeValue": {"constantValue": {"stringValue": str(data)}}}
    tasks["consume"]["inputs"]["parameters"] = {
        "catalog_uri": {"runtimeValue": {"constantValue": {"stringValue": f"{data}/catalog.csv"}}}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert harness.main([str(tmp_path / "job.json"), "--log-dir", str(tmp_path / "logs")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data} (the data root, task produce): not on this machine; nothing ran."), err
    assert "catalog" not in err.split(";")[0] and "env/run-in-env" in err  # the catalog is inside the data root
    assert not (tmp_path / "logs").exists() and not (tmp_path / "root").exists()
    data.mkdir(parents=True)  # the data root there, the catalog not: named too
    assert harness.main([str(tmp_path / "job.json"), "--log-dir", str(tmp_path / "logs")]) == 1
    assert capsys.readouterr().err.startswith(f"error: {data}/catalog.csv (the catalog, task consume): not on")


def test_kfp_a_compiled_input_path_missing_here_is_named_before_anything_runs(tmp_path, capsys):
    import yaml

    path = _kfp_package(tmp_path)
    spec = yaml.safe_load(open(path))
    data = tmp_path / "srv" / "spans"
    spec["root"]["dag"]["tasks"]["produce"]["inputs"]["parameters"]["input_base"] = {
        "runtimeValue": {"constant": str(data)}}
    spec["components"]["produce"]["inputDefinitions"]["parameters"]["input_base"] = {"parameterType": "STRING"}
    open(path, "w").write(yaml.safe_dump(spec))
    assert harness.main([path, "--kfp", "--log-dir", str(tmp_path / "logs")]) == 1
    assert capsys.readouterr().err.startswith(f"error: {data} (the data root, task produce): not on this machine")
    assert not (tmp_path / "logs").exists() and not (tmp_path / "root").exists()
    data.mkdir(parents=True)
    assert _kfp_runner(path, tmp_path).run().artifact("produce", "model")["metadata"]["n"] == 7


def test_kfp_a_task_that_rejects_the_data_exits_4_from_the_command_line(tmp_path):
    """`python -m kubeflow_v2.harness --kfp`, as docs/kubeflow.md runs it. Found by exploratory
    testing: a drift stop there ended in the harness's own traceback (kfp_harness raised the
    TaskFailed of kubeflow_v2.harness, not of the __main__ copy main() caught) and exit 1."""
    import subprocess
    import sys

    drift = ("import sys; print('components.drift.DriftError: the newest span drifted'); sys.exit(1)")
    path = _kfp_package(tmp_path, extra_tasks={"gate": (
        {"executorLabel": "gate_executor"},
        {"container": {"image": "img:1", "command": ["python", "-c", drift], "args": ["{{$}}"]}})})
    done = subprocess.run([sys.executable, "-m", "kubeflow_v2.harness", path, "--kfp", "--log-dir",
                           str(tmp_path / "logs")], cwd=harness.PROJECT_DIR, capture_output=True, text=True)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert "error: the data was rejected at gate:\nthe newest span drifted\n(the task's whole log: " in done.stderr
