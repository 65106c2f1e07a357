"""The Trainer's run_fn: reads Transform's output, trains the recommender with negative sampling,
exports the serving SavedModel.

custom_config (plain JSON values, set from pipeline.configs.TrainerConfig):
  preset         "default" or "notebook": the starting ModelConfig (components.model)
  model          overrides of ModelConfig fields, e.g. {"epochs": 3, "sampling": "uniform"}
  serving_top_k  products returned by the serving signatures
  module_code    fingerprint of the module code (pipeline.configs.module_code_fingerprint):
                 only there so that TFX's cache sees code changes
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from components import exporter
from components import model as model_lib
from pipeline import configs

log = logging.getLogger(__name__)
progress = logging.getLogger("recsys.train")  # the console shows it (pipeline/console.py)
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


def read_pairs(file_patterns, transform_output: tft.TFTransformOutput) -> Tuple[np.ndarray, np.ndarray]:
    """(user_index, product_index) int32 arrays of every transformed example in the files."""
    files = [f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)]
    if not files:
        raise ValueError(f"no transformed examples match {file_patterns}")
    spec = {k: v for k, v in transform_output.transformed_feature_spec().items()
            if k in (configs.USER_INDEX, configs.PRODUCT_INDEX)}
    dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP")
               .batch(65536).map(lambda x: tf.io.parse_example(x, spec)))
    users, items = [], []
    for batch in dataset:
        users.append(batch[configs.USER_INDEX].numpy().reshape(-1))
        items.append(batch[configs.PRODUCT_INDEX].numpy().reshape(-1))
    return np.concatenate(users).astype(np.int32), np.concatenate(items).astype(np.int32)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    custom_config = fn_args.custom_config or {}
    config = model_config(custom_config)
    log.info("model config: %s", json.dumps(config.to_dict(), sort_keys=True))
    transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    num_users = transform_output.vocabulary_size_by_name(configs.USER_VOCAB)
    num_items = transform_output.vocabulary_size_by_name(configs.PRODUCT_VOCAB)
    users, items = read_pairs(fn_args.train_files, transform_output)
    progress.info("[train] %d purchases: %d users, %d products", len(users), num_users, num_items)

    history = model_lib.build_user_history(users, items, num_users, num_items)
    recommender = model_lib.Recommender(num_users, num_items, config,
                                        user_history=history if config.use_history else None)
    history = model_lib.train(recommender, users, items, log_dir=fn_args.model_run_dir)

    module = exporter.ServingModule(recommender, transform_output, users, items,
                                    top_k=min(int(custom_config.get("serving_top_k", 100)), num_items))
    exporter.export_serving_model(module, fn_args.serving_model_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, MODEL_CONFIG_FILE), "w") as f:
        json.dump(config.to_dict(), f, indent=2, sort_keys=True)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump(history, f, indent=1)  # per epoch: loss, seconds, examples/s (the run report)
