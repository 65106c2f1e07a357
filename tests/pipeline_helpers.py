"""Running the pipeline in tests on generated data, and reading ML Metadata's record of it."""

from __future__ import annotations

import os
from typing import List

from tfx import v1 as tfx

import local_runner
from models import features
from pipeline import configs
from runner.metadata import execution_states as executions, output_uris, store  # noqa: F401


def test_config(data_dir: str, output_dir: str, **overrides) -> configs.PipelineConfig:
    """The local configuration on generated data: no checksums (not the published files)."""
    return configs.PipelineConfig(data_dir=data_dir, output_dir=output_dir,
                                  verify_checksums=False, **overrides)


def run(config: configs.PipelineConfig) -> None:
    tfx.orchestration.LocalDagRunner().run(local_runner.build(config))


def check_batch_recommendations(directory: str, model_dir: str, data_dir: str, top_k: int,
                                train_files=None) -> int:
    """Asserts the BatchRecommendations parquet in `directory`: one list per user of the train
    file (`train_files`: the train files of a span layout's window), `top_k` distinct products
    ranked 1..top_k, none the user bought in train, exactly what the SavedModel's serving_default
    answers. Returns the number of users."""
    import collections
    import os

    import numpy as np
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    import tensorflow as tf

    from models import features
    from pipeline import configs

    files = sorted(os.listdir(directory))
    assert files and all(f.endswith(".parquet") and "-of-" in f for f in files), files
    frame = ds.dataset(directory).to_table().to_pandas().sort_values([features.USER_KEY, "rank"])
    assert list(frame.columns) == [features.USER_KEY, "rank", features.PRODUCT_KEY, "score"]
    import pyarrow as pa

    train = pa.concat_tables([pq.read_table(path) for path in (
        train_files or [os.path.join(data_dir, configs.TRAIN_FILE)])]).to_pydict()
    bought = collections.defaultdict(set)
    for user, product in zip(train[features.USER_KEY], train[features.PRODUCT_KEY]):
        bought[user.decode() if isinstance(user, bytes) else user].add(int(product))
    users = sorted(bought)
    assert sorted(frame[features.USER_KEY].unique()) == users, "one list per known user"
    assert len(frame) == len(users) * top_k
    served = tf.saved_model.load(model_dir).signatures["serving_default"](
        user_id=tf.constant([u.encode() for u in users]))
    assert bool(tf.reduce_all(served["known_user"]))
    products = frame[features.PRODUCT_KEY].to_numpy().reshape(len(users), top_k)
    scores = frame["score"].to_numpy().reshape(len(users), top_k)
    ranks = frame["rank"].to_numpy().reshape(len(users), top_k)
    assert (ranks == np.arange(1, top_k + 1)).all()
    np.testing.assert_array_equal(products, served["products"].numpy())
    # float32 scores of batches of other sizes: summed in another order (1.02e-6 relative seen)
    np.testing.assert_allclose(scores, served["scores"].numpy(), rtol=1e-5, atol=1e-6)
    for user, row in zip(users, products):
        assert len(set(row.tolist())) == top_k, f"{user}: repeated products"
        assert not set(row.tolist()) & bought[user], f"{user}: recommended a product bought in train"
    return len(users)


def harness_compile_flags(root: str, data_dir: str) -> List[str]:
    """Compile flags (kubeflow_v2_runner.py) that put a compiled pipeline's every location on this
    machine under `root`, for the harness: the tiny data in one Beam worker in the component's
    process (the default starts one per core)."""
    return ["--bucket", "unused", "--image", "unused", "--pipeline-root", os.path.join(root, "pipeline_root"),
            "--data-root", data_dir, "--schema-dir", configs.SCHEMA_DIR,
            "--serving-model-dir", os.path.join(root, "serving"),
            "--beam-arg=--direct_running_mode=in_memory", "--beam-arg=--direct_num_workers=1"]


def check_serving_signatures(model_dir: str, data_dir: str, top_k: int, users=None) -> None:
    """Asserts that the SavedModel in `model_dir` answers `call_item_item` for catalog products
    and `serving_default` for known users (`users`, bytes; default: the first three of the flat
    train file),
    `top_k` products each."""
    import tensorflow as tf

    model = tf.saved_model.load(model_dir)
    items = [int(line) for line in open(os.path.join(data_dir, configs.CATALOG_FILE))][:3]
    similar = model.signatures["call_item_item"](item=tf.constant(items, tf.int64))
    assert similar["products"].shape == (3, top_k)
    if users is None:
        import pyarrow.parquet as pq

        users = pq.read_table(os.path.join(data_dir, configs.TRAIN_FILE)).column(
            features.USER_KEY).unique().to_pylist()[:3]
    recommended = model.signatures["serving_default"](user_id=tf.constant(users))
    assert recommended["products"].shape == (3, top_k)
    assert bool(tf.reduce_all(recommended["known_user"]))
