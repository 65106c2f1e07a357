"""A pipeline whose second component takes memory until it is stopped: the worker of
tests/test_run_memory.py, run as `make run` runs local_runner.py (a supervisor process watching a
worker that runs the pipeline behind the console).

    python -c "import sys; from tests import memory_hog; sys.exit(memory_hog.command(sys.argv[1:]))" \
        OUTPUT_DIR DATA_DIR [--memory-limit SIZE] [--hold MB --pid-file PATH]

`Warmup` finishes at once; `MemoryHog` then allocates (and touches) 64 MiB every 20 ms. Without
--hold it goes on until it is stopped, and fails once it has taken HOG_CAP (the limit did not
work); with --hold it stops at that many MB, writes its process id into --pid-file and waits to
be killed (as the kernel's out-of-memory killer would).
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import os
import sys
import time

from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from cli import flags
from pipeline import configs
from runner import console, supervisor

CHUNK = 64 * 2**20
HOG_CAP = 6 * 2**30


@component
def Warmup(done: OutputArtifact[standard_artifacts.String]):  # noqa: N802 (a component's name)
    done.value = "warm"


@component
def MemoryHog(warm: tfx.dsl.components.InputArtifact[standard_artifacts.String],  # noqa: N802
              hold_mb: Parameter[int], pid_file: Parameter[str]):
    held = []
    while len(held) * CHUNK < (hold_mb * 2**20 if hold_mb else HOG_CAP):
        chunk = bytearray(CHUNK)
        chunk[::4096] = b"x" * (CHUNK // 4096)  # every page touched: resident
        held.append(chunk)
        time.sleep(0.02)
    if not hold_mb:
        raise RuntimeError(f"took {len(held) * CHUNK / 2**30:.1f} GiB and nobody stopped it")
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)
    raise RuntimeError("held its memory for 120 s and nobody killed it")


def build(config: configs.PipelineConfig, hold_mb: int, pid_file: str) -> tfx.dsl.Pipeline:
    warmup = Warmup()
    hog = MemoryHog(warm=warmup.outputs["done"], hold_mb=hold_mb, pid_file=pid_file)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name, pipeline_root=config.pipeline_root,
        components=[warmup, hog], enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("output_dir")
    p.add_argument("data_dir")
    p.add_argument("--memory-limit", type=flags.byte_size)
    p.add_argument("--hold", type=int, default=0)
    p.add_argument("--pid-file", default="")
    return p


def command(argv) -> int:
    args = _parser().parse_args(argv)
    config = configs.PipelineConfig(data_dir=args.data_dir, output_dir=args.output_dir,
                                    verify_checksums=False)
    if supervisor.is_worker():
        return console.run_pipeline(config, lambda c: build(c, args.hold, args.pid_file))
    worker = [sys.executable, "-c", "import sys; from tests import memory_hog; "
              "sys.exit(memory_hog.command(sys.argv[1:]))", *argv]
    return supervisor.supervise(worker, config, memory_limit=args.memory_limit)
