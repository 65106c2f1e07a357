"""The serving SavedModel, loaded by plain TensorFlow (as TF Serving does, no project code):
each signature with known and unknown ids, batches of 1 and many."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from models import exporter, features, preprocessing, ranking_metrics
from models import model as model_lib
from tests import reference_protocol

TOP_K = 10  # of 20 products: also what ranking_metrics.measure needs (coverage@10)


@pytest.fixture(scope="module")
def served(tmp_path_factory, curated_schema):
    """A model trained for one epoch on a tiny dataset, exported and loaded back."""
    rng = np.random.default_rng(0)
    users = [f"user{u:016d}".encode() for u in range(30)]
    products = list(range(2000000, 2000020))
    rows = []
    for u in users:
        for p in rng.choice(products, size=3, replace=False):
            rows.append({features.USER_KEY: [u], features.PRODUCT_KEY: [int(p)]})
    temp = str(tmp_path_factory.mktemp("export"))
    metadata = tft.tf_metadata.dataset_metadata.DatasetMetadata(curated_schema)
    with tft_beam.Context(temp_dir=os.path.join(temp, "tmp"), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(temp, "tft"))
    output = tft.TFTransformOutput(os.path.join(temp, "tft"))
    user_idx = np.array([r[features.USER_INDEX] for r in transformed], np.int32)
    item_idx = np.array([r[features.PRODUCT_INDEX] for r in transformed], np.int32)
    num_users = output.vocabulary_size_by_name(features.USER_VOCAB)
    num_items = output.vocabulary_size_by_name(features.PRODUCT_VOCAB)
    config = model_lib.DEFAULT.replace(embedding_dim=8, epochs=1, batch_size=16)
    history = model_lib.build_user_history(user_idx, item_idx, num_users, num_items)
    recommender = model_lib.Recommender(num_users, num_items, config, user_history=history)
    model_lib.train(recommender, user_idx, item_idx)
    export_dir = os.path.join(temp, "serving")
    exporter.export_serving_model(
        exporter.ServingModule(recommender, output, user_idx, item_idx, top_k=TOP_K), export_dir)
    bought = {}
    for r in rows:
        bought.setdefault(r[features.USER_KEY][0], set()).add(r[features.PRODUCT_KEY][0])
    return tf.saved_model.load(export_dir), users, products, bought, recommender, output


def _example(user: bytes, product: int) -> bytes:
    return tf.train.Example(features=tf.train.Features(feature={
        features.USER_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[user])),
        features.PRODUCT_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[product])),
    })).SerializeToString()


def test_the_three_signatures_are_exported(served):
    model = served[0]
    assert set(model.signatures) == {"serving_default", "call_item_item", "evaluate"}
    inputs = model.signatures["call_item_item"].structured_input_signature[1]
    assert inputs["item"].dtype == tf.int64 and inputs["item"].shape.as_list() == [None]


@pytest.mark.parametrize("batch", [1, 7])
def test_item_item_known_products(served, batch):
    model, _, products, *_ = served
    items = products[:batch]
    out = model.signatures["call_item_item"](item=tf.constant(items, tf.int64))
    assert out["products"].shape == (batch, TOP_K) and out["scores"].shape == (batch, TOP_K)
    assert out["known_item"].numpy().all()
    for item, similar, scores in zip(items, out["products"].numpy(), out["scores"].numpy()):
        assert item not in similar  # the product itself is left out
        assert set(similar) <= set(products)  # raw ids, never an OOV row
        assert (np.diff(scores) <= 1e-6).all()  # best first


def test_item_item_unknown_product_gets_the_popular_ones(served):
    model, _, products, *_ = served
    out = model.signatures["call_item_item"](item=tf.constant([123123, products[0]], tf.int64))
    assert out["known_item"].numpy().tolist() == [False, True]
    popular = model.signatures["serving_default"](user_id=tf.constant([b"nobody"]))["products"]
    assert out["products"].numpy()[0].tolist() == popular.numpy()[0].tolist()


@pytest.mark.parametrize("batch", [1, 9])
def test_user_recommendations_leave_out_what_was_bought(served, batch):
    model, users, products, bought, *_ = served
    out = model.signatures["serving_default"](user_id=tf.constant(users[:batch]))
    assert out["products"].shape == (batch, TOP_K)
    assert out["known_user"].numpy().all()
    for user, recs in zip(users[:batch], out["products"].numpy()):
        assert not set(recs) & bought[user]
        assert set(recs) <= set(products) and len(set(recs)) == TOP_K


def test_unknown_user_gets_popular_products_and_a_flag(served):
    model, users, *_ = served
    out = model.signatures["serving_default"](user_id=tf.constant([b"nobody", users[0]]))
    assert out["known_user"].numpy().tolist() == [False, True]
    scores = out["scores"].numpy()[0]
    assert (scores > 0).all() and (np.diff(scores) <= 0).all()  # shares of purchases, best first


def test_evaluate_ranks_match_the_model_scores(served):
    model, users, products, bought, recommender, _ = served
    user = users[0]
    candidate = next(p for p in products if p not in bought[user])
    ranks = model.signatures["evaluate"](examples=tf.constant([
        _example(user, candidate), _example(b"nobody", candidate), _example(user, 123123),
    ]))["ranks"].numpy()
    recs = model.signatures["serving_default"](user_id=tf.constant([user]))["products"].numpy()[0]
    if candidate in recs:
        assert ranks[0, 0] == list(recs).index(candidate)
    else:
        assert ranks[0, 0] >= TOP_K
    num_items = recommender.num_items
    assert ranks[1].tolist() == [num_items, 100] and ranks[2].tolist() == [num_items, 100]
    assert 0 <= ranks[0, 1] <= 100


def test_served_ranks_agree_with_the_reference_protocol(served):
    """The `evaluate` signature (what TFMA gates on and the quality benchmark reads) against the
    protocol recomputed in numpy from the model's own scores."""
    model, users, products, bought, recommender, output = served
    rng = np.random.default_rng(1)
    eval_users, eval_items = [], []
    for user in users:
        for product in rng.choice([p for p in products if p not in bought[user]], 2, replace=False):
            eval_users.append(user)
            eval_items.append(int(product))
    served_table = ranking_metrics.measure(model, eval_users, eval_items, catalog_size=len(products))

    user_vocab = {u: i for i, u in enumerate(output.vocabulary_by_name(features.USER_VOCAB))}
    item_vocab = {int(p): i for i, p in enumerate(output.vocabulary_by_name(features.PRODUCT_VOCAB))}
    train_pairs = ([user_vocab[u] for u in bought for _ in bought[u]],
                   [item_vocab[p] for u in bought for p in bought[u]])
    reference = reference_protocol.evaluate_ranking(
        lambda idx: recommender.score_all(idx).numpy(), train_pairs,
        ([user_vocab[u] for u in eval_users], [item_vocab[p] for p in eval_items]),
        num_items=recommender.num_items, catalog_size=len(products), k_values=(10,))
    for served_name, reference_name in [("HitRate@10", "hit_rate@10"), ("Recall@10", "recall@10"),
                                        ("NDCG@10", "ndcg@10"), ("MRR", "mrr"),
                                        ("Coverage@10", "coverage@10")]:
        assert served_table[served_name] == pytest.approx(reference[reference_name], abs=1e-6), served_name
