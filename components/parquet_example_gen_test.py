"""The record-batch parquet executor writes the same tf.Examples as TFX's parquet_executor."""

import os

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow.core.example import example_pb2
from tfx.components.example_gen.custom_executors import parquet_executor
from tfx.types import standard_component_specs

from components import parquet_example_gen
from models import features
from pipeline import configs


def _canonical(example) -> bytes:
    """A serialization that does not depend on the order the feature map was written in."""
    if isinstance(example, bytes):
        example = example_pb2.Example.FromString(example)
    return example.SerializeToString(deterministic=True)


def _both(input_base: str, pattern: str, out_dir: str):
    """(this executor's examples, TFX's), canonical and sorted, from one Beam pipeline."""
    props = {standard_component_specs.INPUT_BASE_KEY: input_base}
    transforms = {"ours": parquet_example_gen.Executor().GetInputSourceToExamplePTransform(),
                  "tfx": parquet_executor.Executor().GetInputSourceToExamplePTransform()}
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner",
                                                "--direct_running_mode=in_memory"])) as p:
        for name, transform in transforms.items():
            (p | f"Read[{name}]" >> transform(props, pattern)
               | f"Canonical[{name}]" >> beam.Map(_canonical)
               | f"Write[{name}]" >> beam.io.WriteToTFRecord(os.path.join(out_dir, name),
                                                             shard_name_template=""))
    return tuple(sorted(r.numpy() for r in tf.data.TFRecordDataset(os.path.join(out_dir, name)))
                 for name in transforms)


def test_same_examples_as_tfx_parquet_executor(fake_data_dir, tmp_path):
    for split, pattern in configs.SPLIT_PATTERNS.items():
        ours, tfx_examples = _both(fake_data_dir, pattern, str(tmp_path / split))
        assert len(ours) > 10, split
        assert ours == tfx_examples, split


def test_types_and_nulls(tmp_path):
    """int32 -> int64_list, binary -> bytes_list, one value each; a null is an empty feature,
    as in TFX's executor. (TFX also empties 0 and b""; here they stay values, for the schema to
    judge: see the module docstring.)"""
    table = pa.table({"u": pa.array([b"abc", None, b"xyz"], pa.binary()),
                      "p": pa.array([7, 8, None], pa.int32())})
    pq.write_table(table, os.path.join(tmp_path, "part.parquet"))
    ours, tfx_examples = _both(str(tmp_path), "*.parquet", str(tmp_path / "out"))
    assert ours == tfx_examples
    parsed = sorted((example_pb2.Example.FromString(e) for e in ours),
                    key=lambda e: e.features.feature["p"].int64_list.value[:] or [0])
    assert [e.features.feature["p"].int64_list.value[:] for e in parsed] == [[], [7], [8]]
    assert parsed[1].features.feature["u"].bytes_list.value[:] == [b"abc"]
    assert not parsed[2].features.feature["u"].HasField("bytes_list")  # the null user


def test_zero_stays_a_value(tmp_path):
    """TFX's dict_to_example drops a 0 (tfx#6407); this executor keeps it, so the schema's
    int_domain flags it instead of a missing value."""
    pq.write_table(pa.table({features.USER_KEY: pa.array([b"u" * 20], pa.binary()),
                             features.PRODUCT_KEY: pa.array([0], pa.int32())}),  # the ASOS types
                   os.path.join(tmp_path, "part.parquet"))
    ours, _ = _both(str(tmp_path), "*.parquet", str(tmp_path / "out"))
    assert example_pb2.Example.FromString(ours[0]).features.feature["productId"].int64_list.value[:] == [0]


def test_utf8_strings_are_encoded_as_bytes(tmp_path):
    """pandas writes str columns as utf8, which tfx_bsl's encoder refuses ("Bad field type"):
    they become the same bytes_list as binary, and as TFX's executor writes."""
    table = pa.table({"u": pa.array(["abc", None, "xyzü"], pa.string()),
                      "p": pa.array([7, 8, 9], pa.int64())})
    pq.write_table(table, os.path.join(tmp_path, "part.parquet"))
    ours, tfx_examples = _both(str(tmp_path), "*.parquet", str(tmp_path / "out"))
    assert ours == tfx_examples
    users = sorted(example_pb2.Example.FromString(e).features.feature["u"].bytes_list.value[:] for e in ours)
    assert users == [[], [b"abc"], ["xyzü".encode()]]


def test_dictionary_columns_are_decoded(tmp_path):
    """pandas writes a category column as a dictionary, which the encoder refuses."""
    table = pa.table({"u": pa.array(["abc", "xyz", "abc"]).dictionary_encode(),
                      "p": pa.array([7, 8, 7], pa.int32()).dictionary_encode()})
    pq.write_table(table, os.path.join(tmp_path, "part.parquet"))
    ours, tfx_examples = _both(str(tmp_path), "*.parquet", str(tmp_path / "out"))
    assert ours == tfx_examples
    parsed = [example_pb2.Example.FromString(e).features.feature for e in ours]
    assert sorted((f["u"].bytes_list.value[0], f["p"].int64_list.value[0]) for f in parsed) == [
        (b"abc", 7), (b"abc", 7), (b"xyz", 8)]
