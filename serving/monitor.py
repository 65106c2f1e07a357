"""`make monitor`: what the served model is asked, from the server's request logs (request_log.py).

    make monitor                                         # outputs/request_logs/recommender-*, against the
                                                         # served model; report in outputs/monitoring/
    make monitor ARGS="--output-dir DIR"                  # a run made with --output-dir DIR, served from there
    make monitor ARGS="--request-logs DIR_OR_PREFIX --hours 24"
    env/run-in-env python -m serving.monitor --help

It reads every logged request (PredictionLog records and their latency lines) and reports:

- requests per signature, the rows they asked for, the API (REST/gRPC) and the versions that
  answered;
- latency percentiles per signature (p50, p90, p99, max; the server's time, request_log.py);
- cold starts: the share of users asked for (`serving_default` rows) and of products asked for
  (`call_item_item` rows) that the answering model did not know (its `known_user` and
  `known_item` outputs: those rows got the most popular products);
- popularity: the products asked for (`call_item_item` inputs) against the served model's
  training purchases (the `product_counts` it holds), with TFDV's L-infinity distance and
  Jensen-Shannon divergence computed as the drift gate computes them (statistics with every
  product's count in a rank histogram, `tfdv.validate_statistics` with drift comparators). A
  sample of n requests differs from the training purchases by chance too, the more the smaller
  it is (over the ASOS catalog, 1,000 requests drawn from the training purchases themselves give
  a JSD of about 0.77): the monitor draws `chance_draws` such samples of the same size and judges
  a distance only above the largest of them, and only with `min_requested_products` requests.

Each figure over its threshold (pipeline/configs.py MonitorConfig; `--threshold NAME=VALUE` for
one report) is printed as a RETRAIN SIGNAL line. The report goes to `<report-dir>/monitor-<UTC
time>.html` (plots embedded, no network) and `.json`, and `latest.json` names the newest (the run
report links it); the report directory is `<output-dir>/monitoring/` unless `--report-dir` says.
Exit code: 0 within the thresholds, 3 a threshold crossed, 2 bad flags, 1 no logs or another
error.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import datetime
import html
import io
import json
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from cli import flags, quiet
from cli.flags import Flag
from pipeline import configs

EXIT_OK, EXIT_ERROR, EXIT_FLAGS, EXIT_SIGNAL = 0, 1, 2, 3
LATEST = "latest.json"
PERCENTILES = (50, 90, 99)
# The serving SavedModel's interface (models/exporter.py), named here without loading TensorFlow
# Transform: the signatures, their cold-start outputs and the item input, the checkpoint keys of
# its product ids and training counts.
USER_SIGNATURE, ITEM_SIGNATURE = "serving_default", "call_item_item"
KNOWN = {USER_SIGNATURE: "known_user", ITEM_SIGNATURE: "known_item"}
ITEM_INPUT = "item"
PRODUCT_IDS_KEY = "product_ids/.ATTRIBUTES/VARIABLE_VALUE"
PRODUCT_COUNTS_KEY = "product_counts/.ATTRIBUTES/VARIABLE_VALUE"
L_INFINITY, JENSEN_SHANNON = "l_infinity", "jensen_shannon"


# --- reading the logs --------------------------------------------------------------------------
def gather(records, since_secs: Optional[int] = None) -> Dict[str, Any]:
    """The figures of logged requests (request_log.LoggedRequest), those at or after `since_secs`
    only when given: per signature requests, rows, latency percentiles (ms), APIs and versions;
    asked users and products known or not; the products asked for (id -> count). Under "_raw",
    per signature, each request's time and latency (for the plots; not written to the JSON)."""
    import tensorflow as tf

    per_signature: Dict[str, Dict[str, Any]] = {}
    raw: Dict[str, Dict[str, List[float]]] = {}
    cold = {USER_SIGNATURE: [0, 0, 0], ITEM_SIGNATURE: [0, 0, 0]}  # rows known, unknown, not said
    asked_products: collections.Counter = collections.Counter()
    files = set()
    for entry in records:
        meta = entry.log.log_metadata
        if since_secs is not None and meta.timestamp_secs < since_secs:
            continue
        files.add(entry.file)
        kind = entry.log.WhichOneof("log_type")
        signature = meta.model_spec.signature_name or USER_SIGNATURE
        figures = per_signature.setdefault(signature, {
            "requests": 0, "rows": 0, "apis": collections.Counter(), "versions": collections.Counter(),
            "log_types": collections.Counter()})
        mine = raw.setdefault(signature, {"times": [], "latencies_ms": []})
        figures["requests"] += 1
        figures["versions"][str(meta.model_spec.version.value)] += 1
        figures["log_types"][kind] += 1
        if entry.api:
            figures["apis"][entry.api] += 1
        if entry.latency_us is not None:
            mine["latencies_ms"].append(entry.latency_us / 1000.0)
        mine["times"].append(entry.timestamp_us / 1e6 if entry.timestamp_us is not None
                             else float(meta.timestamp_secs))
        if kind != "predict_log":
            continue
        request, response = entry.log.predict_log.request, entry.log.predict_log.response
        first = tf.make_ndarray(request.inputs[sorted(request.inputs)[0]]) if request.inputs else None
        rows = int(first.shape[0]) if first is not None and first.ndim else 1
        figures["rows"] += rows
        if signature == ITEM_SIGNATURE and ITEM_INPUT in request.inputs:
            asked_products.update(int(p) for p in tf.make_ndarray(request.inputs[ITEM_INPUT]).reshape(-1))
        if signature in KNOWN:
            if KNOWN[signature] in response.outputs:
                known = tf.make_ndarray(response.outputs[KNOWN[signature]]).reshape(-1).astype(bool)
                cold[signature][0] += int(known.sum())
                cold[signature][1] += int((~known).sum())
            else:  # the client filtered that output out: not said
                cold[signature][2] += rows
    for name, figures in per_signature.items():
        lat = np.asarray(raw[name]["latencies_ms"], np.float64)
        figures["latency_ms"] = ({**{f"p{q}": float(np.percentile(lat, q)) for q in PERCENTILES},
                                  "max": float(lat.max()), "mean": float(lat.mean()), "measured": int(len(lat))}
                                 if len(lat) else None)
        for key in ("apis", "versions", "log_types"):
            figures[key] = dict(figures[key])
    times = [t for r in raw.values() for t in r["times"]]
    return {
        "requests": sum(f["requests"] for f in per_signature.values()),
        "signatures": per_signature,
        "cold_starts": {
            what: {"known": cold[signature][0], "unknown": cold[signature][1], "not_said": cold[signature][2]}
            for what, signature in (("users", USER_SIGNATURE), ("products", ITEM_SIGNATURE))},
        "_asked_products": dict(asked_products),
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "files": sorted(files),
        "_raw": raw,
    }


# --- the served model's training purchases ---------------------------------------------------------
def training_counts(version_dir: str) -> Optional[Dict[int, int]]:
    """Product id -> train purchases, from the counts the serving SavedModel holds (None for a
    model exported without them)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(version_dir, "variables", "variables"))
    if not (reader.has_tensor(PRODUCT_COUNTS_KEY) and reader.has_tensor(PRODUCT_IDS_KEY)):
        return None
    ids, counts = reader.get_tensor(PRODUCT_IDS_KEY), reader.get_tensor(PRODUCT_COUNTS_KEY)
    return {int(p): int(c) for p, c in zip(ids, counts)}


def served_version(base_path: str, version: Optional[int] = None, problems: Optional[List[str]] = None):
    """(version, its directory) of the served model or of `version`; None when there is none.
    The served model is the newest version with its variables: a newer folder without them (a
    push cut short, a copy damaged by hand) is one no server can load, so a running server goes on
    with the one below it; it is said in `problems` (found by exploratory testing: such a folder
    ended the monitor with a TensorFlow traceback)."""
    from serving.model_manager import find_versions

    versions = find_versions(base_path)
    if version is not None:
        return (version, versions[version]) if version in versions else None
    for number in sorted(versions, reverse=True):
        if _has_variables(versions[number]):
            return number, versions[number]
        if problems is not None:
            problems.append(f"version {number} has no variables (no server can load it): "
                            "compared with the version below it")
    return None


def _has_variables(version_dir: str) -> bool:
    return os.path.isfile(os.path.join(version_dir, "variables", "variables.index"))


# --- distances ---------------------------------------------------------------------------------
def _statistics(counts: Mapping[int, int]):
    """A DatasetFeatureStatisticsList of one categorical feature with every value's count in its
    rank histogram (TFDV reads drift from the rank histogram: research notes §6)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    total = int(sum(counts.values()))
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(name="All Examples", num_examples=total)
    feature = dataset.features.add(type=statistics_pb2.FeatureNameStatistics.STRING)
    feature.path.step.append("productId")
    strings = feature.string_stats
    strings.unique = len(counts)
    strings.common_stats.num_non_missing = strings.common_stats.tot_num_values = total
    for rank, (value, count) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))):
        strings.rank_histogram.buckets.add(low_rank=rank, high_rank=rank, label=str(value), sample_count=count)
    return stats


def tfdv_distances(current: Mapping[int, int], baseline: Mapping[int, int]) -> Dict[str, float]:
    """TFDV's L-infinity distance and Jensen-Shannon divergence of two product distributions
    (given as counts), as `tfdv.validate_statistics` measures them."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

    schema = schema_pb2.Schema()
    feature = schema.feature.add(name="productId", type=schema_pb2.BYTES)
    feature.drift_comparator.infinity_norm.threshold = 1.0  # the values are read, not judged here
    feature.drift_comparator.jensen_shannon_divergence.threshold = 1.0
    anomalies = tfdv.validate_statistics(_statistics(current), schema, previous_statistics=_statistics(baseline))
    names = {anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: L_INFINITY,
             anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: JENSEN_SHANNON}
    return {names[m.type]: float(m.value) for info in anomalies.drift_skew_info
            for m in info.drift_measurements if m.type in names}


def distances(current: np.ndarray, baseline: np.ndarray) -> Dict[str, float]:
    """The same two measures in numpy, of aligned count vectors (TFDV's formulas: L-infinity the
    largest difference of shares; JSD base 2, capped at 1)."""
    p, q = current / current.sum(), baseline / baseline.sum()
    m = (p + q) / 2

    def kl(a):
        nonzero = a > 0
        return float((a[nonzero] * np.log2(a[nonzero] / m[nonzero])).sum())

    return {L_INFINITY: float(np.abs(p - q).max()), JENSEN_SHANNON: min(1.0, 0.5 * kl(p) + 0.5 * kl(q))}


def chance_distances(baseline: np.ndarray, n: int, draws: int, seed: int = 0) -> Dict[str, float]:
    """The largest of each distance between the training purchases and `draws` samples of n
    purchases drawn from them: what chance alone gives n requests."""
    rng = np.random.default_rng(seed)
    shares = baseline / baseline.sum()
    found = [distances(rng.multinomial(n, shares).astype(np.float64), baseline) for _ in range(draws)]
    return {name: max(d[name] for d in found) for name in (L_INFINITY, JENSEN_SHANNON)}


def popularity_figures(asked: Mapping[int, int], training: Mapping[int, int], config: configs.MonitorConfig
                       ) -> Dict[str, Any]:
    """The requested products against the training purchases: TFDV's distances, what chance gives
    as many requests, the shares by training rank (for the plot)."""
    n = int(sum(asked.values()))
    ranked = sorted(training, key=lambda p: (-training[p], p))
    baseline = np.array([training[p] for p in ranked], np.float64)
    requested = np.array([asked.get(p, 0) for p in ranked], np.float64)
    unknown = int(sum(c for p, c in asked.items() if p not in training))
    figures: Dict[str, Any] = {"requested": n, "products_asked": len(asked), "asked_not_in_training": unknown,
                               "training_purchases": int(baseline.sum()), "training_products": len(ranked)}
    if n == 0 or not baseline.sum():
        return figures
    top = max(asked.items(), key=lambda kv: (kv[1], -kv[0]))
    figures.update({
        "distances": tfdv_distances(asked, training),
        "chance": chance_distances(baseline, n, config.chance_draws),
        "most_asked": {"product": top[0], "share": top[1] / n,
                       "training_share": training.get(top[0], 0) / baseline.sum()},
        # cumulative shares by training rank: the plot's two curves (not written to the JSON)
        "_cumulative_training": (np.cumsum(baseline) / baseline.sum()).tolist(),
        "_cumulative_requested": (np.cumsum(requested) / n).tolist(),
    })
    return figures


# --- the verdict -------------------------------------------------------------------------------
def checks(figures: Dict[str, Any], popularity: Optional[Dict[str, Any]], config: configs.MonitorConfig,
           served: bool = True) -> List[Dict[str, Any]]:
    """One entry per threshold: {"name", "value", "threshold", "crossed", "text"}; "value" None
    when it could not be judged (the text says why; `served`: whether there is a served model)."""
    out = []
    for what, signature, limit in (("users", USER_SIGNATURE, config.max_unknown_user_share),
                                   ("products", ITEM_SIGNATURE, config.max_unknown_product_share)):
        counts = figures["cold_starts"][what]
        said = counts["known"] + counts["unknown"]
        share = counts["unknown"] / said if said else None
        text = (f"unknown {what}: no {signature} rows with {KNOWN[signature]} logged" if not said else
                f"unknown {what}: {share:.1%} of {said:,} {signature} {_plural(said, 'row')}, fewer than the "
                f"{config.min_rows:,} needed to judge" if said < config.min_rows else
                f"unknown {what}: {share:.1%} of {said:,} {signature} rows (threshold {limit:.0%})")
        if said < config.min_rows:  # found by exploratory testing: one request raised a retrain signal
            share = None
        out.append({"name": f"unknown_{what}_share", "value": share, "threshold": limit,
                    "crossed": share is not None and share > limit, "text": text})
    for name, limit in ((L_INFINITY, config.max_popularity_l_infinity),
                        (JENSEN_SHANNON, config.max_popularity_jensen_shannon)):
        label = {L_INFINITY: "L-infinity", JENSEN_SHANNON: "Jensen-Shannon"}[name]
        value, crossed = None, False
        if popularity is None:
            text = (f"popularity {label}: the served model holds no training counts (exported before the monitor)"
                    if served else f"popularity {label}: no served model to compare the requests with")
        elif not popularity["requested"] or "distances" not in popularity:
            text = f"popularity {label}: no products asked"
        elif popularity["requested"] < config.min_requested_products:
            text = (f"popularity {label}: {popularity['requested']:,} products asked, fewer than the "
                    f"{config.min_requested_products:,} needed to judge")
        else:
            value, chance = popularity["distances"][name], popularity["chance"][name]
            crossed = value > max(limit, chance)
            text = (f"popularity {label}: {value:.4g} (threshold {limit:g}; chance gives up to {chance:.4g} "
                    f"for {popularity['requested']:,} products asked)")
        out.append({"name": f"popularity_{name}", "value": value, "threshold": limit, "crossed": crossed,
                    "text": text})
    return out


# --- the report ------------------------------------------------------------------------------
def _calm(checks: List[Dict[str, Any]]) -> str:
    """The verdict when no threshold is crossed: within them, or nothing judged at all (too few
    requests for every threshold: not the same as all is well)."""
    if all(c["value"] is None for c in checks):
        return "nothing judged: too few requests for any threshold (see each line); nothing to act on yet"
    return "within the thresholds: nothing to act on"


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _share(value: float) -> str:
    """A share as a percentage a person can read: 0.30%, and 0.0012% rather than 0.00%."""
    return f"{value:.2%}" if value >= 0.0001 or value == 0 else f"{100 * value:.2g}%"


def _counts(counter: Mapping[str, int]) -> str:
    """{"rest": 5287, "grpc": 2} as "rest 5,287, grpc 2", most first."""
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def _when(secs: Optional[float]) -> str:
    if secs is None:
        return "-"
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def console_lines(report: Dict[str, Any]) -> List[str]:
    """What `make monitor` prints: the requests, latencies, checks and where the report is."""
    figures = report["figures"]
    lines = [f"[monitor] {figures['requests']:,} {_plural(figures['requests'], 'request')} logged, "
             f"{_when(figures['first'])} to {_when(figures['last'])} ({len(figures['files'])} "
             f"{_plural(len(figures['files']), 'file')}); served model: {report['model']}",
             f"{'signature':<18}{'requests':>9}{'rows':>9}" + "".join(f"{'p' + str(q) + ' ms':>9}" for q in PERCENTILES)
             + f"{'max ms':>9}"]
    for name, s in sorted(figures["signatures"].items()):
        lat = s["latency_ms"] or {}
        lines.append(f"{name:<18}{s['requests']:>9,}{s['rows']:>9,}"
                     + "".join(f"{_ms(lat.get(f'p{q}')):>9}" for q in PERCENTILES) + f"{_ms(lat.get('max')):>9}")
    lines += [f"  warning: {line}" for line in latency_gaps(figures) + report.get("problems", [])]
    lines += [f"  note: {line}" for line in version_notes(report)]
    for check in report["checks"]:
        lines.append(f"  {check['text']}{'  CROSSED' if check['crossed'] else ''}")
    crossed = [c for c in report["checks"] if c["crossed"]]
    if crossed:
        lines.append("RETRAIN SIGNAL: " + "; ".join(c["name"] for c in crossed) + " over the threshold: the "
                     "requests differ from what the served model was trained on (make run with fresh data)")
    else:
        lines.append(_calm(report["checks"]))
    return lines


def version_notes(report: Dict[str, Any]) -> List[str]:
    """What the figures mix or miss: the answers of several versions, or none of the version
    compared with (the one served now, pushed after these requests)."""
    versions = sorted({v for s in report["figures"]["signatures"].values() for v in s["versions"]}, key=int)
    notes = []
    if len(versions) > 1:  # the figures mix the answers of several models
        notes.append(f"the requests were answered by {len(versions)} versions ({', '.join(versions)}); "
                     f"the popularity is compared with {report['model']}")
    served = report.get("version")
    if served is not None and versions and str(served) not in versions:
        # found by exploratory testing: a model trained on the new users was pushed, and the
        # monitor still said RETRAIN SIGNAL on the unknown users its predecessors answered
        notes.append(f"none of these requests was answered by version {served}, the one compared with: the "
                     f"unknown users and products are those of version{'s' if len(versions) > 1 else ''} "
                     f"{', '.join(versions)}, which version {served} may know (--hours to judge only the "
                     "requests since it serves)")
    return notes


def latency_gaps(figures: Dict[str, Any]) -> List[str]:
    """A line per signature whose requests are not all in its latency figures (no latency file, or
    lines the server had not written yet)."""
    lines = []
    for name, s in sorted(figures["signatures"].items()):
        measured = (s["latency_ms"] or {}).get("measured", 0)
        if measured < s["requests"]:
            lines.append(f"{name}: {s['requests'] - measured:,} of {s['requests']:,} requests have no latency "
                         "logged (no latency file beside the log, or not written yet): latencies are of the rest")
    return lines


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plain_log_ticks(axis) -> None:
    """A log axis labelled in plain numbers, 1 2 5 10 20 50 ...: matplotlib labels the minor
    ticks of a range under a decade as 2x10^0 3x10^0 4x10^0 6x10^0, which overlap (found by
    exploratory testing: latencies of 1-8 ms)."""
    import math

    from matplotlib import ticker

    def major(value, _):
        return f"{value:g}"

    def minor(value, _):
        if value <= 0:
            return ""
        leading = round(value / 10 ** math.floor(math.log10(value)))
        return f"{value:g}" if leading in (2, 5) else ""

    axis.set_major_formatter(ticker.FuncFormatter(major))
    axis.set_minor_formatter(ticker.FuncFormatter(minor))


def plots(report: Dict[str, Any]) -> Dict[str, str]:
    """name -> base64 PNG: "traffic" (requests over time and latency per signature) and
    "popularity" (cumulative shares by training rank: requests against training)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures, out = report["figures"], {}
    raw = figures.get("_raw") or {}
    if figures["requests"] and raw:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
        first = figures["first"]
        span = max(figures["last"] - first, 1.0)
        for name, mine in sorted(raw.items()):
            seconds = [t - first for t in mine["times"]]
            left.hist(seconds, bins=min(40, max(5, len(seconds) // 5)), range=(0, span), histtype="step", label=name)
            if mine["latencies_ms"]:
                lat = np.sort(mine["latencies_ms"])
                right.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=name)
        left.set(xlabel=f"seconds after {_when(first)}", ylabel="requests", title="requests over time")
        right.set(xlabel="latency (ms)", ylabel="share of requests at or below", title="latency", xscale="log")
        plain_log_ticks(right.xaxis)
        left.legend(fontsize=8)
        if any(mine["latencies_ms"] for mine in raw.values()):
            right.legend(fontsize=8)
        else:  # no latency file beside the logs
            right.text(0.5, 0.5, "no latencies logged", ha="center", va="center", transform=right.transAxes)
        out["traffic"] = _png(fig)
    popularity = report.get("popularity") or {}
    if popularity.get("_cumulative_requested"):
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        ranks = np.arange(1, len(popularity["_cumulative_training"]) + 1)
        ax.plot(ranks, popularity["_cumulative_training"], label="training purchases")
        ax.plot(ranks, popularity["_cumulative_requested"],
                label="products asked (call_item_item; those never bought in training are not on it)")
        ax.set(xscale="log", xlabel="products by training popularity (rank)", ylabel="cumulative share",
               title="where the requests go")
        ax.legend(fontsize=8, loc="upper left")
        out["popularity"] = _png(fig)
    return out


def render_html(report: Dict[str, Any], images: Dict[str, str]) -> str:
    e = html.escape
    figures = report["figures"]
    crossed = [c for c in report["checks"] if c["crossed"]]
    head = ("RETRAIN SIGNAL: " + "; ".join(c["text"] for c in crossed)) if crossed else \
        _calm(report["checks"]).capitalize() + "."
    rows = "".join(
        f"<tr><td><code>{e(name)}</code></td><td>{s['requests']:,}</td><td>{s['rows']:,}</td>"
        + "".join(f"<td>{_ms((s['latency_ms'] or {}).get(f'p{q}'))}</td>" for q in PERCENTILES)
        + f"<td>{_ms((s['latency_ms'] or {}).get('max'))}</td><td>{e(_counts(s['apis']))}</td>"
        f"<td>{e(_counts(s['versions']))}</td></tr>" for name, s in sorted(figures["signatures"].items()))
    check_rows = "".join(f"<tr><td>{e(c['text'])}</td><td class='{'bad' if c['crossed'] else 'ok'}'>"
                         f"{'CROSSED' if c['crossed'] else 'ok'}</td></tr>" for c in report["checks"])
    imgs = "".join(f'<p><img alt="{e(n)}" src="data:image/png;base64,{images[n]}"></p>'
                   for n in ("traffic", "popularity") if n in images)
    popularity = report.get("popularity") or {}
    asked = ""
    if popularity.get("most_asked"):
        top = popularity["most_asked"]
        asked = (f"<p>{popularity['requested']:,} product requests (<code>call_item_item</code>) for "
                 f"{popularity['products_asked']:,} products; {popularity['asked_not_in_training']:,} of the "
                 f"requests asked for products never bought in training. The most asked, {top['product']}, had "
                 f"{_share(top['share'])} of the requests ({_share(top['training_share'])} of the training "
                 "purchases).</p>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1050px;color:#222;padding:0 1em}"
             "table{border-collapse:collapse;margin:.6em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee;"
             "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f6f6f6}"
             ".ok{color:#17692b;font-weight:600}.bad{color:#b00020;font-weight:600}img{max-width:100%}"
             ".verdict{padding:.6em 1em;border-radius:6px;background:#e6f4ea}.signal{background:#fde7e9}"
             ".muted{color:#777}")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>request monitoring</title>"
            f"<style>{style}</style></head><body>\n<h1>Requests to {e(report['model'])}</h1>"
            f"<p class='muted'>{e(report['created'])} &middot; {figures['requests']:,} "
            f"{_plural(figures['requests'], 'request')} logged, "
            f"{e(_when(figures['first']))} to {e(_when(figures['last']))} &middot; {len(figures['files'])} "
            f"log {_plural(len(figures['files']), 'file')} under {e(report['logs'])}</p>"
            f"<div class='verdict{' signal' if crossed else ''}'><b>{e(head)}</b></div>"
            "<h2>Requests and latency</h2><table><tr><th>signature</th><th>requests</th><th>rows</th>"
            + "".join(f"<th>p{q} ms</th>" for q in PERCENTILES) + "<th>max ms</th><th>API</th><th>versions</th></tr>"
            f"{rows}</table><p class='muted'>Latency: the server's time from a request's body received to its "
            "response ready (its latency file beside each log).</p>"
            + "".join(f"<p class='bad'>{e(line)}</p>" for line in latency_gaps(figures) + report.get("problems", []))
            + "".join(f"<p>Note: {e(line)}</p>" for line in version_notes(report))
            +
            f"<h2>Thresholds</h2><table>{check_rows}</table>{asked}{imgs}\n</body></html>\n")


class NoModel(LookupError):
    """No model version to compare the requests with; the message names the path."""


class NoRequests(LookupError):
    """Log files without a request to judge (empty, unreadable, or none in the --hours window): a
    monitor that read nothing says so rather than "nothing to act on"."""


def build_report(log_path: str, base_path: str, version: Optional[int], hours: Optional[float],
                 config: configs.MonitorConfig, now: Optional[float] = None) -> Dict[str, Any]:
    """Reads the logs and the served model; returns the report (figures, popularity, checks).
    FileNotFoundError when there is no log file, NoModel when there is no such model version."""
    import time

    from serving import request_log

    files = request_log.log_files(log_path)
    if not files:
        raise FileNotFoundError(f"no request logs at {log_path} (a server logs only with "
                                "--request_log_sampling_rate, e.g. make serve ARGS=\"--request_log_sampling_rate 1\", "
                                "and writes its first file with its first sampled request)")
    now = time.time() if now is None else now
    since = int(now - hours * 3600) if hours else None
    problems: List[str] = []
    served = served_version(base_path, version, problems)
    if served is None and version is not None:  # a version asked for by number: it must be there
        from serving.model_manager import find_versions

        known = ", ".join(str(v) for v in sorted(find_versions(base_path), reverse=True)) or "none"
        raise NoModel(f"no version {version} under {base_path} (--model-version; versions there: {known})")
    figures = gather(request_log.read_logs(files, problems), since)
    if not figures["requests"]:
        raise NoRequests(f"no requests in {len(files)} request log file{'s' if len(files) != 1 else ''} at "
                         f"{log_path}" + (f" in the last {hours:g} hours" if hours else "")
                         + "".join(f"; {p}" for p in problems))
    try:
        counts = training_counts(served[1]) if served else None
    except Exception as e:  # noqa: BLE001  a checkpoint damaged otherwise: said, the traffic still judged
        problems.append(f"the training counts of version {served[0]} could not be read ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})")
        counts = None
    popularity = popularity_figures(figures["_asked_products"], counts, config) if counts else None
    return {
        "created": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "logs": log_path, "model": f"{served[1]} (version {served[0]})" if served else f"none under {base_path}",
        "version": served[0] if served else None,
        "thresholds": dataclasses.asdict(config), "figures": figures, "popularity": popularity,
        "checks": checks(figures, popularity, config, served is not None), "problems": problems,
    }


def write_report(report: Dict[str, Any], output_dir: str) -> Dict[str, str]:
    """monitor-<time>.html and .json in `output_dir`, and latest.json naming them with the
    headline figures; returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    paths = {"html": os.path.join(output_dir, f"monitor-{stamp}.html"),
             "json": os.path.join(output_dir, f"monitor-{stamp}.json")}
    with open(paths["json"], "w") as f:
        json.dump(_public(report), f, indent=1)
    with open(paths["html"], "w") as f:
        f.write(render_html(report, plots(report)))
    figures = report["figures"]
    latest = {"created": report["created"], "html": os.path.abspath(paths["html"]),
              "json": os.path.abspath(paths["json"]), "requests": figures["requests"],
              "first": _when(figures["first"]), "last": _when(figures["last"]), "model": report["model"],
              "version": report.get("version"),
              "latency_ms": {name: s["latency_ms"] for name, s in figures["signatures"].items()},
              "checks": report["checks"]}
    tmp = os.path.join(output_dir, f".{LATEST}.tmp")
    with open(tmp, "w") as f:
        json.dump(latest, f, indent=1)
    os.replace(tmp, os.path.join(output_dir, LATEST))  # a reader never sees half a file
    return paths


def _public(value):
    """`value` without its "_" keys (the raw lists behind the plots), for the JSON."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("_"))}
    return value


# --- the command -------------------------------------------------------------------------------
def _threshold(text: str):
    name, value = flags.assignment(flags.number(0.0), "NAME=NUMBER (0 or more)")(text)
    names = [f.name for f in dataclasses.fields(configs.MonitorConfig)]
    if name not in names:
        raise flags.BadValue(f"{name!r} is not a threshold: one of {', '.join(names)}")
    return name, value


def _hours(text: str) -> float:
    value = flags.number(0.0, what="a number of hours (above 0)")(text)
    if value <= 0:
        raise flags.BadValue(f"{text} is not a number of hours (above 0)")
    return value


def _flags() -> Sequence[Flag]:
    return (
        Flag("--output-dir", "the pipeline's output directory (make run's --output-dir): the request logs "
             "are read from its request_logs/, the served model from its serving_model/ and the report goes "
             f"to its monitoring/ (the run report links it); default {os.path.relpath(configs.DEFAULT_OUTPUT_DIR)}",
             default=configs.DEFAULT_OUTPUT_DIR),
        Flag("--request-logs", "the server's request logs: its --request_log_file_prefix, or a directory of "
             "them; default OUTPUT_DIR/request_logs/" + configs.MODEL_NAME, metavar="PREFIX_OR_DIR"),
        Flag("--model-base-path", "the served model's versions (the newest is compared with the requests); "
             "default OUTPUT_DIR/serving_model/" + configs.MODEL_NAME),
        Flag("--model-version", "compare with this version instead of the newest", parse=flags.positive_int),
        Flag("--hours", "only the requests of the last N hours (default: all logged)", metavar="N",
             parse=_hours),
        Flag("--report-dir", "where the report goes; default OUTPUT_DIR/monitoring"),
        Flag("--threshold", "replace a MonitorConfig threshold (pipeline/configs.py) for this report, e.g. "
             "max_unknown_user_share=0.3; repeatable", kind=flags.REPEAT, metavar="NAME=VALUE", parse=_threshold),
    )


def main(argv: Optional[List[str]] = None, stream=None, errors=None) -> int:
    """The findings go to `stream` (stdout), a reason for having none to `errors` (stderr)."""
    stream, errors = stream or sys.stdout, errors or sys.stderr
    parser = argparse.ArgumentParser(prog="python -m serving.monitor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add(parser, _flags())
    args = parser.parse_args(argv)
    # found by exploratory testing: --output-dir was the report's folder here and the pipeline's
    # output directory for make run and make history; now it is the latter everywhere
    defaults = configs.PipelineConfig(output_dir=args.output_dir)
    args.request_logs = args.request_logs or defaults.request_log_prefix
    args.model_base_path = args.model_base_path or defaults.serving_model_dir
    args.report_dir = args.report_dir or defaults.monitoring_dir
    overrides = dict(args.threshold)
    for name in ("min_requested_products", "min_rows", "chance_draws"):
        if name in overrides:
            overrides[name] = int(overrides[name])
    if overrides.get("chance_draws", 1) < 1:  # found by exploratory testing: 0 ended in a traceback
        parser.error("--threshold chance_draws: at least 1 sample is needed to say what chance gives")
    for flag, path in (("--output-dir", args.output_dir), ("--report-dir", args.report_dir)):
        if os.path.exists(path) and not os.path.isdir(path):
            parser.error(f"{flag} {path} is a file, not a directory")
    config = dataclasses.replace(configs.MonitorConfig(), **overrides)
    failed = None
    with quiet.native_stderr_silenced():  # TensorFlow's C++ lines (start-up, cuInit): fd 2 is shut here
        try:
            report = build_report(args.request_logs, args.model_base_path, args.model_version, args.hours, config)
        except (FileNotFoundError, NoModel, NoRequests) as e:
            failed = e
        else:
            paths = write_report(report, args.report_dir)
    if failed is not None:  # said once stderr is open again
        print(f"monitor: {failed}", file=errors)
        return EXIT_FLAGS if isinstance(failed, NoModel) else EXIT_ERROR
    for line in console_lines(report):
        print(line, file=stream)
    print(f"report  {paths['html']}", file=stream)
    return EXIT_SIGNAL if any(c["crossed"] for c in report["checks"]) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
