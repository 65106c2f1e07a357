"""The drift gate: its measures on small known inputs, and its executor on generated spans (a
span that drifted, one with heavier buyers, one dropped twice, an accepted one, a single span).
The thresholds of the ASOS-size spans are measured by benchmarks/drift_calibration.py."""

import json
import os
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from benchmarks import drift_calibration
from components import drift, parquet_example_gen
from models import features
from pipeline import configs


def _table(users, products):
    return pa.table({features.USER_KEY: pa.array(users, pa.binary()),
                     features.PRODUCT_KEY: pa.array(products, pa.int64())})


def test_each_measure_is_judged_against_its_bounds_and_said_as_judged():
    t = dict(configs.DEFAULT_DRIFT_THRESHOLDS, product_l_infinity=0.006, min_rows_ratio=0.4, max_rows_ratio=2.5,
             top_users_share_ratio=1.5)
    assert drift.BOUNDS.keys() == set(drift.MEASURE_NAMES)
    assert not drift.outside(drift.PRODUCT_LINF_NAME, 0.006, t) and drift.outside(drift.PRODUCT_LINF_NAME, 0.0061, t)
    assert drift.limit_text(drift.PRODUCT_LINF_NAME, t) == "<= 0.006"
    assert [drift.outside(drift.ROWS_NAME, r, t) for r in (0.39, 0.4, 2.5, 2.6, float("inf"))] == [
        True, False, False, True, True]
    assert drift.limit_text(drift.ROWS_NAME, t) == "0.4 to 2.5"
    # the top users' share may move either way by the same ratio
    assert [drift.outside(drift.TOP_SHARE_NAME, r, t) for r in (0.66, 0.67, 1.5, 1.51)] == [True, False, False, True]
    assert drift.limit_text(drift.TOP_SHARE_NAME, t) == "0.667 to 1.5"


def test_purchases_per_user_in_categories_that_keep_a_heavy_tail_small():
    assert drift.purchase_buckets(np.array([1, 2, 10, 11, 16, 17, 1000])).tolist() == [1, 2, 10, 16, 16, 32, 1024]


def test_the_top_users_share():
    counts = np.array([50] + [1] * 150)  # 151 users: the top 1% is one user
    assert drift.top_users_share(counts) == pytest.approx(50 / 200)
    assert drift.top_users_share(np.array([], dtype=np.int64)) == 0.0


def test_spans_are_compared_at_equal_size():
    big, small = _table([b"u"] * 10, list(range(10))), _table([b"v"] * 4, list(range(4)))
    a, b = drift.equal_size(big, small)
    assert (a.num_rows, b.num_rows) == (4, 4) and b.equals(small)
    assert drift.equal_size(big, small)[0].equals(a)  # seeded: the same sample every time


def test_repeated_rows_are_the_newest_spans_pairs_the_previous_one_has():
    previous = _table([b"a", b"a", b"b"], [1, 2, 1])
    assert drift.repeats_of(_table([b"a", b"b", b"b", b"c"], [1, 1, 2, 1]), previous)["rows"] == 2
    assert drift.repeats_of(_table([], []), previous)["rows"] == 0


@pytest.mark.parametrize("change, message", [
    ({"product_l_infinity": -1}, "product_l_infinity must be a number >= 0"),
    ({"typo": 1}, r"unknown typo \(known: "),  # not "missing []" beside it
    ({"min_rows_ratio": 3}, "min_rows_ratio 3 is above max_rows_ratio"),
    ({"top_users_share_ratio": 0.5}, "either way: 1 or more"),
    ({"repeated_rows": 2}, "repeated_rows is at most 1"),
])
def test_bad_thresholds_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        drift.check_thresholds({**configs.DEFAULT_DRIFT_THRESHOLDS, **change})


def _gate(tmp_path, newest: str, previous: str, thresholds, accept=False, others=(), more=(), numbered=None,
          serving_model_dir=None):
    """The DriftGate executor on two span folders (`more`: other train files of the newest span;
    `numbered`: {span number: folder} of the whole window instead, the newest span the largest);
    returns (figures, the DriftError or None, the report)."""
    files = {2: [os.path.join(newest, configs.TRAIN_FILE), *more], 1: [os.path.join(previous, configs.TRAIN_FILE)]}
    for number, folder in enumerate(others, start=3):
        files[number] = [os.path.join(folder, configs.TRAIN_FILE)]
    if numbered:
        files = {n: [os.path.join(folder, configs.TRAIN_FILE)] for n, folder in numbered.items()}
    examples = standard_artifacts.Examples()
    examples.set_int_custom_property(parquet_example_gen.SPAN_PROPERTY, max(files) if numbered else 2)
    examples.set_int_custom_property(parquet_example_gen.PREVIOUS_SPAN_PROPERTY,
                                     sorted(files)[-2] if numbered else 1)
    examples.set_string_custom_property(parquet_example_gen.WINDOW_SPANS_PROPERTY, ",".join(map(str, sorted(files))))
    examples.set_string_custom_property(parquet_example_gen.SPAN_TRAIN_FILES_PROPERTY,
                                        json.dumps({str(k): v for k, v in files.items()}))
    schema = standard_artifacts.Schema()
    schema.uri = configs.SCHEMA_DIR
    report = drift.DriftReport()
    report.uri = str(tmp_path / "root" / "DriftGate" / "drift_report" / str(len(os.listdir(tmp_path))))
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=configs.local_beam_args())
    props = {"thresholds": json_utils.dumps(thresholds), "accept_drift": int(accept),
             "acceptances_dir": str(tmp_path / "accepted"), "serving_model_dir": serving_model_dir or ""}
    try:
        drift.Executor(context).Do({"examples": [examples], "schema": [schema]}, {"drift_report": [report]}, props)
        error = None
    except drift.DriftError as e:
        error = e
    return drift.read_report(report.uri), error, report


@pytest.fixture(scope="module")
def generated(tmp_path_factory, write_fake_spans, small_span_thresholds):
    root = tmp_path_factory.mktemp("spans")
    folders = write_fake_spans(str(root / "data"), num_spans=3, rows_per_span=600)
    table = pq.read_table(os.path.join(folders[2], configs.TRAIN_FILE))
    altered = {"inverted": drift_calibration.inverted(table, table)}
    for name, altered_table in altered.items():
        os.makedirs(root / name)
        pq.write_table(altered_table, str(root / name / configs.TRAIN_FILE))
    return root, folders, small_span_thresholds


def test_a_span_like_the_previous_one_passes_and_says_its_figures(generated, tmp_path, caplog):
    import logging

    _, folders, small = generated
    with caplog.at_level(logging.INFO, logger="recsys.drift"):
        figures, error, report = _gate(tmp_path, folders[3], folders[2], small)
    assert error is None and figures["compared"] and not figures["drifted"]
    assert (figures["newest"]["name"], figures["previous"]["name"]) == ("span-3", "span-2")
    assert [m["over"] for m in figures["measures"]] == [False] * 7
    assert report.get_int_custom_property("drifted") == 0
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "[drift] span-3 vs span-2: within the thresholds" in said and "productId L-infinity distance" in said
    assert os.path.exists(os.path.join(report.uri, "newest", drift.STATS_FILE))
    assert drift.verdict_text(figures) == "within the thresholds" and drift.over_texts(figures) == []


def test_inverted_popularity_stops_the_run_naming_the_feature_and_the_threshold(generated, tmp_path):
    root, folders, small = generated
    figures, error, _ = _gate(tmp_path, str(root / "inverted"), folders[2], small)
    assert figures["drifted"] and error is not None
    message = str(error)
    assert "The newest span inverted drifted from span-2" in message
    assert "productId L-infinity distance: 0.1" in message and "allowed <= 0.06" in message
    assert "The feature value with maximum difference is" in message  # TFDV's own words
    assert "--accept-drift" in message
    kept = message.rsplit("kept in ", 1)[1].rstrip(")")
    assert os.path.exists(os.path.join(kept, drift.REPORT_FILE))  # TFX drops a failed execution's outputs


def test_the_override_lets_it_through_and_later_runs_on_the_same_spans_too(generated, tmp_path):
    root, folders, small = generated
    figures, error, report = _gate(tmp_path, str(root / "inverted"), folders[2], small, accept=True)
    assert error is None and figures["drifted"] and figures["accepted"] == "--accept-drift"
    assert report.get_int_custom_property("accepted") == 1
    assert os.listdir(tmp_path / "accepted")
    figures, error, _ = _gate(tmp_path, str(root / "inverted"), folders[2], small)  # no flag this time
    assert error is None and figures["accepted"].startswith("--accept-drift on 20")
    assert drift.verdict_text(figures).startswith("OVER the thresholds, accepted")
    # the span after an accepted one is compared with it: the message says it was accepted
    _, error, _ = _gate(tmp_path, folders[3], str(root / "inverted"), small)
    assert error is not None
    assert "(inverted itself went through over the thresholds: accepted on 20" in str(error)
    assert "against span-2. A span like those before it reads as drifted against it" in str(error)
    # ... but a span that repeats it gets no such advice (found by exploratory testing: "accept it too")
    shutil.copytree(root / "inverted", tmp_path / "dropped-again")
    _, error, _ = _gate(tmp_path, str(tmp_path / "dropped-again"), str(root / "inverted"), small)
    assert "repeats inverted" in str(error) and "itself went through" not in str(error)
    # other spans are not covered by that acceptance
    shutil.copytree(root / "inverted", tmp_path / "again")
    pq.write_table(pq.read_table(str(tmp_path / "again" / configs.TRAIN_FILE)).slice(1),
                   str(tmp_path / "again" / configs.TRAIN_FILE))
    assert _gate(tmp_path, str(tmp_path / "again"), folders[2], small)[1] is not None


def test_a_span_dropped_twice_is_named_as_such(generated, tmp_path):
    _, folders, small = generated
    shutil.copytree(folders[2], tmp_path / "span-9")
    figures, error, _ = _gate(tmp_path, str(tmp_path / "span-9"), folders[2], small)
    # named for what it is: not "drifted" (found by exploratory testing)
    assert str(error).startswith("The newest span span-9 repeats purchases of another span; the pipeline stops")
    first = str(error).splitlines()[1]
    assert first.startswith("span-9 repeats span-2 (the same file dropped twice, or mostly the same rows): "
                            "100.0% of its purchases are in span-2")
    assert f"span-9/{configs.TRAIN_FILE} is byte-identical to span-2/{configs.TRAIN_FILE}" in first
    # the same file as an older span of the window (not the previous one) is named too
    figures, error, _ = _gate(tmp_path, str(tmp_path / "span-9"), folders[3], small, others=[folders[2]])
    assert str(error).splitlines()[1] == (
        f"span-9 repeats span-2, an older span (the same file dropped twice): "
        f"span-9/{configs.TRAIN_FILE} is byte-identical to span-2/{configs.TRAIN_FILE}")
    assert "repeats span-3" not in str(error)  # the previous span is not what it repeats
    assert "make half of these repeats" not in str(error)  # every user repeats: no few buyers to name


def test_repeats_made_by_a_few_buyers_name_them(tmp_path, write_fake_spans, small_span_thresholds):
    """Found by exploratory testing: 20 accounts restocking the same 15 products, span after span,
    stopped the run as "the same file dropped twice". The gate still stops (the share is over its
    limit), and names the few users who make the repeats; a span dropped twice names none."""
    folders = write_fake_spans(str(tmp_path / "data"), num_spans=2, rows_per_span=600)
    products = pc.unique(pq.read_table(os.path.join(folders[1], configs.TRAIN_FILE)).column(
        features.PRODUCT_KEY)).to_pylist()[:15]  # the same 15 products, restocked in both spans
    for number in (1, 2):
        table = pq.read_table(os.path.join(folders[number], configs.TRAIN_FILE))
        restock = pa.table({features.USER_KEY: pa.array([f"RESELL{i:014d}" for i in range(3) for _ in range(300)],
                                                        table.schema.field(features.USER_KEY).type),
                            features.PRODUCT_KEY: pa.array([products[j % 15] for _ in range(3) for j in range(300)],
                                                           table.schema.field(features.PRODUCT_KEY).type)})
        os.makedirs(tmp_path / f"restocked-{number}")
        pq.write_table(pa.concat_tables([table.select(restock.column_names), restock]),
                       str(tmp_path / f"restocked-{number}" / configs.TRAIN_FILE))
    thresholds = {**small_span_thresholds, "repeated_rows": 0.5, "product_l_infinity": 1.0,
                  "product_jensen_shannon": 1.0, "purchases_per_user_jensen_shannon": 1.0, "user_l_infinity": 1.0,
                  "top_users_share_ratio": 100.0}
    figures, error, _ = _gate(tmp_path, str(tmp_path / "restocked-2"), str(tmp_path / "restocked-1"), thresholds)
    assert error is not None and figures["repeats"]["half_users"] <= 2, figures["repeats"]
    lines = str(error).splitlines()
    said = next(line for line in lines if "make half of these repeats" in line)
    assert "RESELL00000000000000 (300)" in said
    assert "customers buying the same products again rather than a file dropped twice?" in said
    assert "--accept-drift" in said


def test_data_older_than_the_served_models_is_said(generated, tmp_path, caplog):
    """Found by exploratory testing: --data-dir pointing at spans 1-2 after a model of spans 3-4
    was served went through without a word, and pushed. It is said (the gate still judges)."""
    from components import testing

    _, folders, small = generated
    served = tmp_path / "serving" / "1796000000"
    testing.save_tiny_model(str(served))
    (served / "assets.extra").mkdir()
    (served / "assets.extra" / "training.json").write_text(json.dumps({"data": {"window_spans": [3, 4]}}))
    with caplog.at_level("WARNING", logger="recsys.drift"):
        figures, error, _ = _gate(tmp_path, "", "", small, numbered={1: folders[1], 2: folders[2]},
                                  serving_model_dir=str(tmp_path / "serving"))
    assert error is None and figures["older_than_served"] == {
        "newest": "span-2", "served_version": 1796000000, "served_newest": "span 4"}
    assert ("[drift] warning: the newest span here, span-2, is older than the newest span the served model "
            "(version 1796000000) trained on, span 4: is --data-dir an older copy of the data?") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="recsys.drift"):  # the served model's own newest span: nothing said
        figures, _, _ = _gate(tmp_path, "", "", small, numbered={3: folders[3], 4: folders[2]},
                              serving_model_dir=str(tmp_path / "serving"))
    assert "older_than_served" not in figures and "older copy" not in caplog.text


def test_a_span_that_arrives_after_the_served_models_spans_is_named_and_stops_the_run(generated, tmp_path, caplog):
    """Found by exploratory testing: span-2 delivered after the served model had trained on spans
    1 and 3 was never compared with span-1, and its drift was blamed on span-3."""
    from components import testing

    _, folders, small = generated
    served = tmp_path / "serving" / "1796000000"
    testing.save_tiny_model(str(served))
    (served / "assets.extra").mkdir()
    (served / "assets.extra" / "training.json").write_text(json.dumps({"data": {"window_spans": [1, 3]}}))
    window = {1: folders[1], 2: folders[2], 3: folders[3]}
    figures, error, _ = _gate(tmp_path, "", "", small, numbered=window, serving_model_dir=str(tmp_path / "serving"))
    assert error is not None and figures["drifted"] and not any(m["over"] for m in figures["measures"])
    lines = str(error).splitlines()
    assert lines[0].startswith("A span of the window arrived after the spans of the served model; the pipeline stops")
    assert lines[1].startswith("span-2 arrived late: the served model (version 1796000000) trained on spans 1, 3, "
                               "later than it, without it.")
    import logging

    with caplog.at_level(logging.INFO, logger="recsys.drift"):
        accepted, error, _ = _gate(tmp_path, "", "", small, numbered=window,
                                   serving_model_dir=str(tmp_path / "serving"), accept=True)
    assert error is None  # the override lets it through, and the log says why it was needed
    assert "ACCEPTED (--accept-drift): training on it\nspan-2 arrived late" in caplog.text
    # its measures are within their thresholds: it is said late, not over (found by exploratory testing)
    assert "[drift] span-3 vs span-2: span-2 arrived late, ACCEPTED (--accept-drift)" in caplog.text
    assert drift.verdict_text(accepted) == "within the thresholds, span-2 arrived late, accepted (--accept-drift)"
    # a span older than the served model's window is no sign (a wider --span-window brings it back)
    (served / "assets.extra" / "training.json").write_text(json.dumps({"data": {"window_spans": [2, 3]}}))
    assert _gate(tmp_path, "", "", small, numbered=window, serving_model_dir=str(tmp_path / "serving"))[1] is None
    # once a model of these spans serves, or when nothing is, it is no longer late
    (served / "assets.extra" / "training.json").write_text(json.dumps({"data": {"window_spans": [1, 2, 3]}}))
    assert _gate(tmp_path, "", "", small, numbered=window, serving_model_dir=str(tmp_path / "serving"))[1] is None
    assert _gate(tmp_path, "", "", small, numbered=window, serving_model_dir=str(tmp_path / "none"))[1] is None


def test_an_accepted_late_span_stays_accepted_when_a_new_span_arrives(tmp_path, write_fake_spans,
                                                                      small_span_thresholds):
    """Found by exploratory testing: a late span's acceptance was keyed by the newest span and the
    one before it, so the next span stopped the run for the same late span again (and one
    --accept-drift then accepted both at once); and when that next span drifted, the message said
    its predecessor "itself went through over the thresholds", though only a lateness was accepted."""
    from components import testing

    folders = write_fake_spans(str(tmp_path / "data"), num_spans=4, rows_per_span=600)
    serving = tmp_path / "serving"
    testing.save_tiny_model(str(serving / "1796000000"))
    (serving / "1796000000" / "assets.extra").mkdir()
    (serving / "1796000000" / "assets.extra" / "training.json").write_text(
        json.dumps({"data": {"window_spans": [1, 3]}}))
    late = {n: folders[n] for n in (1, 2, 3)}
    small = small_span_thresholds
    assert _gate(tmp_path, "", "", small, numbered=late, serving_model_dir=str(serving))[1] is not None
    assert _gate(tmp_path, "", "", small, numbered=late, serving_model_dir=str(serving), accept=True)[1] is None
    # span-4 arrives; the served model still lacks span-2 (say the gate refused the last model)
    figures, error, _ = _gate(tmp_path, "", "", small, numbered=folders, serving_model_dir=str(serving))
    assert error is None and not figures["drifted"] and "late_spans" not in figures
    assert [s["name"] for s in figures["late_accepted"]] == ["span-2"]
    assert drift.verdict_text(figures).startswith(
        "within the thresholds, span-2 arrived late, accepted (--accept-drift on 20")
    # a span-4 that drifts is stopped for its drift alone, and span-3 is not said to have drifted
    table = pq.read_table(os.path.join(folders[4], configs.TRAIN_FILE))
    os.makedirs(tmp_path / "inverted" / "span-4")
    pq.write_table(drift_calibration.inverted(table, table), str(tmp_path / "inverted" / "span-4" / configs.TRAIN_FILE))
    _, error, _ = _gate(tmp_path, "", "", small, numbered={**folders, 4: str(tmp_path / "inverted" / "span-4")},
                        serving_model_dir=str(serving))
    assert str(error).startswith("The newest span span-4 drifted from span-3")
    assert "arrived late:" not in str(error) and "itself went through" not in str(error)
    # another content under span-2's name is another span: late again
    pq.write_table(pq.read_table(os.path.join(folders[2], configs.TRAIN_FILE)).slice(1),
                   os.path.join(folders[2], configs.TRAIN_FILE))
    _, error, _ = _gate(tmp_path, "", "", small, numbered=folders, serving_model_dir=str(serving))
    assert str(error).splitlines()[1].startswith("span-2 arrived late")


def test_a_span_the_gate_stopped_stops_the_runs_whose_window_holds_it(tmp_path, write_fake_spans,
                                                                       small_span_thresholds, caplog):
    """Found by exploratory testing (a replay of 6 spans): span-2, stopped by the gate, was trained
    on by span-3's run, whose window reached back over it, as the gate compares only the newest
    span with the one before it. A bad batch of data is not trained on: it stops every run whose
    window holds it until it is accepted, passes as the newest, or is removed or changed."""
    import logging

    folders = write_fake_spans(str(tmp_path / "data"), num_spans=3, rows_per_span=600)
    small = small_span_thresholds
    table = pq.read_table(os.path.join(folders[2], configs.TRAIN_FILE))
    os.makedirs(tmp_path / "bad" / "span-2")
    pq.write_table(drift_calibration.inverted(table, table), str(tmp_path / "bad" / "span-2" / configs.TRAIN_FILE))
    bad = {1: folders[1], 2: str(tmp_path / "bad" / "span-2")}
    _, error, _ = _gate(tmp_path, "", "", small, numbered=bad)
    assert str(error).startswith("The newest span span-2 drifted from span-1")
    # span-3 arrives, the stopped span-2 still in its window
    window = {**bad, 3: folders[3]}
    figures, error, _ = _gate(tmp_path, "", "", small, numbered=window)
    lines = str(error).splitlines()
    assert figures["drifted"] and [s["name"] for s in figures["stopped_spans"]] == ["span-2"]
    assert lines[1].startswith("span-2, in this run's window, was stopped by the drift gate on 20")
    assert "(as the newest span, against span-1: productId L-infinity distance " in lines[1]
    assert lines[1].endswith("and not accepted since: this run would train on it. If it is wrong, remove or correct "
                             "its folder; if it is right, run with --accept-drift")
    if not any(m["over"] for m in figures["measures"]):  # span-3 itself may read as drifted against it
        assert lines[0].startswith("A span of the window was stopped by the drift gate before, and not accepted")
    # the override trains on it, and says so; later runs no longer stop for it
    with caplog.at_level(logging.INFO, logger="recsys.drift"):
        accepted, error, _ = _gate(tmp_path, "", "", small, numbered=window, accept=True)
    assert error is None and "span-2 stopped before" in drift.verdict_text(accepted)
    assert "span-2, in this run's window, was stopped by the drift gate on" in caplog.text
    assert "accepted now (--accept-drift): training on it" in caplog.text
    assert not [n for n in os.listdir(tmp_path / "accepted") if n.startswith("stopped-")]
    # a span that passes as the newest (thresholds loosened for it) is no longer stopped either
    loose = {**small, "product_l_infinity": 1.0, "product_jensen_shannon": 1.0}
    assert _gate(tmp_path, "", "", small, numbered=bad)[1] is not None
    assert [n for n in os.listdir(tmp_path / "accepted") if n.startswith("stopped-span-2-")]
    assert _gate(tmp_path, "", "", loose, numbered=bad)[1] is None
    assert not [n for n in os.listdir(tmp_path / "accepted") if n.startswith("stopped-")]
    # the good span-2 in its place is another span: nothing stopped it
    assert _gate(tmp_path, "", "", small, numbered=bad)[1] is not None
    figures, error, _ = _gate(tmp_path, "", "", small, numbered=folders)
    assert error is None and "stopped_spans" not in figures


def test_a_late_dated_span_names_the_served_models_spans_by_their_folders(generated, tmp_path):
    """Dated spans are day numbers (TFX's {YYYY}{MM}{DD}): the served model's read as dates."""
    from components import spans, testing

    _, folders, small = generated
    served = tmp_path / "serving" / "1796000000"
    testing.save_tiny_model(str(served))
    (served / "assets.extra").mkdir()
    window = {}
    for day, source in zip(("2026-01-01", "2026-01-02", "2026-01-03"), (folders[1], folders[2], folders[3])):
        window[spans.span_number(day)[1]] = shutil.copytree(source, tmp_path / "data" / day)
    first, _, last = sorted(window)
    (served / "assets.extra" / "training.json").write_text(json.dumps({"data": {"window_spans": [first, last]}}))
    _, error, _ = _gate(tmp_path, "", "", small, numbered=window, serving_model_dir=str(tmp_path / "serving"))
    assert str(error).splitlines()[1].startswith(
        "2026-01-02 arrived late: the served model (version 1796000000) trained on spans 2026-01-01, 2026-01-03, ")


def test_a_file_dropped_twice_into_one_span_is_named(generated, tmp_path):
    _, folders, small = generated
    shutil.copytree(folders[3], tmp_path / "span-4")
    copy = str(tmp_path / "span-4" / "copy.parquet")
    shutil.copy(os.path.join(folders[3], configs.TRAIN_FILE), copy)
    figures, error, _ = _gate(tmp_path, str(tmp_path / "span-4"), folders[2], small, more=[copy])
    assert error is not None and figures["drifted"]
    assert str(error).splitlines()[1] == (f"span-4 holds the same file twice (the same file dropped twice): "
                                          f"span-4/copy.parquet is byte-identical to span-4/{configs.TRAIN_FILE}")


def test_an_empty_span_is_refused_as_empty_not_as_drift(generated, tmp_path):
    """Found by exploratory testing: on Vertex and KFP (make run's data checks stop it before the
    pipeline) an empty newest span was called drifted, and --accept-drift offered: accepted, it
    would have trained a model on nothing new."""
    _, folders, small = generated
    os.makedirs(tmp_path / "span-4")
    table = pq.read_table(os.path.join(folders[3], configs.TRAIN_FILE))
    pq.write_table(table.slice(0, 0), str(tmp_path / "span-4" / configs.TRAIN_FILE))
    for accept in (False, True):
        _, error, _ = _gate(tmp_path, str(tmp_path / "span-4"), folders[3], small, accept=accept)
        assert error is not None
        assert str(error).startswith("span-4/: its train file has no rows: an empty span is nothing to train on")
        assert "--accept-drift" not in str(error) and "drifted" not in str(error)
    # the span after it, compared with an empty one, is not waved through: its rows are measured,
    # the distributions of a span with no rows are not (found by exploratory testing: they read
    # 0.0000 ok)
    figures, error, _ = _gate(tmp_path, folders[3], str(tmp_path / "span-4"), small)
    assert error is not None and "rows, newest / previous: inf" in str(error)
    measured = {m["name"]: m for m in figures["measures"]}
    assert measured[drift.PRODUCT_LINF_NAME] == {
        "name": drift.PRODUCT_LINF_NAME, "value": None, "limit": measured[drift.PRODUCT_LINF_NAME]["limit"],
        "over": False, "detail": "not measured: span-4 has no rows"}
    table_text = "\n".join(drift.table_lines(figures))
    assert re.search(rf"^{re.escape(drift.PRODUCT_LINF_NAME)} +- +<= \S+ +-$", table_text, re.M), table_text
    assert not any(drift.PRODUCT_LINF_NAME in text for text in drift.over_texts(figures))  # not measured: not over


def test_heavier_buyers_are_caught_by_purchases_per_user(tmp_path, write_fake_spans, small_span_thresholds):
    folders = write_fake_spans(str(tmp_path / "data"), num_spans=2, rows_per_span=3000)
    table = pq.read_table(os.path.join(folders[2], configs.TRAIN_FILE))
    os.makedirs(tmp_path / "heavy")
    pq.write_table(drift_calibration.heavier(table, 30), str(tmp_path / "heavy" / configs.TRAIN_FILE))
    thresholds = {**small_span_thresholds, "repeated_rows": 1.0}  # heavier() repeats the span's own rows
    figures, error, _ = _gate(tmp_path, str(tmp_path / "heavy"), folders[2], thresholds)
    over = [m["name"] for m in figures["measures"] if m["over"]]
    assert "purchases per user, Jensen-Shannon divergence" in over, figures["measures"]
    measures = {m["name"]: m for m in figures["measures"]}
    assert measures["top 1% of users' share of purchases, newest / previous"]["value"] > 1.4  # at equal users
    assert "the heaviest buyer of heavy: " in str(error)  # the account is named
    assert f"{features.PRODUCT_KEY} L-infinity distance" not in over
    figures, error, _ = _gate(tmp_path, folders[2], folders[1], thresholds)
    assert error is None, error


def test_one_new_account_with_a_large_share_of_purchases_is_named(tmp_path, write_fake_spans,
                                                                  small_span_thresholds):
    """Found by exploratory testing: a new account making 13% of a span's purchases, where a
    reseller already held the top users' share, passed every measure of how much users buy (the
    top 1%'s share barely moves, the counts' categories neither). One buyer's share of purchases,
    TFDV's L-infinity distance on the user ids, catches it and names the account."""
    folders = write_fake_spans(str(tmp_path / "data"), num_spans=2, rows_per_span=3000)
    reseller = b"RESELLER000000000000"
    for name, number, accounts in (("before", 1, [(reseller, 0.10)]), ("steady", 2, [(reseller, 0.10)]),
                                   ("after", 2, [(reseller, 0.10), (b"NEWACCOUNT0000000000", 0.13)])):
        table = pq.read_table(os.path.join(folders[number], configs.TRAIN_FILE))
        for account, share in accounts:
            table = drift_calibration.newcomer(table, share, account=account)
        os.makedirs(tmp_path / name)
        pq.write_table(table, str(tmp_path / name / configs.TRAIN_FILE))
    thresholds = {**small_span_thresholds, "repeated_rows": 1.0}  # newcomer() draws the span's own rows
    figures, error, _ = _gate(tmp_path, str(tmp_path / "after"), str(tmp_path / "before"), thresholds)
    over = [m["name"] for m in figures["measures"] if m["over"]]
    assert over == [f"{features.USER_KEY} L-infinity distance"], figures["measures"]
    assert "NEWACCOUNT0000000000" in str(error)
    # the reseller buying as much in both spans is no shift
    figures, error, _ = _gate(tmp_path, str(tmp_path / "steady"), str(tmp_path / "before"), thresholds)
    assert error is None, error


def test_more_customers_who_buy_as_before_are_no_shift(generated, tmp_path):
    """Found by exploratory testing: thinning a span with more customers to the previous one's
    rows lowers every count, which read as a shift in how much users buy; at equal users the
    counts are compared as they are."""
    _, folders, small = generated
    base = pq.read_table(os.path.join(folders[3], configs.TRAIN_FILE))
    busier = drift_calibration.busier(base)  # twice the customers, buying as before
    os.makedirs(tmp_path / "busier")
    pq.write_table(busier, str(tmp_path / "busier" / configs.TRAIN_FILE))
    figures, error, _ = _gate(tmp_path, str(tmp_path / "busier"), folders[3], small)
    measures = {m["name"]: m for m in figures["measures"]}
    per_user = measures["purchases per user, Jensen-Shannon divergence"]
    assert error is None, error
    assert per_user["value"] < small["purchases_per_user_jensen_shannon"] / 3
    assert 0.9 < measures["top 1% of users' share of purchases, newest / previous"]["value"] < 1.1
    # thinned to equal rows alone, the same two spans read as a shift
    thinned = [drift.purchase_buckets(drift.purchases_per_user(t)) for t in drift.equal_size(busier, base)]
    shares = [np.bincount(b, minlength=65)[:4] / len(b) for b in thinned]
    assert shares[0][1] > shares[1][1] + 0.05  # more users who bought once
    assert "the heaviest buyer of busier: " in per_user["detail"]
    # said once, in plain words (found by a reviewer of the replay's report: the note in two
    # rows, and "the smaller of equal rows and equal users")
    assert per_user["detail"].startswith("compared at equal rows and at equal users (the larger span sampled "
                                         "down); the smaller divergence; the heaviest buyer of busier: ")
    share = measures["top 1% of users' share of purchases, newest / previous"]
    assert share["detail"].endswith(", at equal users") and "heaviest" not in share["detail"]


def test_the_heaviest_buyer_is_named_once_on_the_console_as_in_the_report():
    """The heaviest buyer is named on the per-user divergence's line; when the top users' share
    is over alone, on its line instead (it is said on no other)."""
    def measure(name, over, detail):
        return {"name": name, "value": 2.0 if over else 0.001, "limit": "<= 1", "over": over, "detail": detail}

    heavy = "the heaviest buyer of span-2: U1, 40 purchases (4.00%)"
    figures = {"newest": {"name": "span-2"}, "previous": {"name": "span-1"}, "heaviest_buyer": heavy, "measures": [
        measure(drift.PER_USER_NAME, True, f"{drift.PER_USER_DETAIL}; {heavy}"),
        measure(drift.TOP_SHARE_NAME, True, "0.080 vs 0.040, at equal users")]}
    lines = drift.problem_lines(figures)
    assert [line.count(heavy) for line in lines] == [1, 0], lines
    assert lines[1].endswith("(0.080 vs 0.040, at equal users)")
    figures["measures"][0]["over"] = False
    assert drift.problem_lines(figures) == [
        f"{drift.TOP_SHARE_NAME}: 2, allowed <= 1 (0.080 vs 0.040, at equal users; {heavy})"]


def test_a_pipeline_compiled_by_older_code_is_named_as_such(tmp_path):
    """A compiled pipeline whose thresholds lack one that the image's code measures (compiled
    before the measure existed) failed with "missing ['user_l_infinity']" alone."""
    older = {k: v for k, v in configs.DEFAULT_DRIFT_THRESHOLDS.items() if k != drift.USER_L_INFINITY}
    report = drift.DriftReport()
    report.uri = str(tmp_path / "report")
    with pytest.raises(ValueError, match=f"this code measures {drift.USER_L_INFINITY}, and the pipeline gives no "
                                         f"threshold for it: it was compiled by older code than this image runs"):
        drift.Executor().Do({"examples": [standard_artifacts.Examples()], "schema": []},
                            {"drift_report": [report]}, {"thresholds": json_utils.dumps(older)})


def test_a_single_span_has_nothing_to_compare(tmp_path):
    examples = standard_artifacts.Examples()
    examples.set_int_custom_property(parquet_example_gen.SPAN_PROPERTY, 0)
    report = drift.DriftReport()
    report.uri = str(tmp_path / "report")
    drift.Executor().Do({"examples": [examples], "schema": []}, {"drift_report": [report]},
                        {"thresholds": json_utils.dumps(configs.DEFAULT_DRIFT_THRESHOLDS)})
    figures = drift.read_report(report.uri)
    assert not figures["compared"] and figures["reason"] == "one span only: nothing to compare"
    assert report.get_int_custom_property("compared") == 0
