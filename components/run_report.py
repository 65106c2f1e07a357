"""RunReport: one self-contained HTML page per run, for a person to look at.

The last component of the pipeline (after the Pusher), so the report is an artifact of every run
that gets that far, on this machine and on Vertex alike. The page (`index.html` in the `report`
artifact) opens from disk with no network: styles inline, plots embedded as base64 PNG drawn with
matplotlib. Its figures are also written as `report.json` beside it, and the headline ones are
custom properties of the artifact.

What it shows:
  - data: per split the purchases, users, products, purchases per user and per product (plots);
  - validation: the anomalies found (the run gets here only when there are none) and the catalog
    check;
  - training: loss and examples/s per epoch (the Trainer's `training_history.json`);
  - evaluation: each metric for the candidate and the last blessed model (TFMA's values, the
    ones the gate used) and for the most-popular-products baseline, recall@k for k = 1..100
    (the candidate's and blessed model's from the Evaluator's `RecallCurve` metric, the
    popularity baseline's through the same serving module) and catalog coverage@10 of all three
    (through `serving_default`; the candidate's from BatchRecommendations' lists when it wrote
    them, the same answers);
  - the gate's verdict and thresholds, and what the Pusher did;
  - example recommendations: `call_item_item` of the candidate for the most bought products.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx import v1 as tfx
from tfx.components.util import tfxio_utils
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components import evaluator as evaluator_lib
from components.catalog_check import REPORT_FILE as CATALOG_REPORT_FILE
from components.catalog_check import CatalogReport
from models import baselines, exporter, features, trainer

log = logging.getLogger("recsys.report")

HTML_FILE = "index.html"
JSON_FILE = "report.json"
MAX_K = features.SERVING_TOP_K  # recall@k curve: k = 1..MAX_K, the Evaluator's curve (components/evaluator.py)
COVERAGE_K = 10
EXAMPLE_PRODUCTS = 5  # item-item examples: the most bought products
EXAMPLE_TOP = 8
BATCH = 1024
MAX_PURCHASES_BAR = 30  # purchases-per-user plot: the last bar counts users with this many or more


class RunReportFile(artifact.Artifact):
    # Kubeflow V2 restores "<namespace>.<Class>" by import in each container:
    # components/__init__.py exposes it as components.RunReportFile.
    TYPE_NAME = "components.RunReportFile"


# --- figures ---------------------------------------------------------------------------------
def read_purchases(split_dir: str) -> Dict[str, np.ndarray]:
    """{"users": bytes[N], "products": int64[N]} of ExampleGen's examples in one split."""
    files = tf.io.gfile.glob(os.path.join(split_dir, "*.gz"))
    spec = {features.USER_KEY: tf.io.FixedLenFeature([1], tf.string),
            features.PRODUCT_KEY: tf.io.FixedLenFeature([1], tf.int64)}
    users, products = [], []
    if files:
        dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP")
                   .batch(65536).map(lambda x: tf.io.parse_example(x, spec)))
        for batch in dataset:
            users.append(batch[features.USER_KEY].numpy().reshape(-1))
            products.append(batch[features.PRODUCT_KEY].numpy().reshape(-1))
    return {"users": np.concatenate(users) if users else np.array([], dtype=object),
            "products": np.concatenate(products) if products else np.array([], dtype=np.int64)}


def _distribution(counts: np.ndarray) -> Dict[str, float]:
    if not len(counts):
        return {"mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0}
    return {"mean": float(counts.mean()), "median": float(np.median(counts)),
            "p90": float(np.percentile(counts, 90)), "max": int(counts.max())}


def split_statistics(purchases: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Counts and the purchases-per-user / per-product distributions of one split."""
    _, per_user = np.unique(purchases["users"], return_counts=True)
    _, per_product = np.unique(purchases["products"], return_counts=True)
    return {
        "purchases": int(len(purchases["products"])),
        "users": int(len(per_user)),
        "products": int(len(per_product)),
        "purchases_per_user": _distribution(per_user),
        "purchases_per_product": _distribution(per_product),
        # for the plots: how many users bought n times; product counts, most bought first
        "users_by_purchases": np.bincount(np.minimum(per_user, MAX_PURCHASES_BAR)).tolist()
        if len(per_user) else [],
        "product_counts_desc": sorted(per_product.tolist(), reverse=True),
    }


def metrics_from_ranks(ranks: np.ndarray) -> Dict[str, float]:
    """The Evaluator's metrics (components/eval_metrics.py, per eval purchase) from the
    `evaluate` signature's ranks [N, 2]."""
    full, sampled = ranks[:, 0], ranks[:, 1]
    return {
        "recall_at_10": float((full < 10).mean()),
        "recall_at_100": float((full < 100).mean()),
        "ndcg_at_10": float(np.where(full < 10, 1.0 / np.log2(full + 2.0), 0.0).mean()),
        "mrr": float((1.0 / (full + 1.0)).mean()),
        "sampled_accuracy": float((sampled == 0).mean()),
    }


def recall_curve(ranks: np.ndarray, max_k: int = MAX_K) -> List[float]:
    """recall@k for k = 1..max_k: the share of eval purchases ranked in the top k."""
    full = ranks[:, 0]
    return [float((full < k).mean()) for k in range(1, max_k + 1)]


def serialized_examples(users: np.ndarray, products: np.ndarray) -> List[bytes]:
    return [tf.train.Example(features=tf.train.Features(feature={
        features.USER_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[u])),
        features.PRODUCT_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(p)])),
    })).SerializeToString() for u, p in zip(users, products)]


def ranking_figures(signatures, examples: Sequence[bytes]) -> Dict[str, Any]:
    """Metrics and recall@k curve of one model through its `evaluate` signature (`signatures`:
    name -> callable, a loaded SavedModel's or a ServingModule's)."""
    ranks = np.concatenate([
        signatures[exporter.EVAL_SIGNATURE](examples=tf.constant(examples[s:s + BATCH]))
        [exporter.RANKS_KEY].numpy() for s in range(0, len(examples), BATCH)])
    return {"metrics": metrics_from_ranks(ranks), "recall_at_k": recall_curve(ranks)}


def _top_products(signatures, users: np.ndarray) -> set:
    """The products in at least one of `users`' top COVERAGE_K (`serving_default`)."""
    shown = set()
    for s in range(0, len(users), BATCH):
        products = signatures["serving_default"](user_id=tf.constant(users[s:s + BATCH]))["products"]
        shown.update(products.numpy()[:, :COVERAGE_K].ravel().tolist())
    return shown


def coverage_at_10(signatures, eval_users: np.ndarray, catalog_size: int) -> float:
    """The share of catalog products in at least one eval user's top 10 (`serving_default`)."""
    shown = _top_products(signatures, np.unique(eval_users))
    return len(shown) / catalog_size if catalog_size else 0.0


def coverage_from_batch_lists(recommendations_uri: str, model_path: str, signatures,
                              eval_users: np.ndarray, catalog_size: int) -> Optional[float]:
    """`coverage_at_10` from BatchRecommendations' lists, when they are `model_path`'s: the same
    `serving_default` answers for every known user, computed once already (its summary names
    the model). Eval users without a list (unknown to the model) are asked through `signatures`
    as `coverage_at_10` does. None when there are no lists of that model (a refused model, or
    lists of fewer than COVERAGE_K products)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    from components import batch_recommendations as batch

    summary = _read_json(os.path.join(recommendations_uri, batch.SUMMARY_FILE))
    if not summary or summary.get("model") != model_path or summary.get("top_k", 0) < COVERAGE_K:
        return None
    users = np.unique(eval_users)
    wanted = pa.array(batch.user_strings(users), pa.string())
    lists = ds.dataset(os.path.join(recommendations_uri, batch.RECOMMENDATIONS_DIR), format="parquet")
    top = lists.to_table(columns=[features.USER_KEY, features.PRODUCT_KEY],
                         filter=(ds.field("rank") <= COVERAGE_K) & ds.field(features.USER_KEY).isin(wanted))
    shown = set(np.unique(top[features.PRODUCT_KEY].to_numpy()).tolist())
    listed = pc.unique(top[features.USER_KEY])
    missing = users[~pc.is_in(wanted, value_set=listed).to_numpy(zero_copy_only=False)]
    shown |= _top_products(signatures, missing)
    return len(shown) / catalog_size if catalog_size else 0.0


def _saved_model_signatures(model_uri: str):
    loaded = tf.saved_model.load(path_utils.serving_model_path(model_uri))
    return loaded.signatures


def _module_signatures(module: exporter.ServingModule):
    return {exporter.EVAL_SIGNATURE: module.evaluate, "serving_default": module.recommend,
            exporter.ITEM_ITEM_SIGNATURE: module.item_item}


# --- plots -----------------------------------------------------------------------------------
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(report: Dict[str, Any]) -> Dict[str, str]:
    """Figure name -> base64 PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out = {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for split, stats in report["data"].items():
        counts = stats["users_by_purchases"]
        if counts:
            n = np.arange(len(counts))
            left.bar(n[1:] + (0.2 if split == "eval" else -0.2), counts[1:], width=0.4, label=split)
        product_counts = stats["product_counts_desc"]
        if product_counts:
            right.loglog(np.arange(1, len(product_counts) + 1), product_counts, label=split)
    left.set(title="purchases per user", xlabel=f"purchases (last bar: {MAX_PURCHASES_BAR} or more)",
             ylabel="users", yscale="log")
    left.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    left.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set(title="purchases per product (most bought first)", xlabel="product rank",
              ylabel="purchases")
    left.legend()
    right.legend()
    out["data"] = _png(fig)

    history = report["training"]["history"]
    if history:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o")
        ax.set(title="training loss per epoch", xlabel="epoch", ylabel="loss")
        ax.xaxis.get_major_locator().set_params(integer=True)
        out["training"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ks = np.arange(1, MAX_K + 1)
    styles = {"candidate": {"linewidth": 2.2}, "last blessed": {"linestyle": "--", "linewidth": 1.6}}
    for label, figures in report["evaluation"]["models"].items():
        ax.plot(ks, figures["recall_at_k"], label=label, **styles.get(label, {}))
    ax.set(title="recall@k on the eval split (per purchase)", xlabel="k", ylabel="recall@k")
    ax.legend()
    ax.grid(alpha=0.3)
    out["recall"] = _png(fig)
    return out


# --- HTML ------------------------------------------------------------------------------------
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
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table{f' class={css!r}' if css else ''}><tr>{head}</tr>{body}</table>"


def _img(images: Dict[str, str], name: str, alt: str) -> str:
    if name not in images:
        return ""
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{images[name]}"></p>'


def render_html(report: Dict[str, Any], images: Dict[str, str]) -> str:
    gate, push, ev = report["gate"], report["push"], report["evaluation"]
    parts = [f"<h1>{_e(report['pipeline'])}: run report</h1>",
             f"<p class='muted'>{_e(report['created'])} &middot; {_e(report['run'])}</p>"]
    verdict_class = "blessed" if gate["blessed"] else "refused"
    parts.append(f"<div class='verdict {verdict_class}'><b>{_e(gate['verdict'])}</b><br>{_e(push['text'])}</div>")

    parts.append("<h2>Data</h2>")
    rows = []
    for split, s in report["data"].items():
        pu, pp = s["purchases_per_user"], s["purchases_per_product"]
        rows.append([_e(split), f"{s['purchases']:,}", f"{s['users']:,}", f"{s['products']:,}",
                     f"{pu['mean']:.2f} / {pu['median']:g} / {pu['max']:,}",
                     f"{pp['mean']:.2f} / {pp['median']:g} / {pp['max']:,}"])
    parts.append(_table(["split", "purchases", "users", "products",
                         "purchases per user (mean / median / max)",
                         "purchases per product (mean / median / max)"], rows))
    parts.append(_img(images, "data", "purchases per user and per product"))

    parts.append("<h2>Validation</h2>")
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

    parts.append("<h2>Training</h2>")
    training = report["training"]
    if training["history"]:
        parts.append(_table(["epoch", "loss", "examples/s", "seconds"], [
            [h["epoch"], f"{h['loss']:.4f}", f"{h['examples_per_sec']:,.0f}", f"{h['seconds']:.1f}"]
            for h in training["history"]]))
        parts.append(_img(images, "training", "training loss per epoch"))
    else:
        parts.append("<p class='muted'>No training history in the model run.</p>")
    if training["model_config"]:
        parts.append("<p class='muted'>model configuration: <code>" +
                     _e(json.dumps(training["model_config"], sort_keys=True)) + "</code></p>")

    parts.append("<h2>Evaluation and gate</h2>")
    parts.append(f"<p>{_e(ev['protocol'])}</p>")
    labels = list(ev["models"])
    rows = []
    for row in gate["rows"]:
        name = row["metric"]
        cells = [f"<code>{_e(name)}</code>"]
        for label in labels:
            cells.append(_num(ev["models"][label]["metrics"].get(name)))
        result = row["result"]
        css = "ok" if result == "ok" else "bad" if result not in ("-", "") else "muted"
        cells += [_e(row["threshold"]), f"<span class='{css}'>{_e(result)}</span>"]
        rows.append(cells)
    rows.append(["catalog coverage@10"] +
                [_num(ev["models"][label]["coverage_at_10"]) for label in labels] + ["not gated", "-"])
    parts.append(_table(["metric"] + labels + ["threshold", "gate"], rows))
    parts.append(f"<p class='muted'>{_e(ev['note'])}</p>")
    parts.append(_img(images, "recall", "recall@k curve"))

    parts.append("<h2>Example recommendations</h2>")
    parts.append("<p>The candidate model's <code>call_item_item</code> for the most bought "
                 "products of the train split (similar products, most similar first).</p>")
    parts.append(_table(["product", "train purchases", "similar products (cosine)"], [
        [str(ex["product"]), f"{ex['purchases']:,}",
         ", ".join(f"{p} <span class='muted'>({s:.2f})</span>" for p, s in zip(ex["similar"], ex["scores"]))]
        for ex in report["examples"]], css="examples"))

    body = "\n".join(p for p in parts if p)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(report['pipeline'])} run report</title><style>{STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


# --- the component ---------------------------------------------------------------------------
def _read_json(path: str) -> Any:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _anomaly_lines(anomalies: Optional[types.Artifact]) -> List[str]:
    if anomalies is None:
        return []
    from components import validator
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    lines = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies], split), "SchemaDiff.pb")
        if tf.io.gfile.exists(path):
            proto = anomalies_pb2.Anomalies()
            proto.ParseFromString(io_utils.read_bytes_file(path))
            lines += validator.describe_anomalies(split, proto)
    return lines


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        def single(key):
            found = input_dict.get(key) or []
            return found[0] if found else None

        examples = single("examples")
        report: Dict[str, Any] = {
            "pipeline": exec_properties.get("pipeline_name") or "pipeline",
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "run": f"candidate model {single('model').uri}",
        }
        purchases = {split: read_purchases(artifact_utils.get_split_uri([examples], split))
                     for split in artifact_utils.decode_split_names(examples.split_names)}
        report["data"] = {split: split_statistics(p) for split, p in purchases.items()}

        catalog_artifact = single("catalog_report")
        catalog = _read_json(os.path.join(catalog_artifact.uri, CATALOG_REPORT_FILE)) \
            if catalog_artifact else None
        report["validation"] = {"anomalies": _anomaly_lines(single("anomalies")), "catalog": catalog}

        model_run = single("model_run")
        report["training"] = {
            "history": _read_json(os.path.join(model_run.uri, trainer.HISTORY_FILE)) or [],
            "model_config": _read_json(os.path.join(model_run.uri, trainer.MODEL_CONFIG_FILE)),
        }

        # Evaluation: TFMA's values for candidate and blessed (what the gate judged), and the
        # curves and coverage of all three models computed here through their signatures.
        evaluation = single("evaluation")
        gate = evaluator_lib.gate_verdict(evaluation.uri)
        eval_split = "eval" if "eval" in purchases else sorted(purchases)[-1]
        eval_users = purchases[eval_split]["users"]
        eval_products = purchases[eval_split]["products"]
        examples_bytes = serialized_examples(eval_users, eval_products)
        catalog_size = (catalog or {}).get("catalog_products") or report["data"]["train"]["products"]

        transform_output = tft.TFTransformOutput(single("transform_graph").uri)
        transformed = single("transformed_examples")
        accessor = tfx.components.DataAccessor(  # as the Trainer reads Transform's output
            tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([transformed], []),
            record_batch_factory=None, data_view_decode_fn=None)
        train_users, train_items = trainer.read_pairs(
            accessor, [os.path.join(artifact_utils.get_split_uri([transformed], "train"), "*")],
            transform_output)
        num_users = transform_output.vocabulary_size_by_name(features.USER_VOCAB)
        num_items = transform_output.vocabulary_size_by_name(features.PRODUCT_VOCAB)
        popularity = exporter.ServingModule(
            baselines.PopularityModel(num_users, num_items, train_items), transform_output,
            train_users, train_items, top_k=min(MAX_K, num_items))

        # Candidate and last blessed: TFMA's metrics and recall@k curve (the Evaluator computed
        # them; an evaluation without the curve, from before it was added, is re-scored here),
        # their coverage through `serving_default`; popularity all through the serving module.
        candidate = _saved_model_signatures(single("model").uri)
        scored = {"candidate": (evaluator_lib.CANDIDATE, candidate)}
        baseline = single("baseline_model")
        if baseline is not None:
            scored["last blessed"] = (evaluator_lib.BASELINE, _saved_model_signatures(baseline.uri))
        models = {}
        for label, (tfma_name, signatures) in scored.items():
            curve = gate["curves"].get(tfma_name)
            figures = ({"recall_at_k": curve} if curve else
                       ranking_figures(signatures, examples_bytes))
            figures["metrics"] = dict(gate["values"].get(tfma_name, {}))
            reused = None
            if label == "candidate" and single("batch_recommendations") is not None:
                reused = coverage_from_batch_lists(
                    single("batch_recommendations").uri,
                    path_utils.serving_model_path(single("model").uri), signatures, eval_users,
                    catalog_size)
            figures["coverage_at_10"] = (reused if reused is not None else
                                         coverage_at_10(signatures, eval_users, catalog_size))
            models[label] = figures
        popular = _module_signatures(popularity)
        models["most popular"] = {**ranking_figures(popular, examples_bytes),
                                  "coverage_at_10": coverage_at_10(popular, eval_users, catalog_size)}
        report["evaluation"] = {
            "split": eval_split,
            "protocol": (f"On the {eval_split} split ({len(eval_products):,} purchases): each "
                         "purchase's rank among all products, the user's train purchases left "
                         "out; sampled accuracy against 100 uniformly drawn products. Per "
                         "purchase, as the gate computes them."),
            "note": ("Candidate and last blessed: TFMA's values, the ones the gate judged. Most "
                     "popular: every user gets the most bought train products (their own "
                     "purchases left out), through the same serving module. Coverage@10: the "
                     "share of catalog products in at least one eval user's top 10."),
            "models": models,
        }
        report["gate"] = {"blessed": gate["blessed"], "verdict": gate["verdict"], "rows": gate["rows"],
                          "compared_with_blessed": gate["has_baseline"]}
        report["push"] = _push_summary(single("pushed_model"), gate["blessed"])

        counts = np.bincount(train_items[train_items < num_items], minlength=num_items)
        top = np.argsort(-counts, kind="stable")[:EXAMPLE_PRODUCTS]
        product_ids = [int(p) for p in transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)]
        asked = tf.constant([product_ids[i] for i in top], tf.int64)
        similar = candidate[exporter.ITEM_ITEM_SIGNATURE](item=asked)
        report["examples"] = [
            {"product": product_ids[i], "purchases": int(counts[i]),
             "similar": similar["products"].numpy()[row, :EXAMPLE_TOP].tolist(),
             "scores": similar["scores"].numpy()[row, :EXAMPLE_TOP].round(4).tolist()}
            for row, i in enumerate(top)]

        out = artifact_utils.get_single_instance(output_dict["report"])
        io_utils.write_string_file(os.path.join(out.uri, JSON_FILE), json.dumps(report, indent=1))
        io_utils.write_string_file(os.path.join(out.uri, HTML_FILE), render_html(report, plots(report)))
        out.set_int_custom_property("blessed", int(gate["blessed"]))
        out.set_int_custom_property("pushed", int(report["push"]["pushed"]))
        out.set_string_custom_property("pushed_version", report["push"]["version"])
        log.info("[report] %s", os.path.join(out.uri, HTML_FILE))


def _push_summary(pushed_model: Optional[types.Artifact], blessed: bool) -> Dict[str, Any]:
    def prop(name, kind):
        if pushed_model is None or not pushed_model.has_custom_property(name):
            return kind()
        get = pushed_model.get_int_custom_property if kind is int else pushed_model.get_string_custom_property
        return get(name)

    pushed = bool(prop("pushed", int))
    version, path = prop("pushed_version", str), prop("pushed_destination", str)
    if pushed:
        text = f"Pushed: version {version} at {path}."
    elif not blessed:
        text = "Not pushed: the gate refused the model; the previously pushed model stays served."
    else:
        text = "Not pushed."
    return {"pushed": pushed, "version": version, "path": path, "text": text}


class RunReportSpec(ComponentSpec):
    PARAMETERS = {"pipeline_name": ExecutionParameter(type=str)}
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies, optional=True),
        "catalog_report": ChannelParameter(type=CatalogReport, optional=True),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
        "transformed_examples": ChannelParameter(type=standard_artifacts.Examples),
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel, optional=True),
        # the candidate's lists, when blessed: its coverage@10 without asking the model again
        "batch_recommendations": ChannelParameter(type=standard_artifacts.InferenceResult, optional=True),
    }
    OUTPUTS = {"report": ChannelParameter(type=RunReportFile)}


class RunReport(base_component.BaseComponent):
    """Writes the run's HTML report (see the module docstring)."""

    SPEC_CLASS = RunReportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, pipeline_name: str, examples, transform_graph, transformed_examples,
                 model, model_run, evaluation, anomalies=None, catalog_report=None,
                 baseline_model=None, pushed_model=None, batch_recommendations=None):
        super().__init__(spec=RunReportSpec(
            pipeline_name=pipeline_name, examples=examples, anomalies=anomalies,
            catalog_report=catalog_report, transform_graph=transform_graph,
            transformed_examples=transformed_examples, model=model, model_run=model_run,
            baseline_model=baseline_model, evaluation=evaluation, pushed_model=pushed_model,
            batch_recommendations=batch_recommendations, report=types.Channel(type=RunReportFile)))
