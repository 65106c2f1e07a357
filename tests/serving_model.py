"""A small serving SavedModel for the server's tests: the exporter's ServingModule, trained one
epoch on generated purchases (the same recipe as the exporter's own test), exported once."""

import dataclasses
import os
from typing import List

import numpy as np
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tfx.utils import io_utils

from models import exporter, features, preprocessing
from models import model as model_lib
from pipeline import configs

TOP_K = 10
USERS = [f"user{u:016d}" for u in range(30)]
PRODUCTS = list(range(2000000, 2000020))
UNKNOWN_PRODUCT = 123123  # the workshop's request: not a product of any catalog


@dataclasses.dataclass
class Exported:
    """What `build` made: the SavedModel's directory and what it was made from."""

    export_dir: str
    rows: List[dict]  # the purchases, as tf.Example-like dicts of raw ids
    recommender: model_lib.Recommender
    transform_output: tft.TFTransformOutput


def build(workdir: str, top_k: int = TOP_K, **model_overrides) -> Exported:
    """Transforms generated purchases, trains one epoch, exports the serving model under
    `workdir`; `model_overrides`: ModelConfig fields other than the recipe's."""
    rng = np.random.default_rng(0)
    rows = [{features.USER_KEY: [u.encode()], features.PRODUCT_KEY: [int(p)]}
            for u in USERS for p in rng.choice(PRODUCTS, size=3, replace=False)]
    schema = io_utils.SchemaReader().read(os.path.join(configs.SCHEMA_DIR, "schema.pbtxt"))
    metadata = tft.tf_metadata.dataset_metadata.DatasetMetadata(schema)
    with tft_beam.Context(temp_dir=os.path.join(workdir, "tmp"), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(workdir, "tft"))
    output = tft.TFTransformOutput(os.path.join(workdir, "tft"))
    user_idx = np.array([r[features.USER_INDEX] for r in transformed], np.int32)
    item_idx = np.array([r[features.PRODUCT_INDEX] for r in transformed], np.int32)
    num_users = output.vocabulary_size_by_name(features.USER_VOCAB)
    num_items = output.vocabulary_size_by_name(features.PRODUCT_VOCAB)
    config = model_lib.DEFAULT.replace(embedding_dim=8, epochs=1, batch_size=16, **model_overrides)
    history = model_lib.build_user_history(user_idx, item_idx, num_users, num_items)
    recommender = model_lib.Recommender(num_users, num_items, config, user_history=history)
    model_lib.train(recommender, user_idx, item_idx)
    export_dir = os.path.join(workdir, "saved_model")
    exporter.export_serving_model(
        exporter.ServingModule(recommender, output, user_idx, item_idx, top_k=top_k), export_dir)
    return Exported(export_dir, rows, recommender, output)


def export(workdir: str) -> str:
    """Trains and exports the model under `workdir`; returns the SavedModel directory."""
    return build(workdir).export_dir
