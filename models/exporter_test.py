"""The serving SavedModel, loaded by plain TensorFlow (as TF Serving does, no project code):
each signature with known and unknown ids, batches of 1 and many."""

import numpy as np
import pytest
import tensorflow as tf

from models import exporter, features, ranking_metrics, testing
from models.examples import purchase_example

TOP_K = 10  # of 20 products: also what ranking_metrics.measure needs (coverage@10)


@pytest.fixture(scope="module")
def served(tmp_path_factory, curated_schema):
    """A model trained for one epoch on a tiny dataset, exported and loaded back."""
    built = testing.build(str(tmp_path_factory.mktemp("export")), curated_schema, top_k=TOP_K)
    bought = {}
    for r in built.rows:
        bought.setdefault(r[features.USER_KEY][0], set()).add(r[features.PRODUCT_KEY][0])
    users = [u.encode() for u in testing.USERS]
    return (tf.saved_model.load(built.export_dir), users, testing.PRODUCTS, bought,
            built.recommender, built.transform_output)


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
        purchase_example(user, candidate), purchase_example(b"nobody", candidate),
        purchase_example(user, 123123),
    ]))["ranks"].numpy()
    recs = model.signatures["serving_default"](user_id=tf.constant([user]))["products"].numpy()[0]
    if candidate in recs:
        assert ranks[0, 0] == list(recs).index(candidate)
    else:
        assert ranks[0, 0] >= TOP_K
    assert ranks[1].tolist() == [exporter.UNRANKED, 100] and ranks[2].tolist() == [exporter.UNRANKED, 100]
    # found by exploratory testing: ranked as the catalog's size, they were hits of any top k at
    # least that large (recall@100 of 1.0 on a catalog of 80 products)
    assert recommender.num_items < 100 and ranking_metrics.purchase_values("recall", 100, ranks[1:]).sum() == 0
    assert 0 <= ranks[0, 1] <= 100


def _reference_table(scores, bought, relevant, catalog_size, k=10):
    """The protocol in plain numpy, from the model's own scores (an independent reference for the
    `evaluate` signature and ranking_metrics.measure): per user, the products ranked by score with
    the user's train purchases left out, ties to the lower index (as tf.math.top_k).

    scores: [users, products]; bought, relevant: per user, sets of product indices."""
    hit_rate = recall = ndcg = mrr = 0.0
    shown = set()
    for row, train, wanted in zip(scores, bought, relevant):
        row = np.where(np.isin(np.arange(len(row)), list(train)), -np.inf, row)
        order = np.lexsort((np.arange(len(row)), -row))  # best first
        hits = np.isin(order[:k], list(wanted))
        hit_rate += hits.any()
        recall += hits.sum() / len(wanted)
        ideal = sum(1 / np.log2(r + 2) for r in range(min(len(wanted), k)))
        ndcg += sum(1 / np.log2(r + 2) for r in np.flatnonzero(hits)) / ideal
        mrr += 1 / (1 + np.flatnonzero(np.isin(order, list(wanted)))[0])
        shown.update(order[:k].tolist())
    n = len(scores)
    return {"HitRate@10": hit_rate / n, "Recall@10": recall / n, "NDCG@10": ndcg / n, "MRR": mrr / n,
            "Coverage@10": len(shown) / catalog_size}


def test_popularity_ranks_are_what_the_popularity_baseline_ranks(served):
    """`evaluate`'s popularity_ranks (what the gate compares the model with) are the ranks the
    most-popular-products baseline gets through the same module (benchmarks and the run report)."""
    from models import baselines

    model, users, products, bought, recommender, output = served
    user_vocab = {u: i for i, u in enumerate(output.vocabulary_by_name(features.USER_VOCAB))}
    item_vocab = {int(p): i for i, p in enumerate(output.vocabulary_by_name(features.PRODUCT_VOCAB))}
    train_users = np.array([user_vocab[u] for u in bought for _ in bought[u]], np.int32)
    train_items = np.array([item_vocab[p] for u in bought for p in bought[u]], np.int32)
    popularity = exporter.ServingModule(
        baselines.PopularityModel(recommender.num_users, recommender.num_items, train_items), output,
        train_users, train_items, top_k=TOP_K)
    examples = tf.constant([purchase_example(u, p) for u in users[:12] for p in products]
                           + [purchase_example(b"nobody", products[0]), purchase_example(users[0], 123123)])
    served_out = model.signatures["evaluate"](examples=examples)
    baseline = popularity.evaluate(examples)
    np.testing.assert_array_equal(served_out["popularity_ranks"].numpy(), baseline["ranks"].numpy())
    np.testing.assert_array_equal(baseline["popularity_ranks"].numpy(), baseline["ranks"].numpy())
    assert not np.array_equal(served_out["ranks"].numpy(), served_out["popularity_ranks"].numpy())
    assert served_out["popularity_ranks"].numpy()[-2:].tolist() == [[exporter.UNRANKED, 100]] * 2


def test_served_ranks_agree_with_a_numpy_reference(served):
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
    scores = recommender.score_all(np.array([user_vocab[u] for u in users])).numpy()
    assert scores.shape == (len(users), len(products))  # every product is in the vocabulary
    relevant = [{item_vocab[p] for u, p in zip(eval_users, eval_items) if u == user} for user in users]
    reference = _reference_table(scores, [{item_vocab[p] for p in bought[u]} for u in users], relevant,
                                 catalog_size=len(products))
    for name, value in reference.items():
        assert served_table[name] == pytest.approx(value, abs=1e-6), name


def test_signatures_answer_the_same_in_chunks_as_in_one_piece(served, monkeypatch):
    """serving_default and evaluate work through big inputs exporter.CHUNK rows at a time: a
    batch spanning several chunks (and an empty one) gets what one piece would give."""
    from models import exporter

    model, users, products, *_ = served
    rng = np.random.default_rng(0)
    picked = [users[i] for i in rng.integers(0, len(users), 2 * exporter.CHUNK + 7)] + [b"nobody"]
    recommended = model.signatures["serving_default"](user_id=tf.constant(picked))
    examples = [purchase_example(u, int(rng.choice(products))) for u in picked]
    ranks = model.signatures["evaluate"](examples=tf.constant(examples))["ranks"].numpy()
    for start in range(0, len(picked), 97):  # pieces below the chunk size: one step each
        part = slice(start, start + 97)
        one = model.signatures["serving_default"](user_id=tf.constant(picked[part]))
        for key in ("products", "known_user"):
            assert (recommended[key].numpy()[part] == one[key].numpy()).all(), key
        np.testing.assert_allclose(recommended["scores"].numpy()[part], one["scores"].numpy(), rtol=1e-6)
        np.testing.assert_array_equal(
            ranks[part], model.signatures["evaluate"](examples=tf.constant(examples[part]))["ranks"].numpy())
    empty = model.signatures["serving_default"](user_id=tf.constant([], tf.string))
    assert empty["products"].shape == (0, TOP_K) and empty["known_user"].shape == (0,)
    assert model.signatures["evaluate"](examples=tf.constant([], tf.string))["ranks"].shape == (0, 2)
    assert model.signatures["evaluate"](examples=tf.constant([], tf.string))["popularity_ranks"].shape == (0, 2)


def test_a_capped_history_still_leaves_out_every_purchase(tmp_path, curated_schema):
    """With max_history below a user's purchases the model pools a sample of them, but serving
    and evaluation leave out all of them (the exporter keeps the whole purchase list)."""
    built = testing.build(str(tmp_path), curated_schema, top_k=TOP_K, max_history=1)
    model = tf.saved_model.load(built.export_dir)
    assert len(built.recommender.history_items.numpy()) == len(testing.USERS)  # one each
    bought = {}
    for r in built.rows:
        bought.setdefault(r[features.USER_KEY][0], set()).add(r[features.PRODUCT_KEY][0])
    users = list(bought)
    out = model.signatures["serving_default"](user_id=tf.constant(users))["products"].numpy()
    for user, recs in zip(users, out):
        assert len(bought[user]) == 3 and not set(recs) & bought[user]
    examples = [purchase_example(u, p) for u in users for p in sorted(bought[u])]
    ranks = model.signatures["evaluate"](examples=tf.constant(examples))["ranks"].numpy()
    assert (ranks[:, 0] == exporter.UNRANKED).all()  # bought before: never ranked


def test_fewer_products_left_than_top_k_end_in_padding_never_in_a_purchase(tmp_path, curated_schema):
    """Found by exploratory testing: a user who had bought all but 36 products was recommended 64
    of his purchases, scored -inf (not JSON). With top_k the whole catalog, every user here has 3
    purchases left out and every product asked about itself: the lists end in padding."""
    built = testing.build(str(tmp_path), curated_schema, top_k=len(testing.PRODUCTS))
    model = tf.saved_model.load(built.export_dir)
    bought = {}
    for r in built.rows:
        bought.setdefault(r[features.USER_KEY][0], set()).add(r[features.PRODUCT_KEY][0])
    users = sorted(bought)
    out = model.signatures["serving_default"](user_id=tf.constant(users + [b"nobody"]))
    products, scores = out["products"].numpy(), out["scores"].numpy()
    lowest = np.finfo(np.float32).min
    for user, recs, row in zip(users, products, scores):
        left = len(testing.PRODUCTS) - len(bought[user])
        assert not set(recs) & bought[user] and set(recs[:left]) == set(testing.PRODUCTS) - bought[user]
        assert (recs[left:] == features.PADDING_PRODUCT).all() and (row[left:] == lowest).all()
        assert np.isfinite(row).all() and (row[:left] > lowest).all()
    assert features.PADDING_PRODUCT not in products[-1]  # an unknown user: the popular products, all of them
    out = model.signatures["call_item_item"](item=tf.constant(testing.PRODUCTS[:2], tf.int64))
    for item, similar, row in zip(testing.PRODUCTS, out["products"].numpy(), out["scores"].numpy()):
        assert item not in similar and similar[-1] == features.PADDING_PRODUCT and row[-1] == lowest
        assert features.PADDING_PRODUCT not in similar[:-1]
