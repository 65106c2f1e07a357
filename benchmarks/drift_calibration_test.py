"""The calibration's spans and their altered versions (the gate's verdicts on them:
components/drift_test.py); the --span-dir mode: its suggestion rule, its span discovery, and one
run on generated spans."""

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import drift_calibration
from models import features
from pipeline import configs
from tests import fake_asos


def _table(users, products):
    return pa.table({features.USER_KEY: pa.array(users, pa.binary()),
                     features.PRODUCT_KEY: pa.array(products, pa.int32())})


def test_random_spans_are_seeded_and_the_first_twice_as_large():
    spans = drift_calibration.random_spans(100_000, 4, seed=0)
    shares = np.bincount(spans)[1:] / len(spans)
    np.testing.assert_allclose(shares, [0.4, 0.2, 0.2, 0.2], atol=0.01)
    assert (drift_calibration.random_spans(100_000, 4, seed=0) == spans).all()


def test_inverted_popularity_swaps_ranks_and_keeps_everything_else():
    reference = _table([b"u"] * 6, [1, 1, 1, 2, 2, 3])  # ranking 1, 2, 3
    table = _table([b"a", b"b", b"c", b"d"], [1, 1, 3, 9])
    flipped = drift_calibration.inverted(table, reference)
    assert flipped.column(features.PRODUCT_KEY).to_pylist() == [3, 3, 1, 9]  # 9: unknown, stays
    assert flipped.schema == table.schema and flipped.column(0).equals(table.column(0))


def test_heavier_buyers_buy_times_as_much():
    table = _table([b"a", b"a", b"a", b"b", b"c"], [1, 2, 3, 1, 1])
    heavy = drift_calibration.heavier(table, buyers=1, times=3)
    assert heavy.num_rows == 5 + 2 * 3
    assert heavy.column(features.USER_KEY).to_pylist().count(b"a") == 9


def test_busier_is_twice_the_customers_buying_as_before():
    table = _table([b"a", b"a", b"b"], [1, 2, 1])
    busy = drift_calibration.busier(table)
    assert busy.num_rows == 6 and busy.schema == table.schema
    users = busy.column(features.USER_KEY).to_pylist()
    assert sorted(users.count(u) for u in set(users)) == [1, 1, 2, 2]  # each user's count as before
    assert busy.column(features.PRODUCT_KEY).to_pylist() == [1, 2, 1] * 2


# --- the user's own spans (--span-dir) --------------------------------------------------------
def _values(**measured):
    """A pair's measures: every one at an ordinary value, `measured` replacing some."""
    values = {"product_l_infinity": 0.002, "product_jensen_shannon": 0.2, "rows_ratio": 1.0,
              "purchases_per_user_jensen_shannon": 0.0001, "top_users_share_ratio": 1.0,
              "user_l_infinity": 0.002, "repeated_rows": 0.0, drift_calibration.IDENTICAL: False}
    return {**values, **measured}


DEFAULTS = dict(configs.DEFAULT_DRIFT_THRESHOLDS)  # product L-inf 0.006, user L-inf 0.02, top share x1.5 ...


def test_suggestion_loosens_what_the_real_pairs_need_and_keeps_what_fits():
    real = [_values(product_l_infinity=0.0061, user_l_infinity=0.0295, rows_ratio=0.9, top_users_share_ratio=0.8),
            _values(product_l_infinity=0.0078, user_l_infinity=0.01, rows_ratio=1.3, top_users_share_ratio=1.1)]
    assert drift_calibration.needed_thresholds(real, margin=1.25) == {
        "product_l_infinity": 0.0098,  # 0.0078 x 1.25 = 0.00975, rounded up to 2 digits
        "product_jensen_shannon": 0.25, "min_rows_ratio": 0.72, "max_rows_ratio": 1.7,  # 0.9 / 1.25, 1.3 x 1.25 = 1.625
        "purchases_per_user_jensen_shannon": 0.00013,
        "top_users_share_ratio": 1.6,  # either way: 1 / 0.8 = 1.25, x 1.25 = 1.5625
        "user_l_infinity": 0.037,  # 0.0295 x 1.25 = 0.036875
        "repeated_rows": 0.0}
    suggested = drift_calibration.suggest(real, {}, DEFAULTS, margin=1.25)
    assert suggested == {**DEFAULTS, "product_l_infinity": 0.0098, "top_users_share_ratio": 1.6,
                         "user_l_infinity": 0.037}  # the others fit the defaults: never loosened
    assert not any(drift_calibration.over(v, suggested) for v in real)
    assert drift_calibration.flag_list(suggested) == (
        "--drift-threshold product_l_infinity=0.0098 --drift-threshold top_users_share_ratio=1.6 "
        "--drift-threshold user_l_infinity=0.037")
    assert drift_calibration.flag_list(DEFAULTS) == ""


def test_suggestion_tightens_a_measure_meant_for_an_altered_kind_the_current_one_lets_through():
    real = [_values(user_l_infinity=0.01), _values(user_l_infinity=0.012)]
    newcomer = _values(user_l_infinity=0.03)  # within a loose current 0.05, over the needed 0.015
    loose = {**DEFAULTS, "user_l_infinity": 0.05}
    suggested = drift_calibration.suggest(real, {"newcomer": [newcomer]}, loose, margin=1.25)
    assert suggested == {**loose, "user_l_infinity": 0.015}
    assert drift_calibration.over(newcomer, suggested) == ["user_l_infinity"]
    # a newcomer within the real pairs' variation x margin gets through whatever: nothing is tightened
    hidden = _values(user_l_infinity=0.013)
    assert drift_calibration.suggest(real, {"newcomer": [hidden]}, loose, margin=1.25) == loose
    # a measure not meant for the kind is not tightened for it (rows are no sign of a new account)
    assert drift_calibration.suggest(real, {"newcomer": [_values(user_l_infinity=0.013, rows_ratio=2.4)]},
                                     {**loose, "max_rows_ratio": 3.0}, margin=1.25)["max_rows_ratio"] == 3.0


def test_over_judges_the_measures_as_the_gate_does():
    over = drift_calibration.over
    assert over(_values(), DEFAULTS) == []
    assert over(_values(rows_ratio=0.39, top_users_share_ratio=0.6), DEFAULTS) == [
        "rows_ratio", "top_users_share_ratio"]
    assert over(_values(top_users_share_ratio=1.5, product_l_infinity=0.006), DEFAULTS) == []  # at the threshold: ok
    assert over(_values(**{drift_calibration.IDENTICAL: True}), DEFAULTS) == ["repeated_rows"]
    assert over(_values(user_l_infinity=None), {**DEFAULTS, "user_l_infinity": 0.0}) == []  # not measured


def test_round_out_keeps_what_it_rounds():
    assert drift_calibration.round_out(0.00975) == 0.0098
    assert drift_calibration.round_out(0.0097) == 0.0097
    assert drift_calibration.round_out(1.625) == 1.7
    assert drift_calibration.round_out(0.72, up=False) == 0.72
    assert drift_calibration.round_out(0.7199, up=False) == 0.71
    assert drift_calibration.round_out(0.0) == 0.0


def _span(data_dir, folder, *names, rows=3):
    os.makedirs(data_dir / folder, exist_ok=True)
    for name in names:
        fake_asos.write_purchases(str(data_dir / folder / name), [f"user{i:016d}" for i in range(rows)],
                                  [fake_asos.PRODUCT_ID_MIN + i for i in range(rows)])


def test_span_discovery_reads_dated_folders_and_several_files_per_span(tmp_path):
    _span(tmp_path, "2026-11-02", configs.TRAIN_FILE)
    _span(tmp_path, "2026-11-09", "dsf_asos_train_part-0.parquet", "dsf_asos_train_part-1.parquet",
          configs.EVAL_FILE)
    _span(tmp_path, "notes")  # a folder without purchase files: ignored, as a run ignores it
    found = drift_calibration.find_spans(str(tmp_path))
    assert [s.folder for s in found] == ["2026-11-02", "2026-11-09"]
    assert found[1].number - found[0].number == 7  # dated spans are day numbers
    assert [os.path.basename(p) for p in found[1].train] == ["dsf_asos_train_part-0.parquet",
                                                             "dsf_asos_train_part-1.parquet"]  # not the eval file


@pytest.mark.parametrize("layout, message", [
    ({"": [configs.TRAIN_FILE]}, "the flat layout (a train file at the top) is one span"),
    ({"span-1": [configs.TRAIN_FILE]}, "one span (span-1/): the gate compares each span with the one before it"),
    ({"span-1": [configs.TRAIN_FILE], "2026-11-09": [configs.TRAIN_FILE]}, "span folders of two namings"),
    ({"span-1": [configs.TRAIN_FILE], "span-2": [configs.EVAL_FILE]}, "span-2/: no train file"),
])
def test_span_dir_that_cannot_be_calibrated_is_one_line_and_exit_2(tmp_path, capsys, layout, message):
    for folder, names in layout.items():
        _span(tmp_path, folder, *names)
    assert drift_calibration.main(["--span-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("error: ") and message in captured.err, captured.err


def test_an_empty_span_is_refused_before_anything_is_compared(tmp_path, capsys):
    _span(tmp_path, "span-1", configs.TRAIN_FILE)
    _span(tmp_path, "span-2", configs.TRAIN_FILE, rows=0)
    assert drift_calibration.main(["--span-dir", str(tmp_path)]) == 2
    assert "error: span-2/: its train file has no rows" in capsys.readouterr().err


def test_span_dir_end_to_end_on_three_generated_spans(tmp_path, write_fake_spans, small_span_thresholds,
                                                      monkeypatch, capsys):
    """Three generated spans, the newest in two files: the gate's figures for each pair, real and
    altered 3 ways (8 comparisons, Beam's FnApiRunner); the suggestion judged as the gate judges."""
    folders = write_fake_spans(str(tmp_path / "data"), num_spans=3)
    newest = pq.read_table(os.path.join(folders[3], configs.TRAIN_FILE))
    os.remove(os.path.join(folders[3], configs.TRAIN_FILE))
    half = newest.num_rows // 2
    pq.write_table(newest.slice(0, half), os.path.join(folders[3], "dsf_asos_train_part-0.parquet"))
    pq.write_table(newest.slice(half), os.path.join(folders[3], "dsf_asos_train_part-1.parquet"))
    compared, compare = [], drift_calibration.compare

    def recording(newest_files, previous_files, *args, **kwargs):
        figures = compare(newest_files, previous_files, *args, **kwargs)
        compared.append((list(newest_files), figures))
        return figures
    monkeypatch.setattr(drift_calibration, "compare", recording)
    flags = [f"--drift-threshold={name}={value:g}" for name, value in small_span_thresholds.items()]
    code = drift_calibration.main(["--span-dir", str(tmp_path / "data"), "--newcomer-share", "0.1", *flags])
    out = capsys.readouterr().out
    assert code == 0, out
    assert len(compared) == 2 * 4
    assert compared[4][0] == [os.path.join(folders[3], f"dsf_asos_train_part-{i}.parquet") for i in (0, 1)]
    for _, figures in compared:  # the suggestion's judgement is the gate's
        gate = [key for key, m in zip(drift_calibration.MEASURES, figures["measures"]) if m["over"]]
        assert drift_calibration.over(drift_calibration.measure_values(figures), small_span_thresholds) == gate
    lines = out.splitlines()
    assert lines[0].startswith(f"[drift] {tmp_path / 'data'}: 3 spans (span-1, span-2, span-3; span-3 2 files)")
    assert "with the suggested thresholds: real pairs passing 2 of 2" in out
    for kind in ("popularity upside down", "heaviest buyers 3x", "a new account, 10%"):
        assert any(line.strip().startswith(f"{kind} ") and " stopped 2 of 2, by " in line for line in lines), out
    make = next(line.strip() for line in lines if line.strip().startswith("make run ARGS="))
    assert make.startswith('make run ARGS="--drift-threshold ')


def test_an_altered_kind_within_the_real_variation_is_said_and_exit_1(capsys):
    real = [_values(user_l_infinity=0.0219), _values(user_l_infinity=0.0083)]
    altered = {"inverted": [_values(product_jensen_shannon=0.99)] * 2,
               "heavy": [_values(purchases_per_user_jensen_shannon=0.02, top_users_share_ratio=2.0)] * 2,
               "newcomer": [_values(user_l_infinity=0.0252), _values(user_l_infinity=0.03)]}
    texts = drift_calibration.kind_texts(0.01)
    code = drift_calibration.report_suggestion(real, altered, ["b vs a", "c vs b"], DEFAULTS, 1.25, texts)
    out = capsys.readouterr().out
    assert code == 1
    assert "--drift-threshold user_l_infinity=0.028" in out  # 0.0219 x 1.25 = 0.027375
    assert ("a new account, 1%        stopped 1 of 2, by dummyUserId L-infinity distance (1); gets through in "
            "b vs a") in out
    assert ("a new account, 1%: gets through in 1 of 2 pairs. Your spans' real variation is as large as the shift "
            "the gate is meant to catch") in out
    assert "dummyUserId L-infinity distance: real pairs 0.0083..0.0219, needing <= 0.028 with the margin" in out
    # the same with a newcomer past the margin: every altered kind stopped, exit 0
    altered["newcomer"] = [_values(user_l_infinity=0.03)] * 2
    assert drift_calibration.report_suggestion(real, altered, ["b vs a", "c vs b"], DEFAULTS, 1.25, texts) == 0


def test_a_drifted_comparison_keeps_its_figures_inside_the_work_dir(tmp_path, write_fake_spans, small_span_thresholds):
    """Found by a look at /tmp after CI: every drifted comparison's figures were kept in
    /tmp/rejected/ (the gate keeps them two levels above its report, which was a bare temporary
    directory), 101 directories in a day."""
    import glob

    folders = write_fake_spans(str(tmp_path / "data"), num_spans=2, rows_per_span=200)
    table = pq.read_table(os.path.join(folders[2], configs.TRAIN_FILE))
    reference = pq.read_table(os.path.join(folders[1], configs.TRAIN_FILE))
    os.makedirs(tmp_path / "inverted")
    pq.write_table(drift_calibration.inverted(table, reference), str(tmp_path / "inverted" / configs.TRAIN_FILE))
    before = set(glob.glob("/tmp/rejected/*"))
    figures = drift_calibration.compare([str(tmp_path / "inverted" / configs.TRAIN_FILE)],
                                        [os.path.join(folders[1], configs.TRAIN_FILE)], str(tmp_path / "work"),
                                        small_span_thresholds)
    assert figures["drifted"]
    assert glob.glob(str(tmp_path / "work" / "DriftGate" / "rejected" / "*" / "drift.json"))
    assert set(glob.glob("/tmp/rejected/*")) == before
