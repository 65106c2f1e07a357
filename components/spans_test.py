"""Span layouts: what a run reads of them, and one-line errors for the malformed ones."""

import datetime
import json
import os

import pytest
from tfx.components.example_gen import utils as example_gen_utils

from components import spans
from pipeline import configs

TRAIN, EVAL = configs.SPLIT_PATTERNS["train"], configs.SPLIT_PATTERNS["eval"]


def _touch(base, *paths):
    for path in paths:
        full = os.path.join(base, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        open(full, "wb").close()


def _layout(base):
    return spans.read_layout(str(base), TRAIN, EVAL)


def test_the_flat_layout_is_one_span_with_the_standing_eval_file(tmp_path):
    _touch(tmp_path, configs.TRAIN_FILE, configs.EVAL_FILE, configs.CATALOG_FILE)
    layout = _layout(tmp_path)
    assert layout.flat and [s.number for s in layout.spans] == [spans.FLAT_SPAN]
    chosen = layout.select(3)
    assert chosen.train_files == [str(tmp_path / configs.TRAIN_FILE)]
    assert chosen.eval_files == (str(tmp_path / configs.EVAL_FILE),)
    assert (chosen.eval_source, chosen.window_spans, chosen.previous) == (spans.STANDING, "0", None)


def test_the_window_the_eval_file_and_the_previous_span(tmp_path):
    for n in (1, 2, 3, 10):  # numeric order, not by name: span-10 is the newest
        _touch(tmp_path, f"span-{n}/{configs.TRAIN_FILE}")
    _touch(tmp_path, f"span-10/{configs.EVAL_FILE}", configs.EVAL_FILE, "span-3/notes.txt")
    layout = _layout(tmp_path)
    assert [s.number for s in layout.spans] == [1, 2, 3, 10] and not layout.flat
    chosen = layout.select(2)
    assert chosen.window_spans == "3,10" and chosen.newest.folder == "span-10"
    assert chosen.train_files == [str(tmp_path / "span-3" / configs.TRAIN_FILE),
                                  str(tmp_path / "span-10" / configs.TRAIN_FILE)]
    assert chosen.eval_source == "span-10" and chosen.eval_files == (str(tmp_path / "span-10" / configs.EVAL_FILE),)
    assert chosen.previous.number == 3
    # a window of one span: the drift gate still compares with the span before the newest
    assert layout.select(1).window_spans == "10" and layout.select(1).previous.number == 3
    assert layout.select(99).window_spans == "1,2,3,10"
    with pytest.raises(spans.SpanLayoutError, match="a span window of 0"):
        layout.select(0)


def test_without_its_own_eval_file_the_newest_span_is_evaluated_on_the_standing_one(tmp_path):
    _touch(tmp_path, f"span-1/{configs.TRAIN_FILE}", f"span-1/{configs.EVAL_FILE}",
           f"span-2/{configs.TRAIN_FILE}", configs.EVAL_FILE)
    chosen = _layout(tmp_path).select(3)
    assert chosen.eval_source == spans.STANDING and chosen.eval_files == (str(tmp_path / configs.EVAL_FILE),)
    os.remove(tmp_path / configs.EVAL_FILE)
    with pytest.raises(spans.SpanLayoutError, match="no eval file: span-2/ has none and neither has"):
        _layout(tmp_path).select(3)


@pytest.mark.parametrize("folder", ["2024-03-02", "20240302"])
def test_dated_folders_are_days_since_the_epoch_as_in_tfx(tmp_path, folder):
    _touch(tmp_path, f"{folder}/{configs.TRAIN_FILE}", f"2024-02-28/{configs.TRAIN_FILE}"
           if "-" in folder else f"20240228/{configs.TRAIN_FILE}", configs.EVAL_FILE)
    layout = _layout(tmp_path)
    expected = (datetime.date(2024, 3, 2) - datetime.date(1970, 1, 1)).days
    assert layout.spans[-1].number == expected == example_gen_utils.date_to_span_number(2024, 3, 2)
    assert layout.spans[-1].number - layout.spans[0].number == 3  # 2024 is a leap year
    assert layout.select(3).eval_source == spans.STANDING


@pytest.mark.parametrize("paths, message", [
    ([configs.TRAIN_FILE, f"span-1/{configs.TRAIN_FILE}"], "flat and span layouts mixed: dsf_asos_train_"),
    ([f"span-1/{configs.TRAIN_FILE}", f"span-2/{configs.EVAL_FILE}"], r"span-2/: no train file \(dsf_asos_train_"),
    ([f"span-1/{configs.TRAIN_FILE}", "span-2/.keep"], "span-2/: no train file"),
    # found by exploratory testing: a CSV, and a dataset written in parts, read as "no train file" alone
    ([f"span-1/{configs.TRAIN_FILE}", "span-2/purchases.csv"],
     r"span-2/: no train file \(dsf_asos_train_\*.parquet\); it has purchases.csv: purchase files must be"),
    ([f"span-1/{configs.TRAIN_FILE}", f"span-2/{configs.TRAIN_FILE}/part-00000.parquet"],
     f"span-2/{configs.TRAIN_FILE}: a directory, not a file: .* read it and write it as one file"),
    ([f"span-1/{configs.TRAIN_FILE}", f"span-01/{configs.TRAIN_FILE}"], "span-01/ and span-1/ are both span 1"),
    ([f"2024-03-02/{configs.TRAIN_FILE}", f"20240302/{configs.TRAIN_FILE}"],
     "2024-03-02/ and 20240302/ are both span 19784"),
    ([f"span-1/{configs.TRAIN_FILE}", f"2024-03-02/{configs.TRAIN_FILE}"], "span folders of two namings"),
    ([f"span-1/{configs.TRAIN_FILE}", f"archive/{configs.TRAIN_FILE}"],
     r"archive/ holds purchase files .* its name is not a span folder"),
    ([f"2024-13-02/{configs.TRAIN_FILE}"], "2024-13-02/: a dated span folder, but not a date"),
    ([configs.CATALOG_FILE], "no train file .* and no span folder in"),
])
def test_a_malformed_layout_is_one_line_naming_the_problem(tmp_path, paths, message):
    _touch(tmp_path, *paths)
    with pytest.raises(spans.SpanLayoutError, match=message) as raised:
        _layout(tmp_path)
    assert "\n" not in str(raised.value)


def test_hidden_and_other_folders_without_purchases_are_ignored(tmp_path):
    _touch(tmp_path, f"span-1/{configs.TRAIN_FILE}", f".tmp/{configs.TRAIN_FILE}", "notes/readme.txt",
           configs.EVAL_FILE)
    assert [s.folder for s in _layout(tmp_path).spans] == ["span-1"]


def test_the_input_config_covers_the_flat_files_and_the_span_folders():
    config = spans.input_config(TRAIN, EVAL)
    assert [(s.name, s.pattern) for s in config.splits] == [
        (spans.TRAIN, TRAIN), (spans.EVAL, EVAL), (spans.SPAN_TRAIN, f"*/{TRAIN}"), (spans.SPAN_EVAL, f"*/{EVAL}")]
    assert spans.file_patterns(config) == (TRAIN, EVAL)


def test_the_input_fingerprint_tells_the_flat_layout_from_a_span_0_folder(tmp_path):
    # TFX's own fingerprint of the input_config's splits, as ExampleGen's driver records it
    def fingerprint(base):
        return example_gen_utils.calculate_splits_fingerprint_span_and_version(
            str(base), spans.input_config(TRAIN, EVAL).splits)[0]

    _touch(tmp_path / "flat", configs.TRAIN_FILE, configs.EVAL_FILE)
    _touch(tmp_path / "folders", f"span-0/{configs.TRAIN_FILE}", configs.EVAL_FILE)
    assert spans.is_flat(fingerprint(tmp_path / "flat")) is True
    assert spans.is_flat(fingerprint(tmp_path / "folders")) is False
    assert spans.is_flat(None) is None and spans.is_flat("split:single_split,num_files:1") is None


def test_the_line_for_a_person(tmp_path):
    for n in (1, 2, 3, 4):
        _touch(tmp_path, f"span-{n}/{configs.TRAIN_FILE}")
    _touch(tmp_path, configs.EVAL_FILE)
    layout = _layout(tmp_path)
    assert spans.describe(layout, layout.select(3), 3) == (
        "4 span(s) (span-1, span-2, span-3, span-4); newest span-4 (span 4); training window 3 of at "
        "most 3: span-2, span-3, span-4; eval: the standing eval file; drift: span-4 vs span-3")


def test_dated_folders_are_named_by_their_span_numbers():
    files = {"20454": ["/d/2026-01-01/t.parquet"], "20455": ["/d/20260102/t.parquet"], "3": ["/d/span-3/t.parquet"]}
    assert spans.dated_folders(files) == {20454: "2026-01-01", 20455: "20260102"}
    assert spans.dated_folders(json.dumps(files)) == spans.dated_folders(files)  # as the artifact holds it
    assert spans.dated_folders("not json") == {} and spans.dated_folders(None) == {}
    assert spans.dated_folders({"7": ["/d/2026-01-01/t.parquet"]}) == {}  # not that folder's day


def test_span_numbers_read_as_ranges_and_a_gap_shows():
    assert [spans.number_ranges(n) for n in ([3], [1, 2, 3], [1, 3], [1, 2, 4, 6, 7])] == [
        "3", "1-3", "1, 3", "1-2, 4, 6-7"]
