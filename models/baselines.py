"""Baselines a trained model is compared with (benchmarks/quality.py, the run report)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class PopularityModel(tf.Module):
    """Scores every product by its train purchase count, whoever the user: the baseline.

    It has the recommender's interface the serving module needs (`num_users`, `num_items`,
    `score_all`, `item_embeddings`), so it is measured through exactly the same signatures."""

    def __init__(self, num_users: int, num_items: int, items: np.ndarray):
        super().__init__(name="popularity")
        self.num_users, self.num_items = num_users, num_items
        counts = np.bincount(items[items < num_items], minlength=num_items).astype(np.float32)
        self.log_counts = tf.Variable(np.log1p(counts), trainable=False)
        self.item_embeddings = tf.Variable(np.ones([num_items + 1, 1], np.float32), trainable=False)

    def score_all(self, user_idx):
        return tf.tile(self.log_counts[tf.newaxis, :], [tf.shape(user_idx)[0], 1])
