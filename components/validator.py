"""ExampleValidator that stops the pipeline when the data is bad.

The stock ExampleValidator writes its anomalies and lets the pipeline go on: Transform and the
Trainer would then learn from data the schema rejects. `StrictExampleValidator` runs the same
TFDV validation of the statistics against the curated schema, plus a check statistics cannot
express (every id matches the pattern the schema gives it, see `id_patterns`) and a minimum
number of rows per split (`min_rows`: an empty or absurdly small split), writes everything
to its `anomalies` output, and then fails the run with the anomalies in plain words. Nothing
downstream (Transform, Trainer, Pusher) runs on a failed validation.

With spans, the train split holds the window's spans: the message says which spans each split
was read from, and which span's files hold the ids that break their pattern (`where_from`).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Set, Tuple

import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx import types
from tfx.components.example_validator import executor as example_validator_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, json_utils

from components import parquet_example_gen, spans

# A BYTES feature's annotation tag "id_pattern=REGEX" in schema.pbtxt: every value must fullmatch it.
ID_PATTERN_TAG = "id_pattern="
REPORT_FILE = "anomalies_in_plain_words.txt"
REJECTED_DIR = "rejected"  # <pipeline_root>/StrictExampleValidator/rejected/<execution id>/
MAX_EXAMPLES_LISTED = 5
MIN_ROWS_KEY = "min_rows"  # exec property: JSON {split: the fewest rows it may have}


class DataValidationError(RuntimeError):
    """The data does not match the schema; the message lists every problem found."""


def id_patterns(schema: schema_pb2.Schema) -> Dict[str, str]:
    """Feature name -> regular expression, from `annotation { tag: "id_pattern=..." }`."""
    patterns = {}
    for feature in schema.feature:
        for tag in feature.annotation.tag:
            if tag.startswith(ID_PATTERN_TAG):
                patterns[feature.name] = tag[len(ID_PATTERN_TAG):]
    return patterns


def describe_anomalies(split: str, anomalies: anomalies_pb2.Anomalies) -> List[str]:
    """One line per anomaly: split, feature and TFDV's own description."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(f"{r.short_description}: {r.description}" for r in info.reason)
        lines.append(f"split '{split}', feature '{feature}': {reasons or info.description}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        reasons = "; ".join(f"{r.short_description}: {r.description}" for r in info.reason)
        lines.append(f"split '{split}', whole dataset: {reasons or info.description}")
    return lines


def missing_values(split: str, statistics, features: Optional[Set[str]] = None) -> List[Tuple[str, str]]:
    """(line, feature) per feature some rows lack (a null or no column value), the line in plain
    words: TFDV reports them as "Column dropped: ... minimum fraction = 1.000000, actual = 0.998"
    only. `statistics` is the split's DatasetFeatureStatisticsList (StatisticsGen's); `features`,
    when given, limits the lines to those (the ones TFDV flagged)."""
    lines = []
    for dataset in statistics.datasets:
        for feature in dataset.features:
            kind = feature.WhichOneof("stats")
            if kind is None:
                continue
            missing = getattr(feature, kind).common_stats.num_missing
            name = ".".join(feature.path.step) or feature.name
            if missing and (features is None or name in features):
                lines.append((f"split '{split}', feature '{name}': {int(missing):,} of "
                              f"{dataset.num_examples:,} rows have no value (null or missing); "
                              "every row needs exactly one", name))
    return lines


def find_pattern_violations(example_files: List[str], patterns: Dict[str, str],
                            batch_size: int = 8192) -> Dict[str, Tuple[List[str], int]]:
    """Feature -> (the first few values that do not match its pattern, how many do not).

    Values are matched in batches with tf.strings.regex_full_match (RE2: the patterns use the
    common subset of RE2 and Python syntax). A feature absent from an example is TFDV's to
    report (presence constraints), not this check's.
    """
    if not patterns or not example_files:
        return {}
    spec = {name: tf.io.VarLenFeature(tf.string) for name in patterns}
    dataset = (tf.data.TFRecordDataset(example_files, compression_type="GZIP")
               .batch(batch_size).map(lambda batch: tf.io.parse_example(batch, spec)))
    samples: Dict[str, List[str]] = {name: [] for name in patterns}
    counts = {name: 0 for name in patterns}
    for batch in dataset:
        for name, pattern in patterns.items():
            values = batch[name].values
            bad = tf.boolean_mask(values, ~tf.strings.regex_full_match(values, pattern)).numpy()
            counts[name] += len(bad)
            room = MAX_EXAMPLES_LISTED - len(samples[name])
            samples[name] += [v.decode("utf-8", errors="replace") for v in bad[:room]]
    return {name: (samples[name], counts[name]) for name in patterns if counts[name]}


def window_files(examples: types.Artifact) -> Dict[str, List[str]]:
    """Span folder -> its train files, for the spans the train split holds (ExampleGen's
    `window_spans` and `span_train_files`); {} for the flat layout or an artifact without them."""
    if spans.is_flat(examples.get_string_custom_property(parquet_example_gen.FINGERPRINT_PROPERTY)) is not False:
        return {}
    files = parquet_example_gen.span_train_files(examples)
    window = spans.span_numbers(examples.get_string_custom_property(parquet_example_gen.WINDOW_SPANS_PROPERTY))
    return {spans.folder_of(files[n]): files[n] for n in window if files.get(n)}


def where_from(examples: types.Artifact) -> Optional[str]:
    """What each split was read from, for a person: "split 'train' holds span-2, span-3, span-4;
    split 'eval' is span-4's eval file"; None for the flat layout."""
    folders = list(window_files(examples))
    if not folders:
        return None
    source = examples.get_string_custom_property(parquet_example_gen.EVAL_SOURCE_PROPERTY)
    evaluated = ("the standing eval file" if source == "standing" else f"{source}'s eval file") if source else None
    return (f"split 'train' holds {', '.join(folders)}"
            + (f"; split 'eval' is {evaluated}" if evaluated else ""))


def spans_holding(values: List[str], feature: str, files: Dict[str, List[str]]) -> List[str]:
    """The span folders (of `window_files`) whose train files hold any of `values` in `feature`
    (a BYTES column): where the ids that break their pattern came from."""
    wanted = pa.array([v.encode("utf-8") for v in values], pa.binary())

    def holds(path: str) -> bool:
        column = parquet_example_gen.read_parquet(path, [feature]).column(feature).cast(pa.binary())
        return pc.any(pc.is_in(column, value_set=wanted)).as_py()

    return _spans_where(files, holds)


def spans_lacking(feature: str, files: Dict[str, List[str]]) -> List[str]:
    """The span folders (of `window_files`) whose train files have rows without a value of
    `feature` (a null, or no such column): where the missing values came from."""
    import pyarrow.parquet as pq
    from tfx.dsl.io import fileio

    def lacks(path: str) -> bool:
        with fileio.open(path, "rb") as f:
            parquet = pq.ParquetFile(pa.BufferReader(f.read()))
        return feature not in parquet.schema_arrow.names or parquet.read([feature]).column(0).null_count > 0

    return _spans_where(files, lacks)


def _spans_where(files: Dict[str, List[str]], test) -> List[str]:
    """The span folders of `files` (folder -> train files) one of whose files passes `test`; a
    file that cannot be read now says nothing."""
    found = []
    for folder, paths in files.items():
        for path in paths:
            try:
                passed = test(path)
            except (OSError, KeyError, pa.ArrowException, tf.errors.OpError):
                continue
            if passed:
                found.append(folder)
                break
    return found


def too_few_rows(rows: Dict[str, int], min_rows: Dict[str, int]) -> List[str]:
    """One line per split with fewer rows than its minimum (an empty or absurdly small split
    would otherwise be transformed, trained on and evaluated to metrics without values)."""
    return [f"split '{split}': {rows.get(split, 0):,} rows, fewer than the {minimum:,} required "
            "(min_split_rows in pipeline/configs.py)"
            for split, minimum in sorted(min_rows.items()) if rows.get(split, 0) < minimum]


class Executor(example_validator_executor.Executor):
    """Stock TFDV validation, the id-pattern check, then a failure if anything was found."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]):
        examples = input_dict.pop(standard_component_specs.EXAMPLES_KEY)
        [statistics] = input_dict[standard_component_specs.STATISTICS_KEY]
        result = super().Do(input_dict, output_dict, exec_properties)

        # What TFX's executor found, read back from its output (one SchemaDiff.pb per split).
        anomalies_artifact = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.ANOMALIES_KEY])
        splits = artifact_utils.decode_split_names(anomalies_artifact.split_names)
        problems: List[str] = []
        flagged: Dict[str, Set[str]] = {}
        for split in splits:
            found = anomalies_util.load_anomalies_binary(os.path.join(
                artifact_utils.get_split_uri([anomalies_artifact], split),
                example_validator_executor.DEFAULT_FILE_NAME))
            problems += describe_anomalies(split, found)
            flagged[split] = set(found.anomaly_info)

        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict[standard_component_specs.SCHEMA_KEY])))
        patterns = id_patterns(schema)
        [examples_artifact] = examples
        spans_files = window_files(examples_artifact)
        for split in splits:
            files = tf.io.gfile.glob(os.path.join(
                artifact_utils.get_split_uri(examples, split), "*.gz"))
            for feature, (samples, total) in find_pattern_violations(files, patterns).items():
                held = spans_holding(samples, feature, spans_files) if split == "train" else []
                problems.append(
                    f"split '{split}', feature '{feature}': {total} value(s) do not match "
                    f"the pattern {patterns[feature]!r} from the schema, e.g. {samples}"
                    + (f" (in {', '.join(held)})" if held else ""))

        split_statistics = {split: stats_artifact_utils.load_statistics(statistics, split).proto()
                            for split in splits}
        rows = {split: sum(d.num_examples for d in split_statistics[split].datasets)
                for split in splits}
        for split in splits:  # the features TFDV flagged that some rows lack, said plainly
            for line, feature in missing_values(split, split_statistics[split], flagged[split]):
                held = spans_lacking(feature, spans_files) if split == "train" else []
                problems.append(line + (f" (in {', '.join(held)})" if held else ""))
        problems += too_few_rows(rows, json_utils.loads(exec_properties.get(MIN_ROWS_KEY) or "{}"))

        if problems:
            where = where_from(examples_artifact)
            if where:
                problems.append(where)
            kept = self._keep_anomalies(anomalies_artifact.uri, "\n".join(problems) + "\n")
            raise DataValidationError(
                "The data was rejected (schema, id patterns, minimum rows); the pipeline stops "
                "before Transform so nothing is trained on it.\n" + "\n".join(problems) +
                f"\n(anomalies kept in {kept})")
        return result


    @staticmethod
    def _keep_anomalies(uri: str, report: str) -> str:
        """Copies the anomalies and the plain-words report next to the component's outputs:
        TFX deletes the outputs of a failed execution, and the user needs them."""
        io_utils.write_string_file(os.path.join(uri, REPORT_FILE), report)
        # uri is <pipeline_root>/<component>/anomalies/<execution id>
        component_dir = os.path.dirname(os.path.dirname(uri))
        kept = os.path.join(component_dir, REJECTED_DIR, os.path.basename(uri))
        io_utils.copy_dir(uri, kept)
        return kept


class StrictExampleValidatorSpec(standard_component_specs.ExampleValidatorSpec):
    PARAMETERS = {
        **standard_component_specs.ExampleValidatorSpec.PARAMETERS,
        MIN_ROWS_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        **standard_component_specs.ExampleValidatorSpec.INPUTS,
        standard_component_specs.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }


class StrictExampleValidator(base_component.BaseComponent):
    """ExampleValidator whose anomalies fail the run (see the module docstring)."""

    SPEC_CLASS = StrictExampleValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, statistics: types.BaseChannel, schema: types.BaseChannel,
                 examples: types.BaseChannel, exclude_splits: Optional[List[str]] = None,
                 min_rows: Optional[Dict[str, int]] = None):
        spec = StrictExampleValidatorSpec(
            statistics=statistics,
            schema=schema,
            examples=examples,
            exclude_splits=json_utils.dumps(exclude_splits or []),
            min_rows=json_utils.dumps(dict(min_rows or {})),
            anomalies=types.Channel(type=standard_artifacts.ExampleAnomalies),
        )
        super().__init__(spec=spec)
