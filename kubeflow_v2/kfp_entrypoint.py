"""The container command of every component of the open-source KFP pipeline: TFX's Kubeflow V2
executor entrypoint (`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`), with
the ExecutorInput the KFP 2 launcher builds turned into the one TFX 1.21 expects, and TensorFlow's
directory markers removed from the bucket afterwards.

    python -m kubeflow_v2.kfp_entrypoint --executor_class_path ... \\
        --json_serialized_invocation_args '{{$}}' --json_serialized_inputs_spec_args '...' BEAM_ARGS

What differs from Vertex AI, and what this module does (docs/kubeflow.md; the launcher's code:
kubeflow/pipelines 2.17.0 backend/src/v2/):

1. Input artifacts arrive with an empty type (`{"instanceSchema": ""}`: the launcher reads them
   back from ML Metadata without their schema, metadata/client.go:1144), on which TFX fails
   (`'NoneType' object has no attribute 'get'`). Each gets the type its input declares in
   `--json_serialized_inputs_spec_args` (compiled with the pipeline spec 2.1).
2. With PUBLISH_LOGS=true (the released manifests' default) the driver adds an output
   `executor-logs` of type `system.Artifact`, which TFX cannot import (`Could not import
   system.Artifact`). It is the launcher's (it writes the container's log there): TFX is not
   shown it.
3. The output file is the launcher's local mirror of the task's directory (/gcs/BUCKET/...);
   TFX puts its temporary directory beside it, where Dataflow workers cannot see it. TFX gets
   the bucket's path instead (gs://BUCKET/.../executor_output.json); the file is then copied to
   where the launcher reads it.
4. TensorFlow's GCS filesystem writes an empty object `<dir>/` for every directory it creates;
   the launcher downloads every input artifact before a task starts and fails on them
   (`mkdir ...: not a directory`, kubeflow/pipelines#13476, unfixed in 2.17.0). After the
   executor, those markers are deleted under every gs:// output of the task and under a pushed
   model's destination (which the served-model baseline reads).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from kubeflow_v2 import kfp_backend

_EXECUTOR_OUTPUT = "executor_output.json"  # TFX's name for it on Vertex


class KfpInputError(ValueError):
    """The ExecutorInput cannot be made into what TFX expects; the message says which part."""


def _empty_type(type_schema: Optional[Dict[str, Any]]) -> bool:
    if not type_schema:
        return True
    return not (type_schema.get("schemaTitle") or (type_schema.get("instanceSchema") or "").strip())


def for_tfx(executor_input: Dict[str, Any], inputs_spec: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The launcher's ExecutorInput as TFX's entrypoint expects it (points 1-3 of the module doc);
    the argument is not changed."""
    result = json.loads(json.dumps(executor_input))
    declared = (inputs_spec or {}).get("artifacts", {})
    for key, artifact_list in result.get("inputs", {}).get("artifacts", {}).items():
        for artifact in artifact_list.get("artifacts", []):
            if not _empty_type(artifact.get("type")):
                continue
            if key not in declared or _empty_type(declared[key].get("artifactType")):
                raise KfpInputError(
                    f"input artifact {key!r} arrived without a type and the component's inputs spec "
                    f"declares none (declared: {sorted(declared) or 'nothing'}); compile the pipeline "
                    "with the KFP target (spec 2.1)")
            artifact["type"] = dict(declared[key]["artifactType"])
    outputs = result.get("outputs", {})
    artifacts = outputs.get("artifacts", {})
    for key in list(artifacts):
        types = [a.get("type", {}) for a in artifacts[key].get("artifacts", [])]
        if key == kfp_backend.EXECUTOR_LOGS or any(t.get("schemaTitle", "").startswith("system.") for t in types):
            del artifacts[key]
    bucket_dir = kfp_backend.uri_for_local_path(outputs.get("outputFile", "").rsplit("/", 1)[0])
    if bucket_dir and bucket_dir.startswith("gs://"):
        outputs["outputFile"] = f"{bucket_dir}/{_EXECUTOR_OUTPUT}"
    return result


def directory_markers(blobs: Iterable[Any], prefix: str) -> List[Any]:
    """The zero-byte `<dir>/` objects among `blobs` (objects with .name and .size) under `prefix`."""
    prefix = prefix.rstrip("/")
    return [b for b in blobs if b.size == 0 and b.name.endswith("/")
            and (b.name == prefix + "/" or b.name.startswith(prefix + "/"))]


def delete_directory_markers(uris: Iterable[str], client: Any = None) -> int:
    """Deletes the directory markers under each gs:// URI; returns how many. `client`: a
    google.cloud.storage.Client (default: one with the pod's credentials)."""
    total = 0
    for uri in sorted(set(u.rstrip("/") for u in uris if u.startswith("gs://"))):
        bucket_name, _, prefix = uri[len("gs://"):].partition("/")
        if client is None:
            from google.cloud import storage
            client = storage.Client()
        bucket = client.bucket(bucket_name)
        markers = directory_markers(client.list_blobs(bucket_name, prefix=prefix + "/" if prefix else None),
                                    prefix)
        for blob in markers:
            bucket.delete_blob(blob.name)
        total += len(markers)
    return total


def written_uris(executor_output: Dict[str, Any], declared: Dict[str, Any]) -> List[str]:
    """The URIs a task wrote: its outputs (as reported, else as declared) and a pushed model's
    destination (`pushed_destination` in its metadata)."""
    uris = []
    reported = executor_output.get("artifacts", {})
    for key, artifact_list in declared.items():
        for i, artifact in enumerate(artifact_list.get("artifacts", [])):
            found = reported.get(key, {}).get("artifacts", [])
            chosen = found[i] if i < len(found) else artifact
            uris.append(chosen.get("uri") or artifact.get("uri", ""))
            destination = chosen.get("metadata", {}).get("pushed_destination")
            if isinstance(destination, str):
                uris.append(destination)
    return [u for u in uris if u]


def _parse(argv: List[str]) -> Tuple[argparse.Namespace, List[str]]:
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    return kubeflow_v2_run_executor._parse_flags(argv)  # noqa: SLF001  TFX's own flags, as its main


def run(parsed: Tuple[argparse.Namespace, List[str]],
        delete_markers: Callable[[Iterable[str]], int] = delete_directory_markers) -> None:
    from absl import logging
    from tfx.dsl.io import fileio
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    args, beam_args = parsed
    launcher_input = json.loads(args.json_serialized_invocation_args)
    inputs_spec = json.loads(args.json_serialized_inputs_spec_args) if args.json_serialized_inputs_spec_args else None
    tfx_input = for_tfx(launcher_input, inputs_spec)
    args = argparse.Namespace(**{**vars(args), "json_serialized_invocation_args": json.dumps(tfx_input)})
    kubeflow_v2_run_executor._run_executor(args, beam_args)  # noqa: SLF001  what its main() runs

    launcher_file = launcher_input["outputs"]["outputFile"]
    tfx_file = tfx_input["outputs"]["outputFile"]
    with fileio.open(tfx_file, "rb") as f:
        executor_output = f.read()
    if tfx_file != launcher_file:
        fileio.makedirs(launcher_file.rsplit("/", 1)[0])
        with fileio.open(launcher_file, "wb") as f:
            f.write(executor_output)
    uris = written_uris(json.loads(executor_output), tfx_input["outputs"].get("artifacts", {}))
    if any(u.startswith("gs://") for u in uris):
        logging.info("deleted %d directory markers under %s", delete_markers(uris), uris)


def main(argv: Optional[List[str]] = None) -> None:
    from absl import app

    app.run(run, argv=[sys.argv[0]] + list(sys.argv[1:] if argv is None else argv), flags_parser=_parse)


if __name__ == "__main__":
    main()
