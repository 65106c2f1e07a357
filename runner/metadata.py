"""What local runs left: ML Metadata's executions per component and their outputs, and the
pushed models."""

from __future__ import annotations

import collections
from typing import Dict, List, Tuple

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from pipeline import configs

STATE_NAMES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


def store(config: configs.PipelineConfig) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))


def node_executions(config: configs.PipelineConfig) -> Dict[str, List[metadata_store_pb2.Execution]]:
    """Node id -> its executions, oldest first."""
    mlmd = store(config)
    prefix = config.pipeline_name + "."
    found = collections.defaultdict(list)
    for context in mlmd.get_contexts_by_type("node"):
        if context.name.startswith(prefix):
            found[context.name[len(prefix):]] = sorted(
                mlmd.get_executions_by_context(context.id), key=lambda e: e.id)
    return dict(found)


def execution_states(config: configs.PipelineConfig) -> Dict[str, List[str]]:
    """Node id -> the states of its executions (COMPLETE, CACHED, FAILED...), oldest first."""
    return {node: [STATE_NAMES[e.last_known_state] for e in executions]
            for node, executions in node_executions(config).items()}


def execution_times(config: configs.PipelineConfig, since_ms: int = 0) -> List[Tuple[str, str, float]]:
    """[(node id, state, wall seconds)] of executions created at or after `since_ms`, in order."""
    rows = [(e.create_time_since_epoch, node, STATE_NAMES[e.last_known_state],
             (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000)
            for node, executions in node_executions(config).items() for e in executions
            if e.create_time_since_epoch >= since_ms]
    return [row[1:] for row in sorted(rows)]


def output_uris(config: configs.PipelineConfig, node: str, key: str, execution: int = -1) -> List[str]:
    """URIs of the artifacts a node's execution (default: its latest; 0 = its first) produced
    under output `key`."""
    mlmd = store(config)
    chosen = node_executions(config)[node][execution]
    events = mlmd.get_events_by_execution_ids([chosen.id])
    ids = [ev.artifact_id for ev in events if ev.type == metadata_store_pb2.Event.OUTPUT
           and any(s.HasField("key") and s.key == key for s in ev.path.steps)]
    return [a.uri for a in mlmd.get_artifacts_by_id(ids)]


def latest_pushed_model(serving_model_dir: str) -> str:
    """The served version's directory: the newest complete version the Pusher wrote (D1,
    components/model_versions.py)."""
    from components import model_versions

    served = model_versions.served(serving_model_dir)
    if served is None:
        raise FileNotFoundError(f"no pushed model in {serving_model_dir}: run 'make run' first")
    return served.path
