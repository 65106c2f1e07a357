"""The gate's table: a gated metric reads `ok` only with a value that passed."""

from components import evaluator

BOUNDS = {"recall_at_10": 0.03, "sampled_accuracy": 0.15}


def _rows(values, failed=()):
    config = evaluator.eval_config(BOUNDS, 0.01)
    rows = evaluator.gate_rows(config, values, {name: "below" for name in failed})
    return {row["metric"]: row for row in rows}


def test_a_gated_metric_without_a_value_is_never_ok():
    rows = _rows({evaluator.CANDIDATE: {}, evaluator.BASELINE: {}})  # e.g. an empty eval split
    assert rows["recall_at_10"]["result"] == evaluator.NO_VALUE
    assert rows["sampled_accuracy"]["result"] == evaluator.NO_VALUE
    assert rows["mrr"]["result"] == "-"  # not gated


def test_passed_and_failed_metrics():
    values = {evaluator.CANDIDATE: {"recall_at_10": 0.04, "sampled_accuracy": 0.1, "mrr": 0.02}}
    rows = _rows(values, failed=["sampled_accuracy"])
    assert rows["recall_at_10"]["result"] == "ok" and rows["recall_at_10"]["candidate"] == 0.04
    assert rows["recall_at_10"]["baseline"] is None
    assert rows["recall_at_10"]["threshold"] == ">= 0.03, drop <= 1.0% vs served"
    assert rows["sampled_accuracy"]["result"] == "FAILED"
    assert (rows["mrr"]["result"], rows["mrr"]["threshold"]) == ("-", "not gated")


def test_the_evaluator_reads_fixed_size_batches_and_restores_the_flag():
    from tfx_bsl.coders import batch_util

    adaptive = batch_util.GetBatchElementsKwargs(None)
    assert adaptive["min_batch_size"] != adaptive["max_batch_size"]  # Beam tunes the size
    with evaluator.fixed_size_input_batches():
        fixed = batch_util.GetBatchElementsKwargs(None)
        assert fixed["min_batch_size"] == fixed["max_batch_size"]  # one size, by bytes
    assert batch_util.GetBatchElementsKwargs(None) == adaptive


def test_the_recall_curve_is_computed_but_is_not_a_gate_row():
    config = evaluator.eval_config(BOUNDS, 0.01)
    assert "RecallCurve" in [m.class_name for m in config.metrics_specs[0].metrics]
    rows = _rows({evaluator.CANDIDATE: {"recall_at_10": 0.04}})
    assert evaluator.RECALL_CURVE not in rows and len(rows) == len(evaluator.metric_configs())


def test_bounds_outside_0_1_are_refused_before_the_run():
    """--gate-bound recall_at_10=1.5 (or nan) used to train a model and then refuse it (exit 3)."""
    import math

    import pytest

    for bound in (1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match=f"the bound of recall_at_10 must be between 0 and 1.*got {bound}"):
            evaluator.eval_config({"recall_at_10": bound}, 0.01)
    with pytest.raises(ValueError, match="max_relative_drop must be between 0 and 1"):
        evaluator.eval_config(BOUNDS, 5)
    evaluator.eval_config({"recall_at_10": 0.0, "mrr": 1.0}, 0.0)  # the ends are bounds too
