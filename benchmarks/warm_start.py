"""The validation search behind the warm start's settings (prints its table; the eval split is
not read).

    env/run-in-env python benchmarks/warm_start.py                  # the grid below, ~15 minutes
    env/run-in-env python benchmarks/warm_start.py --warm '{"warm_start_epochs": 0.5}'

The train purchases lose a validation purchase per user first (models/validation.py: one of
every user with at least two, seed 0), so no model ever trains on them; the rest is split into
spans as the replay splits it (benchmarks/replay.py: seeded, the first span bigger). For each span
k the window is the last `--window` spans up to k. The cold model of a window trains from
nothing (ModelConfig's `epochs`); a warm chain starts span 1 cold, then each span from the chain's
previous model, its rows carried over by raw product id (models/warm_start.py), and trains on
the window's pairs that model has not trained on plus `warm_start_rehearsal` of the others per
new pair, for `warm_start_epochs` at `warm_start_learning_rate`, as the Trainer does. Every
model is measured on the same
validation purchases: HitRate@10 and NDCG@10 per user with their standard errors, recall@10 per
purchase (the gate's), and its training seconds (model_lib.train, plus the carry-over for a warm
one).
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Tuple

import numpy as np
import pyarrow.parquet as pq

from benchmarks import replay
from models import features, ranking_metrics, validation, warm_start
from models import model as model_lib
from pipeline import configs

# warm settings tried (overrides of models.model.DEFAULT). The new pairs are a quarter to a third
# of a window of 3 spans here: a pass over them and half as many rehearsed ones fit in a third of
# the cold training's 3 epochs over the window.
GRID = [{"warm_start_epochs": e, "warm_start_learning_rate": lr, "warm_start_rehearsal": r}
        for e in (1.0, 1.5) for lr in (0.0125, 0.02, 0.03) for r in (0.0, 0.5)]


def vocabulary(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(distinct values by descending count, as Transform's vocabularies; each value's index)."""
    distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    order = np.lexsort((distinct, -counts))
    rank = np.empty(len(distinct), np.int64)
    rank[order] = np.arange(len(distinct))
    return distinct[order], rank[inverse].astype(np.int32)


class Window:
    """One window's purchases as vocabulary indices, and the validation purchases mapped to them
    (users unknown to the window: the OOV index; products unknown: never ranked)."""

    def __init__(self, users: np.ndarray, products: np.ndarray, val_users: np.ndarray,
                 val_products: np.ndarray):
        self.user_ids, self.users = vocabulary(users)
        self.product_ids, self.items = vocabulary(products)
        self.num_users, self.num_items = len(self.user_ids), len(self.product_ids)
        self.history = model_lib.build_user_history(self.users, self.items, self.num_users, self.num_items)
        self.val_users = _lookup(self.user_ids, val_users, self.num_users)
        self.val_items = _lookup(self.product_ids, val_products, self.num_items)

    def model(self, config: model_lib.ModelConfig) -> model_lib.Recommender:
        return model_lib.Recommender(self.num_users, self.num_items, config, user_history=self.history)


def _lookup(vocab: np.ndarray, values: np.ndarray, missing: int) -> np.ndarray:
    order = np.argsort(vocab)
    position = np.clip(np.searchsorted(vocab[order], values), 0, len(vocab) - 1)
    found = vocab[order][position] == values
    return np.where(found, order[position], missing).astype(np.int32)


def validation_figures(model: model_lib.Recommender, window: Window, raw_users: np.ndarray,
                       raw_products: np.ndarray, batch: int = 1024) -> Dict[str, float]:
    """The model's validation metrics: every validation purchase ranked among all products, the
    user's window purchases left out; a purchase of a product or by a user the window does not
    know ranks last."""
    ranks = np.full(len(window.val_users), window.num_items, np.int64)
    rankable = np.flatnonzero((window.val_users < window.num_users) & (window.val_items < window.num_items))
    for s in range(0, len(rankable), batch):
        chosen = rankable[s:s + batch]
        users, items = window.val_users[chosen], window.val_items[chosen]
        scores = model.score_all(users).numpy()
        rows, bought = window.history.entries(users)
        scores[rows, bought] = -np.inf
        true = scores[np.arange(len(items)), items]
        ranks[chosen] = (scores > true[:, None]).sum(axis=1)
    per_user = ranking_metrics.user_metrics(raw_users, raw_products, ranks)
    return {"HitRate@10": per_user["HitRate@10"], "se HitRate@10": per_user["se HitRate@10"],
            "NDCG@10": per_user["NDCG@10"], "se NDCG@10": per_user["se NDCG@10"],
            "recall@10": float((ranks < 10).mean())}


def train(window: Window, config: model_lib.ModelConfig, previous=None) -> Tuple[model_lib.Recommender, float]:
    """A model of `window` trained cold, or warm from `previous` (its model and window); the
    training seconds (the carry-over included)."""
    model = window.model(config)
    start = time.time()
    new = None
    if previous is not None:
        served, served_window = previous
        tables = warm_start.ServedTables.of(served, served_window.product_ids, served_window.user_ids,
                                            served_window.history)
        warm_start.carry_over(model, window.product_ids, tables)
        new = warm_start.unseen_pairs(tables, window.users, window.items, window.user_ids,
                                      window.product_ids)
    model_lib.train(model, window.users, window.items, warm=previous is not None, new=new)
    return model, time.time() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=configs.default_data_dir())
    p.add_argument("--spans", type=int, default=replay.SPANS)
    p.add_argument("--window", type=int, default=3, help="spans per training window; default %(default)s")
    p.add_argument("--warm", action="append", type=json.loads,
                   help="a JSON dict of ModelConfig overrides for the warm spans (repeatable); default: the grid")
    args = p.parse_args(argv)
    grid: List[dict] = args.warm if args.warm is not None else GRID

    table = pq.read_table(os.path.join(args.data_dir, configs.TRAIN_FILE)).to_pydict()
    users = np.asarray(table[features.USER_KEY], dtype=object)
    products = np.asarray(table[features.PRODUCT_KEY], np.int64)
    _, user_index = np.unique(users.astype(bytes), return_inverse=True)
    fit, val = validation.carve_validation(user_index, products, seed=0)
    fit_rows = np.flatnonzero(fit)
    spans = [fit_rows[rows] for rows in replay.split_into_spans(len(fit_rows), args.spans)]
    val_users, val_products = users[val].astype(bytes), products[val]
    print(f"[warm-start] validation {val.sum():,} purchases; spans of {', '.join(f'{len(s):,}' for s in spans)} "
          f"purchases; window {args.window} spans", flush=True)

    base = model_lib.DEFAULT
    chains: Dict[str, tuple] = {}  # setting -> (model, window) of the chain's last span
    print("| span | window rows | model | train s | HitRate@10 | se | NDCG@10 | se | recall@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in range(1, len(spans) + 1):
        rows = np.concatenate(spans[max(0, k - args.window):k])
        window = Window(users[rows].astype(bytes), products[rows], val_users, val_products)
        cold, seconds = train(window, base)
        results = [("cold", seconds, cold)]
        for overrides in grid:
            name = json.dumps(overrides, sort_keys=True)
            if k == 1:
                chains[name] = (cold, window)
                continue
            model, seconds = train(window, base.replace(**overrides), previous=chains[name])
            chains[name] = (model, window)
            results.append((f"warm {name}", seconds, model))
        for label, seconds, model in results:
            m = validation_figures(model, window, val_users, val_products)
            print(f"| {k} | {len(rows):,} | {label} | {seconds:.1f} | {m['HitRate@10']:.4f} | "
                  f"{m['se HitRate@10']:.4f} | {m['NDCG@10']:.4f} | {m['se NDCG@10']:.4f} | "
                  f"{m['recall@10']:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
