"""The evaluation protocol in plain numpy, from a model's scores: the reference that the served
`evaluate` signature (which TFMA gates on and benchmarks/quality.py reads) is checked against
(models/exporter_test.py). It was also the yardstick of the model research.

Users and products are integer indices as produced by the Transform vocabularies: products
0..num_items-1 are the train vocabulary (the candidates), index num_items is the
out-of-vocabulary bucket (a product never seen in train: it cannot be scored, so it counts as a
miss). A model enters only through `score_fn`, which maps a batch of user indices to scores over
the num_items real products.

Full-ranking metrics (per eval user u with eval product set E_u, the user's train purchases
removed from the candidates, ties broken towards the lower product index, as `tf.math.top_k`):

- hit_rate@k   mean over users of 1[|L_k ∩ E_u| > 0]
- recall@k     mean over users of |L_k ∩ E_u| / |E_u|
- ndcg@k       mean over users of DCG@k / IDCG@k, binary gains, IDCG with min(|E_u|, k) hits
- mrr          mean over users of 1 / rank of the first relevant product in the full ranking
- coverage@k   |union of all users' L_k| / catalog_size

Sampled metric (the workshop notebook's): for each eval purchase, 100 products drawn uniformly
from the train vocabulary with a fixed seed (`sampled_negatives`); a hit when the purchased
product scores strictly higher than all 100 (`sampled_accuracy`).
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

IndexPairs = Tuple[np.ndarray, np.ndarray]  # (user_idx, item_idx), equal-length int arrays
ScoreFn = Callable[[np.ndarray], "np.ndarray | tf.Tensor"]


def sampled_negatives(num_eval: int,
                      num_items: int,
                      num_samples: int = 100,
                      seed: int = 42,
                      item_vocabulary: Optional[np.ndarray] = None) -> np.ndarray:
    """The fixed uniform draw of the sampled-accuracy metric, identical for every model.

    Draws `num_samples` positions per eval purchase with `np.random.default_rng(seed)` from the
    vocabulary sorted by product id, so the drawn products do not depend on how a model orders
    its vocabulary.

    Args:
      num_eval: number of eval purchases (rows of the result, in eval order).
      num_items: size of the train product vocabulary.
      num_samples: products drawn per eval purchase.
      seed: numpy seed of the draw.
      item_vocabulary: product ids by index ([num_items]); when given, drawn positions in the
        id-sorted vocabulary are mapped to these indices. Without it the indices themselves are
        taken as the sorted vocabulary.

    Returns:
      int64 array [num_eval, num_samples] of product indices in 0..num_items-1.
    """
    rng = np.random.default_rng(seed)
    positions = rng.integers(0, num_items, size=(num_eval, num_samples), dtype=np.int64)
    if item_vocabulary is None:
        return positions
    if len(item_vocabulary) != num_items:
        raise ValueError(f"item_vocabulary has {len(item_vocabulary)} entries, "
                         f"expected num_items={num_items}")
    return np.argsort(np.asarray(item_vocabulary), kind="stable")[positions]


def _group_by_user(users: np.ndarray, items: np.ndarray) -> Dict[int, np.ndarray]:
    """user -> sorted unique items."""
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    return {int(u[0]): np.unique(i) for u, i in zip(np.split(users, bounds),
                                                   np.split(items, bounds))}


def evaluate_ranking(score_fn: ScoreFn,
                     train_pairs: IndexPairs,
                     eval_pairs: IndexPairs,
                     num_items: int,
                     catalog_size: int,
                     k_values: Sequence[int] = (10, 100),
                     seed: int = 42,
                     batch_size: int = 256,
                     num_sampled: int = 100,
                     item_vocabulary: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Evaluates `score_fn` with the team's protocol (see the module docstring).

    Args:
      score_fn: maps int64 user indices [B] to scores [B, num_items] (numpy or tf.Tensor).
      train_pairs: (user_idx, item_idx) of the train purchases; a user's train products are
        removed from that user's candidates. OOV item indices (>= num_items) are ignored.
      eval_pairs: (user_idx, item_idx) of the eval purchases; item index num_items (OOV) is a
        relevant product that can never be retrieved.
      num_items: size of the train product vocabulary (the candidates).
      catalog_size: number of products in the catalog, denominator of coverage@k.
      k_values: cut-offs of hit_rate, recall, ndcg and coverage.
      seed: seed of the sampled-accuracy draw (`sampled_negatives`).
      batch_size: users scored per call of `score_fn`.
      num_sampled: products drawn per eval purchase for sampled accuracy.
      item_vocabulary: product ids by index, passed to `sampled_negatives`.

    Returns:
      {"hit_rate@k", "recall@k", "ndcg@k", "coverage@k" for each k, "mrr",
       "sampled_accuracy", "num_users", "num_eval_purchases", "seconds"}.
    """
    start = time.time()
    k_values = sorted(set(int(k) for k in k_values))
    max_k = k_values[-1]
    if max_k > num_items:
        raise ValueError(f"k={max_k} exceeds the {num_items} candidates")
    train_u, train_i = (np.asarray(a, dtype=np.int64) for a in train_pairs)
    eval_u, eval_i = (np.asarray(a, dtype=np.int64) for a in eval_pairs)
    known = train_i < num_items
    train_by_user = _group_by_user(train_u[known], train_i[known])
    eval_by_user = _group_by_user(eval_u, eval_i)
    users = np.array(sorted(eval_by_user), dtype=np.int64)

    negatives = sampled_negatives(len(eval_u), num_items, num_samples=num_sampled, seed=seed,
                                  item_vocabulary=item_vocabulary)
    purchase_order = np.argsort(eval_u, kind="stable")
    purchase_bounds = np.searchsorted(eval_u[purchase_order], users, side="left")
    purchase_ends = np.searchsorted(eval_u[purchase_order], users, side="right")

    discounts = 1.0 / np.log2(np.arange(2, max_k + 2))
    sums = {f"{m}@{k}": 0.0 for m in ("hit_rate", "recall", "ndcg") for k in k_values}
    sums["mrr"] = 0.0
    top_sets = {k: np.zeros(num_items, dtype=bool) for k in k_values}
    sampled_hits = 0

    for start_row in range(0, len(users), batch_size):
        batch_users = users[start_row:start_row + batch_size]
        raw = np.asarray(score_fn(batch_users), dtype=np.float32)
        if raw.shape != (len(batch_users), num_items):
            raise ValueError(f"score_fn returned shape {raw.shape}, "
                             f"expected {(len(batch_users), num_items)}")

        # Sampled accuracy: unmasked scores of each eval purchase vs its fixed negatives.
        for row in range(len(batch_users)):
            rows = purchase_order[purchase_bounds[start_row + row]:purchase_ends[start_row + row]]
            for p in rows:
                item = eval_i[p]
                if item < num_items and raw[row, item] > raw[row, negatives[p]].max():
                    sampled_hits += 1

        scores = raw.copy()
        for row, user in enumerate(batch_users):
            bought = train_by_user.get(int(user))
            if bought is not None:
                scores[row, bought] = -np.inf
        top = tf.math.top_k(scores, k=max_k, sorted=True).indices.numpy()

        for row, user in enumerate(batch_users):
            relevant = eval_by_user[int(user)]
            n_relevant = len(relevant)
            hits = np.isin(top[row], relevant)
            for k in k_values:
                hits_k = hits[:k]
                n_hits = int(hits_k.sum())
                sums[f"hit_rate@{k}"] += float(n_hits > 0)
                sums[f"recall@{k}"] += n_hits / n_relevant
                idcg = discounts[:min(n_relevant, k)].sum()
                sums[f"ndcg@{k}"] += float(discounts[:k][hits_k].sum() / idcg)
                top_sets[k][top[row, :k]] = True
            sums["mrr"] += _reciprocal_rank(scores[row], relevant, num_items)

    n_users = len(users)
    metrics = {name: value / n_users for name, value in sums.items()}
    for k in k_values:
        metrics[f"coverage@{k}"] = float(top_sets[k].sum()) / catalog_size
    metrics["sampled_accuracy"] = sampled_hits / len(eval_u)
    metrics["num_users"] = n_users
    metrics["num_eval_purchases"] = len(eval_u)
    metrics["seconds"] = time.time() - start
    return metrics


def _reciprocal_rank(scores: np.ndarray, relevant: np.ndarray, num_items: int) -> float:
    """1 / rank of the best-ranked relevant product among the candidates (-inf = excluded).

    The rank follows the order of `tf.math.top_k`: descending score, ties to the lower index.
    Relevant products that are OOV or excluded (bought in train) cannot be ranked.
    """
    relevant = relevant[relevant < num_items]
    relevant = relevant[np.isfinite(scores[relevant])]
    if len(relevant) == 0:
        return 0.0
    best = relevant[np.lexsort((relevant, -scores[relevant]))[0]]
    s = scores[best]
    rank = 1 + np.count_nonzero(scores > s) + np.count_nonzero(scores[:best] == s)
    return 1.0 / rank
