"""The run report's page: one self-contained HTML file from the report's figures
(components/report_figures.py) and plots (components/report_plots.py). Styles inline, plots as
base64 PNG, every text from the data escaped: it opens from disk with no network."""

from __future__ import annotations

import html
import json
import re
from typing import Any, Dict, List, Optional, Sequence

from components import drift as drift_gate
from components import evaluator as evaluator_lib

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1050px;
color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em} table{border-collapse:collapse;margin:.6em 0} td,th{padding:.25em .7em;
border-bottom:1px solid #eee;text-align:right} th{background:#f6f6f6} td:first-child,th:first-child
{text-align:left} .ok{color:#17692b;font-weight:600} .bad{color:#b00020;font-weight:600}
.verdict{font-size:1.1em;padding:.6em 1em;border-radius:6px;margin:.8em 0}
.blessed{background:#e6f4ea} .refused{background:#fde7e9} .muted{color:#777} img{max-width:100%}
code{background:#f3f3f3;padding:0 .25em} table.examples td:last-child{text-align:left}
""" + "".join(  # a column of words reads from the left (_table's data-text), numbers line up on the right
    f'table[data-text~="{n}"] td:nth-child({n}),table[data-text~="{n}"] th:nth-child({n}){{text-align:left}}\n'
    for n in range(2, 21))

# a cell of figures: numbers (1,234, 0.0037, +97.6%, inf), maybe compared (<= 0.006) or in a range
# or a list (0.4 to 2.5, 3.27 / 2 / 22), or none ("-")
_NUMBER = r"[+-]?(?:\d[\d,]*(?:\.\d+)?%?|inf|nan)"
_FIGURES = re.compile(rf"(?:[<>]=?\s*)?{_NUMBER}(?:\s*(?:/|to)\s*{_NUMBER})*|-|")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _is_figures(cell: Any) -> bool:
    """Whether a cell (HTML) holds figures, not words (_FIGURES)."""
    return bool(_FIGURES.fullmatch(html.unescape(re.sub(r"<[^>]*>", "", str(cell))).strip()))


def text_columns(rows: Sequence[Sequence[Any]]) -> List[int]:
    """The columns (1-based, after the first) of words: any cell not figures (found by a reviewer
    of the replay's report: the drift table's wrapped details, right-aligned, read badly)."""
    width = max((len(row) for row in rows), default=0)
    return [n + 1 for n in range(1, width)
            if any(n < len(row) and not _is_figures(row[n]) for row in rows)]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "") -> str:
    """A table: the first column and the columns of words (text_columns) read from the left, the
    columns of figures from the right."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    text = " ".join(map(str, text_columns(rows)))
    return (f"<table{f' class={css!r}' if css else ''}{f' data-text={text!r}' if text else ''}>"
            f"<tr>{head}</tr>{body}</table>")


def _img(images: Dict[str, str], name: str, alt: str) -> str:
    if name not in images:
        return ""
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{images[name]}"></p>'


def _heading(report: Dict[str, Any]) -> List[str]:
    gate, push = report["gate"], report["push"]
    verdict_class = "blessed" if gate["blessed"] else "refused"
    return [f"<h1>{_e(report['pipeline'])}: run report</h1>",
            f"<p class='muted'>{_e(report['created'])} &middot; {_e(report['run'])}</p>",
            f"<div class='verdict {verdict_class}'><b>{_e(gate['verdict'])}</b><br>{_e(push['text'])}</div>"]


def _data_section(report: Dict[str, Any], images: Dict[str, str]) -> List[str]:
    rows = []
    for split, s in report["data"].items():
        pu, pp = s["purchases_per_user"], s["purchases_per_product"]
        repeated = s.get("repeated_pairs")  # reports from before it: not counted
        rows.append([_e(split), f"{s['purchases']:,}", f"{s['users']:,}", f"{s['products']:,}",
                     "-" if repeated is None else "none" if not repeated else
                     f"{repeated:,} ({repeated / s['purchases']:.1%}); one pair {s['most_repeated_pair']:,} times",
                     f"{pu['mean']:.2f} / {pu['median']:g} / {pu['max']:,}",
                     f"{pp['mean']:.2f} / {pp['median']:g} / {pp['max']:,}"])
    return ["<h2>Data</h2>",
            _table(["split", "purchases", "users", "products", "repeating a (user, product) pair",
                    "purchases per user (mean / median / max)",
                    "purchases per product (mean / median / max)"], rows),
            _img(images, "data", "purchases per user and per product")]


def _validation_section(report: Dict[str, Any]) -> List[str]:
    parts = ["<h2>Validation</h2>"]
    anomalies = report["validation"]["anomalies"]
    parts.append("<p>" + ("No anomalies: every split matches the curated schema "
                          "(<code>schema/schema.pbtxt</code>), the id patterns and the minimum "
                          "row counts." if not anomalies else
                          "Anomalies:</p><ul>" + "".join(f"<li>{_e(a)}</li>" for a in anomalies)
                          + "</ul><p>") + "</p>")
    catalog = report["validation"]["catalog"]
    if catalog:
        parts.append(_table(["catalog check", "products"], [
            ["catalog", f"{catalog['catalog_products']:,}"],
            ["train vocabulary", f"{catalog['vocabulary_products']:,}"],
            ["catalog products never bought (cannot be recommended)",
             f"{catalog['catalog_products_not_in_vocabulary']:,}"],
            ["bought but not in the catalog", f"{catalog['vocabulary_products_not_in_catalog']:,}"]]))
    return parts


def _spans_section(report: Dict[str, Any]) -> List[str]:
    spans = report.get("spans")
    if not spans:
        return []
    window = spans.get("window_spans") or "-"
    source = spans.get("eval_source") or "-"
    names = spans.get("window_names")
    read = ("Trained on the flat data (one train file, no span folders)" if spans.get("flat") else
            f"Newest span {_e(names[-1])}; trained on span(s) {_e(', '.join(names))}" if names else
            f"Newest span {_e(spans.get('span'))}; trained on span(s) {_e(window)}")
    parts = ["<h2>Spans and drift</h2>",
             f"<p>{read}; evaluated on "
             + ("the standing eval file" if source == "standing" else f"{_e(source)}'s eval file") + ".</p>"]
    drift = spans.get("drift")
    if not drift:
        return parts
    if not drift.get("compared"):
        return parts + [f"<p class='muted'>Drift gate: {_e(drift.get('reason', 'not compared'))}.</p>"]
    verdict = _e(drift_gate.verdict_text(drift))
    rows = [[_e(m["name"]), _num(m["value"]), _e(m["limit"]),
             f"<span class='{'bad' if m['over'] else 'ok'}'>{'OVER' if m['over'] else 'ok'}</span>"
             if m["value"] is not None or m["over"] else "-",  # not measured (a span with no rows)
             _e(m.get("detail", ""))] for m in drift["measures"]]
    late = [f"<p>{_e(line)}</p>" for line in drift_gate.late_lines(drift) + drift_gate.late_accepted_lines(drift)
            + drift_gate.stopped_lines(drift)]
    return parts + [f"<p>Drift gate: {_e(drift['newest']['name'])} ({drift['newest']['rows']:,} rows) against "
                    f"{_e(drift['previous']['name'])} ({drift['previous']['rows']:,} rows): {verdict}.</p>",
                    *late,
                    _table(["measure", "value", "threshold", "result", "detail"], rows)]


def _training_section(report: Dict[str, Any], images: Dict[str, str]) -> List[str]:
    parts = ["<h2>Training</h2>"]
    training = report["training"]
    if training["history"]:
        parts.append(_table(["epoch", "loss", "examples/s", "seconds"], [
            [h["epoch"], f"{h['loss']:.4f}", f"{h['examples_per_sec']:,.0f}", f"{h['seconds']:.1f}"]
            for h in training["history"]]))
        parts.append(_img(images, "training", "training loss per epoch"))
    else:
        parts.append("<p class='muted'>No training history in the model run.</p>")
    start = _start_text(training.get("facts") or {}, training.get("model_config") or {})
    if start:
        parts.append(f"<p>{_e(start)}</p>")
    if training["model_config"]:
        parts.append("<p class='muted'>model configuration: <code>" +
                     _e(json.dumps(training["model_config"], sort_keys=True)) + "</code></p>")
    return parts


def _evaluation_section(report: Dict[str, Any], images: Dict[str, str]) -> List[str]:
    gate, ev = report["gate"], report["evaluation"]
    labels = list(ev["models"])
    rows = []
    margin_of = {"candidate": "candidate", "last blessed": "baseline"}  # model label -> gate row field
    for row in gate["rows"]:
        name = row["metric"]
        if row.get("kind") == "margin":  # the models' relative margin over popularity on `of`
            cells = [f"&nbsp;&nbsp;{_e(row['of'])} vs most popular"]
            cells += [_percent(row.get(margin_of[label])) if label in margin_of else "-" for label in labels]
        else:
            cells = [f"<code>{_e(name)}</code>"]
            for label in labels:
                cells.append(_num(ev["models"][label]["metrics"].get(name)))
        result = row["result"]
        css = "ok" if result == "ok" else "bad" if result not in ("-", "") else "muted"
        cells += [_e(row["threshold"]), f"<span class='{css}'>{_e(result)}</span>"]
        rows.append(cells)
        vs = row.get("vs_served")
        if vs:  # the change against the served model and its 95% interval, as the gate judged it
            css = "ok" if vs["result"].startswith("ok") else "bad"
            rows.append(["&nbsp;&nbsp;change vs served", _percent(vs["change"])] + ["-"] * (len(labels) - 1)
                        + [_e(f"95% interval {vs['low']:+.1%} to {vs['high']:+.1%}"),
                           f"<span class='{css}'>{_e(vs['result'])}</span>"])
    rows.append(["catalog coverage@10"] +
                [_num(ev["models"][label]["coverage_at_10"]) for label in labels] + ["not gated", "-"])
    return ["<h2>Evaluation and gate</h2>",
            f"<p>{_e(ev['protocol'])}</p>",
            *([f"<p>{_e(ev['reach_text'])}</p>"] if ev.get("reach_text") else []),
            _table(["metric"] + labels + ["threshold", "gate"], rows),
            f"<p class='muted'>{_e(ev['note'])}</p>",
            _img(images, "recall", "recall@k curve")]


def _warm_passes(config: Dict[str, Any]) -> str:
    """What a warm start trains, from the run's model configuration: "1 pass at learning rate
    0.02 (warm_start_epochs, ...)"; "" when the configuration does not say (found by a reviewer of
    the replay's report: the configuration line read `"epochs": 3` above an epoch table of one
    row, and nothing said that a warm start trains its own passes)."""
    passes, rate = config.get("warm_start_epochs"), config.get("warm_start_learning_rate")
    if passes is None or rate is None:
        return ""
    cold = (f"; epochs ({config['epochs']:g}) and learning_rate ({config['learning_rate']:g}) are a cold start's"
            if config.get("epochs") is not None and config.get("learning_rate") is not None else "")
    return (f"{passes:g} pass{'' if passes == 1 else 'es'} at learning rate {rate:g} "
            f"(the configuration's warm_start_epochs and warm_start_learning_rate{cold})")


def _chain_text(start: Dict[str, Any], config: Dict[str, Any]) -> str:
    """A warm start's place in its chain and, when `warm_start_max_chain` ends the chain there,
    that the next training starts cold (models/warm_start.py `chain_ended`); "" for a model from
    before the chain was recorded."""
    chain, most = start.get("chain"), config.get("warm_start_max_chain")
    if not chain:  # none recorded, or a warm start with no step from a cold-trained model
        return ""
    text = f" Warm start {chain} in a row since the last cold training"
    if most and chain >= most:  # 0: no bound
        return text + (f" (warm_start_max_chain {most}): the next training with new purchases starts cold.")
    return text + "."


def _start_text(facts: Dict[str, Any], config: Optional[Dict[str, Any]] = None) -> str:
    """How training started, in words (the Trainer's training.json; `config`: the run's model
    configuration, which says how many passes a warm start trains, at which learning rate)."""
    start = facts.get("start") or {}
    if start.get("kind") == "warm":
        rehearsed = (f" and {start['rehearsed_purchases']:,} it had seen (rehearsed)"
                     if start.get("rehearsed_purchases") else "")
        passes = _warm_passes(config or {})
        if start.get("new_purchases") is None:
            trained = f" Trained {passes}." if passes else ""
        elif not start["new_purchases"]:  # found with generated spans: "Trained on the 0 purchases ..., 1 pass"
            trained = " None of the window's purchases was new to it: no training step, the tables as carried over."
        else:
            trained = f" Trained on the {start['new_purchases']:,} purchases new to it{rehearsed}" + \
                (f", {passes}." if passes else ".")
        return (f"Warm start from version {start.get('from_version')}: {start.get('carried_products', 0):,} "
                f"products carried over by product id, {start.get('new_products', 0):,} new, "
                f"{start.get('dropped_products', 0):,} dropped.{trained}{_chain_text(start, config or {})}")
    if start.get("kind") == "cold":
        return f"Cold start: {start.get('reason')}."
    return ""


def _run_verdict(row: Dict[str, Any]) -> str:
    """A run's verdict in the runs table (components/report_figures.py `history_row`), with the
    reruns it counts (`runs_so_far`): "pushed 17 (+2 reruns: already served)"."""
    if not row["pushed"]:
        return "blessed, not pushed" if row["blessed"] else "refused"
    verdict = ("already served " if row.get("already_served") else "pushed ") + str(row["version"])
    reruns = len(row.get("reruns") or [])
    return verdict + (f" (+{reruns} rerun{'s' if reruns > 1 else ''}: already served)" if reruns else "")


_SERVED_RULE = evaluator_lib.RULES_JOIN + evaluator_lib.SERVED_RULE  # "..., drop <= 1.0% vs served"


def _same_rule(rule: Optional[str], other: Optional[str]) -> bool:
    """Whether two runs' rules of a metric are the same rules. The "drop vs served" part is there
    only when a model was served (a first run has none, TFX drops it): that is no other rule
    (found by exploratory testing: the first run of an output directory read as judged by other
    rules, "--gate-bound, --gate-popularity-margin", in every later report, with no flag given)."""
    if rule == other or rule is None or other is None:
        return rule == other
    if (_SERVED_RULE in rule) == (_SERVED_RULE in other):
        return False
    return rule.split(_SERVED_RULE)[0] == other.split(_SERVED_RULE)[0]


def _other_rules(history: List[Dict[str, Any]]) -> List[str]:
    """For each run, the gate's rules by which it was judged where they were not the newest
    run's ("recall_at_10 >= 0.02"; "as this run" when all were the same); [] when every run was
    judged by the same rules, or the reports do not say (reports from before they were kept)."""
    newest = history[-1].get("gate_rules")

    def same(rules: Dict[str, str]) -> bool:
        return all(_same_rule(rules.get(name), newest.get(name)) for name in set(rules) | set(newest))

    if newest is None or all(row.get("gate_rules") is None or same(row["gate_rules"]) for row in history):
        return []

    def differences(rules: Optional[Dict[str, str]]) -> str:
        if rules is None:
            return "-"
        changed = [f"{name.replace('_over_popularity', ' over popularity')} {rules.get(name, 'not gated')}"
                   for name in sorted(set(rules) | set(newest)) if not _same_rule(rules.get(name), newest.get(name))]
        return "; ".join(changed) or "as this run"

    return [differences(row.get("gate_rules")) for row in history[:-1]] + ["this run's"]


def _history_section(report: Dict[str, Any], images: Dict[str, str]) -> List[str]:
    from components.report_plots import history_label

    history = report.get("history") or []
    if not history:
        return []
    names = sorted({name for row in history for name in row["metrics"]})
    rules = _other_rules(history)
    rows = [[_e(history_label(row, i)), _e(row["created"]),
             _e(f"{row['start']}" + (f" from {row['from_version']}" if row.get("from_version") else "")
                if row.get("start") else "-")]
            + [(_percent if name in row.get("margins", ()) else _num)(row["metrics"].get(name)) for name in names]
            + [_e(_run_verdict(row))] + ([_e(rule) for rule in rules[i:i + 1]] if rules else [])
            for i, row in enumerate(history)]
    return ["<h2>Runs so far</h2>",
            "<p>Each run's candidate on its eval data, the gated metrics as the gate judged them "
            "(the runs of this output directory whose model reached the gate; "
            + ("this run found its model already served: it is counted in the last row" if
               history[-1].get("rerun_is_this_run") else "the last is this one") + "). "
            "A rerun that found its model already served, judged as the run before it, is no row of its "
            "own: that row's verdict counts it. "
            "Runs stopped before the gate, by the data checks or the drift gate, judged no model and are "
            "not here: their console and log say why."
            + (" The gate's rules were not the same for every run (<code>--gate-bound</code>, "
               "<code>--gate-popularity-margin</code>): its column names the rules by which a run was "
               "judged where they were not this run's." if rules else "") + "</p>",
            _table(["run", "created", "start"] + [name.replace("_over_popularity", " over popularity")
                                                 for name in names] + ["verdict"]
                   + (["gate rules"] if rules else []), rows),
            _img(images, "history", "gated metrics of every run so far")]


def _examples_section(report: Dict[str, Any]) -> List[str]:
    return ["<h2>Example recommendations</h2>",
            "<p>The candidate model's <code>call_item_item</code> for the most bought "
            "products of the train split (similar products, most similar first).</p>",
            _table(["product", "train purchases", "similar products (cosine)"], [
                [str(ex["product"]), f"{ex['purchases']:,}",
                 ", ".join(f"{p} <span class='muted'>({s:.3f})</span>"
                           for p, s in zip(ex["similar"], ex["scores"]))]
                for ex in report["examples"]], css="examples")]


def _monitoring_section(report: Dict[str, Any]) -> List[str]:
    """make monitor's latest figures and a link to its report, when there is one."""
    latest = report.get("monitoring")
    if not latest:
        return []
    crossed = [c for c in latest.get("checks", []) if c.get("crossed")]
    rows = [[f"<code>{_e(name)}</code>", _num((lat or {}).get("p50"), 1), _num((lat or {}).get("p99"), 1)]
            for name, lat in sorted(latest.get("latency_ms", {}).items())]
    checks = "".join(f"<li class='{'bad' if c.get('crossed') else ''}'>{_e(c['text'])}"
                     f"{' (crossed)' if c.get('crossed') else ''}</li>" for c in latest.get("checks", []))
    return ["<h2>Requests served</h2>",
            f"<p>The latest monitoring report ({_e(latest['created'])}, <code>make monitor</code>): "
            f"{latest['requests']:,} requests logged from {_e(latest['first'])} to {_e(latest['last'])}, "
            f"answered by {_e(latest['model'])}. <a href='file://{_e(latest['html'])}'>{_e(latest['html'])}</a></p>",
            *_monitoring_staleness(latest, report.get("served_version")),
            f"<div class='verdict {'refused' if crossed else 'blessed'}'>"
            + ("A threshold is crossed: a signal to retrain." if crossed else "Within the thresholds.") + "</div>",
            _table(["signature", "p50 ms", "p99 ms"], rows) if rows else "",
            f"<ul>{checks}</ul>"]


def _monitoring_staleness(latest: Dict[str, Any], served: Optional[str]) -> List[str]:
    """A line when the monitoring report judged another version than the one served now (found
    by exploratory testing: the report linked a retrain signal about a version since rolled back
    or replaced, as if it were about the served one)."""
    judged = latest.get("version")
    if judged is None or served is None or str(judged) == str(served):
        return []
    return [f"<p class='bad'>That report judged version {_e(str(judged))}; version {_e(str(served))} is served now "
            "(pushed since, or a rollback): its figures are not about the served model. Run <code>make monitor</code> "
            "again once it has answered requests.</p>"]


def _components_section(report: Dict[str, Any]) -> List[str]:
    measured = report.get("components")
    if not measured:
        return []
    rows = [[_e(c["name"]), _e(c["state"]), f"{c['seconds']:.1f}",
             f"{c['peak_bytes'] / 2**30:.2f}" if c["peak_bytes"] else "-"]
            for c in measured["components"]]
    return ["<h2>Time and memory per component</h2>",
            _table(["component", "state", "seconds", "peak memory (GiB)"], rows),
            f"<p class='muted'>Peak memory: {_e(measured['measured'])}. This report's own "
            "component is not in it yet; the run's log directory has its figures too.</p>"]


def render_html(report: Dict[str, Any], images: Dict[str, str]) -> str:
    """The page of a report (report.json's figures) with its plots (name -> base64 PNG)."""
    parts = (_heading(report) + _data_section(report, images) + _validation_section(report)
             + _spans_section(report) + _training_section(report, images) + _evaluation_section(report, images)
             + _history_section(report, images) + _examples_section(report) + _monitoring_section(report)
             + _components_section(report))
    body = "\n".join(p for p in parts if p)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(report['pipeline'])} run report</title><style>{STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n")
