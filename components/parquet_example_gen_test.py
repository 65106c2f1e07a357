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


def _run_executor(data_dir: str, out: str, window: int, fingerprint: str = None):
    """ExampleGen's executor as the pipeline configures it; returns its Examples artifact."""
    from tfx.dsl.components.base import base_beam_executor
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components import spans

    examples = standard_artifacts.Examples()
    examples.uri = out
    props = {standard_component_specs.INPUT_BASE_KEY: data_dir,
             standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
                 spans.input_config(configs.SPLIT_PATTERNS["train"], configs.SPLIT_PATTERNS["eval"])),
             standard_component_specs.OUTPUT_CONFIG_KEY: "{}",
             standard_component_specs.CUSTOM_CONFIG_KEY: proto_utils.proto_to_json(
                 parquet_example_gen.window_config(window)),
             standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE}
    if fingerprint:
        props["input_fingerprint"] = fingerprint
    # the pipeline's Beam arguments: without them Beam's default runner tries Prism, whose job
    # server leaves a beam-temp* directory in /tmp
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=configs.local_beam_args())
    parquet_example_gen.Executor(context).Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, props)
    return examples


def _rows(examples, split):
    files = tf.io.gfile.glob(os.path.join(examples.uri, f"Split-{split}", "*.gz"))
    return sorted(_canonical(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _expected(paths, tmp_path, name):
    """The examples TFX's executor writes for these files (one pattern each), together."""
    rows = []
    for i, path in enumerate(paths):
        rows += _both(os.path.dirname(path), os.path.basename(path), str(tmp_path / f"{name}-{i}"))[1]
    return sorted(rows)


def test_spans_the_window_and_the_newest_spans_eval_file(tmp_path, write_fake_spans):
    from components import spans

    data_dir = str(tmp_path / "data")
    folders = write_fake_spans(data_dir, num_spans=4, span_eval=(4,), rows_per_span=200)
    examples = _run_executor(data_dir, str(tmp_path / "out"), window=2)
    assert examples.split_names == '["train", "eval"]'
    train = [os.path.join(folders[n], configs.TRAIN_FILE) for n in (3, 4)]
    assert _rows(examples, "train") == _expected(train, tmp_path, "train")
    assert _rows(examples, "eval") == _expected([os.path.join(folders[4], configs.EVAL_FILE)], tmp_path, "eval")
    props = examples.mlmd_artifact.custom_properties
    assert examples.span == 4 and props["span"].int_value == 4
    assert props["window_spans"].string_value == "3,4" and props["eval_source"].string_value == "span-4"
    assert parquet_example_gen.previous_span(examples) == 3
    assert parquet_example_gen.span_train_files(examples) == {3: train[:1], 4: train[1:]}
    # TFX's driver fingerprint, every span's files, computed here when no orchestrator passed it
    fingerprint = props["input_fingerprint"].string_value
    assert f"split:{spans.SPAN_TRAIN},num_files:4," in fingerprint
    assert f"split:{spans.EVAL},num_files:1," in fingerprint  # the standing eval file: unused, but seen


def test_a_window_of_one_still_records_the_previous_span_for_the_drift_gate(tmp_path, write_fake_spans):
    data_dir = str(tmp_path / "data")
    folders = write_fake_spans(data_dir, num_spans=2, rows_per_span=100)
    examples = _run_executor(data_dir, str(tmp_path / "out"), window=1, fingerprint="from the driver")
    props = examples.mlmd_artifact.custom_properties
    assert props["window_spans"].string_value == "2" and props["eval_source"].string_value == "standing"
    assert props["input_fingerprint"].string_value == "from the driver"
    assert sorted(parquet_example_gen.span_train_files(examples)) == [1, 2]
    assert len(_rows(examples, "train")) == len(pq.read_table(os.path.join(folders[2], configs.TRAIN_FILE)))


def test_the_flat_layout_is_span_zero(fake_data_dir, tmp_path):
    examples = _run_executor(fake_data_dir, str(tmp_path / "out"), window=3)
    props = examples.mlmd_artifact.custom_properties
    assert (props["span"].int_value, props["window_spans"].string_value, props["eval_source"].string_value) == (
        0, "0", "standing")
    assert parquet_example_gen.previous_span(examples) is None
    assert len(_rows(examples, "train")) == pq.read_table(os.path.join(fake_data_dir, configs.TRAIN_FILE)).num_rows


def test_the_window_travels_in_custom_config():
    from tfx.utils import proto_utils

    config = proto_utils.proto_to_json(parquet_example_gen.window_config(5))
    assert parquet_example_gen.window_of({standard_component_specs.CUSTOM_CONFIG_KEY: config}) == 5
    assert parquet_example_gen.window_of({}) == 1
