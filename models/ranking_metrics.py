"""The ranking metrics in numpy: the one implementation behind the run report
(components/report_figures.py), the quality table (benchmarks/quality.py) and the validation
search (benchmarks/tune.py). TFMA's copies, which the Evaluator's gate computes in TensorFlow,
are models/eval_metrics.py.

Everything starts from ranks: the 0-based rank of a purchased product among all products, the
user's train purchases left out (`ranks[:, 0]` of the `evaluate` signature, whose
`ranks[:, 1]` is the product's rank among 100 uniformly sampled ones).

- `purchase_metrics`, per purchase as the gate computes them: recall@10 and @100 (ranked in the
  top k), NDCG@10 (one relevant product: 1 / log2(rank + 2) in the top 10), MRR
  (1 / (rank + 1)), the notebook's sampled accuracy (ahead of all 100 sampled products);
  `recall_curve`: recall@k for k = 1..max_k.
- `user_metrics`, per user as the quality table reports them, each (user, product) once:
  HitRate@10 (one of the user's products in the top 10), Recall@10 and @100 (the share of the
  user's products there), NDCG@10 (DCG of the user's products in the top 10 over the DCG of
  min(their number, 10) hits), MRR (of the user's best-ranked product), and the standard errors
  of the HitRate@10 and NDCG@10 means.
- `paired_interval`: the difference of two models on the same purchases with its standard error
  clustered by user, as the gate judges "no drop vs served" (models/eval_metrics.py
  `PairedDifference`) and benchmarks/gate_noise.py measures it.
- `coverage`: catalog coverage@10, the share of catalog products in at least one user's top 10
  (`served_products`: through `serving_default`, as users get them).

`measure` applies them to a serving SavedModel through its signatures, so a model is measured
exactly as it is served; models/exporter_test.py recomputes that protocol in numpy from a
model's scores.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Set, Tuple

import numpy as np
import tensorflow as tf

from models import exporter, features
from models.examples import purchase_examples

K = 10  # the cut-off of the @10 metrics (HitRate, Recall, NDCG, coverage: their names say 10)
BATCH = 512


# --- from ranks ------------------------------------------------------------------------------
def purchase_values(kind: str, k: int, ranks: np.ndarray) -> np.ndarray:
    """Each purchase's value of one metric (`kind`, `k` as in features.EVAL_METRICS: recall,
    ndcg, mrr, sampled_accuracy) from the `evaluate` signature's ranks [N, 2]; its mean over
    purchases is the metric as the gate computes it."""
    full, sampled = ranks[:, 0], ranks[:, 1]
    if kind == "recall":
        return (full < k).astype(np.float64)
    if kind == "ndcg":
        return np.where(full < k, 1.0 / np.log2(full + 2.0), 0.0)
    if kind == "mrr":
        return 1.0 / (full + 1.0)
    if kind == "sampled_accuracy":
        return (sampled == 0).astype(np.float64)
    raise ValueError(f"no such ranking metric kind: {kind!r}")


def purchase_metrics(ranks: np.ndarray) -> Dict[str, float]:
    """The Evaluator's metrics (models/eval_metrics.py), averaged over purchases, from the
    `evaluate` signature's ranks [N, 2] (full-catalog rank, rank among the sampled products)."""
    ranks = np.asarray(ranks, np.float64).reshape(-1, 2)
    return {name: float(purchase_values(kind, k, ranks).mean())
            for name, (kind, k) in features.EVAL_METRICS.items()}


def recall_curve(full_ranks: np.ndarray, max_k: int) -> List[float]:
    """recall@k for k = 1..max_k: the share of purchases ranked in the top k."""
    return [float((full_ranks < k).mean()) for k in range(1, max_k + 1)]


def paired_interval(sums: np.ndarray, counts: np.ndarray) -> Tuple[float, float, int]:
    """(mean difference, its standard error, degrees of freedom) of a paired comparison of two
    models on the same purchases, from each user's sum of per-purchase differences (`sums`: the
    candidate's value minus the served model's, summed over the user's purchases) and purchase
    count (`counts`).

    The standard error is clustered by user (the sandwich estimator with the G / (G - 1)
    correction, G users): a user's purchases are not independent tests of the models, and a user
    with thousands of purchases must not narrow the interval as thousands of users would. With one
    purchase per user it is the usual standard error of a mean of differences. Degrees of freedom
    G - 1; fewer than two users give no interval (an infinite standard error, 0 degrees)."""
    sums, counts = np.asarray(sums, np.float64), np.asarray(counts, np.float64)
    total, users = counts.sum(), len(counts)
    if total == 0:
        raise ValueError("no purchases to compare")
    mean = float(sums.sum() / total)
    if users < 2:
        return mean, float("inf"), 0
    residuals = sums - counts * mean
    variance = users / (users - 1) * float(np.sum(residuals ** 2)) / total ** 2
    return mean, float(np.sqrt(variance)), users - 1


def _standard_error(values: np.ndarray) -> float:
    """The standard error of the mean of `values`."""
    return float(np.std(values) / np.sqrt(len(values)))


def user_metrics(users: Sequence, products: Sequence[int], full_ranks: np.ndarray
                 ) -> Dict[str, float]:
    """HitRate@10, Recall@10, Recall@100, NDCG@10, MRR averaged over users, and the standard
    errors of HitRate@10 and NDCG@10, from the full-catalog rank of each purchase
    (users[i], products[i]); a product the user bought twice counts once."""
    if not len(full_ranks):
        raise ValueError("no purchases to rank: the metrics need at least one")
    _, user_index = np.unique(np.asarray(users), return_inverse=True)
    pairs = np.stack([user_index.reshape(-1), np.asarray(products, np.int64)])
    _, first = np.unique(pairs, axis=1, return_index=True)  # each (user, product) once
    user, rank = pairs[0, first], np.asarray(full_ranks, np.float64)[first]
    num_users = int(user.max()) + 1
    per_user = np.bincount(user, minlength=num_users)

    def user_sum(values):
        return np.bincount(user, weights=values, minlength=num_users)

    top = rank < K
    hits = (user_sum(top) > 0).astype(float)
    dcg = user_sum(np.where(top, 1.0 / np.log2(rank + 2.0), 0.0))
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, K + 2)))[np.minimum(per_user, K) - 1]
    ndcg = dcg / ideal
    best = np.full(num_users, np.inf)
    np.minimum.at(best, user, rank)
    return {
        "HitRate@10": float(hits.mean()),
        "Recall@10": float((user_sum(top) / per_user).mean()),
        "Recall@100": float((user_sum(rank < 100) / per_user).mean()),
        "NDCG@10": float(ndcg.mean()),
        "MRR": float((1.0 / (best + 1.0)).mean()),
        "se HitRate@10": _standard_error(hits),
        "se NDCG@10": _standard_error(ndcg),
    }


def coverage(shown_products: Set[int], catalog_size: int) -> float:
    """The share of the catalog's products among `shown_products` (0 for an empty catalog)."""
    return len(shown_products) / catalog_size if catalog_size else 0.0


# --- through a serving model's signatures ------------------------------------------------------
def evaluate_ranks(signatures: Mapping, examples: Sequence[bytes], batch: int = BATCH) -> np.ndarray:
    """The `evaluate` signature's ranks [N, 2] of serialized purchase examples (`signatures`:
    name -> callable, a loaded SavedModel's or a ServingModule's)."""
    return np.concatenate([
        signatures[exporter.EVAL_SIGNATURE](examples=tf.constant(examples[s:s + batch]))
        [exporter.RANKS_KEY].numpy() for s in range(0, len(examples), batch)])


def served_products(signatures: Mapping, users: Sequence[bytes], k: int = K, batch: int = BATCH,
                    require_k: bool = False) -> Set[int]:
    """The products in at least one of `users`' top k as `serving_default` answers them;
    `require_k`: refuse a model that serves fewer than k products a user."""
    shown: Set[int] = set()
    for s in range(0, len(users), batch):
        products = signatures["serving_default"](user_id=tf.constant(users[s:s + batch]))["products"]
        if require_k and products.shape[1] < k:
            raise ValueError(f"coverage@{k} needs a model serving at least {k} products")
        shown.update(products.numpy()[:, :k].ravel().tolist())
    shown.discard(features.PADDING_PRODUCT)  # a list with fewer than k products left ends in it
    return shown


def measure(model, eval_users: Sequence[bytes], eval_items: Sequence[int], catalog_size: int
            ) -> Dict[str, float]:
    """The quality table's row of a loaded serving SavedModel: per user, per purchase as the
    gate computes them ("gate ..."), and coverage@10 of the eval users' lists."""
    ranks = evaluate_ranks(model.signatures, purchase_examples(eval_users, eval_items))
    per_user = user_metrics(eval_users, eval_items, ranks[:, 0])
    per_purchase = purchase_metrics(ranks)
    users = list(dict.fromkeys(eval_users))  # each once, in order
    shown = served_products(model.signatures, users, require_k=True)
    return {
        "HitRate@10": per_user["HitRate@10"], "Recall@10": per_user["Recall@10"],
        "Recall@100": per_user["Recall@100"], "NDCG@10": per_user["NDCG@10"],
        "MRR": per_user["MRR"], "Coverage@10": coverage(shown, catalog_size),
        # standard errors of the per-user means
        "se HitRate@10": per_user["se HitRate@10"], "se NDCG@10": per_user["se NDCG@10"],
        "SampledAcc": per_purchase["sampled_accuracy"],
        # per eval purchase, as the Evaluator's gate computes them
        "gate recall@10": per_purchase["recall_at_10"],
        "gate ndcg@10": per_purchase["ndcg_at_10"],
        "gate sampled": per_purchase["sampled_accuracy"],
    }
