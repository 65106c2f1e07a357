"""For tests, not the pipeline: a real transform graph and a small serving SavedModel, made from
generated purchases in seconds.

`transform_graph` runs the project's preprocessing_fn with tf.Transform, as the Transform
component does, and writes the transform graph (its vocabularies under transform_fn/assets);
`build` then trains the recommender for one epoch and exports the exporter's ServingModule.
Used by models/exporter_test.py, components/batch_recommendations_test.py and the model
server's end-to-end test (tests/test_serving.py). The schema is the caller's (the curated
schema/schema.pbtxt: the `curated_schema` fixture of conftest.py), as module code knows no
pipeline paths.
"""

import dataclasses
import os
from typing import List, Sequence, Tuple

import numpy as np
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_metadata.proto.v0 import schema_pb2

from models import exporter, features, preprocessing
from models import model as model_lib

TOP_K = 10
USERS = [f"user{u:016d}" for u in range(30)]
PRODUCTS = list(range(2000000, 2000020))
PURCHASES_PER_USER = 3
UNKNOWN_PRODUCT = 123123  # the workshop's request: not a product of any catalog


@dataclasses.dataclass
class Exported:
    """What `build` made: the SavedModel's directory and what it was made from."""

    export_dir: str
    rows: List[dict]  # the purchases, as tf.Example-like dicts of raw ids
    recommender: model_lib.Recommender
    transform_output: tft.TFTransformOutput


def purchases(seed: int = 0, users: Sequence[str] = USERS, products: Sequence[int] = PRODUCTS,
              per_user: int = PURCHASES_PER_USER) -> List[dict]:
    """`per_user` distinct products for each user, drawn with numpy's generator of `seed`."""
    rng = np.random.default_rng(seed)
    return [{features.USER_KEY: [u.encode()], features.PRODUCT_KEY: [int(p)]}
            for u in users for p in rng.choice(products, size=per_user, replace=False)]


def transform_graph(rows: List[dict], schema: schema_pb2.Schema, workdir: str
                    ) -> Tuple[List[dict], tft.TFTransformOutput]:
    """(the transformed rows, the transform graph written to `workdir`/tft)."""
    metadata = tft.tf_metadata.dataset_metadata.DatasetMetadata(schema)
    with tft_beam.Context(temp_dir=os.path.join(workdir, "tmp"), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(workdir, "tft"))
    return transformed, tft.TFTransformOutput(os.path.join(workdir, "tft"))


def build(workdir: str, schema: schema_pb2.Schema, top_k: int = TOP_K, seed: int = 0,
          **model_overrides) -> Exported:
    """Transforms generated purchases (`purchases(seed)`), trains one epoch, exports the serving
    model under `workdir`/saved_model; `model_overrides`: ModelConfig fields other than the
    recipe's."""
    rows = purchases(seed)
    transformed, output = transform_graph(rows, schema, workdir)
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
