"""Running the pipeline in tests on generated data, and reading ML Metadata's record of it."""

from __future__ import annotations

from tfx import v1 as tfx

import local_runner
from pipeline import configs
from pipeline.metadata import execution_states as executions, output_uris, store  # noqa: F401


def test_config(data_dir: str, output_dir: str, **overrides) -> configs.PipelineConfig:
    """The local configuration on generated data: no checksums (not the published files)."""
    return configs.PipelineConfig(data_dir=data_dir, output_dir=output_dir,
                                  verify_checksums=False, **overrides)


def run(config: configs.PipelineConfig) -> None:
    tfx.orchestration.LocalDagRunner().run(local_runner.build(config))
