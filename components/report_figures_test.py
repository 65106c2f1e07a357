"""The run report's figures from small known inputs (the metrics themselves:
models/ranking_metrics_test.py)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from components import report_figures
from models import features, ranking_metrics


def test_split_statistics():
    stats = report_figures.split_statistics({
        "users": np.array([b"a", b"a", b"b", b"c", b"c", b"c"], dtype=object),
        "products": np.array([1, 2, 1, 1, 2, 3])})
    assert (stats["purchases"], stats["users"], stats["products"]) == (6, 3, 3)
    assert stats["purchases_per_user"] == {"mean": 2.0, "median": 2.0, "p90": pytest.approx(2.8), "max": 3}
    assert stats["purchase_ranges"] == [{"label": "1", "users": 1, "purchases": 1},
                                         {"label": "2", "users": 1, "purchases": 2},
                                         {"label": "3", "users": 1, "purchases": 3}]
    assert stats["product_counts_desc"] == [3, 2, 1]


def test_an_empty_split_has_zero_counts():
    stats = report_figures.split_statistics({"users": np.array([], dtype=object),
                                             "products": np.array([], dtype=np.int64)})
    assert (stats["purchases"], stats["users"], stats["products"]) == (0, 0, 0)
    assert stats["purchase_ranges"] == [] and stats["purchases_per_user"]["max"] == 0


def test_purchases_per_user_keep_a_heavy_tail_in_bars_of_its_own():
    """Found by exploratory testing: accounts with 150-3,524 purchases, 24% of the purchases, were
    6 users in one "30 or more" bar."""
    per_user = np.array([1] * 50 + [2] * 20 + [9, 10, 19, 20, 49, 50, 150, 3524])
    buckets = report_figures.purchase_ranges(per_user)
    assert [b["label"] for b in buckets] == [str(n) for n in range(1, 10)] + [
        "10-19", "20-49", "50-99", "100-199", "200-499", "500-999", "1,000-1,999", "2,000-4,999"]
    by_label = {b["label"]: b for b in buckets}
    assert by_label["1"] == {"label": "1", "users": 50, "purchases": 50}
    assert by_label["10-19"] == {"label": "10-19", "users": 2, "purchases": 29}
    assert by_label["2,000-4,999"] == {"label": "2,000-4,999", "users": 1, "purchases": 3524}
    assert by_label["500-999"]["users"] == 0
    assert sum(b["users"] for b in buckets) == len(per_user) and sum(b["purchases"] for b in buckets) == per_user.sum()
    assert [b["label"] for b in report_figures.purchase_ranges(np.array([1, 27]))][-2:] == ["10-19", "20-49"]


def test_the_eval_split_is_eval_else_the_last_by_name():
    assert report_figures.eval_split_of(["train", "eval"]) == "eval"
    assert report_figures.eval_split_of(["train", "test"]) == "train"
    assert report_figures.eval_split_of(["eval"]) == "eval"
    with pytest.raises(ValueError, match="no split"):
        report_figures.eval_split_of([])


def _train(num_items):
    return report_figures.TrainSplit(transform_output=None, users=np.array([0]), items=np.array([0]),
                                     num_users=1, num_items=num_items)


def test_coverage_is_of_the_catalog_else_of_the_train_vocabulary():
    """Without a catalog report the train vocabulary counts: the data's splits are not read (a
    run whose data has no split named "train" gets its report)."""
    assert report_figures.catalog_size({"catalog_products": 65}, _train(60)) == 65
    assert report_figures.catalog_size(None, _train(60)) == 60
    assert report_figures.catalog_size({}, _train(60)) == 60


def _pushed(**props):
    artifact = standard_artifacts.PushedModel()
    for name, value in props.items():
        if isinstance(value, int):
            artifact.set_int_custom_property(name, value)
        else:
            artifact.set_string_custom_property(name, value)
    return artifact


def test_push_summary():
    assert report_figures.push_summary(_pushed(pushed=1, pushed_version="17", pushed_destination="/s/17"),
                                       blessed=True) == {
        "pushed": True, "already_served": False, "version": "17", "path": "/s/17",
        "text": "Pushed: version 17 at /s/17."}
    already = report_figures.push_summary(_pushed(pushed=1, already_served=1, pushed_version="17",
                                                  pushed_destination="/s/17"), blessed=True)
    assert already["pushed"] and already["already_served"]  # served: its batch lists are written
    assert already["text"] == "Already served: this model is version 17 at /s/17; nothing new was pushed."
    refused = report_figures.push_summary(_pushed(pushed=0), blessed=False)
    assert not refused["pushed"] and refused["text"].startswith("Not pushed: the gate refused the model")
    assert "previously pushed model stays served" in refused["text"]
    # a first run: nothing was ever served (found by exploratory testing: "the previously pushed model")
    first = report_figures.push_summary(_pushed(pushed=0), blessed=False, served=False)
    assert first["text"] == ("Not pushed: the gate refused the model; no model is served yet (none was ever "
                             "pushed here).")
    assert report_figures.push_summary(None, blessed=True)["text"] == "Not pushed."
    reason = "this model is version 5 again, which a rollback took out of service"
    withdrawn = _pushed(pushed=0, not_pushed_reason=reason)
    assert report_figures.push_summary(withdrawn, blessed=True)["text"] == f"Not pushed: {reason}."


def test_gate_figures():
    gate = {"blessed": False, "verdict": "NOT BLESSED", "rows": [{"metric": "mrr"}], "has_baseline": True,
            "values": {}, "curves": {}}
    assert report_figures.gate_figures(gate) == {"blessed": False, "verdict": "NOT BLESSED",
                                                 "rows": [{"metric": "mrr"}], "compared_with_blessed": True}


def test_the_latest_monitoring_report_is_read_when_there_is_one(tmp_path):
    assert report_figures.monitoring_figures(None) is None
    assert report_figures.monitoring_figures(str(tmp_path)) is None  # make monitor never ran
    latest = {"created": "2026-12-05 10:00 UTC", "html": "/o/monitoring/monitor-1.html", "requests": 3}
    (tmp_path / report_figures.MONITORING_LATEST).write_text(json.dumps(latest))
    assert report_figures.monitoring_figures(str(tmp_path)) == latest


def test_the_components_file_of_this_run_only(tmp_path, monkeypatch):
    monkeypatch.delenv(report_figures.COMPONENTS_FILE_ENV, raising=False)
    assert report_figures.component_figures() is None  # not a console's local run
    path = tmp_path / "run-1.components.json"
    monkeypatch.setenv(report_figures.COMPONENTS_FILE_ENV, str(path))
    assert report_figures.component_figures() is None  # no component finished yet
    path.write_text('{"measured": "m", "components": [{"name": "Trainer", "state": "ran", '
                    '"seconds": 1.5, "peak_bytes": 1024}]}')
    assert report_figures.component_figures()["components"][0]["peak_bytes"] == 1024


def test_earlier_reports_are_the_local_runners_earlier_executions(tmp_path):
    for execution, content in ((3, {"gate": 1, "evaluation": 1}), (7, {"gate": 2, "evaluation": 2}),
                               (9, {"gate": 3, "evaluation": 3}), (5, None)):
        os.makedirs(tmp_path / str(execution))
        if content:
            (tmp_path / str(execution) / "report.json").write_text(json.dumps(content))
    (tmp_path / "other").mkdir()
    found = report_figures.earlier_reports(str(tmp_path / "9"), "report.json")
    assert [r["gate"] for r in found] == [1, 2]  # older ones, oldest first; 5 has no report
    assert report_figures.earlier_reports(str(tmp_path / "other"), "report.json") == []  # not the local layout


def _purchases(pairs):
    return {"users": np.array([u for u, _ in pairs], dtype=object),
            "products": np.array([p for _, p in pairs], np.int64)}


def test_reach_counts_the_purchases_no_model_can_hit():
    train = _purchases([(b"a", 1), (b"a", 2), (b"b", 1), (b"c", 3)])
    measured = _purchases([(b"a", 1), (b"a", 3), (b"z", 2), (b"b", 99), (b"y", 98), (b"c", 3)])
    counts = report_figures.reach(train, measured)
    assert counts == {"purchases": 6, "repeat_train_purchase": 2, "unknown_user": 2,
                      "unknown_product": 2, "hittable": 1}
    text = report_figures.reach_text(counts, "eval")
    assert text.startswith("5 of the 6 eval purchases (83.3%) count as misses whatever the model, "
                           "so no recall can exceed 0.1667: 2 repeat a purchase")
    assert report_figures.reach_text(report_figures.reach(train, _purchases([(b"a", 3)])), "eval") == (
        "The one eval purchase can be hit.")
    assert report_figures.reach_text(report_figures.reach(train, _purchases([(b"a", 3), (b"c", 1)])), "eval") == (
        "Every one of the 2 eval purchases can be hit.")
    # the repeats the gate left out before (components/evaluator.py) are said first
    assert report_figures.reach_text(report_figures.reach(train, _purchases([(b"a", 3)])), "eval", left_out=4) == (
        "4 eval purchases repeat a purchase the candidate or the served model trained on, and the gate leaves "
        "them out for both (each model leaves out what the user bought, so only the other could hit one). "
        "The other one can be hit.")
    assert report_figures.reach_text(report_figures.reach(train, _purchases([(b"a", 3)])), "eval", left_out=4,
                                     served=False).startswith(
        "4 eval purchases repeat a purchase the candidate trained on, and the gate leaves them out (its "
        "recommendations leave out what the user bought). ")
    # one of a kind reads as one (found by exploratory testing: "1 are by users ...")
    one = report_figures.reach_text(report_figures.reach(train, _purchases([(b"a", 1), (b"z", 2), (b"b", 3)])),
                                    "eval", left_out=1)
    assert one.startswith("1 eval purchase repeats a purchase the candidate or the served model trained on, and "
                          "the gate leaves it out for both")
    assert ("1 repeats a purchase its user made in the train data (recommendations leave those out), "
            "1 is by a user the train data does not hold (the gate ranks") in one


def test_the_console_says_reach_in_a_line_of_few_words():
    """The console's [report] line: reach_text's facts, short (found by exploratory testing: the
    sentence made a line of 384 columns)."""
    train = _purchases([(b"a", 1), (b"a", 2), (b"b", 1), (b"c", 3)])
    counts = report_figures.reach(train, _purchases([(b"a", 1), (b"a", 3), (b"z", 2), (b"b", 99), (b"y", 98),
                                                     (b"c", 3)]))
    line = report_figures.reach_line({**counts, "purchases": 35_567, "hittable": 30_000}, "eval", left_out=1_234)
    assert line == ("eval: 1,234 repeats of a pair the candidate or the served model trained on, left out by the "
                    "gate; 5,567 of the other 35,567 (15.7%) miss whatever the model (recall <= 0.8435): 2 repeat a "
                    "train purchase, 2 by unknown users, 2 of unknown products")
    assert len("[report] " + line) < len("[report] " + report_figures.reach_text(counts, "eval", left_out=1_234)) / 2
    assert report_figures.reach_line(counts, "eval") == (
        "eval: 5 of the 6 (83.3%) miss whatever the model (recall <= 0.1667): 2 repeat a train purchase, "
        "2 by unknown users, 2 of unknown products")
    one = report_figures.reach(train, _purchases([(b"a", 3)]))
    assert report_figures.reach_line(one, "eval", left_out=1, served=False) == (
        "eval: 1 repeat of a pair the candidate trained on, left out by the gate; every other one can be hit")
    assert report_figures.reach_line(one, "eval") == "eval: all 1 can be hit"


def test_what_reach_calls_unhittable_is_what_the_gate_ranks_last(tmp_path, curated_schema):
    """Through a real serving model's `evaluate` signature (the gate's ranks): a purchase reach
    counts as lost ranks last, every other one ranks above the last place."""
    from models import testing
    from models.examples import purchase_examples

    exported = testing.build(str(tmp_path), curated_schema)
    train = _purchases([(r[features.USER_KEY][0], r[features.PRODUCT_KEY][0]) for r in exported.rows])
    bought = set(zip(train["users"].tolist(), train["products"].tolist()))
    fresh = [(u.encode(), p) for u in testing.USERS[:10] for p in testing.PRODUCTS
             if (u.encode(), p) not in bought][:10]
    measured = _purchases(list(zip(train["users"][:5], train["products"][:5])) + fresh
                          + [(b"nobody", testing.PRODUCTS[0]), (train["users"][0], testing.UNKNOWN_PRODUCT)])
    counts = report_figures.reach(train, measured)
    assert counts["hittable"] == 10 and counts["purchases"] == 17
    signatures = tf.saved_model.load(exported.export_dir).signatures
    ranks = ranking_metrics.evaluate_ranks(signatures, purchase_examples(measured["users"], measured["products"]))
    last = ranks[:, 0] >= exported.recommender.num_items
    assert last.sum() == counts["purchases"] - counts["hittable"]
    assert not last[5:15].any()


def test_a_history_row_says_which_gated_metrics_are_margins_over_popularity():
    rows = [{"metric": "recall_at_10", "kind": "value", "threshold": ">= 0.03"},
            {"metric": "recall_at_10_over_popularity", "kind": "margin", "threshold": ">= +10.0%"},
            {"metric": "mrr", "kind": "value", "threshold": "not gated"}]
    report = {"created": "now", "gate": {"rows": rows, "blessed": True}, "push": {"pushed": True, "version": "7"},
              "evaluation": {"models": {"candidate": {"metrics": {"recall_at_10": 0.04, "mrr": 0.02,
                                                                   "recall_at_10_over_popularity": 1.02}}}}}
    row = report_figures.history_row(report)
    assert row["metrics"] == {"recall_at_10": 0.04, "recall_at_10_over_popularity": 1.02}
    assert row["margins"] == ["recall_at_10_over_popularity"]
    assert row["gate_rules"] == {"recall_at_10": ">= 0.03", "recall_at_10_over_popularity": ">= +10.0%"}


def test_a_rerun_that_found_its_model_already_served_is_counted_not_a_row():
    """Found by exploratory testing: a second `make run` with nothing changed (everything up to
    the Evaluator from the cache, its Pusher finding the model served) was a row of its own in the
    runs so far, with the figures of the run that pushed the model."""
    def row(created, version, already_served=False, pushed=True, recall=0.04, rules=">= 0.03"):
        return {"created": created, "version": version, "pushed": pushed, "blessed": True,
                "already_served": already_served, "metrics": {"recall_at_10": recall},
                "gate_rules": {"recall_at_10": rules}}

    first, again, later = row("d1", "17"), row("d2", "17", True), row("d3", "17", True, recall=0.04 + 1e-9)
    shown = report_figures.runs_so_far([first, again, later])
    assert shown == [{**first, "reruns": ["d2", "d3"], "rerun_is_this_run": True}]
    assert report_figures.runs_so_far([first, again, row("d3", "18")])[0]["reruns"] == ["d2"]
    assert "rerun_is_this_run" not in report_figures.runs_so_far([first, again, row("d3", "18")])[0]
    # a rerun that says something is a row: another model before it (a rollback served 17 again),
    # other figures (another eval sample), other gate rules, or a refusal
    assert len(report_figures.runs_so_far([first, row("d2", "18"), row("d3", "17", True)])) == 3
    assert len(report_figures.runs_so_far([first, row("d2", "17", True, recall=0.05)])) == 2
    assert len(report_figures.runs_so_far([first, row("d2", "17", True, rules=">= 0.035")])) == 2
    assert len(report_figures.runs_so_far([first, row("d2", "", pushed=False)])) == 2
    assert report_figures.runs_so_far([again]) == [again]  # nothing before it: its own row


def test_a_row_with_a_null_id_is_no_repeated_pair():
    """Found by exploratory testing: a null user read as "1 purchase repeats a pair, one pair 1
    times" (pandas' value_counts drops nulls)."""
    users = np.array([None, b"a", b"a", b"b"], dtype=object)
    products = np.array([1, 1, 1, 2])
    assert report_figures.repeated_pairs(users, products) == (1, 2)
    assert report_figures.repeated_pairs(users[[0, 1, 3]], products[[0, 1, 3]]) == (0, 1)
