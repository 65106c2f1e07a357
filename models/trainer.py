"""The Trainer's run_fn: reads Transform's output, trains the recommender with negative sampling,
exports the serving SavedModel.

custom_config (plain JSON values; the pipeline builds it from its TrainingConfig):
  preset         "default" or "notebook": the starting ModelConfig (models.model)
  model          overrides of ModelConfig fields, e.g. {"epochs": 3, "sampling": "uniform"}
  serving_top_k  products returned by the serving signatures (default features.SERVING_TOP_K)
  cold_start     true: train from nothing even when a model is served (`--cold-start`)
  module_code    fingerprint of the code this run_fn imports: only there so that TFX's cache
                 sees code changes (module code is named by dotted path, which TFX does not hash)
  run            added when the Trainer runs (components/trainer.py), not compiled: the run's
                 baseline (the served model it starts from: version, reason) and data (input
                 fingerprint, span, window), for the warm start and training.json

Warm start: with a base model (`fn_args.base_model`: the served model, components/baseline.py)
the new model starts from its product rows, carried over by raw product id
(models/warm_start.py), and trains on the purchases the served model has not trained on (and,
when the served model was warm-started itself, a rehearsal sample of the others:
config.warm_start_rehearsal, models/warm_start.py `rehearsal`) for config.warm_start_epochs at
config.warm_start_learning_rate.
No base model, `cold_start`, or a served model this one cannot start from (another embedding
size, another preset: the console says which) is a cold start: config.epochs from random tables.
So is a training with purchases new to a served model that was warm-started itself when the
window holds every purchase that model trained on, or that ends a chain of
config.warm_start_max_chain warm starts (models/warm_start.py `chain_ended`).

The exported model carries `assets.extra/training.json` (`TRAINING_FACTS`, DECISIONS D4): what
only the Trainer knows about it, for the model card, the next run's baseline and the replay. Its
keys (stable: other code reads them): `data` {input_fingerprint, span, window_spans,
eval_source, rows, users, products}, `start` {kind "warm"|"cold", from_version, reason,
carried_products, new_products, dropped_products; for a warm start chain (warm starts in a row
that made it) and new_purchases, and rehearsal, rehearsed_purchases when it had new ones},
`baseline` {version, served_version, reason}, `model` {preset, config}, `training_key` (what
this training is: `training_key`), `code_fingerprint`, `training` {epochs, seconds},
`trained_at`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import exporter
from models import model as model_lib
from models import features, warm_start

log = logging.getLogger(__name__)
progress = logging.getLogger("recsys.train")  # the console shows it (runner/console.py)
PRESETS = {"default": model_lib.DEFAULT, "notebook": model_lib.NOTEBOOK}
# Written to the Trainer's model_run artifact beside TensorBoard's logs
MODEL_CONFIG_FILE = "model_config.json"
HISTORY_FILE = "training_history.json"
# In the exported model: TF Serving ignores assets.extra/ (but for its warm-up requests)
TRAINING_FACTS = os.path.join("assets.extra", "training.json")
RUN_KEY = "run"  # custom_config's run-time part (components/trainer.py): not in training_key


def training_key(custom_config: Dict[str, Any]) -> str:
    """What a training is, apart from its data and its base model: sha256 (16 hex) of the
    compiled custom_config (the model settings the preset and its overrides come to, serving
    top-k, cold start, code fingerprint). components/baseline.py compares it with the served
    model's, to tell a rerun of the training that made the served model from a new one.
    The settings as they come to, not as they were written: `--model-param embedding_dim=128`,
    the default's own value, is the same training as none (found by exploratory testing: the
    Pusher took it for another model and pushed the served one again as a new version)."""
    compiled = {k: v for k, v in custom_config.items() if k != RUN_KEY}
    try:
        compiled["model"] = model_config(compiled).to_dict()
        compiled.pop("preset", None)
    except ValueError:  # an unknown preset or field: the Trainer says so; the key is of what was written
        pass
    return hashlib.sha256(json.dumps(compiled, sort_keys=True).encode()).hexdigest()[:16]


def read_training_facts(model_dir: str) -> Optional[Dict[str, Any]]:
    """A SavedModel's training.json (TRAINING_FACTS), None when it has none (a model from before
    it existed) or it is not JSON."""
    path = os.path.join(model_dir, TRAINING_FACTS)
    if not tf.io.gfile.exists(path):
        return None
    try:
        with tf.io.gfile.GFile(path) as f:
            facts = json.load(f)
    except (ValueError, tf.errors.OpError):
        return None
    return facts if isinstance(facts, dict) else None


def model_config(custom_config: Dict[str, Any]) -> model_lib.ModelConfig:
    """The preset with its overrides; unknown presets or fields raise ValueError naming them."""
    preset = custom_config.get("preset", "default")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    merged = {**PRESETS[preset].to_dict(), **custom_config.get("model", {})}
    return model_lib.ModelConfig.from_dict(merged)


def read_pairs(data_accessor: tfx.components.DataAccessor, file_patterns,
               transform_output: tft.TFTransformOutput) -> Tuple[np.ndarray, np.ndarray]:
    """(user_index, product_index) int32 arrays of every transformed example in the files, read
    through a data accessor (the Trainer's `fn_args.data_accessor`: TFXIO, whatever format
    Transform wrote), sorted by user then product index.

    Sorted because the files' order is not the data's: ExampleGen writes its examples in a
    different order from run to run (Beam's bundles; measured: two `make run`s of the same
    files, 64,654 of 165,042 examples at other places), and training visits the pairs in a
    seeded permutation of their positions, so the same data trained two models (recall@10 0.0400
    and 0.0398). Sorted, the same data, code and seed train the same model."""
    dataset = data_accessor.tf_dataset_factory(
        file_patterns,
        # reader_num_threads=None: the files are read one after the other. TFXIO's default (a
        # parallel interleave) hands every record from a reader thread to the consumer, which
        # is many times slower on an idle machine (measured: docs/benchmarks.md, "The Trainer").
        tfxio.TensorFlowDatasetOptions(batch_size=65536, num_epochs=1, shuffle=False,
                                       reader_num_threads=None),
        transform_output.transformed_metadata.schema)
    users, items = [], []
    for batch in dataset:
        users.append(batch[features.USER_INDEX].numpy().reshape(-1))
        items.append(batch[features.PRODUCT_INDEX].numpy().reshape(-1))
    if not users:
        raise ValueError(f"no transformed examples in {file_patterns}")
    users, items = np.concatenate(users).astype(np.int32), np.concatenate(items).astype(np.int32)
    order = np.lexsort((items, users))
    return users[order], items[order]


def start_from(base_model: Optional[str], recommender: model_lib.Recommender, product_ids: np.ndarray,
               custom_config: Dict[str, Any], base_version: Optional[str],
               pairs: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None,
               baseline_reason: Optional[str] = None) -> Tuple[Dict[str, Any], Optional[np.ndarray]]:
    """Warm-starts `recommender` from the SavedModel at `base_model` (the served model, version
    `base_version`) when it can, and says so on the console. Returns training.json's `start` and,
    for a warm start, which of the training `pairs` (user indices, product indices, the user
    vocabulary) the served model has not trained on (None: all of them, or a cold start).
    `baseline_reason`: why there is no base model, when ServedBaseline said (e.g. the served
    model is this very training again, which started cold)."""
    version = f"version {base_version}" if base_version else "the served model"
    cold = {"kind": "cold", "from_version": None, "carried_products": 0,
            "new_products": int(len(product_ids)), "dropped_products": 0}
    if base_model is None:
        reason = baseline_reason or "no model is served yet"
        progress.info("[train] cold start: %s", reason)
        return {**cold, "reason": reason}, None
    if custom_config.get("cold_start"):
        progress.info("[train] cold start (--cold-start): %s is not used", version)
        return {**cold, "reason": "--cold-start"}, None
    preset = custom_config.get("preset", "default")
    try:
        tables = warm_start.read_tables(base_model)
        served_facts = read_training_facts(base_model)
        why = warm_start.incompatibility(tables, recommender.config, preset, served_facts)
    except warm_start.IncompatibleModel as e:
        why = str(e)
    if why:
        progress.info("[train] cold start: %s cannot be warm-started from: %s", version, why)
        return {**cold, "reason": f"incompatible: {why}"}, None
    compared = None if pairs is None else warm_start.compare_pairs(tables, *pairs, product_ids)
    new, outside = compared or (None, None)
    learns = new is None or bool(new.any())  # a warm start with nothing new takes no step
    ended = warm_start.chain_ended(recommender.config, served_facts, version, outside) if learns else None
    if ended:
        progress.info("[train] cold start: %s", ended)
        return {**cold, "reason": ended}, None
    carried = warm_start.carry_over(recommender, product_ids, tables)
    config = recommender.config
    chain = warm_start.chain_length(served_facts)
    progress.info("[train] warm start from %s: %s products carried over, %s new, %s dropped", version,
                  f"{carried.carried:,}", f"{carried.new:,}", f"{carried.dropped:,}")
    started = {"kind": "warm", "from_version": base_version, "reason": f"{version} is the baseline",
               "carried_products": carried.carried, "new_products": carried.new,
               "dropped_products": carried.dropped,
               # warm starts in a row that made this model (warm_start.chain_length); one with
               # no step is the served model again, and its chain stays the served model's
               "chain": chain + int(learns)}
    if pairs is None:  # the caller did not say what it trains on
        return started, None
    rows = len(pairs[0])
    if new is None:
        fresh = rows
        progress.info("[train] %s does not hold the purchases it trained on: all %s count as new",
                      version, f"{rows:,}")
    elif not learns:
        fresh = 0
        progress.info("[train] none of the %s purchases is new to %s: nothing to learn, no step",
                      f"{rows:,}", version)
    else:
        fresh = int(new.sum())
        epochs = config.warm_start_epochs
        rehearsal = warm_start.rehearsal(config, served_facts)
        rehearsed = model_lib.rehearsed(fresh, rows - fresh, rehearsal)
        how = ("it was warm-started" if ((served_facts or {}).get("start") or {}).get("kind") == "warm"
               else "its training.json does not say it was trained cold")
        progress.info("[train] %s of %s purchases are new to %s: %g epoch%s over them%s at learning "
                      "rate %g", f"{fresh:,}", f"{rows:,}", version, epochs, "" if epochs == 1 else "s",
                      f" and {rehearsed:,} it has seen (warm_start_rehearsal {rehearsal:g}: {how})"
                      if rehearsed else "", config.warm_start_learning_rate)
        return {**started, "new_purchases": fresh, "rehearsal": rehearsal, "rehearsed_purchases": rehearsed}, new
    return {**started, "new_purchases": fresh}, new


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    custom_config = fn_args.custom_config or {}
    config = model_config(custom_config)
    log.info("model config: %s", json.dumps(config.to_dict(), sort_keys=True))
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    num_users = transform_output.vocabulary_size_by_name(features.USER_VOCAB)
    num_items = transform_output.vocabulary_size_by_name(features.PRODUCT_VOCAB)
    start = time.time()
    users, items = read_pairs(fn_args.data_accessor, fn_args.train_files, transform_output)
    progress.info("[train] %s purchases: %s users, %s products (read in %.1f s)", f"{len(users):,}",
                  f"{num_users:,}", f"{num_items:,}", time.time() - start)

    start = time.time()
    history = model_lib.build_user_history(users, items, num_users, num_items)
    capped = int((history.lengths() > config.max_history).sum()) if (
        config.use_history and config.max_history) else 0
    if capped:  # heavy users (resellers, shared accounts, bots): say what the model does
        progress.info("[train] %s with more than %d distinct purchases: the model uses a "
                      "seeded sample of %d of each (max_history); recommendations still leave "
                      "out all they bought", "1 user" if capped == 1 else f"{capped:,} users",
                      config.max_history, config.max_history)
    recommender = model_lib.Recommender(num_users, num_items, config,
                                        user_history=history if config.use_history else None)
    log.info("history and item graph built in %.1f s", time.time() - start)  # the full log
    run = custom_config.get(RUN_KEY) or {}
    product_ids = np.array([int(p) for p in transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)],
                           np.int64)
    user_ids = np.array(transform_output.vocabulary_by_name(features.USER_VOCAB), bytes)
    # the training time: a warm start's reading of the served model, carry-over and finding of
    # the new purchases are part of it (reading this run's data, like the pairs above, is not)
    start = time.time()
    baseline = run.get("baseline") or {}
    started, new = start_from(fn_args.base_model, recommender, product_ids, custom_config,
                              baseline.get("version"), (users, items, user_ids),
                              None if baseline.get("found", True) else baseline.get("reason"))
    log.info("%s start ready in %.2f s", started["kind"], time.time() - start)  # the full log
    epochs = model_lib.train(recommender, users, items, log_dir=fn_args.model_run_dir,
                             warm=started["kind"] == "warm", new=new, rehearsal=started.get("rehearsal"))
    trained = time.time() - start

    start = time.time()
    module = exporter.ServingModule(recommender, transform_output, users, items,
                                    top_k=min(int(custom_config.get("serving_top_k", features.SERVING_TOP_K)),
                                              num_items))
    exporter.export_serving_model(module, fn_args.serving_model_dir)
    facts = {
        "data": {**(run.get("data") or {}), "rows": int(len(users)), "users": int(num_users),
                 "products": int(num_items)},
        "start": started,
        "baseline": run.get("baseline") or {},
        "model": {"preset": custom_config.get("preset", "default"), "config": config.to_dict()},
        "training_key": training_key(custom_config),
        "code_fingerprint": custom_config.get("module_code"),
        "training": {"epochs": sum(e.get("share", 1.0) for e in epochs), "seconds": round(trained, 3)},
        "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    path = os.path.join(fn_args.serving_model_dir, TRAINING_FACTS)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(facts, f, indent=1, sort_keys=True)
    progress.info("[train] trained in %.1f s, serving model exported in %.1f s", trained,
                  time.time() - start)
    tf.io.gfile.makedirs(fn_args.model_run_dir)  # a warm start with nothing new wrote no TensorBoard logs
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, MODEL_CONFIG_FILE), "w") as f:
        json.dump(config.to_dict(), f, indent=2, sort_keys=True)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump(epochs, f, indent=1)  # per epoch: loss, seconds, examples/s (the run report)
