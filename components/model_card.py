"""The model card of a pushed version: `assets.extra/model_card.json` and `model_card.md`.

TF Serving reads nothing in `assets.extra/` but its warm-up file, so the card travels inside the
version it describes (DECISIONS D4): copied by a rollback, read by `make history`. The Pusher
writes it before the version appears (components/model_versions.py).

The JSON follows model-card-toolkit's schema (v0.0.2; the toolkit itself does not install with
TFX 1.21 on Python 3.13): its top-level sections only, metric values as strings, and the
project's own facts as extra keys inside those sections, which the schema allows:

  model_details.version       name (the version number), date, diff (why it was pushed), and
                              pushed_at, rollback_of, reason (a rollback), served_before
  model_details.code          git_commit (when known), code_fingerprint (the Trainer's)
  model_parameters.data[]     one entry per split: rows, users, products, the example files'
                              sha256 (what the Trainer and the Evaluator read)
  model_parameters.examples   ExampleGen's artifact properties (span, input_fingerprint...)
  model_parameters.source_files   the input files and their sha256, as found at push time
  model_parameters.model_config / training_history / training   the Trainer's configuration,
                              epochs, and its assets.extra/training.json when the model has one
  quantitative_analysis.performance_metrics[]   every metric of the Evaluator's pass, sliced
                              by model: candidate, served (the model it was compared with), and
                              any other model of that pass (the popularity baseline)
  quantitative_analysis.gate  the gate's verdict, bounds and table
  quantitative_analysis.drift the drift measurements of the data, when there are any
  quantitative_analysis.drift_gate   the DriftGate's comparison of the newest span with the one
                              before it: the spans, its verdict (and an --accept-drift), each
                              measure with its value and limit (none in the flat layout)
  considerations              intended use, known limits (cold starts...)

`model_card.md` is the same, short, for a person (the shape of the toolkit's Markdown template).
"""

from __future__ import annotations

import datetime
import glob as globlib
import hashlib
import json
import os
import subprocess
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from tfx import types
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from components import model_versions, spans as span_layout
from models import features

CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
TRAINING_JSON = "training.json"  # written into the SavedModel by the Trainer (D4)
SCHEMA_VERSION = "0.0.2"  # model-card-toolkit's schema
CANDIDATE, SERVED, POPULARITY = "candidate", "served", "popularity"
MODEL_SLICES = {"candidate": CANDIDATE, "baseline": SERVED}  # TFMA's model names -> card slices

OVERVIEW = ("Recommends products to ASOS shoppers: a user's top products (serving_default) and "
            "the products most like a product (call_item_item), learned from past purchases.")
INPUT_FORMAT = ("serving_default: user_id string[B]; call_item_item: item int64[B] (productId); "
                "evaluate: serialized tf.Example[B] (dummyUserId, productId)")
OUTPUT_FORMAT = ("products int64[B, K] and scores float[B, K], best first; known_user / known_item "
                 "bool[B]; evaluate: ranks int64[B, 2]")
USE_CASES = [
    "Ranking products for a shopper the model knows (bought in the training window), leaving out "
    "what they bought.",
    "'More like this': products bought by the same people as a given product.",
]
USERS = ["The shop's recommendation service, through TF Serving's REST or gRPC API."]


def _limitations(model_config: Optional[Dict[str, Any]]) -> List[str]:
    limits = [
        "Cold start: a user who bought nothing in the training data gets the most popular "
        "products (known_user false); an unknown product gets the most popular products "
        "(known_item false).",
        "Only products bought in the training data can be recommended; a new product waits for "
        "the next training run.",
        "Trained on purchases only: no views, returns, prices, stock or seasons.",
    ]
    if model_config and model_config.get("max_history"):
        limits.append(f"A user's taste is read from at most {model_config['max_history']} of their "
                      "purchases (a seeded sample for heavier buyers).")
    return limits


# --- gathering --------------------------------------------------------------------------------
GIT_COMMIT_VARIABLE = "RECSYS_GIT_COMMIT"  # set by the Makefile on the host, where git is


def git_commit(directory: Optional[str] = None) -> str:
    """The git commit of the code in `directory` (default: this project): RECSYS_GIT_COMMIT when
    set (the Makefile's, with ' (uncommitted changes)' when tracked files differ), else `git`,
    else read from the `.git` files (the build environment has no git); '' when unknown."""
    if os.environ.get(GIT_COMMIT_VARIABLE, "").strip():
        return os.environ[GIT_COMMIT_VARIABLE].strip()
    directory = directory or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", directory, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", directory, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return commit + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return _commit_from_files(os.path.join(directory, ".git"))


def _commit_from_files(dot_git: str) -> str:
    """HEAD's commit read from a `.git` directory (or a worktree's `.git` file), '' if unreadable."""
    try:
        if os.path.isfile(dot_git):  # a worktree: "gitdir: <dir>"; its refs are in the common dir
            with open(dot_git) as f:
                dot_git = f.read().split(":", 1)[1].strip()
        with open(os.path.join(dot_git, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref:"):
            return head
        ref = head[4:].strip()
        common = dot_git
        if os.path.isfile(os.path.join(dot_git, "commondir")):
            with open(os.path.join(dot_git, "commondir")) as f:
                common = os.path.normpath(os.path.join(dot_git, f.read().strip()))
        if os.path.isfile(os.path.join(common, ref)):
            with open(os.path.join(common, ref)) as f:
                return f.read().strip()
        with open(os.path.join(common, "packed-refs")) as f:
            for line in f:
                if line.rstrip().endswith(" " + ref):
                    return line.split()[0]
    except (OSError, IndexError):
        pass
    return ""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with fileio.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: str) -> Any:
    if not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.load(f)


def _file_facts(paths: Iterable[str]) -> List[Dict[str, Any]]:
    return [{"path": p, "bytes": int(fileio.stat(p).length), "sha256": sha256_of(p)} for p in sorted(paths)]


def _property_values(artifact: types.Artifact) -> Dict[str, Any]:
    """An artifact's custom properties as plain values (TFX's bookkeeping left out)."""
    skip = {"tfx_version", "state", "name", "producer_component", "is_external"}
    found = {}
    for key in sorted(artifact.mlmd_artifact.custom_properties):
        if key not in skip:
            value = artifact.get_custom_property(key)
            try:
                json.dumps(value)
            except TypeError:
                value = str(value)
            found[key] = value
    return found


def data_section(examples: types.Artifact) -> Dict[str, Any]:
    """Per split of ExampleGen's examples: rows, users, products and the files' sha256; and the
    artifact's properties (the span and the input fingerprint TFX records)."""
    import numpy as np

    from components import report_figures

    splits = []
    for split, purchases in report_figures.read_splits(examples).items():
        directory = artifact_utils.get_split_uri([examples], split)
        files = [p for p in fileio.glob(os.path.join(directory, "*")) if not fileio.isdir(p)]
        splits.append({
            "name": split,
            "description": f"ExampleGen's '{split}' split: purchases (dummyUserId, productId)",
            "rows": int(len(purchases["products"])),
            "users": int(len(np.unique(purchases["users"]))),
            "products": int(len(np.unique(purchases["products"]))),
            "files": [{**f, "path": os.path.relpath(f["path"], directory)} for f in _file_facts(files)],
        })
    return {"data": splits, "examples": {"uri": examples.uri, "properties": _property_values(examples)}}


def window_patterns(patterns: Sequence[str], examples: Optional[types.Artifact]) -> List[str]:
    """`patterns` (files of the data directory) and, in the span layout, the same names in each
    span folder of the examples' training window: the spans' train and eval files, which the top
    level does not hold (found by exploratory testing: a span-trained model's card listed only the
    catalog and the standing eval file)."""
    from components import parquet_example_gen

    if examples is None:
        return list(patterns)
    window = set(span_layout.span_numbers(
        examples.get_string_custom_property(parquet_example_gen.WINDOW_SPANS_PROPERTY)))
    folders = sorted({os.path.dirname(path) for span, paths in parquet_example_gen.span_train_files(examples).items()
                      if span in window for path in paths})
    return list(patterns) + [os.path.join(folder, os.path.basename(p)) for folder in folders for p in patterns
                             if os.path.join(folder, os.path.basename(p)) not in patterns]


def source_files(patterns: Iterable[str]) -> List[Dict[str, Any]]:
    """The files matching `patterns` (the pipeline's inputs) and their sha256, as they are now."""
    paths = set()
    for pattern in patterns:
        matched = fileio.glob(pattern) if not model_versions.is_local(pattern) else globlib.glob(pattern)
        paths.update(p for p in matched if not fileio.isdir(p))
    return _file_facts(paths)


def training_section(model_dir: str, model_run_uri: Optional[str]) -> Dict[str, Any]:
    """The Trainer's model configuration and epochs (its model_run artifact) and what it wrote
    into the model (assets.extra/training.json), each when present."""
    from models import trainer

    found: Dict[str, Any] = {}
    if model_run_uri:
        found["model_config"] = _read_json(os.path.join(model_run_uri, trainer.MODEL_CONFIG_FILE))
        found["training_history"] = _read_json(os.path.join(model_run_uri, trainer.HISTORY_FILE))
    found["training"] = _read_json(os.path.join(model_dir, model_versions.ASSETS_EXTRA, TRAINING_JSON))
    if found["training"] and not found.get("model_config"):
        found["model_config"] = (found["training"].get("model") or {}).get("config")
    return {k: v for k, v in found.items() if v is not None}


def gate_section(evaluation_uri: str) -> Dict[str, Any]:
    """The gate's section of the Evaluator's output (`evaluation_section`)."""
    from tensorflow_model_analysis.writers import eval_config_writer

    from components import evaluator

    config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    return evaluation_section(evaluator.gate_verdict(evaluation_uri, config), config, evaluation_uri)


def evaluation_section(gate: Dict[str, Any], config, evaluation_uri: str = "") -> Dict[str, Any]:
    """Every metric of the Evaluator's pass by model (`gate`: components/evaluator.py's
    `gate_verdict`), and the gate's verdict, bounds (from its EvalConfig `config`) and table."""
    bounds: Dict[str, Dict[str, float]] = {}
    for spec in config.metrics_specs:
        for metric_config in spec.metrics:
            if metric_config.HasField("threshold"):
                name = json.loads(metric_config.config or "{}").get("name", metric_config.class_name)
                value = metric_config.threshold.value_threshold
                change = metric_config.threshold.change_threshold
                bounds[name] = {}
                if value.HasField("lower_bound"):
                    bounds[name]["lower_bound"] = value.lower_bound.value
                if change.HasField("relative"):
                    bounds[name]["max_relative_drop"] = -change.relative.value
    return {
        "performance_metrics": performance_metrics(gate),
        "gate": {"blessed": bool(gate["blessed"]), "verdict": gate["verdict"],
                 "compared_with_served": bool(gate["has_baseline"]), "bounds": bounds,
                 "rows": gate["rows"], "details": gate["details"], "evaluation": evaluation_uri},
    }


def performance_metrics(gate: Dict[str, Any]) -> List[Dict[str, str]]:
    """The gate table's values as the schema's metrics: each row's candidate, served
    ("baseline" in TFMA) and popularity value (when the row has one), and the values of any
    other model of the Evaluator's pass."""
    found = []
    for row in gate["rows"]:
        for key, slice_name in (("candidate", CANDIDATE), ("baseline", SERVED), ("popularity", POPULARITY)):
            if row.get(key) is not None:
                found.append({"type": row["metric"], "value": _exact(row[key]), "slice": slice_name})
    for model, values in gate["values"].items():
        if model not in MODEL_SLICES:
            found += [{"type": name, "value": _exact(value), "slice": model} for name, value in _ordered(values)]
    return found


def _exact(value: float) -> str:
    """A metric value as the schema's string, every digit kept: the card's markdown rounds it
    once, as the console does (rounding a rounded 1.025496 again read +102.6% against +102.5%)."""
    return repr(float(value))


def _ordered(values: Dict[str, float]):
    order = list(features.EVAL_METRICS)
    return sorted(values.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))


def drift_section(anomalies: types.Artifact) -> List[Dict[str, Any]]:
    """TFDV's drift (and skew) measurements recorded in an artifact's anomalies (`SchemaDiff*.pb`
    per split, as ExampleValidator writes them, or at its top, as a drift report may): one entry
    per feature and measure, with its threshold and whether it was crossed."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = []
    paths = fileio.glob(os.path.join(anomalies.uri, "SchemaDiff*.pb")) + \
        fileio.glob(os.path.join(anomalies.uri, "*", "SchemaDiff*.pb"))
    for path in sorted(paths):
        proto = anomalies_pb2.Anomalies()
        with fileio.open(path, "rb") as f:
            proto.ParseFromString(f.read())
        directory = os.path.dirname(path)
        where = os.path.basename(directory) if directory.rstrip("/") != anomalies.uri.rstrip("/") else \
            os.path.splitext(os.path.basename(path))[0]
        for info in proto.drift_skew_info:
            for m in info.drift_measurements:
                found.append({
                    "split": where,
                    "feature": ".".join(info.path.step),
                    "measure": anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type),
                    "value": m.value, "threshold": m.threshold,
                    "crossed": bool(m.threshold and m.value > m.threshold)})
    return found


def drift_gate_section(figures: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The DriftGate's report (components/drift.py, drift.json) as the card keeps it; None when
    it compared nothing (the flat layout, a first span). Found by exploratory testing: the card
    read only the validator's anomalies, where this pipeline's drift figures never are."""
    if not figures or not figures.get("compared"):
        return None
    from components import drift

    spans = {key: (figures.get(key) or {}).get("name") for key in ("newest", "previous")}
    return {**spans,
            "verdict": drift.verdict_text(figures), "accepted": figures.get("accepted") or None,
            "measures": [{"name": m["name"], "value": m["value"], "limit": m["limit"], "over": m["over"]}
                         for m in figures["measures"]]}


# --- the card -----------------------------------------------------------------------------------
def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def assemble(*, name: str, version: int, pushed_at: datetime.datetime, destination: str,
             served_before: Optional[int] = None, git: str = "", data: Optional[Dict[str, Any]] = None,
             sources: Optional[List[Dict[str, Any]]] = None, training: Optional[Dict[str, Any]] = None,
             evaluation: Optional[Dict[str, Any]] = None, drift: Optional[List[Dict[str, Any]]] = None,
             drift_gate: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The card (module docstring) from the gathered sections; any section may be missing."""
    training = training or {}
    gate = (evaluation or {}).get("gate")
    model_config = training.get("model_config")
    trained = training.get("training") or {}
    if gate is None:
        diff = "pushed by the pipeline"
    elif gate["compared_with_served"]:
        diff = ("pushed by the pipeline: blessed by the gate, compared with the served "
                + (f"version {served_before}" if served_before else "model"))
    else:
        diff = ("pushed by the pipeline: blessed by the gate (absolute bounds only: "
                + (f"no baseline, though version {served_before} was served)" if served_before
                   else "no model was served)"))
    parameters: Dict[str, Any] = {
        "model_architecture": _architecture(model_config, training.get("training_history")),
        "data": (data or {}).get("data", []),
        "input_format": INPUT_FORMAT,
        "output_format": OUTPUT_FORMAT,
    }
    for key, value in (("examples", (data or {}).get("examples")), ("source_files", sources),
                       ("model_config", model_config), ("training_history", training.get("training_history")),
                       ("training", training.get("training"))):
        if value:
            parameters[key] = value
    analysis: Dict[str, Any] = {"performance_metrics": (evaluation or {}).get("performance_metrics", [])}
    if gate is not None:
        analysis["gate"] = gate
    if drift:
        analysis["drift"] = drift
    if drift_gate:
        analysis["drift_gate"] = drift_gate
    return {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": name,
            "overview": OVERVIEW,
            "version": {"name": str(version), "date": pushed_at.astimezone(datetime.timezone.utc).date().isoformat(),
                        "diff": diff, "pushed_at": _utc(pushed_at), "served_before": served_before},
            "path": destination,
            "code": {"git_commit": git or None,
                     "code_fingerprint": trained.get("code_fingerprint")},
        },
        "model_parameters": parameters,
        "quantitative_analysis": analysis,
        "considerations": {
            "users": [{"description": d} for d in USERS],
            "use_cases": [{"description": d} for d in USE_CASES],
            "limitations": [{"description": d} for d in _limitations(model_config)],
        },
    }


def _architecture(model_config: Optional[Dict[str, Any]], history: Optional[List[Dict[str, Any]]]) -> str:
    text = "Negative-sampling recommender (models/model.py)"
    if model_config:
        parts = [f"embedding dim {model_config.get('embedding_dim')}",
                 f"{model_config.get('sampling')} negatives",
                 "purchase-history user vector" if model_config.get("use_history") else "user-id embedding",
                 f"item graph weight {model_config.get('copurchase_weight')}"
                 if model_config.get("copurchase_weight") else "no item graph",
                 *([f"popularity prior weight {model_config['popularity_weight']}"]
                   if model_config.get("popularity_weight") else []),
                 f"{model_config.get('epochs')} epochs when trained cold"]
        text += ": " + ", ".join(parts)
    if history:
        last = history[-1]
        if isinstance(last, dict) and "loss" in last:
            text += f"; final training loss {last['loss']:.4g}"
    return text


def rollback(card: Optional[Dict[str, Any]], *, name: str, version: int, of: int, reason: str,
             pushed_at: datetime.datetime, destination: str, served_before: Optional[int]) -> Dict[str, Any]:
    """The card of a rollback: version `of`'s card (its data, metrics and gate stay: the model is
    the same) with a new version saying what it is a rollback of and why."""
    card = json.loads(json.dumps(card)) if card else assemble(
        name=name, version=version, pushed_at=pushed_at, destination=destination)
    card.setdefault("model_details", {})
    card["model_details"]["path"] = destination
    card["model_details"]["version"] = {
        "name": str(version), "date": pushed_at.astimezone(datetime.timezone.utc).date().isoformat(),
        "diff": f"rollback to version {of}: {reason}", "pushed_at": _utc(pushed_at),
        "served_before": served_before, "rollback_of": of, "reason": reason}
    return card


def files(card: Dict[str, Any]) -> Dict[str, bytes]:
    """{path in the version: content} of the card's two files."""
    return {f"{model_versions.ASSETS_EXTRA}/{CARD_JSON}": (json.dumps(card, indent=1) + "\n").encode(),
            f"{model_versions.ASSETS_EXTRA}/{CARD_MD}": markdown(card).encode()}


def read(version_path: str) -> Optional[Dict[str, Any]]:
    """The card of a version, None when it has none (or it does not parse)."""
    try:
        return _read_json(os.path.join(version_path, model_versions.ASSETS_EXTRA, CARD_JSON)) \
            if model_versions.is_local(version_path) else \
            _read_json(f"{version_path.rstrip('/')}/{model_versions.ASSETS_EXTRA}/{CARD_JSON}")
    except (ValueError, OSError):
        return None


# --- reading a card back: what history shows ------------------------------------------------------
def metric(card: Dict[str, Any], name: str, slice_name: str = CANDIDATE) -> Optional[float]:
    for m in card.get("quantitative_analysis", {}).get("performance_metrics", []):
        if m.get("type") == name and m.get("slice") == slice_name:
            try:
                return float(m["value"])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def gated_metrics(card: Dict[str, Any]) -> List[str]:
    bounds = card.get("quantitative_analysis", {}).get("gate", {}).get("bounds", {})
    return [name for name in features.EVAL_METRICS if name in bounds] or list(bounds)


def spans(card: Dict[str, Any]) -> Optional[str]:
    """The spans the model was trained on, as text ('3', '1-4', '1, 3'), when the card knows
    them: from training.json's `data` or ExampleGen's properties (`window_spans`, else `span`).
    None for the flat layout (one train file, TFX's span 0: not a span a person named)."""
    parameters = card.get("model_parameters", {})
    sources = [(parameters.get("training") or {}).get("data") or {},
               (parameters.get("examples") or {}).get("properties") or {}]
    if any(span_layout.is_flat(source.get("input_fingerprint")) for source in sources):
        return None
    train_files = next((s["span_train_files"] for s in sources if s.get("span_train_files")), None)
    for source in sources:
        numbers = span_layout.span_numbers(source.get("window_spans"))
        names = span_layout.window_names(numbers, train_files)
        if names:  # dated folders: their names, not day numbers
            return span_layout.number_ranges(numbers, dict(zip(numbers, names)))
        if numbers:
            return span_layout.number_ranges(numbers)
    for source in sources:
        if source.get("span") not in (None, 0, "", "0"):
            return str(source["span"])
    return None


def spans_text(card: Dict[str, Any]) -> Optional[str]:
    """`spans` for a person: "span 3", "spans 1-3", "spans 2026-01-01 to 2026-01-03"."""
    trained = spans(card)
    if trained is None:
        return None
    several = " to " in trained or "," in trained or (trained.count("-") == 1 and not trained.startswith("-"))
    return f"span{'s' if several else ''} {trained}"


def rollback_of(card: Optional[Dict[str, Any]]) -> Optional[int]:
    """The version a rollback's copy is of (runner/versions.py), None for a version that is no
    rollback (or has no card)."""
    value = ((card or {}).get("model_details", {}).get("version", {}) or {}).get("rollback_of")
    return None if value is None else int(value)


def withdrawn(cards: List[Tuple[int, Optional[Dict[str, Any]]]]) -> Dict[int, Dict[str, Any]]:
    """{version: {"by": the rollback's version, "of": the version it copied, "reason"}}: the
    versions a rollback took out of service that no later rollback served again, from (number,
    card) of every version, newest first (a rollback's card says what it copies and replaced)."""
    decided, found = set(), {}
    for number, card in cards:
        details = ((card or {}).get("model_details", {}).get("version", {}) or {})
        if details.get("rollback_of") is None:
            continue
        before = details.get("served_before")
        if before is not None and int(before) not in decided:
            found[int(before)] = {"by": number, "of": int(details["rollback_of"]),
                                  "reason": details.get("reason", "")}
        decided.update(int(v) for v in (details["rollback_of"], before) if v is not None)
    return found


def eval_source(card: Dict[str, Any]) -> Optional[str]:
    """Where the model's eval purchases came from: a span folder ("span-5": that span's own eval
    file), span_layout.STANDING (the standing eval file), None when the card does not say (the
    flat layout, or cards from before spans)."""
    properties = (card.get("model_parameters", {}).get("examples") or {}).get("properties") or {}
    source = properties.get("eval_source")
    return source if source and not span_layout.is_flat(properties.get("input_fingerprint")) else None


def rows(card: Dict[str, Any]) -> Dict[str, int]:
    return {d.get("name"): d["rows"] for d in card.get("model_parameters", {}).get("data", []) if "rows" in d}


# --- Markdown ------------------------------------------------------------------------------------
def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:+.1%}"


def markdown(card: Dict[str, Any]) -> str:
    """The card for a person: version, data, metrics against the served model and popularity,
    the gate, drift, training, intended use and known limits."""
    details, parameters = card.get("model_details", {}), card.get("model_parameters", {})
    analysis, considerations = card.get("quantitative_analysis", {}), card.get("considerations", {})
    version = details.get("version", {})
    code = details.get("code", {})
    lines = [f"# Model card: {details.get('name', 'model')} version {version.get('name', '?')}", "",
             details.get("overview", ""), "",
             f"- **Pushed** {version.get('pushed_at', version.get('date', '?'))}: {version.get('diff', '')}",
             f"- **Where** `{details.get('path', '?')}`",
             f"- **Code** git {code.get('git_commit') or 'unknown'}"
             + (f", code fingerprint {code['code_fingerprint']}" if code.get("code_fingerprint") else ""),
             f"- **Model** {parameters.get('model_architecture', '?')}"]
    training = parameters.get("training") or {}
    start = training.get("start") or {}
    if start:
        carried = (f"; {start['carried_products']:,} products carried over, {start.get('new_products', 0):,} new, "
                   f"{start.get('dropped_products', 0):,} dropped" if start.get("kind") == "warm"
                   and start.get("carried_products") is not None else "")
        learned = ""
        if start.get("new_purchases"):
            learned = (f"; trained on {start['new_purchases']:,} purchases new to it"
                       + (f" and {start['rehearsed_purchases']:,} it had seen" if start.get("rehearsed_purchases")
                          else ""))
        elif start.get("new_purchases") == 0:  # found with generated spans: "trained on 0 purchases new to it"
            learned = "; no purchase new to it: no training step"
        if start.get("kind") == "warm" and start.get("chain"):
            learned += f"; warm start {start['chain']} in a row"
        lines.append(f"- **Start** {start.get('kind', '?')} start" + (
            f" from version {start['from_version']}" if start.get("from_version") else "")
            + (f": {start['reason']}" if start.get("reason") else "") + carried + learned)
    trained = _training_text(training, code.get("code_fingerprint"))
    if trained:
        lines.append(f"- **Training** {trained}")
    lines += ["", "## Data", "", "| split | rows | users | products | files (sha256) |", "|---|---|---|---|---|"]
    for d in parameters.get("data", []):
        shas = "<br>".join(f"`{f['path']}` {f['sha256']}" for f in d.get("files", []))
        counts = " | ".join(f"{d[k]:,}" if isinstance(d.get(k), int) else "-" for k in ("rows", "users", "products"))
        lines.append(f"| {d.get('name')} | {counts} | {shas} |")
    if parameters.get("source_files"):
        lines += ["", "Input files at push time:", ""]
        lines += [f"- `{f['path']}` sha256 {f['sha256']} ({f['bytes']:,} bytes)" for f in parameters["source_files"]]
    facts = {**((parameters.get("examples") or {}).get("properties") or {}), **(training.get("data") or {})}
    if facts:
        lines += ["", _data_text(card, facts)]
    lines += _metrics_table(card)
    gate = analysis.get("gate")
    if gate:
        lines += ["", f"**Gate**: {gate.get('verdict', '')}"]
        lines += [f"- {d}" for d in gate.get("details", [])]
    drift = analysis.get("drift")
    if drift:
        lines += ["", "## Drift", "", "| split | feature | measure | value | threshold | |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {d['split']} | {d['feature']} | {d['measure']} | {d['value']:.4g} | {d['threshold']:.4g} | "
                  f"{'crossed' if d['crossed'] else 'ok'} |" for d in drift]
    compared = analysis.get("drift_gate")
    if compared:
        lines += ["", f"## Drift: {compared['newest']} against {compared['previous']}", "",
                  f"**Drift gate**: {compared['verdict']}", "", "| measure | value | limit | |", "|---|---|---|---|"]
        lines += [f"| {m['name']} | {'-' if m['value'] is None else format(m['value'], '.4g')} | {m['limit']} | "
                  f"{'OVER' if m['over'] else 'ok'} |" for m in compared["measures"]]
    lines += ["", "## Intended use", ""]
    lines += [f"- {u['description']}" for u in considerations.get("use_cases", [])]
    lines += [f"- Users: {u['description']}" for u in considerations.get("users", [])]
    lines += ["", "## Known limits", ""]
    lines += [f"- {u['description']}" for u in considerations.get("limitations", [])]
    return "\n".join(lines) + "\n"


def _metrics_table(card: Dict[str, Any]) -> List[str]:
    metrics = card.get("quantitative_analysis", {}).get("performance_metrics", [])
    if not metrics:
        return []
    slices = list(dict.fromkeys(m.get("slice") for m in metrics))
    gate = card.get("quantitative_analysis", {}).get("gate", {})
    rows = {r["metric"]: r for r in gate.get("rows", [])}
    served = card.get("model_details", {}).get("version", {}).get("served_before")
    names = {CANDIDATE: "candidate", SERVED: f"served (v{served})" if served else "served"}
    lines = ["", "## Metrics (eval split, per purchase)", "",
             "| metric | " + " | ".join(names.get(s, s) for s in slices) + " | gate | result |",
             "|---" * (len(slices) + 3) + "|"]
    for name in dict.fromkeys(m["type"] for m in metrics):
        row = rows.get(name, {})
        show = _percent if row.get("kind") == "margin" else _fmt  # a relative margin over popularity
        values = [show(metric(card, name, s)) for s in slices]
        lines.append(f"| {name} | " + " | ".join(values)
                     + f" | {row.get('threshold', '-')} | {row.get('result', '-')} |")
        vs = row.get("vs_served")
        if vs:  # the change against the served model and its 95% interval, as the gate judged it
            lines.append(f"| {name} change vs served | {_percent(vs['change'])}" + " | -" * (len(slices) - 1)
                         + f" | 95% interval {vs['low']:+.1%} to {vs['high']:+.1%} | {vs['result']} |")
    return lines


def _training_text(training: Dict[str, Any], code_fingerprint: Optional[str]) -> str:
    """training.json's run facts (models/trainer.py) in words: how long, when, from which
    baseline, the training key; keys it does not know, as they are."""
    parts = []
    run = training.get("training") or {}
    if run.get("seconds") is not None:
        epochs = run.get("epochs")
        steps = ("no step (nothing new to learn)" if epochs == 0 else
                 f"{epochs:g} epoch{'' if epochs == 1 else 's'}" if isinstance(epochs, (int, float)) else "trained")
        parts.append(f"{steps} in {run['seconds']:.1f} s")
    if training.get("trained_at"):
        parts.append(f"at {str(training['trained_at']).replace('T', ' ')[:16]} UTC")
    baseline = training.get("baseline") or {}
    if baseline:
        reason = f" ({baseline['reason']})" if baseline.get("reason") else ""
        parts.append(f"baseline version {baseline['version']}{reason}" if baseline.get("version")
                     else f"no baseline{reason}")
    if training.get("training_key"):
        parts.append(f"training key {training['training_key']}")
    known = {"model", "start", "data", "training", "trained_at", "baseline", "training_key"}
    if training.get("code_fingerprint") == code_fingerprint:  # the Code line has it
        known.add("code_fingerprint")
    parts += [f"{k}: {_short(v)}" for k, v in training.items() if k not in known]
    return "; ".join(parts)


def _data_text(card: Dict[str, Any], facts: Dict[str, Any]) -> str:
    """What the model was trained and evaluated on, in words (`facts`: ExampleGen's properties
    and training.json's `data`)."""
    trained = spans_text(card)
    if span_layout.is_flat(facts.get("input_fingerprint")):
        what = "Trained on the flat data (one train file)"
    elif trained:
        what = f"Trained on {trained}"
    else:
        what = "Trained on the data above"
    source = facts.get("eval_source")
    evaluated = ("" if not source else "; evaluated on the standing eval file" if source == span_layout.STANDING
                 else f"; evaluated on {source}'s eval file")
    counts = [f"{facts[k]:,} {label}" for k, label in (("rows", "purchases"), ("users", "users"),
                                                         ("products", "products"))
              if isinstance(facts.get(k), int)]
    return f"{what}{evaluated}" + (f": {', '.join(counts)}" if counts else "") + "."


def _short(value: Any, limit: int = 120) -> str:
    text = (value if isinstance(value, str) else json.dumps(value, sort_keys=True)).replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."
