"""The run report's figures: what components/run_report.py gathers from a run's artifacts into
`report.json`, one function per section (data, validation, spans, training, evaluation, gate,
push, example recommendations). The ranking metrics are models/ranking_metrics.py's; the page is drawn
from these figures by components/report_html.py and components/report_plots.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx import v1 as tfx
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components import evaluator as evaluator_lib
from components import pusher as pusher_lib
from components.catalog_check import REPORT_FILE as CATALOG_REPORT_FILE
from models import baselines, exporter, features, ranking_metrics, trainer
from models.examples import purchase_examples

MAX_K = features.SERVING_TOP_K  # recall@k curve: k = 1..MAX_K, the Evaluator's curve (components/evaluator.py)
COVERAGE_K = 10
log = logging.getLogger("recsys.report")

SERVED = "served"  # the baseline's label: the model served when the run started (components/baseline.py)
EXAMPLE_PRODUCTS = 5  # item-item examples: the most bought products
EXAMPLE_TOP = 8
BATCH = 1024
# purchases-per-user plot: a bar per count up to 9, then widening ranges (10-19, 20-49, 50-99,
# 100-199, ...), so a heavy tail (accounts with thousands of purchases) keeps bars of its own
SMALL_COUNTS = 9


def purchase_ranges(per_user: np.ndarray) -> List[Dict[str, Any]]:
    """Users by how many purchases each made: [{"label", "users", "purchases"}] per bucket, from 1
    up to the largest count (a bucket per count up to SMALL_COUNTS, then 1-2-5 steps: 10-19,
    20-49, 50-99, 100-199, ...); `purchases` is what that bucket's users bought, which shows how
    much of a split a few heavy accounts make (found by exploratory testing: accounts with
    150-3,524 purchases, 24% of them, were 6 users in one "30 or more" bar)."""
    per_user = np.asarray(per_user, dtype=np.int64)
    if not len(per_user):
        return []
    most = int(per_user.max())
    edges = list(range(1, min(most, SMALL_COUNTS) + 2))  # 1, 2, ..., up to 10
    step = 0
    while edges[-1] <= most:
        edges.append(edges[-1] * (2, 2.5, 2)[step % 3])
        edges[-1] = int(edges[-1])
        step += 1
    buckets = []
    for low, high in zip(edges, edges[1:]):
        mine = per_user[(per_user >= low) & (per_user < high)]
        label = f"{low:,}" if high == low + 1 else f"{low:,}-{high - 1:,}"
        buckets.append({"label": label, "users": int(len(mine)), "purchases": int(mine.sum())})
    return buckets

Purchases = Dict[str, np.ndarray]  # {"users": bytes[N], "products": int64[N]}


def _read_json(path: str) -> Any:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


# --- data ------------------------------------------------------------------------------------
def read_purchases(split_dir: str) -> Purchases:
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


def read_splits(examples: types.Artifact) -> Dict[str, Purchases]:
    """Split name -> its purchases, for every split of ExampleGen's examples."""
    return {split: read_purchases(artifact_utils.get_split_uri([examples], split))
            for split in artifact_utils.decode_split_names(examples.split_names)}


def _distribution(counts: np.ndarray) -> Dict[str, float]:
    if not len(counts):
        return {"mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0}
    return {"mean": float(counts.mean()), "median": float(np.median(counts)),
            "p90": float(np.percentile(counts, 90)), "max": int(counts.max())}


def repeated_pairs(users: np.ndarray, products: np.ndarray) -> Tuple[int, int]:
    """(how many purchases repeat the (user, product) pair of an earlier one, how many times the
    most repeated pair occurs). Without timestamps a repeat is a purchase made again or a row
    delivered twice; either way each row is a training example, and a repeated pair weighs more."""
    import pandas as pd

    if not len(products):
        return 0, 0
    # dropna=False: a row with a null id is a row of its own, not a repeat (found by exploratory
    # testing: a null user read as "1 purchase repeats a pair, one pair 1 times"; the validator
    # refuses the null)
    counts = pd.DataFrame({"user": users, "product": products}).value_counts(sort=False, dropna=False)
    return int(len(products) - len(counts)), int(counts.max())


def split_statistics(purchases: Purchases) -> Dict[str, Any]:
    """Counts, repeated (user, product) pairs and the purchases-per-user / per-product
    distributions of one split."""
    _, per_user = np.unique(purchases["users"], return_counts=True)
    _, per_product = np.unique(purchases["products"], return_counts=True)
    repeated, most = repeated_pairs(purchases["users"], purchases["products"])
    return {
        "purchases": int(len(purchases["products"])),
        "users": int(len(per_user)),
        "products": int(len(per_product)),
        "repeated_pairs": repeated, "most_repeated_pair": most,
        "purchases_per_user": _distribution(per_user),
        "purchases_per_product": _distribution(per_product),
        # for the plots: how many users bought n times; product counts, most bought first
        "purchase_ranges": purchase_ranges(per_user),
        "product_counts_desc": sorted(per_product.tolist(), reverse=True),
    }


def eval_split_of(splits: Sequence[str]) -> str:
    """The split the models are measured on: "eval", else the last by name."""
    if not splits:
        raise ValueError("the examples have no split: nothing to measure the models on")
    return "eval" if "eval" in splits else sorted(splits)[-1]


# --- validation ------------------------------------------------------------------------------
def anomaly_lines(anomalies: Optional[types.Artifact]) -> List[str]:
    """The validator's anomalies, one line each, in plain words."""
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


def span_figures(examples: types.Artifact, drift_report: Optional[types.Artifact]) -> Dict[str, Any]:
    """What ExampleGen read (the newest span, the training window, the eval file; `flat`: the
    flat layout, TFX's span 0) and the drift gate's figures (components/drift.py's drift.json),
    None without its artifact."""
    from components import drift, parquet_example_gen as example_gen, spans

    window = examples.get_string_custom_property(example_gen.WINDOW_SPANS_PROPERTY)
    return {
        "span": examples.get_int_custom_property(example_gen.SPAN_PROPERTY),
        "flat": bool(spans.is_flat(examples.get_string_custom_property(example_gen.FINGERPRINT_PROPERTY))),
        # dated span folders: their names, for a person (the numbers are days since 1970)
        "window_names": spans.window_names(
            window, examples.get_string_custom_property(example_gen.SPAN_TRAIN_FILES_PROPERTY)),
        "window_spans": window,
        "eval_source": examples.get_string_custom_property(example_gen.EVAL_SOURCE_PROPERTY),
        "drift": drift.read_report(drift_report.uri if drift_report is not None else None),
    }


def read_catalog_report(catalog_report: Optional[types.Artifact]) -> Optional[Dict[str, Any]]:
    """CatalogCheck's counts, None without its artifact."""
    if catalog_report is None:
        return None
    return _read_json(os.path.join(catalog_report.uri, CATALOG_REPORT_FILE))


# --- training --------------------------------------------------------------------------------
def training_figures(model_run: types.Artifact, model_uri: Optional[str] = None) -> Dict[str, Any]:
    """The Trainer's loss and examples/s per epoch, the model configuration it trained, and the
    facts it wrote into the model (`facts`: its training.json: data, warm or cold start, baseline;
    {} for a model without one)."""
    facts = (_read_json(os.path.join(path_utils.serving_model_path(model_uri), trainer.TRAINING_FACTS))
             if model_uri else None)
    return {
        "history": _read_json(os.path.join(model_run.uri, trainer.HISTORY_FILE)) or [],
        "model_config": _read_json(os.path.join(model_run.uri, trainer.MODEL_CONFIG_FILE)),
        "facts": facts or {},
    }


@dataclasses.dataclass
class TrainSplit:
    """The train purchases as the Trainer read them: Transform's vocabulary indices."""
    transform_output: tft.TFTransformOutput
    users: np.ndarray
    items: np.ndarray
    num_users: int
    num_items: int


def read_train_split(transform_graph: types.Artifact, transformed_examples: types.Artifact
                     ) -> TrainSplit:
    """Transform's train split and vocabulary sizes, read as the Trainer reads them."""
    transform_output = tft.TFTransformOutput(transform_graph.uri)
    accessor = tfx.components.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([transformed_examples], []),
        record_batch_factory=None, data_view_decode_fn=None)
    users, items = trainer.read_pairs(
        accessor, [os.path.join(artifact_utils.get_split_uri([transformed_examples], "train"), "*")],
        transform_output)
    return TrainSplit(transform_output, users, items,
                      num_users=transform_output.vocabulary_size_by_name(features.USER_VOCAB),
                      num_items=transform_output.vocabulary_size_by_name(features.PRODUCT_VOCAB))


def catalog_size(catalog: Optional[Dict[str, Any]], train: TrainSplit) -> int:
    """The catalog's number of products (CatalogCheck's), else the train vocabulary's: the
    denominator of coverage@10."""
    return (catalog or {}).get("catalog_products") or train.num_items


# --- evaluation ------------------------------------------------------------------------------
def saved_model_signatures(model_uri: str) -> Mapping:
    """Signature name -> callable of the serving SavedModel in a Model artifact."""
    return tf.saved_model.load(path_utils.serving_model_path(model_uri)).signatures


def popularity_module(train: TrainSplit) -> exporter.ServingModule:
    """The most-popular-products baseline in the serving module the models are exported with."""
    return exporter.ServingModule(
        baselines.PopularityModel(train.num_users, train.num_items, train.items),
        train.transform_output, train.users, train.items, top_k=min(MAX_K, train.num_items))


def module_signatures(module: exporter.ServingModule) -> Dict[str, Any]:
    """A serving module's signatures as callables, by name (they hold the module weakly: keep
    it alive while they are used)."""
    return {exporter.EVAL_SIGNATURE: module.evaluate, "serving_default": module.recommend,
            exporter.ITEM_ITEM_SIGNATURE: module.item_item}


def ranking_figures(signatures: Mapping, examples: Sequence[bytes]) -> Dict[str, Any]:
    """Metrics and recall@k curve of one model through its `evaluate` signature."""
    ranks = ranking_metrics.evaluate_ranks(signatures, examples, batch=BATCH)
    return {"metrics": ranking_metrics.purchase_metrics(ranks),
            "recall_at_k": ranking_metrics.recall_curve(ranks[:, 0], MAX_K)}


def coverage_at_10(signatures: Mapping, eval_users: np.ndarray, catalog_size: int) -> float:
    """The share of catalog products in at least one eval user's top 10 (`serving_default`)."""
    shown = ranking_metrics.served_products(signatures, np.unique(eval_users), COVERAGE_K, BATCH)
    return ranking_metrics.coverage(shown, catalog_size)


def coverage_from_batch_lists(recommendations_uri: str, model_path: str, signatures: Mapping,
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
    shown |= ranking_metrics.served_products(signatures, missing, COVERAGE_K, BATCH)
    return ranking_metrics.coverage(shown, catalog_size)


def _gated_model_figures(gate: Dict[str, Any], tfma_name: str, signatures: Mapping,
                         examples: Sequence[bytes], eval_users: np.ndarray, catalog_size: int,
                         coverage_from_lists: Optional[float] = None) -> Dict[str, Any]:
    """The candidate's or the served model's figures: TFMA's metrics (the ones the gate
    judged) and recall@k curve (an evaluation from before the curve existed is re-scored here),
    and coverage@10 (`coverage_from_lists` when known, else through `serving_default`)."""
    curve = gate["curves"].get(tfma_name)
    figures = {"recall_at_k": curve} if curve else ranking_figures(signatures, examples)
    figures["metrics"] = dict(gate["values"].get(tfma_name, {}))
    figures["coverage_at_10"] = (coverage_from_lists if coverage_from_lists is not None else
                                 coverage_at_10(signatures, eval_users, catalog_size))
    return figures


def sample_note(sampled: Optional[types.Artifact]) -> Optional[str]:
    """How the Evaluator's sample of eval users (components/eval_sample.py) was drawn, in words;
    None without one."""
    if sampled is None:
        return None
    count = {k: sampled.get_int_custom_property(k) for k in ("sampled_users", "eval_users", "eval_purchases")}
    return (f"a seeded sample of {count['sampled_users']:,} of the {count['eval_users']:,} eval users "
            f"(of {count['eval_purchases']:,} eval purchases in all)")


def reach(train: Purchases, measured: Purchases) -> Dict[str, int]:
    """How many of the measured purchases any model can hit, as the gate measures them (the
    `evaluate` signature, models/exporter.py). A purchase that repeats one of the user's train
    purchases never can: recommendations leave out what the user bought, so it ranks below every
    other product. Nor can a purchase by a user or of a product the train data does not hold:
    the gate ranks a purchase only when the model knows both, and counts the others as misses
    (serving still answers an unknown user, with the unknown user's list)."""
    users = np.concatenate([train["users"], measured["users"]])
    products = np.concatenate([train["products"], measured["products"]])
    _, user_code = np.unique(users.astype(bytes), return_inverse=True)
    _, product_code = np.unique(products, return_inverse=True)
    pair = user_code.astype(np.int64) * (int(product_code.max(initial=0)) + 1) + product_code
    n = len(train["products"])
    repeats = np.isin(pair[n:], pair[:n])
    unknown_user = ~np.isin(user_code[n:], user_code[:n])
    unknown_product = ~np.isin(product_code[n:], product_code[:n])
    return {"purchases": int(len(measured["products"])), "repeat_train_purchase": int(repeats.sum()),
            "unknown_user": int(unknown_user.sum()), "unknown_product": int(unknown_product.sum()),
            "hittable": int((~repeats & ~unknown_user & ~unknown_product).sum())}


def reach_text(counts: Dict[str, int], split: str, left_out: int = 0, served: bool = True) -> str:
    """`reach` in a sentence; `left_out`: the purchases the gate left out before (repeats of a
    pair the candidate or the served model trained on: components/evaluator.py); `served`: the
    gate compared with a served model (found by exploratory testing: a first run's report spoke
    of one)."""
    it = "it" if left_out == 1 else "them"
    why = (f"a purchase the candidate or the served model trained on, and the gate leaves {it} out for both "
           "(each model leaves out what the user bought, so only the other could hit one)" if served else
           f"a purchase the candidate trained on, and the gate leaves {it} out (its recommendations leave out "
           "what the user bought)")
    before = (f"{left_out:,} {split} purchase{'s' if left_out != 1 else ''} "
              f"repeat{'s' if left_out == 1 else ''} {why}. " if left_out else "")
    total = counts["purchases"]
    if not total:
        return before + f"The {split} split holds no other purchase." if left_out else \
            f"The {split} split holds no purchase."
    lost = total - counts["hittable"]
    if not lost:
        if total == 1:
            return before + ("The other one can be hit." if left_out else f"The one {split} purchase can be hit.")
        return before + (f"Every one of the other {total:,} can be hit." if left_out else
                         f"Every one of the {total:,} {split} purchases can be hit.")
    parts = [f"{counts[key]:,} {one if counts[key] == 1 else many}" for key, one, many in (
        ("repeat_train_purchase", "repeats a purchase its user made in the train data (recommendations "
                                  "leave those out)",
         "repeat a purchase the user made in the train data (recommendations leave those out)"),
        ("unknown_user", "is by a user the train data does not hold", "are by users the train data does not hold"),
        ("unknown_product", "is of a product it does not hold", "are of products it does not hold"))
        if counts[key]]
    other = "other " if left_out else ""
    return before + (
        f"{lost:,} of the {other}{total:,} {split} purchases ({lost / total:.1%}) count as misses "
        f"whatever the model, so no recall can exceed {counts['hittable'] / total:.4f}: "
        + ", ".join(parts) + " (the gate ranks a purchase only when the model knows its user and product).")


def reach_line(counts: Dict[str, int], split: str, left_out: int = 0, served: bool = True) -> str:
    """`reach_text`'s facts in fewer words, for the console's `[report]` line (the report and the
    run's log have the sentence): "eval: 4 repeats of a pair the candidate or the served model
    trained on, left out by the gate; 5 of the other 6 (83.3%) miss whatever the model (recall <=
    0.1667): 2 repeat a train purchase, 2 by unknown users, 2 of unknown products". Found by
    exploratory testing: the sentence made a console line of 384 columns."""
    models = "the candidate or the served model" if served else "the candidate"
    parts = [f"{left_out:,} repeat{'s' if left_out != 1 else ''} of a pair {models} trained on, "
             "left out by the gate"] if left_out else []
    total, hittable = counts["purchases"], counts["hittable"]
    other = "other " if left_out else ""
    if not total:
        parts.append(f"no {other}purchase")
    elif hittable == total:
        parts.append(f"every {other}one can be hit" if left_out else f"all {total:,} can be hit")
    else:
        kinds = ", ".join(f"{counts[key]:,} {what}" for key, what in (
            ("repeat_train_purchase", "repeat a train purchase"), ("unknown_user", "by unknown users"),
            ("unknown_product", "of unknown products")) if counts[key])
        parts.append(f"{total - hittable:,} of the {other}{total:,} ({(total - hittable) / total:.1%}) miss whatever "
                     f"the model (recall <= {hittable / total:.4f}): {kinds}")
    return f"{split}: " + "; ".join(parts)


def evaluation_figures(gate: Dict[str, Any], purchases: Dict[str, Purchases], catalog_size: int,
                       train: TrainSplit, candidate: Mapping, candidate_uri: str,
                       baseline_uri: Optional[str] = None,
                       recommendations_uri: Optional[str] = None, sample: Optional[str] = None,
                       left_out: int = 0) -> Dict[str, Any]:
    """The evaluation section: the candidate's, the served model's (`baseline_uri`) and the
    most-popular baseline's metrics, recall@k curves and coverage@10 on the eval split.
    `candidate`: the candidate's signatures; `recommendations_uri`: BatchRecommendations'
    artifact, whose lists give the candidate's coverage when they are its; `sample`: how the
    eval split in `purchases` was sampled (sample_note), when it was; `left_out`: how many eval
    purchases the gate left out (repeats: `purchases` holds the others)."""
    split = eval_split_of(list(purchases))
    eval_users, eval_products = purchases[split]["users"], purchases[split]["products"]
    examples = purchase_examples(eval_users, eval_products)
    counts = reach(purchases["train"], purchases[split]) if "train" in purchases and split != "train" else None
    reach_sentence = reach_text(counts, split, left_out, served=baseline_uri is not None) if counts else None
    if counts and (left_out or counts["hittable"] < counts["purchases"]):
        logging.info("[report] %s", reach_sentence)  # the log's, whole; the console's, short:
        log.info("[report] %s", reach_line(counts, split, left_out, served=baseline_uri is not None))

    lists_coverage = None
    if recommendations_uri is not None:
        lists_coverage = coverage_from_batch_lists(
            recommendations_uri, path_utils.serving_model_path(candidate_uri), candidate,
            eval_users, catalog_size)
    models = {"candidate": _gated_model_figures(gate, evaluator_lib.CANDIDATE, candidate, examples,
                                                eval_users, catalog_size, lists_coverage)}
    if baseline_uri is not None:
        models[SERVED] = _gated_model_figures(
            gate, evaluator_lib.BASELINE, saved_model_signatures(baseline_uri), examples,
            eval_users, catalog_size)
    popularity = popularity_module(train)
    popular = module_signatures(popularity)
    models["most popular"] = {**ranking_figures(popular, examples),
                              "coverage_at_10": coverage_at_10(popular, eval_users, catalog_size)}
    return {
        "split": split,
        "protocol": ((f"On {sample}: their {len(eval_products):,} {split} purchases, as the Evaluator "
                      "measured them. Each " if sample else
                      f"On the {split} split ({len(eval_products):,} purchases): each ") +
                     "purchase's rank among all products, the user's train purchases left "
                     "out; sampled accuracy against 100 uniformly drawn products. Per "
                     "purchase, as the gate computes them." +
                     (f" The {left_out:,} that repeat a purchase the candidate "
                      f"{'or the served model ' if baseline_uri else ''}trained on are left out, as the gate "
                      "leaves them out." if left_out else "")),
        "note": ("Candidate and served: TFMA's values, the ones the gate judged. Most "
                 "popular: every user gets the most bought train products (their own "
                 "purchases left out), through the same serving module. Coverage@10: the "
                 "share of catalog products in at least one eval user's top 10."),
        "reach": counts,
        "reach_text": reach_sentence,
        "models": models,
    }


# --- time and memory per component -----------------------------------------------------------
# A local run's console writes each component's seconds and peak memory into a file beside the
# run's log (runner/console.py, runner/memory.py) and names it in this variable while the
# pipeline runs; other runners (Vertex: each component's task has its own memory figures in the
# Vertex console) leave it unset.
COMPONENTS_FILE_ENV = "RECSYS_RUN_COMPONENTS"


def component_figures() -> Optional[Dict[str, Any]]:
    """{"measured": what the figures are, "components": [{"name", "state", "seconds",
    "peak_bytes"}]} of the components that finished so far in this run, None when the run has
    no such file."""
    path = os.environ.get(COMPONENTS_FILE_ENV)
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


# --- gate, push ------------------------------------------------------------------------------
def gate_figures(gate: Dict[str, Any]) -> Dict[str, Any]:
    """The gate's verdict and its table (components/evaluator.py's `gate_verdict`)."""
    return {"blessed": gate["blessed"], "verdict": gate["verdict"], "rows": gate["rows"],
            "compared_with_blessed": gate["has_baseline"]}


def push_summary(pushed_model: Optional[types.Artifact], blessed: bool, served: bool = True) -> Dict[str, Any]:
    """What the Pusher did, from its artifact's properties, in a sentence."""
    def prop(name, kind):
        if pushed_model is None or not pushed_model.has_custom_property(name):
            return kind()
        get = pushed_model.get_int_custom_property if kind is int else pushed_model.get_string_custom_property
        return get(name)

    pushed, already_served = bool(prop("pushed", int)), bool(prop(pusher_lib.ALREADY_SERVED_KEY, int))
    version, path = prop("pushed_version", str), prop("pushed_destination", str)
    if pushed and already_served:
        text = f"Already served: this model is version {version} at {path}; nothing new was pushed."
    elif pushed:
        text = f"Pushed: version {version} at {path}."
    elif not blessed:
        text = ("Not pushed: the gate refused the model; the previously pushed model stays served." if served else
                "Not pushed: the gate refused the model; no model is served yet (none was ever pushed here).")
    elif prop("not_pushed_reason", str):
        text = f"Not pushed: {prop('not_pushed_reason', str)}."
    else:
        text = "Not pushed."
    return {"pushed": pushed, "already_served": already_served, "version": version, "path": path, "text": text}


# --- the runs so far ---------------------------------------------------------------------------
def history_row(report: Dict[str, Any]) -> Dict[str, Any]:
    """One run in the history: its span, how training started, the candidate's gated metrics
    (TFMA's, the gate's; which of them are margins over popularity), the verdict and the version
    pushed."""
    facts = report.get("training", {}).get("facts") or {}
    data, start = facts.get("data") or {}, facts.get("start") or {}
    gated = [row for row in report["gate"]["rows"] if row["threshold"] != "not gated"]
    candidate = report["evaluation"]["models"]["candidate"]["metrics"]
    spans = report.get("spans") or {}
    return {"created": report["created"], "span": data.get("span"), "window_spans": data.get("window_spans"),
            # how a person names the data: the flat layout has no span; dated spans, their folders
            "flat": bool(spans.get("flat")), "window_names": spans.get("window_names"),
            "start": start.get("kind"), "from_version": start.get("from_version"),
            "training_seconds": (facts.get("training") or {}).get("seconds"),
            "metrics": {row["metric"]: candidate.get(row["metric"]) for row in gated},
            # the relative margins over popularity, said as the gate says them (+97.6%)
            "margins": [row["metric"] for row in gated if row.get("kind") == evaluator_lib.MARGIN],
            # the gate's least margin (drawn as a rule); not in reports before it was kept
            "margin_bounds": {row["metric"]: row["bound"] for row in gated
                              if row.get("kind") == evaluator_lib.MARGIN and row.get("bound") is not None},
            # the rule of every metric the gate judged by (--gate-bound, --gate-popularity-margin):
            # the table names the runs judged by other rules than the newest
            "gate_rules": {row["metric"]: row["threshold"] for row in report["gate"]["rows"]
                           if row["threshold"] != "not gated"},
            "blessed": report["gate"]["blessed"], "pushed": report["push"]["pushed"],
            "already_served": bool(report["push"].get("already_served")),  # not in reports before it was kept
            "version": report["push"]["version"]}


def _same_metrics(a: Dict[str, Optional[float]], b: Dict[str, Optional[float]]) -> bool:
    return a.keys() == b.keys() and all(
        (a[k] is None) == (b[k] is None) and (a[k] is None or math.isclose(a[k], b[k], rel_tol=1e-6)) for k in a)


def runs_so_far(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The history's rows (history_row, oldest first, this run last) as a reader counts the runs:
    one row per model judged. A run that found its model already served, judged as the row before
    it (the same version, the same gated metrics, the same gate rules), is no row of its own: the
    row before it counts it, `reruns` (their dates; `rerun_is_this_run` when this run is one). So
    a second `make run` with nothing changed (everything up to the Evaluator from the cache, its
    Pusher finding the model served: nothing new to say) is not a second run of version N (found by
    exploratory testing: it had a row of its own, the same figures as the run that pushed it). A
    rerun that says something is kept: its model already served after another model (a rollback),
    other figures (another --eval-users), other gate rules."""
    shown: List[Dict[str, Any]] = []
    for i, row in enumerate(rows):
        last = shown[-1] if shown else None
        if (last is not None and row.get("already_served") and row["pushed"] and last["pushed"]
                and str(last["version"]) == str(row["version"]) and _same_metrics(last["metrics"], row["metrics"])
                and last.get("gate_rules") == row.get("gate_rules")):
            shown[-1] = {**last, "reruns": [*last.get("reruns", []), row["created"]]}
            if i == len(rows) - 1:
                shown[-1]["rerun_is_this_run"] = True
            continue
        shown.append(row)
    return shown


def earlier_reports(report_uri: str, file_name: str) -> List[Dict[str, Any]]:
    """The reports of the earlier runs of this pipeline, oldest first: the local runner keeps
    every execution's report beside the others (`<pipeline root>/RunReport/report/<execution
    id>/`), so they are the directories next to this one with a smaller id. A compiled pipeline
    (Vertex AI, Kubeflow) keeps each run's outputs apart: none are found there."""
    parent, own = os.path.split(report_uri.rstrip("/"))
    if not own.isdigit() or not tf.io.gfile.isdir(parent):
        return []
    earlier = sorted((int(d.rstrip("/")) for d in tf.io.gfile.listdir(parent)
                      if d.rstrip("/").isdigit() and int(d.rstrip("/")) < int(own)))
    reports = [_read_json(os.path.join(parent, str(d), file_name)) for d in earlier]
    return [r for r in reports if r and "gate" in r and "evaluation" in r]


# --- example recommendations -----------------------------------------------------------------
def item_item_examples(candidate: Mapping, train: TrainSplit) -> List[Dict[str, Any]]:
    """The candidate's `call_item_item` for the EXAMPLE_PRODUCTS most bought train products:
    their EXAMPLE_TOP most similar products and scores."""
    counts = np.bincount(train.items[train.items < train.num_items], minlength=train.num_items)
    top = np.argsort(-counts, kind="stable")[:EXAMPLE_PRODUCTS]
    product_ids = [int(p) for p in train.transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)]
    asked = tf.constant([product_ids[i] for i in top], tf.int64)
    similar = candidate[exporter.ITEM_ITEM_SIGNATURE](item=asked)
    return [{"product": product_ids[i], "purchases": int(counts[i]),
             "similar": similar["products"].numpy()[row, :EXAMPLE_TOP].tolist(),
             "scores": similar["scores"].numpy()[row, :EXAMPLE_TOP].round(4).tolist()}
            for row, i in enumerate(top)]


# --- requests served -----------------------------------------------------------------------------
MONITORING_LATEST = "latest.json"  # written by serving/monitor.py (make monitor) in its output directory


def monitoring_figures(monitoring_dir: Optional[str]) -> Optional[Dict[str, Any]]:
    """The headline figures of make monitor's latest report (its `latest.json`: when, how many
    requests, latencies, each threshold and whether it was crossed, the report's path), None when
    there is none."""
    if not monitoring_dir:
        return None
    latest = _read_json(os.path.join(monitoring_dir, MONITORING_LATEST))
    if not latest or "html" not in latest:
        return None
    return latest
