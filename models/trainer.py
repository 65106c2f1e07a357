"""The Trainer's run_fn: reads Transform's output, trains the recommender with negative sampling,
exports the serving SavedModel.

custom_config (plain JSON values; the pipeline builds it from its TrainingConfig):
  preset         "default" or "notebook": the starting ModelConfig (models.model)
  model          overrides of ModelConfig fields, e.g. {"epochs": 3, "sampling": "uniform"}
  serving_top_k  products returned by the serving signatures (default features.SERVING_TOP_K)
  module_code    fingerprint of the code this run_fn imports: only there so that TFX's cache
                 sees code changes (module code is named by dotted path, which TFX does not hash)
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import exporter
from models import model as model_lib
from models import features

log = logging.getLogger(__name__)
progress = logging.getLogger("recsys.train")  # the console shows it (runner/console.py)
PRESETS = {"default": model_lib.DEFAULT, "notebook": model_lib.NOTEBOOK}
# Written to the Trainer's model_run artifact beside TensorBoard's logs
MODEL_CONFIG_FILE = "model_config.json"
HISTORY_FILE = "training_history.json"


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
    Transform wrote)."""
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
    return np.concatenate(users).astype(np.int32), np.concatenate(items).astype(np.int32)


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
    start = time.time()
    epochs = model_lib.train(recommender, users, items, log_dir=fn_args.model_run_dir)
    trained = time.time() - start

    start = time.time()
    module = exporter.ServingModule(recommender, transform_output, users, items,
                                    top_k=min(int(custom_config.get("serving_top_k", features.SERVING_TOP_K)),
                                              num_items))
    exporter.export_serving_model(module, fn_args.serving_model_dir)
    progress.info("[train] trained in %.1f s, serving model exported in %.1f s", trained,
                  time.time() - start)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, MODEL_CONFIG_FILE), "w") as f:
        json.dump(config.to_dict(), f, indent=2, sort_keys=True)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump(epochs, f, indent=1)  # per epoch: loss, seconds, examples/s (the run report)
