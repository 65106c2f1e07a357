"""Wall time of the BatchRecommendations component for every known ASOS user (not a test: it prints).

    env/run-in-env python benchmarks/batch_time.py [--output-dir outputs] [--repeats 1]

Takes the model, blessing and transform graph of the latest local run (`make run`; ML Metadata in
OUTPUT_DIR) and runs the component's executor on them again, as the pipeline does (the local
run's Beam arguments), into a temporary directory: the users' top-K lists as parquet. Prints
the users covered, the rows written and the seconds (the process's TensorFlow/TFX import is not
counted; the model load is). `benchmarks/pipeline_time.py` shows the same component's time
inside a pipeline run.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from benchmarks import console  # noqa: F401  (TensorFlow's own lines to outputs/logs/benchmarks.log)

import argparse
import os
import sys
import tempfile
import time

from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts

from components import batch_recommendations as batch
from pipeline import configs
from runner import metadata


def _artifact(cls, uri, **int_properties):
    a = cls()
    a.uri = uri
    for k, v in int_properties.items():
        a.set_int_custom_property(k, v)
    return a


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", default=configs.DEFAULT_OUTPUT_DIR,
                   help="the local run's output directory (default %(default)s)")
    p.add_argument("--repeats", type=_positive, default=1)
    p.add_argument("--batch-size", type=_positive, default=batch.DEFAULT_BATCH_SIZE)
    args = p.parse_args(argv)
    config = configs.PipelineConfig(output_dir=args.output_dir, verify_checksums=False)
    if not os.path.exists(config.metadata_path):
        print(f"error: no local run in {args.output_dir}: run 'make run' first", file=sys.stderr)
        return 1
    if "Trainer" not in metadata.node_executions(config):
        print(f"error: no trained model in {args.output_dir}: its runs stopped before the Trainer "
              "(run 'make run' to a successful end first)", file=sys.stderr)
        return 1
    [model_uri] = metadata.output_uris(config, "Trainer", "model")
    [graph_uri] = metadata.output_uris(config, "Transform", "transform_graph")
    users = len(batch.read_users(graph_uri))
    print(f"[batch-time] model {model_uri}; {users} users; beam {' '.join(config.beam_pipeline_args())}; "
          f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}", flush=True)
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            result = _artifact(standard_artifacts.InferenceResult, out)
            context = base_beam_executor.BaseBeamExecutor.Context(
                beam_pipeline_args=config.beam_pipeline_args(), tmp_dir=os.path.join(out, ".tmp"),
                unique_id=str(i))
            start = time.perf_counter()
            batch.Executor(context).Do(
                {"model": [_artifact(standard_artifacts.Model, model_uri)],
                 "model_blessing": [_artifact(standard_artifacts.ModelBlessing, out, blessed=1)],
                 "transform_graph": [_artifact(standard_artifacts.TransformGraph, graph_uri)]},
                {"recommendations": [result]}, {"batch_size": args.batch_size})
            seconds = time.perf_counter() - start
            print(f"[batch-time] run {i + 1}: {result.get_int_custom_property('users')} users, "
                  f"{result.get_int_custom_property('rows')} rows, "
                  f"{result.get_int_custom_property('files')} files in {seconds:.1f} s "
                  f"({result.get_int_custom_property('users') / seconds:.0f} users/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
