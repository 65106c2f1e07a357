"""Ranking metrics for TFMA, computed from the `ranks` output of the `evaluate` signature.

Each eval purchase is one example; `ranks[:, 0]` is the 0-based rank of the purchased product
among all products (the user's train purchases left out), `ranks[:, 1]` its rank among 100
uniformly sampled products. Averaged over purchases (TFMA's examples), so recall@k here is the
share of eval purchases ranked in the top k; benchmarks/quality.py reports the per-user table.
Rebuilt by TFMA from `get_config` (tfx#4022): keep the constructor arguments in it.
"""

import tensorflow as tf

KINDS = ("recall", "ndcg", "mrr", "sampled_accuracy")


class RankingMetric(tf.keras.metrics.Mean):
    """recall@k, ndcg@k (one relevant item: 1/log2(rank+2) within the top k), mrr, or the
    notebook's sampled accuracy (the true product beats all 100 sampled ones)."""

    def __init__(self, kind: str, k: int = 0, name: str = None, dtype=None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if kind in ("recall", "ndcg") and k < 1:
            raise ValueError(f"{kind} needs k >= 1")
        super().__init__(name=name or (f"{kind}_at_{k}" if k else kind), dtype=dtype)
        self.kind, self.k = kind, k

    def update_state(self, y_true, y_pred, sample_weight=None):
        del y_true  # the signature already compared the label with the ranking
        ranks = tf.reshape(tf.cast(y_pred, tf.float32), [-1, 2])
        rank, sampled_rank = ranks[:, 0], ranks[:, 1]
        if self.kind == "recall":
            value = tf.cast(rank < self.k, tf.float32)
        elif self.kind == "ndcg":
            value = tf.where(rank < self.k, 1.0 / (tf.math.log(rank + 2.0) / tf.math.log(2.0)), 0.0)
        elif self.kind == "mrr":
            value = 1.0 / (rank + 1.0)
        else:
            value = tf.cast(tf.equal(sampled_rank, 0.0), tf.float32)
        return super().update_state(value, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "k": self.k}
