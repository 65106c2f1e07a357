"""The harness's own mechanics on small hand-written PipelineSpecs whose containers are one-line
Python programs (no TFX): ExecutorInput in, executor_output.json out, artifacts passed on,
Vertex's cache, resolver filters, and a failing task named with its log. The compiled pipeline
itself: tests/test_kubeflow_v2_harness.py."""

import json
import os

import pytest

from kubeflow_v2 import harness

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
