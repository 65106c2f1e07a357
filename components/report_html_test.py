"""The run report's page: self-contained, text escaped, every section drawn from the figures."""

import re

import numpy as np

from components import report_figures, report_html, report_plots


def _report(splits=("train", "eval")):
    split = report_figures.split_statistics({"users": np.array([b"a", b"b"], dtype=object),
                                             "products": np.array([7, 8])})
    figures = {"metrics": {"recall_at_10": 0.5}, "recall_at_k": [0.5] * 100, "coverage_at_10": 0.1}
    return {
        "pipeline": "p", "created": "now", "run": "r",
        "data": {name: split for name in splits},
        "validation": {"anomalies": ["split 'eval', feature 'x': <bad> & worse"], "catalog": None},
        "training": {"history": [{"epoch": 1, "loss": 2.5, "examples_per_sec": 10.0, "seconds": 1.0},
                                 {"epoch": 2, "loss": 2.25, "examples_per_sec": 12.0, "seconds": 0.9}],
                     "model_config": {"epochs": 2}},
        "evaluation": {"protocol": "p", "note": "n", "models": {"candidate": figures, "most popular": figures}},
        "gate": {"blessed": False, "verdict": "NOT BLESSED", "rows": [
            {"metric": "recall_at_10", "threshold": ">= 0.6", "result": "FAILED"}]},
        "push": {"text": "Not pushed."},
        "examples": [{"product": 7, "purchases": 1, "similar": [8], "scores": [0.5]}],
    }


def test_the_page_is_self_contained_and_escapes_text():
    report = _report()
    page = report_html.render_html(report, report_plots.plots(report))
    assert page.count('src="data:image/png;base64,') == 3
    assert not re.search(r"https?://|<script|<link", page)
    assert "&lt;bad&gt; &amp; worse" in page  # text from the data is escaped
    assert "2.5000" in page and "FAILED" in page
    # similar products' cosines to 3 digits (found by exploratory testing: 0.998 and 0.999 read 1.00)
    assert "8 <span class='muted'>(0.500)</span>" in page
    # the gate's table: the metric, each model's value, the threshold and the result
    assert ("<tr><td><code>recall_at_10</code></td><td>0.5000</td><td>0.5000</td><td>&gt;= 0.6</td>"
            "<td><span class='bad'>FAILED</span></td></tr>") in page
    assert "<tr><td>eval</td><td>2</td><td>2</td><td>2</td><td>none</td><td>1.00 / 1 / 1</td>" in page


def test_columns_of_words_read_from_the_left_and_figures_from_the_right():
    rows = [["a", "0.0037", "&lt;= 0.006", "<span class='ok'>ok</span>", "33,009 vs 33,008 rows", "-", "+97.6%"],
            ["b", "-", "0.4 to 2.5", "<span class='bad'>OVER</span>", "", "1.82 / 1 / 11", "inf"]]
    assert report_html.text_columns(rows) == [4, 5]
    assert report_html.text_columns([["a", "1"]]) == [] and report_html.text_columns([]) == []
    assert "<table>" in report_html._table(["x", "n"], [["a", "1"]])
    assert "<table class='examples' data-text='3'>" in report_html._table(
        ["product", "n", "similar"], [["7", "1", "8 <span class='muted'>(0.500)</span>, 9"]], css="examples")


def test_the_data_table_counts_purchases_repeating_a_pair():
    """Found by exploratory testing: 6.6% of a generated train split repeated a (user, product) pair
    (one pair 716 times), and nothing said so."""
    report = _report()
    report["data"]["train"] = report_figures.split_statistics({
        "users": np.array([b"a", b"a", b"a", b"b", b"b", b"c"], dtype=object),
        "products": np.array([7, 7, 7, 7, 8, 8])})
    assert (report["data"]["train"]["repeated_pairs"], report["data"]["train"]["most_repeated_pair"]) == (2, 3)
    page = report_html.render_html(report, {})
    assert "<tr><td>train</td><td>6</td><td>3</td><td>2</td><td>2 (33.3%); one pair 3 times</td>" in page


def test_the_spans_section_shows_the_window_and_the_drift_figures():
    report = _report()
    report["spans"] = {"span": 3, "window_spans": "2,3", "eval_source": "standing", "drift": {
        "compared": True, "drifted": True, "accepted": "--accept-drift",
        "newest": {"name": "span-3", "rows": 1200}, "previous": {"name": "span-2", "rows": 1000},
        "measures": [{"name": "productId L-infinity distance", "value": 0.011, "limit": "<= 0.006", "over": True,
                      "detail": "<most different>"}]}}
    page = report_html.render_html(report, report_plots.plots(report))
    assert "Newest span 3; trained on span(s) 2,3; evaluated on the standing eval file." in page
    assert "span-3 (1,200 rows) against span-2 (1,000 rows): OVER the thresholds, accepted (--accept-drift)" in page
    assert ("<td>productId L-infinity distance</td><td>0.0110</td><td>&lt;= 0.006</td>"
            "<td><span class='bad'>OVER</span></td><td>&lt;most different&gt;</td>") in page
    # words read from the left (the result, the detail), figures from the right (found by a
    # reviewer of the replay's report: the wrapped details, right-aligned, read badly)
    assert "<table data-text='4 5'><tr><th>measure</th><th>value</th><th>threshold</th>" in page
    assert ('table[data-text~="5"] td:nth-child(5),table[data-text~="5"] th:nth-child(5){text-align:left}'
            in page)
    # a measure of a span with no rows is not measured: no value, no verdict
    report["spans"]["drift"]["measures"][0].update(value=None, over=False, detail="not measured: span-3 has no rows")
    assert ("<td>productId L-infinity distance</td><td>-</td><td>&lt;= 0.006</td><td>-</td>"
            "<td>not measured: span-3 has no rows</td>") in report_html.render_html(report, {})
    # found by exploratory testing: a late span accepted read "over the thresholds, accepted", its
    # measures all within their thresholds, and the lateness was not said
    report["spans"]["drift"]["measures"][0].update(value=0.001, over=False)
    report["spans"]["drift"]["late_spans"] = [{"span": 1, "name": "span-1", "served_version": 17,
                                                 "served_spans": [0, 2], "served_names": ""}]
    page = report_html.render_html(report, {})
    assert "span-2 (1,000 rows): within the thresholds, span-1 arrived late, accepted (--accept-drift)." in page
    assert "<p>span-1 arrived late: the served model (version 17) trained on spans 0, 2, later than it" in page
    report["spans"]["drift"] = {"compared": False, "reason": "one span only: nothing to compare"}
    assert "Drift gate: one span only: nothing to compare." in report_html.render_html(report, {})
    report["spans"].update(span=20456, window_spans="20455,20456", window_names=["2026-01-02", "2026-01-03"])
    assert ("Newest span 2026-01-03; trained on span(s) 2026-01-02, 2026-01-03; evaluated on"
            in report_html.render_html(report, {}))  # dated folders: their dates, not day numbers
    report["spans"].update(flat=True, span=0, window_spans="0")  # TFX's span 0: no span to name
    assert ("Trained on the flat data (one train file, no span folders); evaluated on the standing eval file."
            in report_html.render_html(report, {}))
    del report["spans"]  # a report of before spans
    assert "Spans and drift" not in report_html.render_html(report, {})


def test_the_loss_is_plotted_over_whole_epochs_and_not_for_one_epoch():
    """Found by a reviewer of the replay's report: a warm start's one epoch was a dot in an empty
    frame, its x ticks 0.96-1.04."""
    report = _report()
    report["training"]["history"] = [dict(report["training"]["history"][0], epoch=n) for n in (1, 2)]
    assert "training" in report_plots.plots(report)
    figure = report_plots._training_figure(report["training"]["history"])
    ticks = [t for t in figure.axes[0].get_xticks() if 1 <= t <= 2]
    assert ticks == [1.0, 2.0], figure.axes[0].get_xticks()  # not 1.2, 1.4, ...
    report["training"]["history"] = report["training"]["history"][:1]
    images = report_plots.plots(report)
    assert "training" not in images
    page = report_html.render_html(report, images)
    assert "<tr><td>1</td><td>2.5000</td>" in page  # the epoch table says it
    assert page.count('src="data:image/png;base64,') == 2


def test_a_run_with_one_split_gets_its_page():
    report = _report(splits=("eval",))
    page = report_html.render_html(report, report_plots.plots(report))
    assert "<td>eval</td>" in page and "<td>train</td>" not in page


def test_a_curve_of_another_length_is_plotted_as_it_is():
    report = _report()
    report["evaluation"]["models"]["candidate"]["recall_at_k"] = [0.1, 0.2, 0.3]
    assert set(report_plots.plots(report)) == {"data", "training", "recall"}


def test_the_gate_table_shows_the_margin_over_popularity():
    report = _report()
    report["gate"]["rows"].append({"metric": "recall_at_10_over_popularity", "kind": "margin", "of": "recall_at_10",
                                   "candidate": -0.25, "baseline": None, "popularity": None,
                                   "threshold": ">= +10.0% over popularity", "result": "FAILED"})
    page = report_html.render_html(report, {})
    assert ("<tr><td>&nbsp;&nbsp;recall_at_10 vs most popular</td><td>-25.0%</td><td>-</td>"
            "<td>&gt;= +10.0% over popularity</td><td><span class='bad'>FAILED</span></td></tr>") in page


def test_the_gate_table_shows_the_change_vs_served_with_its_interval():
    report = _report()
    report["gate"]["rows"][0]["vs_served"] = {"change": -0.011, "low": -0.025, "high": 0.002, "allowed": 0.01,
                                              "result": "ok (within noise)"}
    page = report_html.render_html(report, {})
    assert ("<tr><td>&nbsp;&nbsp;change vs served</td><td>-1.1%</td><td>-</td>"
            "<td>95% interval -2.5% to +0.2%</td><td><span class='ok'>ok (within noise)</span></td></tr>") in page


def test_the_latest_monitoring_figures_are_linked_when_there_are_any():
    report = _report()
    assert "Requests served" not in report_html.render_html(report, {})
    report["monitoring"] = {
        "created": "2026-12-05 10:00 UTC", "html": "/o/monitoring/monitor-1.html", "requests": 1234,
        "first": "a", "last": "b", "model": "/o/serving_model/recommender/7 (version 7)",
        "latency_ms": {"serving_default": {"p50": 3.0, "p99": 9.5}},
        "checks": [{"name": "unknown_users_share", "crossed": True, "text": "unknown users: 30.0% <x>"}]}
    page = report_html.render_html(report, {})
    assert "<h2>Requests served</h2>" in page and "1,234 requests" in page
    assert "<a href='file:///o/monitoring/monitor-1.html'>" in page
    assert "A threshold is crossed: a signal to retrain." in page and "30.0% &lt;x&gt; (crossed)" in page
    assert "<td><code>serving_default</code></td><td>3.0</td><td>9.5</td>" in page
    assert "is served now" not in page  # the report does not say which version it judged


def test_a_monitoring_report_about_another_version_than_the_served_one_is_said():
    """Found by exploratory testing: the run report linked a retrain signal about a version since
    rolled back, as if it were about the served model."""
    report = _report()
    report["monitoring"] = {
        "created": "2026-12-05 10:00 UTC", "html": "/o/monitoring/monitor-1.html", "requests": 3,
        "first": "a", "last": "b", "model": "/o/serving_model/recommender/7 (version 7)", "version": 7,
        "latency_ms": {}, "checks": []}
    report["served_version"] = "9"
    page = report_html.render_html(report, {})
    assert ("That report judged version 7; version 9 is served now (pushed since, or a rollback): its figures "
            "are not about the served model.") in page
    report["served_version"] = "7"
    assert "is served now" not in report_html.render_html(report, {})


def test_a_local_runs_time_and_memory_per_component_are_a_table():
    report = _report()
    page = report_html.render_html(report, report_plots.plots(report))
    assert "Time and memory per component" not in page  # no figures (Vertex): no section
    report["components"] = {"measured": "peak <RSS>", "components": [
        {"name": "Trainer", "state": "ran", "seconds": 12.34, "peak_bytes": 3 * 2**30 // 2},
        {"name": "schema_importer", "state": "done", "seconds": 0.1, "peak_bytes": 0}]}
    page = report_html.render_html(report, report_plots.plots(report))
    assert "<tr><td>Trainer</td><td>ran</td><td>12.3</td><td>1.50</td></tr>" in page
    assert "<tr><td>schema_importer</td><td>done</td><td>0.1</td><td>-</td></tr>" in page
    assert "peak &lt;RSS&gt;" in page


def test_the_runs_so_far_are_a_table_and_a_plot():
    report = _report()
    earlier = _report()
    earlier["training"]["facts"] = {"data": {"span": 1, "window_spans": [1]},
                                    "start": {"kind": "cold", "reason": "no model is served yet"}}
    earlier["gate"]["blessed"], earlier["push"] = True, {"pushed": True, "version": "17"}
    report["training"]["facts"] = {"data": {"span": 2, "window_spans": [1, 2]},
                                   "start": {"kind": "warm", "from_version": "17", "carried_products": 5,
                                             "new_products": 1, "dropped_products": 2, "new_purchases": 40}}
    report["push"]["pushed"], report["push"]["version"] = False, ""
    report["history"] = [report_figures.history_row(earlier), report_figures.history_row(report)]
    assert report["history"][1]["metrics"] == {"recall_at_10": 0.5}  # the gated metrics only
    images = report_plots.plots(report)
    assert "history" in images
    page = report_html.render_html(report, images)
    assert "<h2>Runs so far</h2>" in page and page.count('src="data:image/png;base64,') == 4
    assert "<td>span 1</td><td>now</td><td>cold</td><td>0.5000</td><td>pushed 17</td>" in page
    assert "<td>span 2 (1-2)</td><td>now</td><td>warm from 17</td><td>0.5000</td><td>refused</td>" in page
    assert ("Warm start from version 17: 5 products carried over by product id, 1 new, 2 dropped. "
            "Trained on the 40 purchases new to it.") in page
    # found by exploratory testing: the purchases it rehearsed were left out (the card and console say them)
    report["training"]["facts"]["start"]["rehearsed_purchases"] = 20
    assert "Trained on the 40 purchases new to it and 20 it had seen (rehearsed)." in report_html.render_html(
        report, {})
    # found by a reviewer of the replay's report: the configuration said `"epochs": 3` above one
    # epoch; a warm start trains its own passes at its own learning rate
    report["training"]["model_config"] = {"epochs": 3, "learning_rate": 0.0075, "warm_start_epochs": 1.0,
                                          "warm_start_learning_rate": 0.02}
    assert ("Trained on the 40 purchases new to it and 20 it had seen (rehearsed), 1 pass at learning rate 0.02 "
            "(the configuration&#x27;s warm_start_epochs and warm_start_learning_rate; epochs (3) and "
            "learning_rate (0.0075) are a cold start&#x27;s).") in report_html.render_html(report, {})
    report["training"]["model_config"]["warm_start_epochs"] = 0.5
    assert "(rehearsed), 0.5 passes at learning rate 0.02" in report_html.render_html(report, {})
    # found with generated spans (a smaller --span-window): nothing new to the served model, no step taken;
    # the report said "Trained on the 0 purchases new to it, 1 pass at learning rate 0.02"
    report["training"]["facts"]["start"].update(new_purchases=0, rehearsed_purchases=0)
    page = report_html.render_html(report, {})
    assert "Trained on the 0" not in page
    assert ("2 dropped. None of the window&#x27;s purchases was new to it: no training step, the tables as "
            "carried over.") in page
    report["training"]["facts"]["start"].update(new_purchases=40, rehearsed_purchases=20)
    del report["training"]["facts"]["start"]["new_purchases"]  # a model from before they were counted
    assert "dropped. Trained 0.5 passes at learning rate 0.02 (" in report_html.render_html(report, {})
    # its place in the chain of warm starts, and what the next training will do (warm_start_max_chain)
    report["training"]["facts"]["start"]["chain"] = 1
    for most in (0, 2):  # 0: no bound
        report["training"]["model_config"]["warm_start_max_chain"] = most
        assert "Warm start 1 in a row since the last cold training.<" in report_html.render_html(report, {})
    report["training"]["model_config"]["warm_start_max_chain"] = 1
    assert ("Warm start 1 in a row since the last cold training (warm_start_max_chain 1): the next training "
            "with new purchases starts cold.") in report_html.render_html(report, {})
    # a cold start says nothing of them
    report["training"]["facts"]["start"] = {"kind": "cold", "reason": "no model is served yet"}
    page = report_html.render_html(report, {})
    assert "Cold start: no model is served yet." in page and "learning rate" not in page


def test_the_runs_so_far_show_margins_over_popularity_as_the_gate_does():
    """Found by exploratory testing: the table showed the margins as raw fractions (0.9758)."""
    row = {"span": 3, "window_spans": [1, 3], "created": "now", "start": "cold", "from_version": None,
           "metrics": {"recall_at_10": 0.0402, "recall_at_10_over_popularity": 0.9758},
           "margins": ["recall_at_10_over_popularity"],
           "pushed": True, "blessed": True, "version": "17"}
    page = "".join(report_html._history_section({"history": [row]}, {}))
    assert "<td>span 3 (1, 3)</td><td>now</td><td>cold</td><td>0.0402</td><td>+97.6%</td><td>pushed 17</td>" in page
    assert "<th>recall_at_10 over popularity</th>" in page
    # the plot: the margins (shares, in %) on a panel of their own, not on the metrics' axis
    from components import report_plots

    figure = report_plots._history_figure([row, {**row, "pushed": False}])
    metrics, margins = figure.axes
    assert [line.get_label() for line in metrics.get_lines() if not line.get_label().startswith("_")] == \
        ["recall_at_10"]
    assert margins.get_title() == "recall_at_10\nvs most popular (%)" and margins.get_lines()[0].get_ydata()[0] == 97.58
    # the gate's least margin as a rule, where the report keeps it
    figure = report_plots._history_figure([row, {**row, "margin_bounds": {"recall_at_10_over_popularity": 0.1}}])
    rules = [line for line in figure.axes[1].get_lines() if "least margin" in line.get_label()]
    assert [(line.get_label(), list(line.get_ydata())) for line in rules] == [
        ("the gate's least margin (+10%)", [10.0, 10.0])]


def test_the_runs_so_far_draw_each_gated_metric_on_its_own_axis_side_by_side():
    """Found by a reviewer of the replay's report: ndcg@10 and recall@10 (0.01-0.03) lay flat
    under sampled accuracy (0.08-0.14) on one axis, and the title said "x refused" with no run
    refused."""
    def run(span, scale, pushed=True, blessed=True):
        return {"span": span, "window_spans": [span], "created": "now", "start": "cold", "from_version": None,
                "metrics": {"ndcg_at_10": 0.01 * scale, "recall_at_10": 0.02 * scale,
                            "sampled_accuracy": 0.1 * scale},
                "margins": [], "pushed": pushed, "blessed": blessed, "version": "17"}

    figure = report_plots._history_figure([run(1, 1.0), run(2, 1.2), run(3, 1.4)])
    panels = figure.axes
    assert [ax.get_title() for ax in panels] == ["ndcg_at_10", "recall_at_10", "sampled_accuracy"]
    assert len({round(ax.get_position().y0, 3) for ax in panels}) == 1  # side by side
    low, high = panels[1].get_ylim()  # recall@10's own axis: its values fill it
    assert 0.018 < low < 0.02 and 0.028 < high < 0.03
    assert figure.get_size_inches()[0] <= 8.5  # fits the page, about 1,000 px at 110 dpi
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["pushed"]  # no run refused: no "x refused"
    figure = report_plots._history_figure([run(1, 1.0), run(2, 1.2, pushed=False, blessed=False),
                                           run(3, 1.4, pushed=False)])
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["pushed", "blessed, not pushed", "refused"]
    crosses = [line for line in figure.axes[0].get_lines() if line.get_marker() == "x"]
    assert [list(line.get_xdata()) for line in crosses] == [[1]]
    # many runs: a panel names a few of them, the newest among them
    figure = report_plots._history_figure([run(n, 1.0) for n in range(1, 21)])
    names = [t.get_text() for t in figure.axes[0].get_xticklabels() if t.get_text()]
    assert len(names) <= report_plots.HISTORY_LABELS and names[-1] == "span 20"
    assert len(figure.axes) == 3


def test_a_run_that_found_its_model_already_served_is_not_said_to_have_pushed_it():
    """Found following the docs: a rerun that pushed nothing read "pushed 17", as the run that did."""
    row = {"span": 1, "window_spans": [1], "created": "now", "start": "cold", "from_version": None,
           "metrics": {"recall_at_10": 0.04}, "margins": [], "pushed": True, "already_served": True,
           "blessed": True, "version": "17"}
    page = "".join(report_html._history_section({"history": [row]}, {}))
    assert "<td>0.0400</td><td>already served 17</td>" in page
    # the reruns a row counts (report_figures.runs_so_far); this run among them: said above the table
    pushed = {**row, "already_served": False, "reruns": ["later"]}
    page = "".join(report_html._history_section({"history": [pushed]}, {}))
    assert "<td>0.0400</td><td>pushed 17 (+1 rerun: already served)</td>" in page
    assert "the last is this one)" in page
    page = "".join(report_html._history_section(
        {"history": [{**pushed, "reruns": ["later", "now"], "rerun_is_this_run": True}]}, {}))
    assert "<td>pushed 17 (+2 reruns: already served)</td>" in page
    assert "this run found its model already served: it is counted in the last row)" in page


def test_the_runs_so_far_name_dated_spans_by_their_folders_and_flat_runs_by_their_place():
    """Found by exploratory testing: dated spans read as day numbers ("span 20456 (20455-20456)")
    and the flat layout as "span 0"."""
    def run(**spans):
        report = _report()
        report["training"]["facts"] = {"data": {"span": spans.pop("span"), "window_spans": spans.pop("window")},
                                       "start": {"kind": "cold"}}
        report["spans"], report["push"] = spans, {"pushed": False, "version": ""}
        return report_figures.history_row(report)

    history = [run(span=0, window=[0], flat=True),
               run(span=20456, window=[20455, 20456], window_names=["2026-01-02", "2026-01-03"]),
               run(span=20457, window=[20457], window_names=["2026-01-04"])]
    page = "".join(report_html._history_section({"history": history}, {}))
    assert "<td>run 1</td>" in page and "span 0" not in page
    assert "<td>2026-01-03 (2 spans)</td>" in page and "<td>2026-01-04</td>" in page
    assert "20456" not in page


def test_the_runs_so_far_name_the_runs_judged_by_other_gate_rules():
    """Found by exploratory testing: a run pushed under `--gate-bound recall_at_10=0.02` sat beside
    a refused one with the same metrics, and nothing said why."""
    def run(version, bound, blessed):
        return {"span": 1, "window_spans": [1], "created": "now", "start": "cold", "from_version": None,
                "metrics": {"recall_at_10": 0.025}, "margins": [], "pushed": blessed, "blessed": blessed,
                "version": version, "gate_rules": {"recall_at_10": f">= {bound}, drop <= 1.0% vs served"}}

    same = "".join(report_html._history_section({"history": [run("", 0.03, False), run("", 0.03, False)]}, {}))
    assert "gate rules" not in same  # one set of rules: no column
    page = "".join(report_html._history_section({"history": [run("", 0.03, False), run("8", 0.02, True),
                                                             run("", 0.03, False)]}, {}))
    assert "<th>gate rules</th>" in page
    assert "<td>refused</td><td>as this run</td>" in page
    assert "<td>pushed 8</td><td>recall_at_10 &gt;= 0.02, drop &lt;= 1.0% vs served</td>" in page
    assert page.count("<td>this run&#x27;s</td>") == 1
    # a popularity rule switched off reads as such; a report from before the rules were kept as "-"
    margin = {**run("", 0.03, False)["gate_rules"], "recall_at_10_over_popularity": ">= +10.0% over popularity"}
    old = run("", 0.03, False)
    del old["gate_rules"]
    page = "".join(report_html._history_section(
        {"history": [old, {**run("", 0.03, False), "gate_rules": margin}, run("", 0.03, False)]}, {}))
    assert "<td>-</td>" in page and "<td>recall_at_10 over popularity &gt;= +10.0% over popularity</td>" in page
    page = "".join(report_html._history_section(
        {"history": [run("", 0.03, False), {**run("", 0.03, False), "gate_rules": margin}]}, {}))
    assert "<td>recall_at_10 over popularity not gated</td>" in page


def test_a_run_with_nothing_served_is_not_judged_by_other_gate_rules():
    """Found by exploratory testing: every report after the first run of an output directory had
    a "gate rules" column saying the first run was judged by other rules (`--gate-bound`,
    `--gate-popularity-margin`, never given): nothing was served then, so its rules lacked the
    "drop vs served" part."""
    def run(version, rules):
        return {"span": 1, "window_spans": [1], "created": "now", "start": "cold", "from_version": None,
                "metrics": {"recall_at_10": 0.025}, "margins": [], "pushed": True, "blessed": True,
                "version": version, "gate_rules": rules}

    first = {"recall_at_10": ">= 0.03", "recall_at_10_over_popularity": ">= +10.0% over popularity"}
    later = {**first, "recall_at_10": ">= 0.03, drop <= 1.0% vs served"}
    page = "".join(report_html._history_section({"history": [run("1", first), run("2", later)]}, {}))
    assert "gate rules" not in page
    # another bound on the first run is still named, without the served part it could not have
    page = "".join(report_html._history_section(
        {"history": [run("1", {**first, "recall_at_10": ">= 0.02"}), run("2", later)]}, {}))
    assert "<td>pushed 1</td><td>recall_at_10 &gt;= 0.02</td>" in page
    # and so is another drop allowed
    page = "".join(report_html._history_section(
        {"history": [run("1", {**first, "recall_at_10": ">= 0.03, drop <= 5.0% vs served"}), run("2", later)]}, {}))
    assert "<td>pushed 1</td><td>recall_at_10 &gt;= 0.03, drop &lt;= 5.0% vs served</td>" in page
