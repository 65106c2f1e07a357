"""The numpy ranking metrics against values worked out by hand on tiny inputs, and against
TFMA's metrics (models/eval_metrics.py), which the gate computes from the same ranks."""

import numpy as np
import pytest
import tensorflow as tf

from models import eval_metrics, ranking_metrics

# four purchases: full-catalog rank, rank among the 100 sampled products
RANKS = np.array([[0, 0], [4, 0], [12, 3], [99, 7]], np.float32)


def test_purchase_metrics():
    assert ranking_metrics.purchase_metrics(RANKS) == pytest.approx({
        "recall_at_10": 2 / 4,  # ranks 0 and 4
        "recall_at_100": 4 / 4,
        "ndcg_at_10": (1 / np.log2(2) + 1 / np.log2(6)) / 4,
        "mrr": (1 / 1 + 1 / 5 + 1 / 13 + 1 / 100) / 4,
        "sampled_accuracy": 2 / 4,  # sampled rank 0
    })


def test_recall_curve():
    curve = ranking_metrics.recall_curve(np.array([0, 4, 99, 500], np.float32), max_k=100)
    assert len(curve) == 100
    assert curve[0] == 0.25 and curve[4] == 0.5 and curve[98] == 0.5 and curve[99] == 0.75
    assert ranking_metrics.recall_curve(np.array([0, 4, 99, 500]), max_k=3) == [0.25, 0.25, 0.25]


def test_user_metrics():
    # a: products 1 (rank 0) and 2 (rank 12); b: product 3 (rank 4) bought twice, counted once;
    # c: product 5 (rank 150)
    users = np.array([b"a", b"b", b"a", b"c", b"b"], dtype=object)
    products = [1, 3, 2, 5, 3]
    ranks = np.array([0, 4, 12, 150, 4], np.float32)
    ndcg = [1 / (1 + 1 / np.log2(3)), 1 / np.log2(6), 0.0]  # a: one of two in the top 10
    assert ranking_metrics.user_metrics(users, products, ranks) == pytest.approx({
        "HitRate@10": 2 / 3,
        "Recall@10": (1 / 2 + 1 + 0) / 3,
        "Recall@100": (1 + 1 + 0) / 3,
        "NDCG@10": sum(ndcg) / 3,
        "MRR": (1 / 1 + 1 / 5 + 1 / 151) / 3,
        "se HitRate@10": np.sqrt(2 / 9) / np.sqrt(3),  # std of [1, 1, 0] over sqrt(3 users)
        "se NDCG@10": np.std(ndcg) / np.sqrt(3),
    })


def test_one_purchase_per_user_makes_per_user_and_per_purchase_figures_agree():
    """The validation split of benchmarks/tune.py: one held-out purchase per user."""
    ranks = np.array([0, 3, 9, 10, 57, 230])
    per_user = ranking_metrics.user_metrics(np.arange(6), np.arange(6), ranks)
    per_purchase = ranking_metrics.purchase_metrics(np.stack([ranks, ranks], axis=1))
    assert per_user["HitRate@10"] == per_user["Recall@10"] == per_purchase["recall_at_10"] == 0.5
    assert per_user["NDCG@10"] == pytest.approx(per_purchase["ndcg_at_10"])
    assert per_user["MRR"] == pytest.approx(per_purchase["mrr"])


def test_user_metrics_need_purchases():
    with pytest.raises(ValueError, match="no purchases to rank"):
        ranking_metrics.user_metrics([], [], np.array([]))


def test_coverage():
    assert ranking_metrics.coverage({1, 2, 3}, catalog_size=6) == 0.5
    assert ranking_metrics.coverage(set(), catalog_size=0) == 0.0


def test_served_products_are_the_users_top_k_in_batches():
    answers = {b"a": [10, 11, 12], b"b": [11, 13, 14], b"c": [15, 10, 16]}
    asked = []

    def serving_default(user_id):
        asked.append(len(user_id))
        return {"products": tf.constant([answers[u] for u in user_id.numpy()], tf.int64)}

    signatures = {"serving_default": serving_default}
    assert ranking_metrics.served_products(signatures, [b"a", b"b", b"c"], k=2, batch=2) == {10, 11, 13, 15}
    assert asked == [2, 1]
    with pytest.raises(ValueError, match="coverage@4 needs a model serving at least 4 products"):
        ranking_metrics.served_products(signatures, [b"a"], k=4, require_k=True)


def test_the_numpy_metrics_are_tfmas():
    rng = np.random.default_rng(0)
    ranks = np.stack([rng.integers(0, 300, 500), rng.integers(0, 3, 500)], axis=1).astype(np.float32)
    ours = ranking_metrics.purchase_metrics(ranks)
    for name, kind, k in [("recall_at_10", "recall", 10), ("recall_at_100", "recall", 100),
                          ("ndcg_at_10", "ndcg", 10), ("mrr", "mrr", 0),
                          ("sampled_accuracy", "sampled_accuracy", 0)]:
        metric = eval_metrics.RankingMetric(kind, k)
        metric.update_state(np.zeros(len(ranks)), ranks)
        assert ours[name] == pytest.approx(float(metric.result()), rel=1e-5), name


def test_the_paired_interval_is_clustered_by_user():
    from models.ranking_metrics import paired_interval

    # two users: +1, +1, 0 (user a) and -1 (user b); mean 1/4, residual sums 2 - 3/4 and -1 - 1/4
    mean, se, dof = paired_interval([2.0, -1.0], [3, 1])
    assert mean == pytest.approx(0.25) and dof == 1
    assert se == pytest.approx(np.sqrt(2 / 1 * ((1.25 ** 2) + (1.25 ** 2)) / 16))
    # one purchase per user: the usual standard error of the mean difference
    d = np.array([1.0, 0.0, -1.0, 1.0, 1.0, 0.0])
    mean, se, dof = paired_interval(d, np.ones(6))
    assert (mean, se, dof) == (pytest.approx(d.mean()), pytest.approx(d.std(ddof=1) / np.sqrt(6)), 5)
    # one user tells nothing of the noise between users; no purchases, nothing to compare
    assert paired_interval([3.0], [5]) == (0.6, float("inf"), 0)
    with pytest.raises(ValueError, match="no purchases"):
        paired_interval([], [])
