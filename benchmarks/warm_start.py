"""The validation search behind the warm start's settings (prints its tables; the eval split is
not read).

    env/run-in-env python benchmarks/warm_start.py                  # the grid below, ~5 minutes
    env/run-in-env python benchmarks/warm_start.py --warm '{"warm_start_learning_rate": 0.03}' --seeds 42

The train purchases lose validation purchases first (models/validation.py: one of each user with
at least two, for a seeded quarter of those users: `--validation-share`), so no model ever trains
on them; the rest is split into spans as the replay splits it (benchmarks/replay.py: seeded, the
first span bigger). For each span k the window is the last `--window` spans up to k. The cold
model of a window trains from nothing (ModelConfig's `epochs`); a warm chain starts span 1 cold,
then each span from the chain's previous model, its rows carried over by raw product id
(models/warm_start.py), and trains on the window's pairs that model has not trained on plus
`warm_start_rehearsal` of the others per new pair, for `warm_start_epochs` at
`warm_start_learning_rate`, as the Trainer does. Every model is measured on the same validation
purchases: recall@10 per purchase (the gate's) and HitRate@10/NDCG@10 per user, and its training
seconds (model_lib.train, plus the carry-over for a warm one).

The figure that decides is the **paired difference** of recall@10, warm minus cold, on the same
validation purchases, averaged over model seeds (`--seeds`): far less noisy than either model's
own figure, whose standard error is the issue's bar ("within one standard error of the cold
model"). Why only a quarter of the users lose a purchase: the whole carve takes 18% of the train
purchases, and on those thinner windows a chain of warm starts showed no lag behind the cold
model at span 3, while the replay (all the train purchases) showed one; with a quarter (5%) the
lag shows, so the settings are chosen where it does.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import pyarrow.parquet as pq

from benchmarks import replay
from models import features, ranking_metrics, validation, warm_start
from models import model as model_lib
from pipeline import configs

# warm settings tried (overrides of models.model.DEFAULT). The first rows are chains of warm
# starts that never end (`NO_END`): each span after the first warm-starts from the chain's model
# before. They train on the new pairs only (the learning rate, 1.5 passes); the rehearsal rows add
# already-seen pairs when the chain's model before was warm-started, as the Trainer does
# (models/warm_start.py `rehearsal`: none after span 1's cold model). The new pairs are a quarter
# to a third of a window of 3 spans here, and a run's fixed cost (tracing, the first steps) is
# about what a pass over them costs. The last rows end chains as the Trainer does
# (`warm_start.chain_ended`): after a warm start, a window holding every purchase its model
# trained on trains cold (the default), and `warm_start_max_chain` caps the length; a span that
# trains cold counts as the cold model (difference 0, time 1).
NO_END = {"chain_ends": False}  # the benchmark's own key: the window rule off
GRID = ([{**NO_END, "warm_start_learning_rate": lr, "warm_start_rehearsal": 0.0}
         for lr in (0.005, 0.0075, 0.0125, 0.02, 0.03, 0.04)]
        + [{**NO_END, "warm_start_epochs": 1.5, "warm_start_learning_rate": 0.02, "warm_start_rehearsal": 0.0}]
        + [{**NO_END, "warm_start_rehearsal": r, "warm_start_learning_rate": 0.02} for r in (0.25, 0.5, 1.0)]
        + [{**NO_END, "warm_start_rehearsal": 0.5, "warm_start_learning_rate": 0.0075}]
        # every seen pair (3 per new one is more than a window of 3 spans holds): one pass over
        # the whole window, at a cold-like learning rate
        + [{**NO_END, "warm_start_rehearsal": 3.0, "warm_start_learning_rate": 0.005}]
        + [NO_END, {}, {"warm_start_max_chain": 1}])


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
    """Each value's index in `vocab`, `missing` where it has none."""
    index = warm_start.index_in(vocab, values)
    return np.where(index >= 0, index, missing).astype(np.int32)


def validation_ranks(model: model_lib.Recommender, window: Window, batch: int = 1024) -> np.ndarray:
    """The 0-based rank of every validation purchase among all products, the user's window
    purchases left out; a purchase of a product or by a user the window does not know ranks
    last."""
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
    return ranks


def validation_figures(ranks: np.ndarray, raw_users: np.ndarray, raw_products: np.ndarray) -> Dict[str, float]:
    """HitRate@10 and NDCG@10 per user with their standard errors, recall@10 per purchase with its."""
    per_user = ranking_metrics.user_metrics(raw_users, raw_products, ranks)
    hits = (ranks < 10).astype(float)
    return {"HitRate@10": per_user["HitRate@10"], "se HitRate@10": per_user["se HitRate@10"],
            "NDCG@10": per_user["NDCG@10"], "se NDCG@10": per_user["se NDCG@10"],
            "recall@10": float(hits.mean()), "se recall@10": float(hits.std(ddof=1) / np.sqrt(len(hits)))}


def served_tables(previous) -> warm_start.ServedTables:
    """What the Trainer reads of the served model (`previous`: its model, window and start)."""
    served, served_window, _ = previous
    return warm_start.ServedTables.of(served, served_window.product_ids, served_window.user_ids,
                                      served_window.history)


def chain_ended(window: Window, config: model_lib.ModelConfig, previous, ends: bool = True) -> Optional[str]:
    """Why the Trainer would start `window`'s model cold rather than warm from `previous`
    (`ends` False: as if the window never held all the served model trained on)."""
    outside = warm_start.left_out(served_tables(previous), window.users, window.items, window.user_ids,
                                  window.product_ids) if ends else None
    return warm_start.chain_ended(config, {"start": previous[2]}, outside=outside)


def train(window: Window, config: model_lib.ModelConfig, previous=None) -> Tuple[model_lib.Recommender, float]:
    """A model of `window` trained cold, or warm from `previous` (its model, window and how it
    started: its training.json's `start`), as the Trainer does; the training seconds (the
    carry-over included)."""
    model = window.model(config)
    start = time.time()
    new = rehearsal = None
    if previous is not None:
        served_start = previous[2]
        tables = served_tables(previous)
        warm_start.carry_over(model, window.product_ids, tables)
        new = warm_start.unseen_pairs(tables, window.users, window.items, window.user_ids,
                                      window.product_ids)
        rehearsal = warm_start.rehearsal(config, {"start": served_start})
    model_lib.train(model, window.users, window.items, warm=previous is not None, new=new,
                    rehearsal=rehearsal)
    return model, time.time() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=configs.default_data_dir())
    p.add_argument("--spans", type=int, default=replay.SPANS)
    p.add_argument("--window", type=int, default=3, help="spans per training window; default %(default)s")
    p.add_argument("--validation-share", type=float, default=0.25,
                   help="share of the users with 2+ purchases who lose one to validation; default %(default)s")
    p.add_argument("--seeds", default="42,43,44", help="model seeds, comma-separated; default %(default)s")
    p.add_argument("--warm", action="append", type=json.loads,
                   help="a JSON dict of ModelConfig overrides for the warm spans (repeatable; "
                        '"chain_ends": false: chains that never end); default: the grid')
    args = p.parse_args(argv)
    grid: List[dict] = args.warm if args.warm is not None else GRID
    seeds = [int(s) for s in args.seeds.split(",")]

    table = pq.read_table(os.path.join(args.data_dir, configs.TRAIN_FILE)).to_pydict()
    users = np.asarray(table[features.USER_KEY], dtype=object)
    products = np.asarray(table[features.PRODUCT_KEY], np.int64)
    _, user_index = np.unique(users.astype(bytes), return_inverse=True)
    fit, val = validation.carve_validation(user_index, products, seed=0, share=args.validation_share)
    fit_rows = np.flatnonzero(fit)
    spans = [fit_rows[rows] for rows in replay.split_into_spans(len(fit_rows), args.spans)]
    val_users, val_products = users[val].astype(bytes), products[val]
    print(f"[warm-start] validation {val.sum():,} purchases; spans of {', '.join(f'{len(s):,}' for s in spans)} "
          f"purchases; window {args.window} spans; seeds {args.seeds}", flush=True)

    base = model_lib.DEFAULT
    # (setting, span) -> per seed: (warm - cold recall@10, its paired se, cold se, warm s / cold s)
    paired: Dict[Tuple[str, int], List[Tuple[float, float, float, float]]] = {}
    print("| seed | span | window rows | model | train s | HitRate@10 | se | NDCG@10 | se | recall@10 | se |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        chains: Dict[str, tuple] = {}  # setting -> (model, window) of the chain's last span
        for k in range(1, len(spans) + 1):
            rows = np.concatenate(spans[max(0, k - args.window):k])
            window = Window(users[rows].astype(bytes), products[rows], val_users, val_products)
            cold, cold_seconds = train(window, base.replace(seed=seed))
            cold_ranks = validation_ranks(cold, window)
            results = [("cold", cold_seconds, cold_ranks)]
            for overrides in grid:
                name = json.dumps(overrides, sort_keys=True)
                settings = dict(overrides)
                ends = settings.pop("chain_ends", True)
                config = base.replace(seed=seed, **settings)
                if k == 1:
                    chains[name] = (cold, window, {"kind": "cold"})
                    continue
                previous = chains[name]
                if chain_ended(window, config, previous, ends):
                    # the Trainer starts cold: the cold model itself (a cold training does not
                    # read the warm_start_* settings, the only ones the grid changes)
                    chains[name] = (cold, window, {"kind": "cold"})
                    seconds, ranks = cold_seconds, cold_ranks
                else:
                    model, seconds = train(window, config, previous=previous)
                    chains[name] = (model, window, {
                        "kind": "warm", "chain": warm_start.chain_length({"start": previous[2]}) + 1})
                    ranks = validation_ranks(model, window)
                    results.append((f"warm {name}", seconds, ranks))
                diff = (ranks < 10).astype(float) - (cold_ranks < 10)
                cold_hits = (cold_ranks < 10).astype(float)
                paired.setdefault((name, k), []).append((
                    float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))),
                    float(cold_hits.std(ddof=1) / np.sqrt(len(cold_hits))), seconds / cold_seconds))
            for label, seconds, ranks in results:
                m = validation_figures(ranks, val_users, val_products)
                print(f"| {seed} | {k} | {len(rows):,} | {label} | {seconds:.1f} | {m['HitRate@10']:.4f} | "
                      f"{m['se HitRate@10']:.4f} | {m['NDCG@10']:.4f} | {m['se NDCG@10']:.4f} | "
                      f"{m['recall@10']:.4f} | {m['se recall@10']:.4f} |", flush=True)

    print(f"\nwarm minus cold, recall@10 on the same validation purchases, mean over seeds {args.seeds} "
          "(the paired standard error; the cold model's own standard error, the target's bar; time warm/cold)")
    print("| setting | " + " | ".join(f"span {k}" for k in range(2, len(spans) + 1)) + " |")
    print("|---|" + "---|" * (len(spans) - 1))
    for overrides in grid:
        name = json.dumps(overrides, sort_keys=True)
        cells = []
        for k in range(2, len(spans) + 1):
            per_seed = np.array(paired[(name, k)])
            diff, se, bar, ratio = per_seed.mean(axis=0)
            cells.append(f"{diff:+.4f} (± {se:.4f}; bar {bar:.4f}; time {ratio:.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
