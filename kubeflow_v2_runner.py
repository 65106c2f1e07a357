"""Compiles the pipeline for Vertex AI Pipelines into a pipeline JSON, or for open-source
Kubeflow Pipelines 2 into a pipeline package (YAML).

The same `create_pipeline` as local_runner.py, with cloud locations, the container image and
(optionally) Dataflow as Beam runner. Fully offline: no credentials, no network, nothing uploaded.
Module code is referenced by dotted path (models.preprocessing.preprocessing_fn, ...) and runs
from the package installed in the image (see Dockerfile), so no wheel is built here.

    make compile ARGS="--project P --region europe-west1 --bucket B --image IMAGE [--dataflow]"
    make compile-kfp ARGS="--bucket B --image IMAGE"          # = --target kfp (docs/kubeflow.md)
    env/run-in-env python kubeflow_v2_runner.py --help        # every setting and its variable

It prints one line per component; TensorFlow's start-up lines, TFX's log and library warnings go
to <output-dir>/logs/compile-<time>.log, as a local run's go to its log. Then submit the JSON with
vertex_submit.py, the YAML with kfp_submit.py.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import logging
import os
import re
import sys
from typing import List, Optional

from kubeflow_v2 import settings
from pipeline import configs
from runner import console as console_lib


# Kubeflow V2 keeps a custom artifact type only as its TYPE_NAME, and the container re-imports the
# class from that name: it must be "<package>.<Class>" (KFP's schema-title pattern) and importable.
_KFP_TITLE = re.compile(r"^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$")


def check_custom_artifact_types(tfx_pipeline) -> None:
    """Raises ValueError naming each custom artifact type Vertex could not restore in the container."""
    from tfx.utils import import_utils

    problems = []
    for node in tfx_pipeline.components:
        for key, channel in node.outputs.items():
            cls = channel.type
            if cls.__module__.startswith("tfx."):  # TFX's own types: Kubeflow V2 knows them
                continue
            name = cls.TYPE_NAME
            try:
                importable = bool(_KFP_TITLE.fullmatch(name)) and (
                    import_utils.import_class_by_path(name) is cls)
            except (ImportError, AttributeError, ValueError):
                importable = False
            if not importable:
                problems.append(
                    f"{node.id}.outputs['{key}']: {cls.__module__}.{cls.__name__}.TYPE_NAME is "
                    f"{name!r}, must be an importable '<package>.<Class>' path, e.g. "
                    f"'{cls.__module__.split('.')[0]}.{cls.__name__}' exported by "
                    f"{cls.__module__.split('.')[0]}/__init__.py")
    if problems:
        raise ValueError("custom artifact types Kubeflow V2 cannot restore: " + "; ".join(problems))


def build(config: configs.VertexConfig):
    """The tfx Pipeline for Vertex; refuses what would upload code at compile time or fail there."""
    from pipeline import pipeline as pipeline_def

    result = pipeline_def.create_pipeline(config)
    check_custom_artifact_types(result)
    for component in result.components:
        props = getattr(component, "exec_properties", {}) or {}
        if props.get("module_file") or props.get("module_path"):
            raise ValueError(
                f"component {component.id} has a module_file: compiling would build a wheel and copy "
                "it to the pipeline root; give it a dotted path (e.g. run_fn='models.trainer.run_fn')")
    return result


def create_runner(config: configs.VertexConfig, output_dir: str, output_file: str):
    from tfx import v1 as tfx

    return tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=config.pipeline_name, default_image=config.image),
        output_dir=output_dir, output_filename=output_file)


def uncache_run_time_decisions(job: dict, tfx_pipeline) -> List[str]:
    """Turns caching off, in a compiled pipeline job, for the tasks whose answer no input carries:
    ServedBaseline reads the Pusher's base directory when it runs (components/baseline.py), and a
    cached execution would hand back the served model of an earlier run. Returns their ids.
    (`vertex_submit.py --cache` sets every task's caching and would undo this.)"""
    from components.baseline import ServedBaseline

    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    ids = [n.id for n in tfx_pipeline.components
           if isinstance(n, ServedBaseline) and not n.exec_properties.get("pinned_version")]
    for node_id in ids:
        tasks[node_id]["cachingOptions"] = {"enableCache": False}
    return ids


def compile_pipeline(config: configs.VertexConfig, output_dir: str, output_file: Optional[str] = None):
    """Writes the compiled pipeline (a VertexConfig: the pipeline JSON; a KfpConfig: the KFP
    package); returns (its path, the tfx Pipeline compiled)."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    tfx_pipeline = build(config)
    if isinstance(config, configs.KfpConfig):
        from kubeflow_v2 import kfp_package

        path = os.path.join(output_dir, output_file or configs.KFP_PIPELINE_YAML)
        os.makedirs(output_dir, exist_ok=True)
        kfp_package.write(kfp_package.pipeline_spec(config, tfx_pipeline), path)
        return path, tfx_pipeline
    output_file = output_file or configs.VERTEX_PIPELINE_JSON
    job = create_runner(config, output_dir, output_file).run(tfx_pipeline, write_out=False)
    uncache_run_time_decisions(job, tfx_pipeline)
    path = os.path.join(output_dir, output_file)
    os.makedirs(output_dir, exist_ok=True)
    # TFX's own writer (JSON, or YAML for a .yaml name), as run(write_out=True) would call it
    from tfx import version

    kubeflow_v2_dag_runner._write_pipeline_spec_to_file(
        job, f"This is converted from TFX pipeline from tfx-{version.__version__}.", path)
    return path, tfx_pipeline


def describe(tfx_pipeline) -> List[str]:
    """One line per component: id, type, upstream ids."""
    lines = []
    for node in tfx_pipeline.components:
        upstream = sorted(n.id for n in node.upstream_nodes)
        lines.append(f"{node.id} ({type(node).__name__})"
                     + (f" <- {', '.join(upstream)}" if upstream else ""))
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    """Compiles; returns the exit code: 0, 2 (bad settings or output directory, nothing written but
    the log), 1 (the pipeline does not compile). TensorFlow's C++ start-up lines, TFX's log and
    library warnings go to <output-dir>/logs/compile-<time>.log, as a local run's go to its log."""
    try:
        config, output_dir, output_file = settings.parse_compile_args(argv)
    except settings.SettingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:  # before compiling: TFX would end with a traceback of tf.io.gfile's error
        os.makedirs(output_dir, exist_ok=True)
        if not os.access(output_dir, os.W_OK):
            raise PermissionError(f"no permission to write into {output_dir}")
        if os.path.dirname(output_file):
            raise ValueError(f"--output-file {output_file!r} is a file name; the directory is --output-dir")
        if isinstance(config, configs.KfpConfig) and not output_file.endswith((".yaml", ".yml")):
            raise ValueError(f"--output-file {output_file!r}: a KFP package is a .yaml file")
        if not isinstance(config, configs.KfpConfig) and not output_file.endswith(".json"):
            raise ValueError(f"--output-file {output_file!r}: a Vertex AI pipeline is a .json file "
                             "(a KFP package: --target kfp)")
    except (OSError, ValueError) as e:
        what = "package" if isinstance(config, configs.KfpConfig) else "JSON"
        print(f"error: cannot write the pipeline {what} to --output-dir {output_dir}: {e}", file=sys.stderr)
        return 2
    console = console_lib.Console(console_lib.log_path_for(output_dir, what="compile"),
                                  stream=console_lib.terminal(sys.stdout),
                                  err_stream=console_lib.terminal(sys.stderr)).start()
    try:
        return _compile(config, output_dir, output_file, console)
    except Exception as e:  # noqa: BLE001  unforeseen: say it plainly, keep the traceback in the log
        logging.exception("the compile stopped")
        console.say(f"error: the compile stopped: {type(e).__name__}: {console_lib.plain_cause(e)}", err=True)
        console.say(f"full log: {console.log_path}", err=True)
        return 1
    finally:
        console.close()


def _compile(config: configs.VertexConfig, output_dir: str, output_file: str, console) -> int:
    from components import evaluator
    from models import trainer

    def fail(message: str, code: int) -> int:
        console.say(f"error: {message}", err=True)
        console.say(f"full log: {console.log_path}", err=True)
        return code

    try:  # a bad --preset/--model-param fails here, in one line
        trainer.model_config(config.training.custom_config())
    except (TypeError, ValueError) as e:
        return fail(f"model configuration: {e}", 2)
    try:  # a --gate-bound of no metric, or out of [0, 1]: here, not in the Evaluator on Vertex
        evaluator.eval_config(**config.gate.eval_config_args())
    except ValueError as e:
        return fail(f"gate configuration: {e}", 2)
    from components import drift

    try:  # an unknown --drift-threshold name, or a value out of its range
        drift.check_thresholds(config.drift.thresholds)
    except ValueError as e:
        return fail(str(e), 2)
    try:
        path, tfx_pipeline = compile_pipeline(config, output_dir, output_file)
    except (TypeError, ValueError) as e:
        return fail(f"cannot compile the pipeline: {e}", 1)
    target = "open-source KFP" if isinstance(config, configs.KfpConfig) else "Vertex AI"
    console.say(f"[compile] {len(tfx_pipeline.components)} components for {target}, image {config.image}")
    for line in describe(tfx_pipeline):
        console.say(f"[compile]   {line}")
    console.say(f"[compile] beam: {' '.join(config.beam_pipeline_args())}")
    if config.trainer_machine_type:
        kind, count = config.trainer_accelerator or (None, 0)
        accelerator = f", {count} x {kind}" if kind else ""
        console.say(f"[compile] trainer: a Vertex AI Training custom job on {config.trainer_machine_type}{accelerator}")
    if isinstance(config, configs.KfpConfig):
        from kubeflow_v2 import kfp_backend

        with open(path) as f:
            spec = kfp_backend.load_package(f.read())
        uncached = [n for n, t, _ in kfp_backend.container_tasks(spec) if not kfp_backend.caching_enabled(t)]
        console.say(f"[compile] no cache on KFP for: {', '.join(sorted(uncached)) or 'nothing'} "
                    "(docs/kubeflow.md#caching)")
    if not config.pipeline_root.startswith("gs://"):  # the harnesses' roots: no backend takes them
        console.say(f"[compile] note: the pipeline root {config.pipeline_root} is not gs://: for the local harness "
                    "only (vertex_submit.py and kfp_submit.py refuse it)")
    if config.drift.accept:  # found by exploratory testing: nothing said it (docs/vertex.md#settings did)
        console.say(f"[compile] note: compiled with --accept-drift: every run of this package lets every drifted "
                    f"span through (recorded in {config.drift_acceptances_dir}); compile it for the one run that "
                    "needs it, then again without it")
    missing = [p for p in (config.data_root, config.catalog_uri)  # found by exploratory testing
               if p and not p.startswith("gs://") and not os.path.exists(p)]
    for local in missing[:1] if missing[1:] and missing[1].startswith(missing[0] + "/") else missing:
        console.say(f"[compile] note: {local} does not exist on this machine: a run of this pipeline finds "
                    "nothing there until it is made")
    console.say(f"[compile] wrote {path}")
    console.say(f"[compile] full log {console.log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
