"""Reference recommenders without training, for the quality table and the validation search.

- `ReferenceModel(weights=(1, 0, 0))`: RP3beta's item graph (Paudel et al. 2016; alpha 0.25,
  beta 0): a user's score for product j is the sum over the user's train purchases i of
  graph[i, j] (`models.model.copurchase_graph`), a two-step walk product -> buyer -> product.
- `ReferenceModel(weights=(1, w_mf, w_pop))`: that graph score blended with matrix
  factorisation (PureSVD, Cremonesi et al. 2010: the user's purchase row projected on the top
  singular vectors of the purchase matrix) and popularity, each divided by its largest value
  for the user, the weights chosen on the validation split (benchmarks/tune.py).

Each is a tf.Module with the attributes the serving exporter reads (num_users, num_items,
history_splits and history_items, item_embeddings, score_all), so it is measured through the same serving
signatures as the pushed model. Ties (a user whose purchases have no co-buyers) are broken by
popularity, 1e-6 of its normalised score.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse.linalg
import tensorflow as tf

from models import model as model_lib

TIE_BREAK = 1e-6


def label(weights: Sequence[float]) -> str:
    """The table's name of a reference with these (graph, mf, popularity) weights."""
    if not (weights[1] or weights[2]):
        return "RP3beta item graph (alpha 0.25, beta 0)"
    return f"RP3beta + {weights[1]} PureSVD + {weights[2]} popularity"


class ReferenceModel(tf.Module):
    """weights = (graph, mf, popularity); see the module docstring."""

    def __init__(self, num_users: int, num_items: int, user_history: model_lib.UserHistory,
                 weights: Sequence[float] = (1.0, 0.0, 0.0), alpha: float = 0.25,
                 mf_dim: int = 64, seed: int = 42):
        super().__init__(name="reference")
        self.num_users, self.num_items = num_users, num_items
        self.weights = tuple(float(w) for w in weights)
        self.history_splits = tf.Variable(user_history.splits, trainable=False)
        self.history_items = tf.Variable(user_history.items, trainable=False)
        splits, columns, values = model_lib.copurchase_graph(user_history, num_items, alpha)
        self.splits = tf.Variable(splits, trainable=False)
        self.columns = tf.Variable(columns, trainable=False)
        self.values = tf.Variable(values, trainable=False)
        purchases = user_history.matrix(num_items)
        counts = np.asarray(purchases.sum(axis=0)).ravel()
        self.popularity = tf.Variable((counts / max(counts.max(), 1.0)).astype(np.float32),
                                      trainable=False)
        rng = np.random.default_rng(seed)
        # at most the rank ARPACK can give: a small catalog has fewer factors (found by the
        # tests of benchmarks/tune.py: 60 products, "`k` must be an integer satisfying ...")
        mf_dim = min(mf_dim, min(purchases.shape) - 1)
        _, _, vt = scipy.sparse.linalg.svds(purchases.astype(np.float64), k=mf_dim,
                                            v0=rng.uniform(size=min(purchases.shape)))
        factors = np.vstack([vt.T, np.zeros([1, mf_dim])]).astype(np.float32)  # + the OOV row
        self.item_embeddings = tf.Variable(factors, trainable=False)

    def score_all(self, user_idx) -> tf.Tensor:
        user_idx = tf.convert_to_tensor(user_idx, dtype=tf.int32)
        batch = tf.shape(user_idx)[0]
        rows, items = model_lib.history_entries(self.history_splits, self.history_items,
                                                user_idx)
        w_graph, w_mf, w_pop = self.weights

        def normalised(scores):
            return scores / tf.maximum(tf.reduce_max(scores, axis=1, keepdims=True), 1e-12)

        scores = w_graph * normalised(model_lib.graph_scores(
            rows, items, batch, self.num_items, self.splits, self.columns, self.values))
        if w_mf:
            factors = self.item_embeddings[:self.num_items]
            vectors = tf.math.unsorted_segment_sum(tf.gather(factors, items), rows, batch)
            scores += w_mf * normalised(tf.matmul(vectors, factors, transpose_b=True))
        return scores + (w_pop + TIE_BREAK) * self.popularity[tf.newaxis, :]


# The quality table's reference rows, weights chosen on the validation split by
# benchmarks/tune.py (2026-11-29: the blend's best HitRate@10 there, 0.0309, against 0.0308 for
# the graph alone; every MF weight tried lowered NDCG@10).
TABLE_ROWS = {label(w): w for w in [(1.0, 0.0, 0.0), (1.0, 0.1, 0.2)]}
