"""The pipeline's work without TFX, as a plain script: the floor a TFX run is compared with.

    env/run-in-env python benchmarks/bare_pipeline.py DATA_DIR OUT_DIR

What the pipeline computes, with the same model code (models/) and the same settings (the
default preset), minus what TFX adds (ExampleGen's tf.Examples, StatisticsGen, validation,
Transform's Beam pipeline, ML Metadata, caching, the gate, the Pusher, the report):

1. read the train and eval parquet files (pyarrow);
2. build the user and product vocabularies (by descending frequency, as Transform's
   `compute_and_apply_vocabulary`; unknown ids map to one OOV index, the vocabulary's size);
3. train the recommender (models.model: the user history and item graph, `train`);
4. export the serving SavedModel (models.exporter.ServingModule, its vocabularies a lookup-table
   module standing in for Transform's layer) and load it back;
5. score the eval split through its `evaluate` signature (as the Evaluator does: every eval
   purchase ranked against the whole catalog) and compute the gate's metrics;
6. every known user's top 100 through `serving_default` in chunks of 1,024 users (as
   BatchRecommendations), written as parquet.

Prints each phase's seconds and, last, one JSON line {"phases", "peak_bytes", "metrics",
"counts"} (benchmarks/scale.py reads it; the wall time of the whole process, imports
included, is measured there).
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import json
import os
import shutil
import sys
import time
from typing import Dict, List, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from models import exporter, features, ranking_metrics
from models import model as model_lib
from models.examples import purchase_examples
from pipeline import configs

BATCH_USERS = 1024  # BatchRecommendations' chunk (components/batch_recommendations.py)
EVAL_BATCH = 8192  # the Evaluator's input batches (components/evaluator.py)


class Vocabularies(tf.Module):
    """What the serving module needs of Transform's output: `transform_features_layer()` (raw ids
    to indices, unknown ids to the vocabulary's size, Transform's single OOV bucket) and
    `vocabulary_by_name`."""

    def __init__(self, users: Sequence[bytes], products: Sequence[int]):
        super().__init__(name="vocabularies")
        self._vocab = {features.USER_VOCAB: list(users),
                       features.PRODUCT_VOCAB: [str(p).encode() for p in products]}
        init = tf.lookup.KeyValueTensorInitializer
        self.users = tf.lookup.StaticHashTable(init(
            tf.constant(list(users), tf.string), tf.range(len(users), dtype=tf.int64)), len(users))
        self.products = tf.lookup.StaticHashTable(init(
            tf.constant(np.asarray(products, np.int64)), tf.range(len(products), dtype=tf.int64)),
            len(products))

    def transform_features_layer(self) -> "Vocabularies":
        return self

    def vocabulary_by_name(self, name: str) -> List[bytes]:
        return self._vocab[name]

    def __call__(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        out = {}
        if features.USER_KEY in inputs:
            out[features.USER_INDEX] = self.users.lookup(tf.reshape(inputs[features.USER_KEY], [-1]))
        if features.PRODUCT_KEY in inputs:
            out[features.PRODUCT_INDEX] = self.products.lookup(tf.reshape(inputs[features.PRODUCT_KEY], [-1]))
        return out


def vocabulary(values: np.ndarray):
    """(distinct values by descending frequency (ties: ascending value), the index of each value)."""
    distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    order = np.lexsort((np.arange(len(distinct)), -counts))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[inverse]


def _read(path: str):
    table = pq.read_table(path, columns=[features.USER_KEY, features.PRODUCT_KEY])
    return (np.asarray(table[features.USER_KEY].to_pylist(), dtype=object),
            table[features.PRODUCT_KEY].to_numpy().astype(np.int64))


def _peak_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def run(data_dir: str, out_dir: str) -> Dict:
    phases: Dict[str, float] = {}

    def phase(name: str, start: float) -> float:
        phases[name] = time.time() - start
        print(f"[bare] {name}: {phases[name]:.1f} s", flush=True)
        return time.time()

    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    start = time.time()
    train_users, train_products = _read(os.path.join(data_dir, configs.TRAIN_FILE))
    eval_users, eval_products = _read(os.path.join(data_dir, configs.EVAL_FILE))
    start = phase("read parquet", start)

    users, user_idx = vocabulary(train_users)
    products, item_idx = vocabulary(train_products)
    start = phase("vocabularies", start)

    config = model_lib.DEFAULT  # the pipeline's default preset (models/trainer.py PRESETS)
    num_users, num_items = len(users), len(products)
    history = model_lib.build_user_history(user_idx, item_idx, num_users, num_items)
    recommender = model_lib.Recommender(num_users, num_items, config,
                                        user_history=history if config.use_history else None)
    model_lib.train(recommender, user_idx, item_idx)
    start = phase("train", start)

    module = exporter.ServingModule(recommender, Vocabularies(users, products), user_idx, item_idx)
    model_dir = os.path.join(out_dir, "model")
    exporter.export_serving_model(module, model_dir)
    signatures = tf.saved_model.load(model_dir).signatures
    start = phase("export", start)

    ranks = ranking_metrics.evaluate_ranks(signatures, purchase_examples(eval_users, eval_products),
                                           batch=EVAL_BATCH)
    metrics = ranking_metrics.purchase_metrics(ranks)
    start = phase("evaluate", start)

    schema = pa.schema([(features.USER_KEY, pa.string()), ("rank", pa.int32()),
                        (features.PRODUCT_KEY, pa.int64()), ("score", pa.float32())])
    with pq.ParquetWriter(os.path.join(out_dir, "recommendations.parquet"), schema) as writer:
        for s in range(0, num_users, BATCH_USERS):
            chunk = users[s:s + BATCH_USERS]
            out = signatures["serving_default"](user_id=tf.constant(list(chunk)))
            top = out["products"].numpy()
            k = top.shape[1]
            writer.write_table(pa.Table.from_arrays([
                pa.array(np.repeat([u.decode() for u in chunk], k), pa.string()),
                pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), len(chunk))),
                pa.array(top.reshape(-1)), pa.array(out["scores"].numpy().reshape(-1))], schema=schema))
    phase("top 100 for every user", start)
    return {"phases": phases, "peak_bytes": _peak_bytes(), "metrics": metrics,
            "counts": {"train": len(train_users), "eval": len(eval_users), "users": num_users,
                       "products": num_items}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("out_dir", help="the model and the recommendations go here (replaced)")
    args = p.parse_args(argv)
    print(json.dumps(run(args.data_dir, args.out_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
