"""End to end on generated spans, through `make run`'s command line: a span whose popularity is
turned upside down stops the run at the drift gate (exit code 4, the feature named, nothing
trained); --accept-drift lets it through, and later runs on the same spans too; a span dropped
twice is named as such; ids that break their pattern are traced to their span. ExampleGen's
artifact records the spans it read."""

import io
import os
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import local_runner
from benchmarks import drift_calibration
from components import parquet_example_gen
from models import features
from pipeline import configs
from runner import console
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
SMALL = ["--model-param", "embedding_dim=8", "--model-param", "epochs=2", "--model-param", "batch_size=64",
         "--model-param", "learning_rate=0.05",
         # the gate is not what these tests are about
         "--gate-bound", "recall_at_10=0", "--gate-bound", "ndcg_at_10=0", "--gate-bound", "sampled_accuracy=0",
         "--gate-popularity-margin", "off"]
# generated spans are noisier than the ASOS-size spans the defaults are for
DRIFT = [arg for name, value in fake_asos.SPAN_DRIFT_THRESHOLDS.items()
         for arg in ("--drift-threshold", f"{name}={value}")]


def _run(root, *extra):
    stream = io.StringIO()
    code = local_runner.main(["--data-dir", str(root / "data"), "--output-dir", str(root / "out"),
                              "--skip-checksums", *SMALL, *DRIFT, *extra], stream=stream)
    return code, stream.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    folders = fake_asos.write_fake_spans(str(root / "data"), num_spans=1, rows_per_span=600)
    table = pq.read_table(os.path.join(folders[1], configs.TRAIN_FILE))
    os.makedirs(root / "data" / "span-2")
    pq.write_table(drift_calibration.inverted(table, table), str(root / "data" / "span-2" / configs.TRAIN_FILE))
    config = helpers.test_config(str(root / "data"), str(root / "out"))
    result = {"root": root, "config": config}
    result["refused"] = _run(root)
    result["after_refusal"] = helpers.executions(config)
    result["accepted"] = _run(root, "--accept-drift")
    result["after_acceptance"] = helpers.executions(config)
    [result["accepted_examples"]] = helpers.output_uris(config, "FileBasedExampleGen", "examples")
    result["again"] = _run(root)  # no flag: the same two spans, accepted before
    result["after_again"] = helpers.executions(config)
    shutil.copytree(root / "data" / "span-2", root / "data" / "span-3")  # the same file dropped twice
    result["twice"] = _run(root)
    return result


def _words(text):
    """The console's words, its lines joined: a line longer than the console goes on on the next
    (runner/console.py fit_text)."""
    return " ".join(text.split())


def test_every_console_line_fits_100_columns_but_a_path_longer_than_that(runs):
    """Found by exploratory testing: the drift stop's cause and the [data] line of the spans ran
    past 100 columns."""
    for name in ("refused", "accepted", "again", "twice"):
        assert console.too_wide(runs[name][1].splitlines()) == [], runs[name][1]


def test_a_drifted_span_stops_the_run_with_exit_4_and_the_feature_named(runs):
    code, text = runs["refused"]
    text = _words(text)
    assert code == console.EXIT_DATA_REJECTED, text
    assert "error: the data was rejected at DriftGate; nothing was trained or pushed (exit code 4)" in text
    assert "The newest span span-2 drifted from span-1" in text
    assert re.search(r"productId L-infinity distance: 0\.0[6-9]\d*, allowed <= 0\.06 \(.*The feature value with "
                     r"maximum difference is: \d+\)", text), text
    assert "run again with --accept-drift" in text
    ran = runs["after_refusal"]
    assert ran["DriftGate"] == ["FAILED"] and "Transform" not in ran and "Trainer" not in ran
    # the layout was said before the run
    assert "[data] 2 span(s) (span-1, span-2); newest span-2 (span 2)" in text


def test_the_override_lets_it_through_and_says_so(runs):
    code, text = runs["accepted"]
    assert code == console.EXIT_OK, text
    assert "[drift] span-2 vs span-1: OVER the thresholds, ACCEPTED (--accept-drift): training on it" in text
    drift_row = console.summary_rows(text.splitlines())["drift"]  # the verdict, then each measure over
    assert drift_row.startswith("span-2 vs span-1 OVER the thresholds, accepted (--accept-drift)\nover: productId")
    assert runs["after_acceptance"]["Trainer"] == ["COMPLETE"]
    examples = runs["accepted_examples"]
    store = helpers.store(runs["config"])
    [artifact] = [a for a in store.get_artifacts() if a.uri == examples]
    props = artifact.custom_properties
    assert props[parquet_example_gen.SPAN_PROPERTY].int_value == 2
    assert props[parquet_example_gen.WINDOW_SPANS_PROPERTY].string_value == "1,2"
    assert props[parquet_example_gen.EVAL_SOURCE_PROPERTY].string_value == "standing"
    assert "split:span_train,num_files:2," in props[parquet_example_gen.FINGERPRINT_PROPERTY].string_value
    report = re.search(r"  report         (\S+)", text).group(1)  # this run's, kept under reports/
    with open(report) as f:
        page = f.read()
    assert "Newest span 2; trained on span(s) 1,2" in page and "accepted (--accept-drift)" in page


def test_a_later_run_on_the_same_spans_is_accepted_without_the_flag(runs):
    code, text = runs["again"]
    assert code == console.EXIT_OK, text
    text = _words(text)
    assert "[drift] span-2 vs span-1: OVER the thresholds, ACCEPTED (--accept-drift on 20" in text
    ran = runs["after_again"]
    assert ran["DriftGate"][-1] == "COMPLETE" and ran["Transform"][-1] == "CACHED"
    assert ran["Trainer"][-1] == "CACHED"


def test_a_span_dropped_twice_is_named(runs):
    code, text = runs["twice"]
    text = _words(text)
    assert code == console.EXIT_DATA_REJECTED, text
    assert ("span-3 repeats span-2 (the same file dropped twice, or mostly the same rows): 100.0% of its "
            "purchases are in span-2") in text
    assert f"is byte-identical to span-2/{configs.TRAIN_FILE}" in text


def test_ids_that_break_their_pattern_are_traced_to_their_span(tmp_path):
    """Found by exploratory testing: the validator named the split ('train', the whole window),
    not the span whose file held the bad ids."""
    folders = fake_asos.write_fake_spans(str(tmp_path / "data"), num_spans=3, rows_per_span=600)
    path = os.path.join(folders[2], configs.TRAIN_FILE)
    table = pq.read_table(path)
    column = table.schema.get_field_index(features.USER_KEY)
    bad = table.slice(0, 1).set_column(column, features.USER_KEY, pa.array([b"not an id!"], pa.binary()))
    pq.write_table(pa.concat_tables([table, bad]), path)
    code, text = _run(tmp_path)
    assert code == console.EXIT_DATA_REJECTED, text
    text = _words(text)
    assert re.search(r"split 'train', feature 'dummyUserId': 1 value\(s\) do not match .*'not an id!'\] "
                     r"\(in span-2\)", text), text
    assert "split 'train' holds span-1, span-2, span-3; split 'eval' is the standing eval file" in text
