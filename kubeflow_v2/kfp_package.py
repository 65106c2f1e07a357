"""The pipeline package for open-source Kubeflow Pipelines 2: what `kubeflow_v2_runner.py --target
kfp` writes (docs/kubeflow.md).

TFX's KubeflowV2DagRunner compiles the pipeline (the same `create_pipeline`, with a KfpConfig)
with four differences from the Vertex AI JSON, each because of something the KFP backend does
(kubeflow_v2/kfp_backend.py):

- PipelineSpec schema 2.1.0 (TFX's `use_pipeline_spec_2_1`), the only one the API server takes;
  it also gives every executor the inputs spec the entrypoint needs to restore input types.
- A bare PipelineSpec as YAML, not TFX's PipelineJob wrapper (the API server reads only that).
  The wrapper's pipeline root goes into `defaultPipelineRoot` (which the backend does not read:
  kfp_submit.py sends it with each run).
- Every container runs `python -m kubeflow_v2.kfp_entrypoint` (TFX's entrypoint behind a shim
  for the KFP launcher's ExecutorInput).
- Caching is off on the tasks whose result depends on more than their inputs, parameters and
  image: a task without input artifacts reads the outside world (ExampleGen its data directory),
  and the served-model baseline reads the Pusher's base directory. On Vertex and locally,
  ExampleGen's pre-cache hook puts the data's fingerprint into the cache key; KFP never runs that
  hook, so a cached ExampleGen would be reused forever. ImportSchemaGen reading the schema inside
  the image is the exception: the image is part of KFP's cache key.

Then the package is checked with the backend's own rules (schema version, resolver tasks, Argo
task names, importer URIs), so a package that KFP would refuse fails here, not on the cluster.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

from kubeflow_v2 import kfp_backend
from pipeline import configs

ENTRYPOINT = ("python", "-m", "kubeflow_v2.kfp_entrypoint")
# Component classes (by name, anywhere in their class hierarchy) that read something besides
# their input artifacts although they have some: the served-model baseline (components/baseline.py,
# DECISIONS D3) reads the Pusher's base directory when it runs.
READS_OUTSIDE_STATE: Tuple[str, ...] = ("ServedBaseline",)


def create_runner(config: configs.KfpConfig, output_dir: str, output_file: str):
    from tfx import v1 as tfx

    return tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=config.pipeline_name, default_image=config.image,
            default_commands=list(ENTRYPOINT), use_pipeline_spec_2_1=True),
        output_dir=output_dir, output_filename=output_file)


def _schema_in_image(task: Dict[str, Any], config: configs.KfpConfig) -> bool:
    constant = task.get("inputs", {}).get("parameters", {}).get("schema_file", {}).get("runtimeValue", {})
    value = constant.get("constant", "")
    return isinstance(value, str) and value.startswith(configs.IMAGE_PROJECT_DIR + "/") \
        and config.schema_dir.startswith(configs.IMAGE_PROJECT_DIR)


def uncached_tasks(spec: Dict[str, Any], config: configs.KfpConfig, tfx_pipeline) -> List[str]:
    """The container tasks whose cache would be wrong on KFP (module docstring)."""
    outside = {node.id for node in tfx_pipeline.components
               if set(READS_OUTSIDE_STATE) & {k.__name__ for k in type(node).__mro__}}
    names = []
    for name, task, _ in kfp_backend.container_tasks(spec):
        if name in outside:
            names.append(name)
        elif not task.get("inputs", {}).get("artifacts") and not _schema_in_image(task, config):
            names.append(name)
    return sorted(names)


def pipeline_spec(config: configs.KfpConfig, tfx_pipeline) -> Dict[str, Any]:
    """The PipelineSpec for KFP (module docstring), checked with the backend's rules; raises
    kfp_backend.BackendError with the backend's message when KFP would refuse it."""
    job = create_runner(config, "unused", "unused.yaml").run(tfx_pipeline, write_out=False)
    spec = job["pipelineSpec"]
    spec["defaultPipelineRoot"] = config.pipeline_root
    for name in uncached_tasks(spec, config, tfx_pipeline):
        spec["root"]["dag"]["tasks"][name]["cachingOptions"] = {}
    kfp_backend.check_schema_version(spec)
    kfp_backend.check_compiles(spec)
    for executor in spec["deploymentSpec"]["executors"].values():
        if "importer" in executor:
            kfp_backend.check_importer_uri(executor["importer"]["artifactUri"].get("constant", ""))
    return spec


def write(spec: Dict[str, Any], path: str) -> None:
    """The package: one YAML document, the bare PipelineSpec (as TFX writes a .yaml output)."""
    import yaml

    header = (f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n"
              "# For open-source Kubeflow Pipelines 2: compiled by kubeflow_v2_runner.py --target kfp, "
              "submitted by kfp_submit.py\n")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(header)
        yaml.safe_dump(spec, f, sort_keys=True)
    os.replace(tmp, path)
