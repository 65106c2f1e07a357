"""EvalSample: the eval purchases of a seeded sample of eval users, for the Evaluator.

The Evaluator ranks every eval purchase against the whole catalog: its work grows as eval
purchases x products, the square of the data when both grow (docs/benchmarks.md, the growth
curve). With `users` set, the pipeline puts this component between ExampleGen and the Evaluator
(and the run report): the Evaluator then measures the candidate and the served model on
the purchases of at most `users` eval users, whose work grows with the catalog only.

- **Which users**: the `users` eval users with the smallest keyed hash of their id (BLAKE2b keyed
  with `seed`): the same users for every model and every run of the same data and seed,
  whatever the order of the records or the number of Beam workers. Every eval purchase of a
  sampled user is kept: the metrics stay per purchase, as the gate computes them.
- **Output** (`sampled`): an Examples artifact with the one split `split` (the input's payload and file
  format), its custom properties the counts (`sampled_users`, `eval_users`,
  `sampled_purchases`, `eval_purchases`); the console shows them (logger `recsys.eval`).
- A Beam pipeline (on Dataflow with the Vertex pipeline's `--dataflow`): the reading, hashing and
  filtering run in Beam's workers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Dict, List

import apache_beam as beam
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components import beam_metrics
from models import features

COUNTER_NAMESPACE = "eval_sample"
DEFAULT_SEED = 0
progress = logging.getLogger("recsys.eval")  # the console shows it (runner/console.py)


def user_key(user: bytes, seed: int) -> int:
    """The seeded order of users: a keyed 64-bit BLAKE2b of the id (the same on every machine)."""
    digest = hashlib.blake2b(user, digest_size=8, key=seed.to_bytes(8, "little", signed=True))
    return int.from_bytes(digest.digest(), "little")


def user_of(record: bytes) -> bytes:
    """The user id of a serialized purchase tf.Example."""
    import tensorflow as tf

    example = tf.train.Example.FromString(record)
    return example.features.feature[features.USER_KEY].bytes_list.value[0]


class _Counted(beam.DoFn):
    def __init__(self, name: str):
        self.name = name
        self.counter = beam.metrics.Metrics.counter(COUNTER_NAMESPACE, name)

    def process(self, element):
        self.counter.inc()
        yield element


def sample(pipeline: beam.Pipeline, input_pattern: str, output_prefix: str, users: int, seed: int) -> None:
    """Adds the steps: the records of `input_pattern` -> those of the `users` users with the
    smallest keys -> gzipped TFRecords at `output_prefix`."""
    keyed = (pipeline
             | "Read" >> beam.io.ReadFromTFRecord(input_pattern, coder=beam.coders.BytesCoder())
             | "CountPurchases" >> beam.ParDo(_Counted("eval_purchases"))
             | "ByUser" >> beam.Map(lambda record: (user_of(record), record)))
    chosen = (keyed
              | "Users" >> beam.Keys()
              | "Distinct" >> beam.Distinct()
              | "CountUsers" >> beam.ParDo(_Counted("eval_users"))
              | "Keys" >> beam.Map(lambda user: (user_key(user, seed), user))
              | "Smallest" >> beam.combiners.Top.Smallest(users)
              | "AsSet" >> beam.Map(lambda top: frozenset(user for _, user in top)))
    _ = (keyed
         | "Sampled" >> beam.Filter(lambda pair, kept: pair[0] in kept, kept=beam.pvalue.AsSingleton(chosen))
         | "Records" >> beam.Values()
         | "CountSampled" >> beam.ParDo(_Counted("sampled_purchases"))
         | "Write" >> beam.io.WriteToTFRecord(output_prefix, file_name_suffix=".gz",
                                              compression_type=beam.io.filesystem.CompressionTypes.GZIP))


class Executor(base_beam_executor.BaseBeamExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        output = artifact_utils.get_single_instance(output_dict["sampled"])
        split, users = exec_properties["split"], int(exec_properties["users"])
        seed = int(exec_properties.get("seed") or DEFAULT_SEED)
        if split not in artifact_utils.decode_split_names(examples.split_names):
            raise ValueError(f"the examples have no split {split!r} to sample "
                             f"(they have {artifact_utils.decode_split_names(examples.split_names)})")
        pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
        output.split_names = artifact_utils.encode_split_names([split])
        out_dir = artifact_utils.get_split_uri([output], split)
        import tensorflow as tf

        tf.io.gfile.makedirs(out_dir)  # Vertex does not create output directories (docs/vertex.md)
        pipeline = self._make_beam_pipeline()
        sample(pipeline, pattern, os.path.join(out_dir, "data_tfrecord"), users, seed)
        result = pipeline.run()
        result.wait_until_finish()
        counts = {name: beam_metrics.counter(result, COUNTER_NAMESPACE, name)
                  for name in ("eval_purchases", "eval_users", "sampled_purchases")}
        counts["sampled_users"] = min(users, counts["eval_users"])
        examples_utils.set_payload_format(output, examples_utils.get_payload_format(examples))
        examples_utils.set_file_format(output, examples_utils.get_file_format(examples))
        for name, value in counts.items():
            output.set_int_custom_property(name, value)
        progress.info("[eval] a seeded sample of %s of %s eval users (%s of %s purchases): the "
                      "Evaluator measures those", f"{counts['sampled_users']:,}", f"{counts['eval_users']:,}",
                      f"{counts['sampled_purchases']:,}", f"{counts['eval_purchases']:,}")


class EvalSampleSpec(ComponentSpec):
    PARAMETERS = {
        "users": ExecutionParameter(type=int),
        "seed": ExecutionParameter(type=int, optional=True),
        "split": ExecutionParameter(type=str),
    }
    INPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {"sampled": ChannelParameter(type=standard_artifacts.Examples)}


class EvalSample(base_beam_component.BaseBeamComponent):
    """The eval purchases of a seeded sample of `users` eval users (see the module docstring)."""

    SPEC_CLASS = EvalSampleSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples: types.BaseChannel, users: int, seed: int = DEFAULT_SEED, split: str = "eval"):
        if users < 1:
            raise ValueError(f"users must be >= 1 (eval users in the sample), got {users}")
        super().__init__(spec=EvalSampleSpec(examples=examples, users=users, seed=seed, split=split,
                                             sampled=types.Channel(type=standard_artifacts.Examples)))
