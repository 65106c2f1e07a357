"""Running the pipeline in tests, and reading what ML Metadata recorded of the run."""

from __future__ import annotations

import collections
from typing import Dict, List

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

import local_runner
from pipeline import configs

STATE_NAMES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


def test_config(data_dir: str, output_dir: str, **overrides) -> configs.PipelineConfig:
    """The local configuration on generated data: no checksums (not the published files)."""
    return configs.PipelineConfig(data_dir=data_dir, output_dir=output_dir,
                                  verify_checksums=False, **overrides)


def run(config: configs.PipelineConfig) -> None:
    tfx.orchestration.LocalDagRunner().run(local_runner.build(config))


def executions(config: configs.PipelineConfig) -> Dict[str, List[str]]:
    """Node id -> the states of its executions in ML Metadata, oldest first."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))
    prefix = config.pipeline_name + "."
    found = collections.defaultdict(list)
    for context in store.get_contexts_by_type("node"):
        if not context.name.startswith(prefix):
            continue
        node = context.name[len(prefix):]
        for e in sorted(store.get_executions_by_context(context.id), key=lambda e: e.id):
            found[node].append(STATE_NAMES[e.last_known_state])
    return dict(found)


def output_uris(config: configs.PipelineConfig, node: str, key: str) -> List[str]:
    """URIs of the artifacts a node's latest execution produced under output `key`."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))
    context = store.get_context_by_type_and_name("node", f"{config.pipeline_name}.{node}")
    latest = max(store.get_executions_by_context(context.id), key=lambda e: e.id)
    events = store.get_events_by_execution_ids([latest.id])
    ids = [ev.artifact_id for ev in events if ev.type == metadata_store_pb2.Event.OUTPUT
           and any(s.HasField("key") and s.key == key for s in ev.path.steps)]
    return [a.uri for a in store.get_artifacts_by_id(ids)]
