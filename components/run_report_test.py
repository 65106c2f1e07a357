"""The run report's figures (the same metrics as the Evaluator's) and its page (self-contained)."""

import re

import numpy as np
import pytest

from components import run_report
from models import eval_metrics


def test_metrics_from_ranks_are_the_evaluators_metrics():
    rng = np.random.default_rng(0)
    ranks = np.stack([rng.integers(0, 300, 500), rng.integers(0, 3, 500)], axis=1).astype(np.float32)
    ours = run_report.metrics_from_ranks(ranks)
    for name, kind, k in [("recall_at_10", "recall", 10), ("recall_at_100", "recall", 100),
                          ("ndcg_at_10", "ndcg", 10), ("mrr", "mrr", 0),
                          ("sampled_accuracy", "sampled_accuracy", 0)]:
        metric = eval_metrics.RankingMetric(kind, k)
        metric.update_state(np.zeros(len(ranks)), ranks)
        assert ours[name] == pytest.approx(float(metric.result()), rel=1e-5), name


def test_recall_curve():
    ranks = np.array([[0, 0], [4, 0], [99, 0], [500, 0]], np.float32)
    curve = run_report.recall_curve(ranks)
    assert len(curve) == 100
    assert curve[0] == 0.25 and curve[4] == 0.5 and curve[98] == 0.5 and curve[99] == 0.75


def test_split_statistics():
    stats = run_report.split_statistics({
        "users": np.array([b"a", b"a", b"b", b"c", b"c", b"c"], dtype=object),
        "products": np.array([1, 2, 1, 1, 2, 3])})
    assert (stats["purchases"], stats["users"], stats["products"]) == (6, 3, 3)
    assert stats["purchases_per_user"] == {"mean": 2.0, "median": 2.0, "p90": pytest.approx(2.8), "max": 3}
    assert stats["users_by_purchases"] == [0, 1, 1, 1]
    assert stats["product_counts_desc"] == [3, 2, 1]


def _report():
    split = run_report.split_statistics({"users": np.array([b"a", b"b"], dtype=object),
                                         "products": np.array([7, 8])})
    figures = {"metrics": {"recall_at_10": 0.5}, "recall_at_k": [0.5] * 100, "coverage_at_10": 0.1}
    return {
        "pipeline": "p", "created": "now", "run": "r",
        "data": {"train": split, "eval": split},
        "validation": {"anomalies": ["split 'eval', feature 'x': <bad> & worse"], "catalog": None},
        "training": {"history": [{"epoch": 1, "loss": 2.5, "examples_per_sec": 10.0, "seconds": 1.0}],
                     "model_config": {"epochs": 1}},
        "evaluation": {"protocol": "p", "note": "n", "models": {"candidate": figures, "most popular": figures}},
        "gate": {"blessed": False, "verdict": "NOT BLESSED", "rows": [
            {"metric": "recall_at_10", "threshold": ">= 0.6", "result": "FAILED"}]},
        "push": {"text": "Not pushed."},
        "examples": [{"product": 7, "purchases": 1, "similar": [8], "scores": [0.5]}],
    }


def test_the_page_is_self_contained_and_escapes_text():
    report = _report()
    page = run_report.render_html(report, run_report.plots(report))
    assert page.count('src="data:image/png;base64,') == 3
    assert not re.search(r"https?://|<script|<link", page)
    assert "&lt;bad&gt; &amp; worse" in page  # text from the data is escaped
    assert "2.5000" in page and "FAILED" in page
