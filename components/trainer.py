"""TFX's Trainer, told what the run's baseline and data are.

The Trainer's `base_model` is ServedBaseline's output (components/baseline.py): a Model artifact
that may hold nothing (`found` 0: nothing is served yet). This executor hands `run_fn`
(models/trainer.py) the artifact's facts in `custom_config["run"]`: the baseline's version and why
it is the baseline, and the data it was decided for (ExampleGen's input fingerprint, span,
window), which the Trainer records in the model's training.json. An empty baseline reaches
`run_fn` as no base model at all (`fn_args.base_model` None: a cold start). The facts are added
when the executor runs, after the cache key was taken: they do not change what is cached.

`VertexTrainer` is TFX's Vertex AI Training Trainer (tfx.extensions.google_cloud_ai_platform)
running this same executor in its custom job: the warm start works there as it does in a task.
"""

from __future__ import annotations

from typing import Any, Dict, List

from tfx import types
from tfx import v1 as tfx
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform.trainer import executor as vertex_trainer_executor
from tfx.types import standard_component_specs
from tfx.utils import json_utils

from components import baseline
from models import trainer as trainer_module

BASE_MODEL = standard_component_specs.BASE_MODEL_KEY
CUSTOM_CONFIG = standard_component_specs.CUSTOM_CONFIG_KEY


class Executor(trainer_executor.GenericExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        bases = input_dict.get(BASE_MODEL) or []
        facts = baseline.artifact_facts(bases[0] if bases else None)
        custom_config = json_utils.loads(exec_properties.get(CUSTOM_CONFIG) or "null") or {}
        custom_config[trainer_module.RUN_KEY] = facts
        exec_properties = {**exec_properties, CUSTOM_CONFIG: json_utils.dumps(custom_config)}
        if not facts["baseline"]["found"]:
            input_dict = {**input_dict, BASE_MODEL: []}
        return super().Do(input_dict, output_dict, exec_properties)


class Trainer(tfx.components.Trainer):
    """tfx.components.Trainer whose run_fn knows the run's baseline and data (module docstring)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)


class VertexExecutor(vertex_trainer_executor.GenericExecutor):
    """Starts a Vertex AI Training custom job that runs `Executor` (not TFX's GenericExecutor)."""

    def _GetExecutorClass(self):
        return Executor


class VertexTrainer(tfx.extensions.google_cloud_ai_platform.Trainer):
    """The Trainer as a Vertex AI Training custom job, with the baseline's facts (`Executor`)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(VertexExecutor)
