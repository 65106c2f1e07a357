"""DriftGate: the newest span of purchases against the span before it, before anything learns
from it.

ExampleGen (components/parquet_example_gen.py) records on its Examples artifact the newest span,
the span before it and their train files; this component reads those two spans and compares
them with TFDV, as the TFX paper validates data span against span:

- product popularity: TFDV statistics of both spans on Beam (the path StatisticsGen runs: exact
  top-k counts), computed with the curated schema so that `productId` gets categorical stats,
  then `tfdv.validate_statistics(newest, schema, previous_statistics=previous)` with the schema's
  drift comparators: the L-infinity distance and the Jensen-Shannon divergence of the two
  products' distributions, and the ratio of row counts (`num_examples_drift_comparator`);
- how much each user buys: the number of purchases of each user as a categorical feature (1..10,
  then 16, 32, 64...), compared with TFDV's Jensen-Shannon divergence, and the share of purchases
  made by the top 1% of users, newest over previous (TFDV has no such statistic). A bigger span is
  not a shift: it may hold more customers who buy as before, or the same customers buying more
  over a longer time. So the counts are compared twice, at equal rows (the larger span thinned,
  seeded) and at equal users (a seeded sample of the larger span's users, each with all their
  rows), and the smaller divergence counts; the top users' share (a share: the same for
  customers who buy twice as much) is taken at equal users (`per_user_comparison`). One new
  account buying a large share (a reseller or a bot arriving) may move neither where the heavy
  tail already holds the top share, so the user ids' distributions are compared too, with TFDV's
  L-infinity distance: the largest change of one buyer's share (TFDV names the account). The
  figures name the newest span's heaviest buyer;
- repeats: the newest span's train files byte-identical to a file of another span or to another
  of its own, and the share of its (user, product) rows already in the previous span (the same
  file dropped twice, or mostly the same rows);
- the ratio of row counts is also checked here: TFDV's comparator says nothing when a span has
  no rows, and an empty span is no span to train on.

Over a threshold (names: THRESHOLDS; values: pipeline/configs.py DriftConfig) the component fails
with DriftError naming each measure, its value and its threshold: Transform depends on it, so
nothing is trained on that span (the run exits with code 4). With `accept_drift` the span goes
through and the report says so; the acceptance is recorded under `acceptances_dir`, keyed by the
content of both spans, so later runs on the same spans accept it too (a late span's acceptance by
its own content: later runs accept it whatever their newest span, and say so). A span stopped
for its own measures is recorded there too (`stopped_path`): later runs whose window holds it stop
for it, until it is accepted, passes as the newest span, or changes. Within the thresholds the
figures are logged (`recsys.drift`, on the console) and written to the `drift_report` artifact
(`drift.json`, TFDV's anomalies `SchemaDiff.pb`, both spans' statistics) that the run report and
the console's summary read. A single span (the flat layout) has nothing to compare: the report
says so and the run goes on.

Why not TFX's DistributionValidator: in 1.21 it compares two statistics artifacts but never
stops a run, drops some anomaly types, and cannot count purchases per user; the statistics
artifact of the run describes the training window, not the newest span.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_data_validation as tfdv
from apache_beam.io import parquetio
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx import types
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, json_utils

from components import model_card, model_versions, parquet_example_gen, spans
from models import features

log = logging.getLogger("recsys.drift")  # the console shows it (runner/console.py)

REPORT_FILE = "drift.json"
ANOMALIES_FILE = "SchemaDiff.pb"
USER_ANOMALIES_FILE = "SchemaDiff-purchases_per_user.pb"
STATS_FILE = "FeatureStats.pb"
REJECTED_DIR = "rejected"  # <pipeline_root>/DriftGate/rejected/<execution id>/, as the validator's
PER_USER = "purchases_per_user"
TOP_USERS = 0.01  # "the top 1% of users"
SAMPLE_SEED = 0

# The thresholds, by name (their values: pipeline/configs.py DriftConfig; their meaning: docs/pipeline.md)
PRODUCT_L_INFINITY = "product_l_infinity"  # max |p_new(v) - p_prev(v)| over products (TFDV)
PRODUCT_JENSEN_SHANNON = "product_jensen_shannon"  # JSD of the product distributions, 0..1 (TFDV)
MIN_ROWS_RATIO = "min_rows_ratio"  # rows newest / previous at least this (TFDV num_examples comparator)
MAX_ROWS_RATIO = "max_rows_ratio"  # ... and at most this
PER_USER_JENSEN_SHANNON = "purchases_per_user_jensen_shannon"  # JSD of purchases per user (TFDV)
USER_L_INFINITY = "user_l_infinity"  # max |p_new(u) - p_prev(u)| over users (TFDV): one buyer's rise
TOP_USERS_SHARE_RATIO = "top_users_share_ratio"  # top 1% users' share, newest / previous, at most x and 1/x
REPEATED_ROWS = "repeated_rows"  # share of the newest span's purchases also in the previous span
# when at most this share of the newest span's users make half of its repeats, they are named
REPEAT_BUYERS_SHARE = 0.05
THRESHOLDS = (PRODUCT_L_INFINITY, PRODUCT_JENSEN_SHANNON, MIN_ROWS_RATIO, MAX_ROWS_RATIO,
              PER_USER_JENSEN_SHANNON, TOP_USERS_SHARE_RATIO, USER_L_INFINITY, REPEATED_ROWS)

# The report's measures, in its order (their names are read back: the run report)
MEASURE_NAMES = (PRODUCT_LINF_NAME, PRODUCT_JSD_NAME, ROWS_NAME, PER_USER_NAME, TOP_SHARE_NAME, USER_LINF_NAME,
                 REPEATED_NAME) = (
    f"{features.PRODUCT_KEY} L-infinity distance", f"{features.PRODUCT_KEY} Jensen-Shannon divergence",
    "rows, newest / previous", "purchases per user, Jensen-Shannon divergence",
    "top 1% of users' share of purchases, newest / previous", f"{features.USER_KEY} L-infinity distance",
    "purchases repeated from the previous span")


# How each measure's threshold(s) bound it (the one judgement: figures_of, and
# benchmarks/drift_calibration.py when it tries thresholds on a user's spans): UPPER, at most the
# threshold; RANGE, between the two; EITHER_WAY, between 1/x and x
UPPER, RANGE, EITHER_WAY = "upper", "range", "either way"
BOUNDS = {
    PRODUCT_LINF_NAME: (UPPER, (PRODUCT_L_INFINITY,)),
    PRODUCT_JSD_NAME: (UPPER, (PRODUCT_JENSEN_SHANNON,)),
    ROWS_NAME: (RANGE, (MIN_ROWS_RATIO, MAX_ROWS_RATIO)),
    PER_USER_NAME: (UPPER, (PER_USER_JENSEN_SHANNON,)),
    TOP_SHARE_NAME: (EITHER_WAY, (TOP_USERS_SHARE_RATIO,)),
    USER_LINF_NAME: (UPPER, (USER_L_INFINITY,)),
    REPEATED_NAME: (UPPER, (REPEATED_ROWS,)),
}


def outside(name: str, value: float, thresholds: Dict[str, float]) -> bool:
    """Whether the measure `name` (MEASURE_NAMES) at `value` is over its threshold(s)."""
    bound, names = BOUNDS[name]
    if bound == UPPER:
        return value > thresholds[names[0]]
    if bound == RANGE:
        return not thresholds[names[0]] <= value <= thresholds[names[1]]
    return not 1 / thresholds[names[0]] <= value <= thresholds[names[0]]


def limit_text(name: str, thresholds: Dict[str, float]) -> str:
    """The measure's limit as the report says it: "<= 0.006", "0.4 to 2.5", "0.667 to 1.5"."""
    bound, names = BOUNDS[name]
    if bound == UPPER:
        return f"<= {thresholds[names[0]]:g}"
    if bound == RANGE:
        return f"{thresholds[names[0]]:g} to {thresholds[names[1]]:g}"
    return f"{1 / thresholds[names[0]]:.3g} to {thresholds[names[0]]:g}"


class DriftError(RuntimeError):
    """The newest span drifted from the previous one, or repeats it; the message names each
    measure over its threshold."""


class DriftReport(artifact.Artifact):
    # Kubeflow V2 restores "<namespace>.<Class>" by import in each container:
    # components/__init__.py exposes it as components.DriftReport.
    TYPE_NAME = "components.DriftReport"


def check_thresholds(thresholds: Dict[str, float]) -> None:
    """ValueError naming an unknown or missing threshold, or a value out of its range."""
    unknown, missing = set(thresholds) - set(THRESHOLDS), set(THRESHOLDS) - set(thresholds)
    if unknown or missing:
        said = ", ".join(filter(None, [f"unknown {', '.join(sorted(unknown))}" if unknown else "",
                                       f"missing {', '.join(sorted(missing))}" if missing else ""]))
        raise ValueError(f"drift thresholds: {said} (known: {', '.join(THRESHOLDS)})")
    for name, value in thresholds.items():
        if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"drift threshold {name} must be a number >= 0, got {value!r}")
    if thresholds[MIN_ROWS_RATIO] > thresholds[MAX_ROWS_RATIO]:
        raise ValueError(f"drift thresholds: {MIN_ROWS_RATIO} {thresholds[MIN_ROWS_RATIO]} is above "
                         f"{MAX_ROWS_RATIO} {thresholds[MAX_ROWS_RATIO]}")
    if thresholds[TOP_USERS_SHARE_RATIO] < 1:
        raise ValueError(f"drift threshold {TOP_USERS_SHARE_RATIO} is a ratio allowed either way: "
                         f"1 or more, got {thresholds[TOP_USERS_SHARE_RATIO]}")
    for name in (PRODUCT_JENSEN_SHANNON, PER_USER_JENSEN_SHANNON, USER_L_INFINITY, REPEATED_ROWS):
        if thresholds[name] > 1:
            raise ValueError(f"drift threshold {name} is at most 1 (a divergence or a share), "
                             f"got {thresholds[name]}")


# --- reading the spans ------------------------------------------------------------------------
def read_span(files: Sequence[str]) -> pa.Table:
    """The user and product columns of a span's train files (user ids as binary, products int64)."""
    tables = []
    for path in files:
        table = parquet_example_gen.read_parquet(path, [features.USER_KEY, features.PRODUCT_KEY])
        tables.append(pa.table({
            features.USER_KEY: pc.cast(table.column(features.USER_KEY), pa.binary()),
            features.PRODUCT_KEY: pc.cast(table.column(features.PRODUCT_KEY), pa.int64())}))
    return pa.concat_tables(tables) if tables else pa.table({
        features.USER_KEY: pa.array([], pa.binary()), features.PRODUCT_KEY: pa.array([], pa.int64())})


def span_name(files: Sequence[str], number: int) -> str:
    """The span's folder name (`span-3`, `2024-03-02`), from its files' directory."""
    return spans.folder_of(files) or f"span {number}"


# --- what is measured -------------------------------------------------------------------------
def _repeated(newest: pa.Table, previous: pa.Table) -> pa.Table:
    """The newest span's rows whose (user, product) pair the previous span has."""
    if not newest.num_rows or not previous.num_rows:
        return newest.slice(0, 0)
    keys = [features.USER_KEY, features.PRODUCT_KEY]
    known = previous.group_by(keys).aggregate([])
    return newest.join(known, keys=keys, join_type="left semi")


def repeats_of(newest: pa.Table, previous: pa.Table, top: int = 3) -> Dict[str, Any]:
    """The newest span's rows that repeat a (user, product) pair of the previous span: how many,
    by how many users, and the `top` users with most ([user id, rows]). A file dropped twice
    repeats every user's rows; customers who buy the same products span after span (a reseller
    restocking) repeat theirs: the users tell them apart (found by exploratory testing: 20
    restocking accounts read as "the same file dropped twice")."""
    repeated = _repeated(newest, previous)
    if not repeated.num_rows:
        return {"rows": 0, "users": 0, "half_users": 0, "top_users": []}
    counts = repeated.group_by(features.USER_KEY).aggregate([(features.PRODUCT_KEY, "count")])
    counts = counts.sort_by([(f"{features.PRODUCT_KEY}_count", "descending")])
    per_user = np.asarray(counts.column(f"{features.PRODUCT_KEY}_count"), np.int64)
    half = int(np.searchsorted(np.cumsum(per_user), (repeated.num_rows + 1) // 2) + 1)
    users = counts.column(features.USER_KEY).to_pylist()[:top]
    return {"rows": repeated.num_rows, "users": counts.num_rows, "half_users": half,
            "top_users": [[u.decode() if isinstance(u, bytes) else str(u), int(n)]
                          for u, n in zip(users, per_user[:top])]}


def equal_size(newest: pa.Table, previous: pa.Table, seed: int = SAMPLE_SEED) -> Tuple[pa.Table, pa.Table]:
    """Both spans at the smaller one's row count: the larger is subsampled, seeded."""
    rows = min(newest.num_rows, previous.num_rows)

    def sample(table):
        if table.num_rows <= rows:
            return table
        keep = np.sort(np.random.default_rng(seed).choice(table.num_rows, size=rows, replace=False))
        return table.take(pa.array(keep))
    return sample(newest), sample(previous)


def equal_users(newest: pa.Table, previous: pa.Table, seed: int = SAMPLE_SEED) -> Tuple[pa.Table, pa.Table]:
    """Both spans at the smaller one's number of users: the larger keeps a seeded sample of its
    users, each with all their rows (each user's count as it is)."""
    users = [pc.unique(t.column(features.USER_KEY)) if t.num_rows else pa.array([]) for t in (newest, previous)]
    size = min(len(u) for u in users)

    def sample(table, distinct):
        if len(distinct) <= size:
            return table
        keep = distinct.take(pa.array(np.sort(np.random.default_rng(seed).choice(len(distinct), size, replace=False))))
        return table.filter(pc.is_in(table.column(features.USER_KEY), value_set=keep))
    return sample(newest, users[0]), sample(previous, users[1])


def _user_counts(table: pa.Table) -> Tuple[pa.ChunkedArray, np.ndarray]:
    """The table's users and each one's number of rows (purchases), in the same order."""
    counted = table.group_by(features.USER_KEY).aggregate([(features.PRODUCT_KEY, "count")])
    return counted.column(features.USER_KEY), counted.column(f"{features.PRODUCT_KEY}_count").to_numpy()


def heaviest_user(table: pa.Table) -> Optional[Tuple[str, int, float]]:
    """(user id, purchases, share of the table's rows) of the user with the most rows."""
    if not table.num_rows:
        return None
    users, counts = _user_counts(table)
    top = int(np.argmax(counts))
    user = users[top].as_py()
    user = user.decode("utf-8", "replace") if isinstance(user, bytes) else str(user)
    return user, int(counts[top]), float(counts[top] / table.num_rows)


def purchases_per_user(table: pa.Table) -> np.ndarray:
    """Each user's number of purchases (rows) in the table."""
    if not table.num_rows:
        return np.array([], dtype=np.int64)
    return _user_counts(table)[1].astype(np.int64)


def purchase_buckets(counts: np.ndarray) -> np.ndarray:
    """Purchases per user as categories: 1..10 as they are, then the next power of two (16, 32,
    64, ...): a heavy tail keeps a few categories, so TFDV's distribution compares them all."""
    counts = np.asarray(counts, dtype=np.int64)
    power = np.exp2(np.ceil(np.log2(np.maximum(counts, 1)))).astype(np.int64)
    return np.where(counts <= 10, counts, power)


def top_users_share(counts: np.ndarray, fraction: float = TOP_USERS) -> float:
    """The share of purchases made by the top `fraction` of users (at least one user)."""
    if not len(counts) or not counts.sum():
        return 0.0
    top = max(1, int(len(counts) * fraction))
    return float(np.sort(counts)[::-1][:top].sum() / counts.sum())


def per_user_comparison(newest: pa.Table, previous: pa.Table, schema: schema_pb2.Schema
                        ) -> Tuple[anomalies_pb2.Anomalies, Tuple[float, float]]:
    """How much each user buys, newest against previous: TFDV's anomalies of the purchases per
    user (`schema`: per_user_schema) and the top users' shares (newest, previous).

    Spans differ in size, and a bigger span is not a shift: it may hold more customers who buy as
    before, or the same customers buying more over a longer time. Compared at equal rows
    (`equal_size`: thinning the larger span lowers every count, as if its customers bought
    less) the first looks like a shift; at equal users (`equal_users`: every count as it is) the
    second does. The divergence of the counts is taken both ways and the smaller one counts: a
    real shift in how much users buy (heavier buyers, a bot) shows in both. The top users' share
    is a share, the same for customers who buy twice as much: it is taken at equal users."""
    comparisons = []
    for sampled in (equal_size(newest, previous), equal_users(newest, previous)):
        counts = [purchases_per_user(t) for t in sampled]
        stats = [per_user_statistics(c, schema) for c in counts]
        anomalies = tfdv.validate_statistics(stats[0], schema, previous_statistics=stats[1])
        divergence = drift_measurements(anomalies).get((PER_USER, "JENSEN_SHANNON_DIVERGENCE"), 0.0)
        comparisons.append((divergence, anomalies, (top_users_share(counts[0]), top_users_share(counts[1]))))
    return min(comparisons, key=lambda c: c[0])[1], comparisons[1][2]


def span_schema(curated: schema_pb2.Schema, thresholds: Dict[str, float]) -> schema_pb2.Schema:
    """The curated schema with the drift comparators of the product and user features and the
    row ratio."""
    schema = schema_pb2.Schema()
    schema.CopyFrom(curated)
    found = {f.name: f for f in schema.feature if f.name in (features.PRODUCT_KEY, features.USER_KEY)}
    for name in (features.PRODUCT_KEY, features.USER_KEY):
        if name not in found:
            raise ValueError(f"the schema has no feature {name}")
    product = found[features.PRODUCT_KEY]
    product.drift_comparator.infinity_norm.threshold = thresholds[PRODUCT_L_INFINITY]
    product.drift_comparator.jensen_shannon_divergence.threshold = thresholds[PRODUCT_JENSEN_SHANNON]
    found[features.USER_KEY].drift_comparator.infinity_norm.threshold = thresholds[USER_L_INFINITY]
    rows = schema.dataset_constraints.num_examples_drift_comparator
    rows.min_fraction_threshold = thresholds[MIN_ROWS_RATIO]
    rows.max_fraction_threshold = thresholds[MAX_ROWS_RATIO]
    return schema


def per_user_schema(thresholds: Dict[str, float]) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    feature = schema.feature.add(name=PER_USER, type=schema_pb2.INT)
    feature.int_domain.is_categorical = True
    feature.drift_comparator.jensen_shannon_divergence.threshold = thresholds[PER_USER_JENSEN_SHANNON]
    return schema


def per_user_statistics(counts: np.ndarray, schema: schema_pb2.Schema
                        ) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of the per-user purchase categories (a few distinct values: the in-memory
    path counts them exactly)."""
    import pandas as pd

    frame = pd.DataFrame({PER_USER: purchase_buckets(counts)})
    return tfdv.generate_statistics_from_dataframe(frame, stats_options=tfdv.StatsOptions(schema=schema), n_jobs=1)


def drift_measurements(anomalies: anomalies_pb2.Anomalies) -> Dict[Tuple[str, str], float]:
    """{(feature, "L_INFTY" | "JENSEN_SHANNON_DIVERGENCE" | ...): value} from TFDV's drift_skew_info."""
    return {(".".join(info.path.step), anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type)): m.value
            for info in anomalies.drift_skew_info for m in info.drift_measurements}


def anomaly_detail(anomalies: anomalies_pb2.Anomalies, feature: str, kind: str) -> str:
    """TFDV's description of a drift anomaly of `feature` (e.g. the value with the largest
    difference), or ""."""
    info = anomalies.anomaly_info.get(feature)
    for reason in (info.reason if info is not None else []):
        if anomalies_pb2.AnomalyInfo.Type.Name(reason.type) == kind:
            return reason.description
    return ""


# How the purchases per user are compared (per_user_comparison), in plain words: at equal rows
# (the larger span thinned to the smaller one's rows) and at equal users (a sample of the larger
# span's users, each with all their rows), and the smaller of the two divergences counts
PER_USER_DETAIL = "compared at equal rows and at equal users (the larger span sampled down); the smaller divergence"


def heaviest_text(span: str, heaviest: Optional[Tuple[str, int, float]]) -> str:
    """The heaviest buyer in words ("the heaviest buyer of span-3: <id>, 46 purchases (0.14%)"),
    "" without one."""
    if not heaviest:
        return ""
    return f"the heaviest buyer of {span}: {heaviest[0]}, {heaviest[1]:,} purchases ({heaviest[2]:.2%})"


def _measure(name: str, value: float, thresholds: Dict[str, float], detail: str = "",
             also: bool = False) -> Dict[str, Any]:
    """A measure of the report, over its threshold(s) (`outside`) or when `also` says so."""
    return {"name": name, "value": float(value), "limit": limit_text(name, thresholds),
            "over": bool(also or outside(name, value, thresholds)), "detail": detail}


def _value(value: Optional[float], form: str) -> str:
    return "-" if value is None else f"{value:{form}}"


def figures_of(newest: Dict[str, Any], previous: Dict[str, Any],
               span_anomalies: anomalies_pb2.Anomalies, user_anomalies: anomalies_pb2.Anomalies,
               shares: Tuple[float, float], repeats: Dict[str, Any],
               thresholds: Dict[str, float],
               heaviest: Optional[Tuple[str, int, float]] = None) -> Dict[str, Any]:
    """The report's figures: each measure with its value, its limit and whether it is over.

    `span_anomalies`: TFDV's, of the two spans' statistics (products, user ids, row count);
    `user_anomalies`: of their purchases per user (per_user_comparison);
    `newest`/`previous`: {"span", "name", "rows", "files"}; `shares`: the top users' shares
    (newest, previous); `repeats`: {"identical_files": [[newest file, other file]], "rows"};
    `heaviest`: the newest span's heaviest buyer (user id, purchases, share), named beside the
    first per-user measure (and as `heaviest_buyer`, for the problem lines)."""
    measured = drift_measurements(span_anomalies)
    per_user = drift_measurements(user_anomalies)
    linf = measured.get((features.PRODUCT_KEY, "L_INFTY"), 0.0)
    user_linf = measured.get((features.USER_KEY, "L_INFTY"), 0.0)
    jsd = measured.get((features.PRODUCT_KEY, "JENSEN_SHANNON_DIVERGENCE"), 0.0)
    user_jsd = per_user.get((PER_USER, "JENSEN_SHANNON_DIVERGENCE"), 0.0)
    ratio = newest["rows"] / previous["rows"] if previous["rows"] else float("inf")
    share_ratio = shares[0] / shares[1] if shares[1] else 1.0
    repeated_share = repeats["rows"] / newest["rows"] if newest["rows"] else 0.0
    heavy = heaviest_text(newest.get("name", "the newest span"), heaviest)
    identical = "".join(f"; {_short(a)} is byte-identical to {_short(b)}"
                        for a, b in repeats["identical_files"])
    empty = [span["name"] for span in (newest, previous) if not span["rows"]]
    measures = [
        _measure(PRODUCT_LINF_NAME, linf, thresholds,
                 anomaly_detail(span_anomalies, features.PRODUCT_KEY, "COMPARATOR_L_INFTY_HIGH")),
        _measure(PRODUCT_JSD_NAME, jsd, thresholds),
        # TFDV's comparator says nothing when a span has no rows: the ratio is checked here too
        _measure(ROWS_NAME, ratio, thresholds, f"{newest['rows']:,} vs {previous['rows']:,} rows",
                 also=bool(span_anomalies.dataset_anomaly_info.reason)),
        # the heaviest buyer said once, on the first of the two measures of how much users buy
        # (found by a reviewer of the replay's report: the same note in two rows)
        _measure(PER_USER_NAME, user_jsd, thresholds, PER_USER_DETAIL + (f"; {heavy}" if heavy else "")),
        _measure(TOP_SHARE_NAME, share_ratio, thresholds, f"{shares[0]:.4f} vs {shares[1]:.4f}, at equal users"),
        _measure(USER_LINF_NAME, user_linf, thresholds,
                 anomaly_detail(span_anomalies, features.USER_KEY, "COMPARATOR_L_INFTY_HIGH")),
        _measure(REPEATED_NAME, repeated_share, thresholds,
                 f"{repeats['rows']:,} of {newest['rows']:,} rows{identical}", also=bool(repeats["identical_files"])),
    ]
    if empty:  # a span with no rows has no distribution to compare: the row count says it all
        why = f"not measured: {' and '.join(empty)} {'have' if len(empty) > 1 else 'has'} no rows"
        measures = [m if m["name"] in (ROWS_NAME, REPEATED_NAME) else {**m, "value": None, "over": False, "detail": why}
                    for m in measures]
    return {"compared": True, "newest": newest, "previous": previous, "measures": measures,
            "drifted": any(m["over"] for m in measures),
            # the problem lines name it beside the top users' share when that is over alone
            **({"heaviest_buyer": heavy} if heavy and not empty else {}),
            "repeats": {"identical_files": [list(pair) for pair in repeats["identical_files"]],
                        "rows": repeats["rows"], "share_over": repeated_share > thresholds[REPEATED_ROWS],
                        "users": repeats.get("users"), "half_users": repeats.get("half_users"),
                        "top_users": repeats.get("top_users") or []}}


def _short(path: str) -> str:
    """`span-2/file.parquet`: a file by its folder and name."""
    return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))


def _served_spans(serving_model_dir: str):
    """(the served version, the spans it trained on), (None, []) when nothing is served or it does
    not say its spans (training.json), and [] for the flat layout."""
    from models import trainer

    served = model_versions.served(serving_model_dir) if serving_model_dir else None
    facts = trainer.read_training_facts(served.path) if served else None
    trained = spans.span_numbers(((facts or {}).get("data") or {}).get("window_spans"))
    return served, ([] if trained == [0] else trained)


def older_than_served(window: Sequence[int], span_files: Dict[int, List[str]], serving_model_dir: str
                      ) -> Optional[Dict[str, Any]]:
    """When this run's newest span is older than the newest span the served model trained on (a
    --data-dir pointing at an older copy of the data?): the spans and the version; else None.
    Found by exploratory testing: a run on spans 1-3 after a model of spans 3-5 was served went
    through without a word, and pushed."""
    served, trained = _served_spans(serving_model_dir)
    if not trained or not window or max(window) >= max(trained):
        return None
    dated = spans.dated_folders(span_files)
    name = spans.folder_of(span_files.get(max(window)) or []) or f"span {max(window)}"
    return {"newest": name, "served_version": served.number,
            "served_newest": dated.get(max(trained), f"span {max(trained)}")}


def late_spans(window: Sequence[int], span_files: Dict[int, List[str]], serving_model_dir: str
               ) -> List[Dict[str, Any]]:
    """The spans of this run's `window` that arrived late: between the oldest and the newest span
    the served model trained on, yet not among its spans (a backfill, or a folder misnamed; an
    older span is no sign: the served model's window may have been narrower). The gate compares
    only the newest span with the one before it, so such a span was never compared with the span
    before it itself. The served model's spans are its training.json's (the newest complete
    version under `serving_model_dir`, components/model_versions.py); [] when nothing is served
    or it does not say its spans."""
    served, trained = _served_spans(serving_model_dir)
    if not trained:  # nothing served, or the flat layout: no spans to speak of
        return []
    dated = spans.dated_folders(span_files)  # dated spans are day numbers: a person reads the folders
    served_names = ", ".join(dated[n] for n in trained) if all(n in dated for n in trained) else ""
    return [{"span": n, "name": spans.folder_of(span_files.get(n) or []) or f"span {n}",
             "served_version": served.number, "served_spans": trained, "served_names": served_names}
            for n in window if min(trained) < n < max(trained) and n not in trained]


def repeat_buyers_lines(figures: Dict[str, Any]) -> List[str]:
    """Who makes the repeats, when a few users make half of them (REPEAT_BUYERS_SHARE of the
    newest span's users or fewer): customers buying the same products again, rather than a file
    dropped twice (which repeats every user's rows as they buy). [] otherwise, and for reports
    without these counts."""
    repeats, users = figures.get("repeats") or {}, figures["newest"].get("users")
    top, half = repeats.get("top_users") or [], repeats.get("half_users")
    if not top or not half or not users or half > REPEAT_BUYERS_SHARE * users:
        return []
    named = ", ".join(f"{user} ({rows:,})" for user, rows in top)
    return [f"  {half:,} of the {users:,} users of {figures['newest']['name']} make half of these repeats, the most "
            f"{named}: customers buying the same products again rather than a file dropped twice? Check them; "
            "--accept-drift lets the span through, --drift-threshold repeated_rows=... changes the limit"]


def drifted_text(figures: Dict[str, Any]) -> str:
    """Why a span that drifted did: "OVER the thresholds", "span-2 arrived late", or both (a late
    span stops the run as drift does, its measures within their thresholds or not)."""
    late = ", ".join(s["name"] for s in figures.get("late_spans") or [])
    late_text = f"{late} arrived late" if late else ""
    stopped = ", ".join(s["name"] for s in figures.get("stopped_spans") or [])
    stopped_text = f"{stopped} stopped before" if stopped else ""
    over = "OVER the thresholds" if any(m["over"] for m in figures.get("measures") or []) else ""
    return ", ".join(filter(None, [over, late_text, stopped_text])) or "OVER the thresholds"


def late_lines(figures: Dict[str, Any]) -> List[str]:
    late = figures.get("late_spans") or []
    if not late:
        return []
    first = late[0]
    names = ", ".join(s["name"] for s in late)
    served = first.get("served_names") or spans.number_ranges(first["served_spans"])
    return [f"{names} arrived late: the served model (version {first['served_version']}) trained on spans "
            f"{served}, later than {'them' if len(late) > 1 else 'it'}, "
            f"without {'them' if len(late) > 1 else 'it'}. The drift gate compares the newest span with the "
            "one before it, so a late span is never compared with the span before it itself: check it "
            "(a backfill, or a folder misnamed?)"]


def late_accepted_lines(figures: Dict[str, Any]) -> List[str]:
    """The late spans an earlier run accepted: the run goes on, and says so."""
    return [f"{s['name']} arrived late, accepted (--accept-drift on {s['accepted']}): not stopped for again"
            for s in figures.get("late_accepted") or []]


def problem_lines(figures: Dict[str, Any]) -> List[str]:
    """One line per measure over its threshold (the repeats first, named as such), after the
    spans that arrived late."""
    lines = []
    over = {m["name"] for m in figures["measures"] if m["over"]}
    for m in figures["measures"]:
        if not m["over"]:
            continue
        detail = m["detail"]
        if m["name"] == TOP_SHARE_NAME and PER_USER_NAME not in over and figures.get("heaviest_buyer"):
            detail = "; ".join(filter(None, [detail, figures["heaviest_buyer"]]))  # said on no other line
        detail = f" ({detail})" if detail else ""
        if m["name"].startswith("purchases repeated"):
            lines[:0] = _repeat_lines(figures, m)
        else:
            lines.append(f"{m['name']}: {m['value']:.4g}, allowed {m['limit']}{detail}")
    return late_lines(figures) + stopped_lines(figures) + lines


def _repeat_lines(figures: Dict[str, Any], measure: Dict[str, Any]) -> List[str]:
    """The repeats measure's problem lines: the previous span repeated (its rows, or one of its
    files), and each file byte-identical to one of an older span or of the newest span itself."""
    newest, previous = figures["newest"]["name"], figures["previous"]["name"]
    repeats = figures.get("repeats")
    if repeats is None:  # a report written before the repeats were recorded apart
        return [f"{newest} repeats {previous} (the same file dropped twice, or mostly the same rows): "
                f"{measure['value']:.1%} of its purchases are in {previous}, allowed {measure['limit']} "
                f"({measure['detail']})"]
    previous_files = set(figures["previous"].get("files") or [])
    newest_files = set(figures["newest"].get("files") or [])
    pairs = repeats["identical_files"]
    lines = []
    with_previous = [(a, b) for a, b in pairs if b in previous_files]
    if repeats["share_over"] or with_previous:
        same = "".join(f"; {_short(a)} is byte-identical to {_short(b)}" for a, b in with_previous)
        lines.append(f"{newest} repeats {previous} (the same file dropped twice, or mostly the same rows): "
                     f"{measure['value']:.1%} of its purchases are in {previous}, allowed {measure['limit']} "
                     f"({repeats['rows']:,} of {figures['newest']['rows']:,} rows{same})")
        lines += repeat_buyers_lines(figures)
    for a, b in pairs:
        if b in previous_files:
            continue
        where = (f"{newest} holds the same file twice" if b in newest_files else
                 f"{newest} repeats {spans.folder_of([b])}, an older span")
        lines.append(f"{where} (the same file dropped twice): {_short(a)} is byte-identical to {_short(b)}")
    return lines


def table_lines(figures: Dict[str, Any]) -> List[str]:
    """The measures as the console's table (as the gate's)."""
    rows = [f"{'measure':<56}{'value':>9}  {'threshold':<16}result"]
    for m in figures["measures"]:
        result = "OVER" if m["over"] else "ok" if m["value"] is not None else "-"
        rows.append(f"{m['name']:<56}{_value(m['value'], '.4f'):>9}  {m['limit']:<16}{result}")
    return rows


def verdict_text(figures: Dict[str, Any]) -> str:
    """The gate's verdict on compared spans, for the summary and the run report: "within the
    thresholds", "over the thresholds", or what was accepted: "OVER the thresholds, accepted
    (--accept-drift)", "within the thresholds, span-3 arrived late, accepted (...)"."""
    over = any(m["over"] for m in figures["measures"])
    late = ", ".join(s["name"] for s in figures.get("late_spans") or [])
    earlier = ", ".join(s["name"] for s in figures.get("late_accepted") or [])
    stopped = ", ".join(s["name"] for s in figures.get("stopped_spans") or [])
    if figures.get("accepted"):
        return ", ".join(filter(None, ["OVER the thresholds" if over else "within the thresholds",
                                       f"{late} arrived late" if late else "",
                                       f"{earlier} arrived late" if earlier else "",
                                       f"{stopped} stopped before" if stopped else ""])) + \
            f", accepted ({figures['accepted']})"
    verdict = ("over the thresholds" if over else f"{late} arrived late" if late else
               f"{stopped} stopped before" if stopped else
               "over the thresholds" if figures["drifted"] else "within the thresholds")
    if earlier:
        verdict += (f", {earlier} arrived late, accepted (--accept-drift on "
                    f"{figures['late_accepted'][0]['accepted']})")
    return verdict


# --- acceptances ------------------------------------------------------------------------------
def acceptance_key(newest_digests: Sequence[str], previous_digests: Sequence[str]) -> str:
    """The content of both spans, as one key: an acceptance holds for exactly these files."""
    text = "\n".join(sorted(newest_digests)) + "\n--\n" + "\n".join(sorted(previous_digests))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def acceptance_prefix(newest: str, previous: str) -> str:
    """The start of the name of every acceptance of `newest` against `previous` (span names)."""
    return f"{newest}-vs-{previous}-"


def acceptance_path(directory: str, figures: Dict[str, Any], key: str) -> str:
    return os.path.join(directory, acceptance_prefix(figures['newest']['name'], figures['previous']['name'])
                        + f"{key}.json")


def read_acceptance(path: str) -> Optional[Dict[str, Any]]:
    if not path or not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.load(f)


def shifted(figures: Dict[str, Any]) -> bool:
    """Whether a measure of how the purchases are spread (not the repeats) is over its threshold."""
    return any(m["over"] and m["name"] != REPEATED_NAME for m in figures.get("measures") or [])


def previous_acceptance(directory: str, figures: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The acceptance of the previous span itself (as the newest span of an earlier run: the same
    folder name and files), when it went through with its purchases spread otherwise than the span
    before it (`shifted`: not a lateness or a repeat accepted); None otherwise."""
    if not directory or not fileio.exists(directory):
        return None
    prefix, files = f"{figures['previous']['name']}-vs-", set(figures["previous"].get("files") or [])
    for name in sorted(fileio.listdir(directory), reverse=True):
        if name.startswith(prefix) and name.endswith(".json"):
            record = read_acceptance(os.path.join(directory, name)) or {}
            accepted = (record.get("figures") or {})
            if set((accepted.get("newest") or {}).get("files") or []) == files and shifted(accepted):
                return record
    return None


def span_key(digests: Sequence[str]) -> str:
    """One span's content (its files' digests, in any order), as one key."""
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()[:24]


def late_acceptance_path(directory: str, late: Dict[str, Any], digests: Sequence[str]) -> str:
    """Where the acceptance of one late span is recorded: keyed by its own content, so that it
    holds for later runs whatever their newest span (a lateness is the late span's, not the
    newest's)."""
    return os.path.join(directory, f"late-{late['name']}-{span_key(digests)}.json")


def stopped_path(directory: str, name: str, digests: Sequence[str]) -> str:
    """Where the gate records that it stopped a span as the newest, keyed by the span's content: a
    later run whose window holds that span stops for it too, until it is accepted (--accept-drift),
    passes the gate as the newest, or changes (found by exploratory testing: a span the gate had
    stopped was trained on by the next span's run, its window reaching back over it)."""
    return os.path.join(directory, f"stopped-{name}-{span_key(digests)}.json")


def stopped_lines(figures: Dict[str, Any]) -> List[str]:
    """The spans of the window the gate stopped before, as the newest span of an earlier run: why
    this run stops for them, or, accepted, that it trains on them."""
    lines = []
    for entry in figures.get("stopped_spans") or []:
        before = (f"{entry['name']}, in this run's window, was stopped by the drift gate on {entry['stopped']} "
                  f"(as the newest span, against {entry['against']}: {entry['why']})")
        lines.append(f"{before}, accepted now ({figures['accepted']}): training on it" if figures.get("accepted") else
                     f"{before} and not accepted since: this run would train on it. If it is wrong, remove or "
                     "correct its folder; if it is right, run with --accept-drift")
    return lines


def over_texts(figures: Dict[str, Any]) -> List[str]:
    """Each measure over its threshold, in a few words (a stopped span's record; the replay's
    console)."""
    return [f"{m['name']} {m['value']:.4g}, allowed {m['limit']}"
            for m in figures.get("measures") or [] if m["over"]]


def _over_text(figures: Dict[str, Any]) -> str:
    """The measures over their thresholds, in a few words (a stopped span's record)."""
    return "; ".join(over_texts(figures)) or "over the thresholds"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --- the component ----------------------------------------------------------------------------
class Executor(base_beam_executor.BaseBeamExecutor):
    """Compares the newest span with the previous one; fails on drift unless accepted (module
    docstring)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        report = artifact_utils.get_single_instance(output_dict["drift_report"])
        thresholds = json_utils.loads(exec_properties["thresholds"])
        missing = sorted(set(THRESHOLDS) - set(thresholds))
        if missing and not set(thresholds) - set(THRESHOLDS):
            raise ValueError(f"drift thresholds: this code measures {', '.join(missing)}, and the pipeline "
                             f"gives no threshold for {'it' if len(missing) == 1 else 'them'}: it was "
                             f"compiled by older code than this "
                             f"image runs. Compile it again from the image's code (make compile)")
        check_thresholds(thresholds)
        newest = examples.get_int_custom_property(parquet_example_gen.SPAN_PROPERTY)
        previous = parquet_example_gen.previous_span(examples)
        report.set_int_custom_property("span", newest)
        if previous is None:
            figures = {"compared": False, "reason": "one span only: nothing to compare",
                       "newest": {"span": newest}}
            logging.info("DriftGate: one span only, nothing to compare it with")  # the log, not the console
            self._write(report, figures)
            return
        files = parquet_example_gen.span_train_files(examples)
        figures, digests = self._compare(files[newest], files[previous], newest, previous, files,
                                         thresholds, report.uri, _schema(input_dict))
        window = spans.span_numbers(examples.get_string_custom_property(parquet_example_gen.WINDOW_SPANS_PROPERTY))
        directory = exec_properties.get("acceptances_dir") or ""
        late, late_paths = [], {}
        for entry in late_spans(window, files, exec_properties.get("serving_model_dir") or ""):
            own = [digests[f] for f in files[entry["span"]]]
            path = late_acceptance_path(directory, entry, own) if directory else ""
            earlier = read_acceptance(path)
            if earlier:  # accepted by an earlier run: said, not stopped for again
                figures.setdefault("late_accepted", []).append({**entry, "accepted": earlier["accepted"]})
            else:
                late.append(entry)
                late_paths[entry["name"]] = path
        if late:  # stopped as drift is (the same override): it was compared with nothing
            figures.update(late_spans=late, drifted=True)
        stopped, stopped_paths = [], []
        for number in window:
            if number == newest or number not in files or not directory:
                continue
            name = span_name(files[number], number)
            path = stopped_path(directory, name, [digests[f] for f in files[number]])
            record = read_acceptance(path)
            if record:  # stopped as the newest span of an earlier run, and not accepted since
                stopped.append({"span": number, "name": name, **record})
                stopped_paths.append(path)
        if stopped:  # stopped as drift is (the same override)
            figures.update(stopped_spans=stopped, drifted=True)
        over = any(m["over"] for m in figures["measures"])
        own_stop = (stopped_path(directory, figures["newest"]["name"], [digests[f] for f in files[newest]])
                    if directory else "")
        older = older_than_served(window, files, exec_properties.get("serving_model_dir") or "")
        if older:  # said, not stopped for: the gate still judges the model against the served one
            figures["older_than_served"] = older
            log.warning("[drift] warning: the newest span here, %s, is older than the newest span the served model "
                        "(version %s) trained on, %s: is --data-dir an older copy of the data? The run goes on; "
                        "the gate judges its model against the served one", older["newest"],
                        older["served_version"], older["served_newest"])
        report.set_int_custom_property("previous_span", previous)
        if figures["drifted"]:
            path = (acceptance_path(directory, figures, acceptance_key([digests[f] for f in files[newest]],
                                                                       [digests[f] for f in files[previous]]))
                    if directory and over else "")
            earlier = read_acceptance(path)
            if exec_properties.get("accept_drift"):
                figures["accepted"] = "--accept-drift"
                record = {"accepted": _now(), "figures": figures}
                for late_path in [path, *late_paths.values()]:
                    if late_path:
                        io_utils.write_string_file(late_path, json.dumps(record, indent=1))
            elif earlier and not late and not stopped:
                figures["accepted"] = f"--accept-drift on {earlier['accepted']}"
        if figures.get("accepted") or not over:  # the newest span went through: no longer stopped
            for done in ([own_stop] if own_stop else []) + (stopped_paths if figures.get("accepted") else []):
                if fileio.exists(done):
                    fileio.remove(done)
        problems = problem_lines(figures)
        self._write(report, figures)
        head = f"[drift] {figures['newest']['name']} vs {figures['previous']['name']}:"
        if not figures["drifted"]:
            log.info("%s within the thresholds (DriftGate)\n%s", head,
                     "\n".join(late_accepted_lines(figures) + table_lines(figures)))
            return
        if figures.get("accepted"):
            log.info("%s %s, ACCEPTED (%s): training on it\n%s", head, drifted_text(figures), figures["accepted"],
                     "\n".join(late_lines(figures) + late_accepted_lines(figures) + stopped_lines(figures)
                               + table_lines(figures)))
            return
        kept = _keep_rejected(report.uri)
        if own_stop and over:  # later runs whose window holds this span stop for it too (stopped_path)
            io_utils.write_string_file(own_stop, json.dumps({
                "stopped": _now(), "against": figures["previous"]["name"], "why": _over_text(figures)}, indent=1))
        earlier = previous_acceptance(directory, figures) if directory and shifted(figures) else None
        if earlier:  # the span it is compared with was itself over the thresholds
            before = ((earlier.get("figures") or {}).get("previous") or {}).get("name", "the span before it")
            problems.append(f"({figures['previous']['name']} itself went through over the thresholds: accepted "
                            f"on {earlier.get('accepted', '?')} against {before}. A span like those before "
                            f"it reads as drifted against it; if {figures['newest']['name']} is right, "
                            "accept it too.)")
        newest_name, previous_name = figures["newest"]["name"], figures["previous"]["name"]
        raise DriftError(
            (f"The newest span {newest_name} drifted from {previous_name} "
             "(thresholds: pipeline/configs.py DriftConfig, or the run's --drift-threshold)" if shifted(figures) else
             f"The newest span {newest_name} repeats purchases of another span" if over else
             "A span of the window arrived after the spans of the served model" if late else
             "A span of the window was stopped by the drift gate before, and not accepted") +
            "; the pipeline stops before Transform so nothing is trained on it.\n" + "\n".join(problems) +
            "\nIf the data is right, run again with --accept-drift (a compiled pipeline: compile it again "
            "with --accept-drift, or --drift-threshold, and run that): it trains on this span, and later "
            "runs on the same spans accept it too (the validator, after this gate, still checks its "
            f"values: nulls, ids).\n(figures and TFDV's anomalies kept in {kept})")

    def _compare(self, newest_files, previous_files, newest, previous, files, thresholds, out_uri,
                 curated) -> Tuple[Dict[str, Any], Dict[str, str]]:
        newest_table, previous_table = read_span(newest_files), read_span(previous_files)
        if not newest_table.num_rows:  # before any acceptance: --accept-drift cannot let it through
            # found by exploratory testing: on Vertex and KFP (make run's data checks stop it
            # before the pipeline) an empty span was called drifted and --accept-drift offered
            raise DriftError(spans.empty_span_text(span_name(newest_files, newest), len(newest_files)) +
                             "; the pipeline stops before Transform so nothing is trained on it.")
        digests = {path: model_card.sha256_of(path) for span_files in files.values() for path in span_files}
        # a train file of the newest span byte-identical to another of its own or of another span
        identical = [[a, b] for i, a in enumerate(newest_files) for b in newest_files[:i]
                     if digests[a] == digests[b]]
        identical += [[a, b] for a in newest_files for span, others in sorted(files.items())
                      if span != newest for b in others if digests[a] == digests[b]]
        repeats = {"identical_files": identical, **repeats_of(newest_table, previous_table)}

        schema = span_schema(curated, thresholds)
        paths = {"newest": os.path.join(out_uri, "newest", STATS_FILE),
                 "previous": os.path.join(out_uri, "previous", STATS_FILE)}
        with self._make_beam_pipeline() as pipeline:
            for name, span_files in (("newest", newest_files), ("previous", previous_files)):
                _ = (pipeline
                     | f"Files[{name}]" >> beam.Create(list(span_files))
                     | f"Read[{name}]" >> parquetio.ReadAllFromParquetBatched(
                         columns=[features.USER_KEY, features.PRODUCT_KEY])
                     | f"ListColumns[{name}]" >> beam.FlatMap(parquet_example_gen.as_list_batches)
                     | f"Statistics[{name}]" >> tfdv.GenerateStatistics(tfdv.StatsOptions(schema=schema))
                     | f"Write[{name}]" >> tfdv.WriteStatisticsToBinaryFile(paths[name]))
        stats = {name: tfdv.load_stats_binary(path) for name, path in paths.items()}
        span_anomalies = tfdv.validate_statistics(stats["newest"], schema, previous_statistics=stats["previous"])

        user_anomalies, shares = per_user_comparison(newest_table, previous_table, per_user_schema(thresholds))
        io_utils.write_bytes_file(os.path.join(out_uri, ANOMALIES_FILE), span_anomalies.SerializeToString())
        io_utils.write_bytes_file(os.path.join(out_uri, USER_ANOMALIES_FILE), user_anomalies.SerializeToString())

        def span(number, span_files, table):
            users = len(pc.unique(table.column(features.USER_KEY))) if table.num_rows else 0
            return {"span": number, "name": span_name(span_files, number), "rows": table.num_rows,
                    "users": users, "files": list(span_files)}
        figures = figures_of(span(newest, newest_files, newest_table), span(previous, previous_files, previous_table),
                             span_anomalies, user_anomalies, shares, repeats, thresholds,
                             heaviest_user(newest_table))
        return figures, digests

    @staticmethod
    def _write(report: types.Artifact, figures: Dict[str, Any]) -> None:
        io_utils.write_string_file(os.path.join(report.uri, REPORT_FILE), json.dumps(figures, indent=1))
        report.set_int_custom_property("compared", int(bool(figures.get("compared"))))
        report.set_int_custom_property("drifted", int(bool(figures.get("drifted"))))
        report.set_int_custom_property("accepted", int(bool(figures.get("accepted"))))


def _schema(input_dict: Dict[str, List[types.Artifact]]) -> schema_pb2.Schema:
    return io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
        artifact_utils.get_single_uri(input_dict["schema"])))


def _keep_rejected(uri: str) -> str:
    """Copies the report next to the component's outputs: TFX deletes a failed execution's
    outputs, and the person needs the figures (as components/validator.py keeps its anomalies)."""
    component_dir = os.path.dirname(os.path.dirname(uri))  # <root>/<component>/drift_report/<id>
    kept = os.path.join(component_dir, REJECTED_DIR, os.path.basename(uri))
    io_utils.copy_dir(uri, kept)
    return kept


def read_report(report_uri: Optional[str]) -> Optional[Dict[str, Any]]:
    """drift.json of a DriftReport artifact, None without one."""
    if not report_uri:
        return None
    path = os.path.join(report_uri, REPORT_FILE)
    if not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.load(f)


class DriftGateSpec(ComponentSpec):
    PARAMETERS = {
        "thresholds": ExecutionParameter(type=str),  # JSON {name: value}, every name of THRESHOLDS
        "accept_drift": ExecutionParameter(type=int, optional=True),
        "acceptances_dir": ExecutionParameter(type=str, optional=True),
        "serving_model_dir": ExecutionParameter(type=str, optional=True),  # the served model's spans
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
    }
    OUTPUTS = {"drift_report": ChannelParameter(type=DriftReport)}


class DriftGate(base_beam_component.BaseBeamComponent):
    """The newest span against the previous one; stops the run on drift (module docstring)."""

    SPEC_CLASS = DriftGateSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples: types.BaseChannel, schema: types.BaseChannel,
                 thresholds: Dict[str, float], accept_drift: bool = False,
                 acceptances_dir: Optional[str] = None, serving_model_dir: Optional[str] = None):
        check_thresholds(thresholds)
        super().__init__(spec=DriftGateSpec(
            examples=examples, schema=schema, thresholds=json_utils.dumps(dict(sorted(thresholds.items()))),
            accept_drift=int(bool(accept_drift)), acceptances_dir=acceptances_dir or "",
            serving_model_dir=serving_model_dir or "",
            drift_report=types.Channel(type=DriftReport)))
