"""The evaluation protocol measured through a serving model's signatures, as it is served.

On the eval purchases: per user, the ranking of all products leaving out the user's train
purchases (HitRate@10, Recall@10, Recall@100, NDCG@10, MRR), catalog coverage@10 of the users'
top-10 lists, and per purchase the notebook's sampled accuracy. Ranks come from the `evaluate`
signature, the one the Evaluator's gate reads through TFMA (models/eval_metrics.py), so the
benchmark and the gate share one ranking; models/exporter_test.py recomputes it in numpy from
the model's scores.
"""

from __future__ import annotations

import collections
from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

from models import features

K = 10
BATCH = 512


def _examples(users, items):
    return [tf.train.Example(features=tf.train.Features(feature={
        features.USER_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[u])),
        features.PRODUCT_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(i)])),
    })).SerializeToString() for u, i in zip(users, items)]


def measure(model, eval_users: Sequence[bytes], eval_items: Sequence[int], catalog_size: int
            ) -> Dict[str, float]:
    """The protocol's table for a loaded serving SavedModel."""
    ranks = np.concatenate([
        model.signatures["evaluate"](examples=tf.constant(_examples(
            eval_users[s:s + BATCH], eval_items[s:s + BATCH])))["ranks"].numpy()
        for s in range(0, len(eval_users), BATCH)])
    full, sampled = ranks[:, 0], ranks[:, 1]

    by_user = collections.defaultdict(dict)  # user -> {product: rank}: each eval product once
    for user, item, rank in zip(eval_users, eval_items, full):
        by_user[user][item] = rank
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    hits, ndcgs = [], []
    rec10 = rec100 = mrr = 0.0
    for item_ranks in by_user.values():
        r = np.array(list(item_ranks.values()))
        hits.append(float((r < K).any()))
        rec10 += float((r < K).mean())
        rec100 += float((r < 100).mean())
        ndcgs.append(float(discounts[r[r < K].astype(int)].sum() / discounts[:min(len(r), K)].sum()))
        mrr += 1.0 / (r.min() + 1.0)
    n = len(by_user)
    hit, ndcg = sum(hits), sum(ndcgs)

    users = list(by_user)
    shown = set()
    for s in range(0, len(users), BATCH):
        out = model.signatures["serving_default"](user_id=tf.constant(users[s:s + BATCH]))
        if out["products"].shape[1] < K:
            raise ValueError(f"coverage@{K} needs a model serving at least {K} products")
        shown.update(out["products"].numpy()[:, :K].ravel().tolist())
    return {
        "HitRate@10": hit / n, "Recall@10": rec10 / n, "Recall@100": rec100 / n,
        "NDCG@10": ndcg / n, "MRR": mrr / n, "Coverage@10": len(shown) / catalog_size,
        # standard errors of the per-user means
        "se HitRate@10": float(np.std(hits) / np.sqrt(n)),
        "se NDCG@10": float(np.std(ndcgs) / np.sqrt(n)),
        "SampledAcc": float((sampled == 0).mean()),
        # per eval purchase, as the Evaluator's gate computes them
        "gate recall@10": float((full < K).mean()),
        "gate ndcg@10": float(np.where(full < K, 1.0 / np.log2(np.minimum(full, K) + 2), 0.0).mean()),
        "gate sampled": float((sampled == 0).mean()),
    }
