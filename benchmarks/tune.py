"""The validation search behind the default model (prints its table; the eval split is not read).

    env/run-in-env python benchmarks/tune.py            # the grid below, about 20 minutes
    env/run-in-env python benchmarks/tune.py --model '{"epochs": 3}' --model '{"l2": 0.003}'

The validation split is carved from the train purchases (models/validation.py: one purchase per
user with at least two, at random, seed 0); models and reference graphs are fitted on the rest
of train ("fit"). Each validation user has one held-out purchase, ranked against the whole
catalog leaving out the user's fit purchases: HitRate@10, NDCG@10, Recall@100, MRR, and their
standard errors. The eval split is reported once, with the chosen defaults, by
benchmarks/quality.py.

For each learned configuration the item-graph weight (`copurchase_weight`), its per-user
scaling (`copurchase_norm`) and RP3beta's popularity penalty (`copurchase_beta`, `--betas`) are
searched on the same trained model (score = learned + weight * scaled graph), and so is the
weight of the popularity prior (`popularity_weight`, `--pop-weights`: + weight * log(1 + the
product's fit buyers)); the references (RP3beta, and its blend with PureSVD and popularity:
benchmarks/references.py) have their weights searched here too. `--compare NAME` adds each row's
paired difference of HitRate@10 from the row NAME (e.g. popularity), with its standard error, on
the same validation purchases.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import itertools
import json
import os
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf

from benchmarks import references
from models import features, ranking_metrics, validation
from models import model as model_lib
from pipeline import configs

COLUMNS = ("HitRate@10", "se HitRate@10", "NDCG@10", "se NDCG@10", "Recall@100", "MRR")
# The learned configurations tried (overrides of models.model.DEFAULT) and the graph weights.
GRID = [{}, {"epochs": 2, "learning_rate": 0.01}, {"learning_rate": 0.01}, {"learning_rate": 0.005},
        {"embedding_dim": 64, "learning_rate": 0.005},
        {"epochs": 5, "batch_size": 1024, "learning_rate": 0.005}]  # the last: the previous default
# Graph weights searched for each way of scaling a user's graph score (models.model.GRAPH_NORMS)
GRAPH_WEIGHTS = {"sum": (0.0, 1.0, 2.0, 4.0, 6.0, 8.0), "sqrt": (2.0, 4.0, 8.0, 16.0),
                 "mean": (4.0, 8.0, 16.0, 32.0), "max": (1.0, 2.0, 4.0, 8.0, 16.0)}
REFERENCE_WEIGHTS = [(1.0, 0.0, 0.0)] + [(1.0, mf, pop) for mf, pop in
                                         itertools.product((0.1, 0.25, 0.5), (0.0, 0.05, 0.2))]


def index_pairs(data_dir: str):
    """Train purchases as (user, product) indices of vocabularies sorted by descending
    frequency (as Transform builds them)."""
    table = pq.read_table(os.path.join(data_dir, configs.TRAIN_FILE)).to_pydict()
    out = []
    for key in (features.USER_KEY, features.PRODUCT_KEY):
        values, inverse, counts = np.unique(np.asarray(table[key]), return_inverse=True,
                                            return_counts=True)
        rank = np.empty(len(values), np.int64)
        rank[np.lexsort((values, -counts))] = np.arange(len(values))
        out.append((rank[inverse].astype(np.int32), len(values)))
    (users, num_users), (items, num_items) = out
    return users, items, num_users, num_items


def validation_ranks(score_fns, user_history, val_users, val_items, batch=1024):
    """{name: 0-based rank of each validation purchase}, the user's fit purchases (all of them:
    `user_history` is not capped) left out."""
    ranks = {}
    for s in range(0, len(val_users), batch):
        users, items = val_users[s:s + batch], val_items[s:s + batch]
        rows, bought = user_history.entries(users)
        for name, scores in score_fns(users):
            scores = np.array(scores, np.float32)  # a copy: score_fns may reuse its arrays
            scores[rows, bought] = -np.inf
            true = scores[np.arange(len(items)), items]
            ranks.setdefault(name, []).append((scores > true[:, None]).sum(axis=1))
    return {name: np.concatenate(r) for name, r in ranks.items()}


def summary(users, items, ranks):
    """The table's columns (models/ranking_metrics.py) from each validation purchase's rank."""
    metrics = ranking_metrics.user_metrics(users, items, ranks)
    return {name: metrics[name] for name in COLUMNS}


def paired_hit_difference(ranks: np.ndarray, other: np.ndarray):
    """(mean difference of HitRate@10, its standard error) of two rows on the same validation
    purchases, one per user (models/ranking_metrics.py `paired_interval`)."""
    diff = (ranks < ranking_metrics.K).astype(np.float64) - (other < ranking_metrics.K)
    mean, se, _ = ranking_metrics.paired_interval(diff, np.ones_like(diff))
    return mean, se


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=configs.default_data_dir())
    p.add_argument("--model", action="append", type=json.loads,
                   help="a JSON dict of ModelConfig overrides (repeatable); default: the grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation carve")
    p.add_argument("--norms", default=",".join(model_lib.GRAPH_NORMS),
                   help="graph scalings searched (comma-separated; default %(default)s)")
    p.add_argument("--betas", default="0",
                   help="RP3beta popularity penalties searched (comma-separated; default %(default)s)")
    p.add_argument("--graph-weights",
                   help="graph weights searched for every scaling (comma-separated; default: "
                        "GRAPH_WEIGHTS, per scaling)")
    p.add_argument("--pop-weights", default="0",
                   help="popularity prior weights searched (comma-separated; default %(default)s)")
    p.add_argument("--pop-mix", default="0",
                   help="popularity mixture shares searched (comma-separated; default %(default)s): "
                        "(1 - share) * softmax(score) + share * popularity")
    p.add_argument("--compare", metavar="NAME",
                   help="add the paired difference of HitRate@10 from the row NAME, and its "
                        "standard error (e.g. popularity)")
    p.add_argument("--no-references", dest="references", action="store_false",
                   help="skip popularity and the item-graph references")
    p.add_argument("--heavy-at", type=int, default=0,
                   help="also a table for the validation users with at least this many fit "
                        "purchases and one for the others (data with heavy users: "
                        "benchmarks/heavy_data.py)")
    args = p.parse_args(argv)
    grid = args.model if args.model is not None else GRID
    if args.compare == "popularity" and not args.references:  # found before the training, not after it
        p.error("--compare popularity needs the references (drop --no-references)")

    users, items, num_users, num_items = index_pairs(args.data_dir)
    fit, val = validation.carve_validation(users, items, seed=args.seed)
    history = model_lib.build_user_history(users[fit], items[fit], num_users, num_items)
    print(f"[tune] fit {fit.sum()} purchases, validation {val.sum()} (one per user with >= 2); "
          f"{num_users} users, {num_items} products", flush=True)

    reference = references.ReferenceModel(num_users, num_items, history) if args.references else None
    norms = args.norms.split(",")
    betas = [float(b) for b in args.betas.split(",")]
    pop_weights = [float(w) for w in args.pop_weights.split(",")]
    graph_weights = ({norm: tuple(float(w) for w in args.graph_weights.split(",")) for norm in norms}
                     if args.graph_weights else GRAPH_WEIGHTS)
    log_popularity = model_lib.log_popularity(history, num_items)[np.newaxis, :]
    pop_mix = [float(m) for m in args.pop_mix.split(",")]
    buyers = np.expm1(log_popularity.astype(np.float64))
    pop_share = buyers / buyers.sum()
    graphs = {}

    def graph(config, beta):
        """CSR arrays of the item graph of the fit purchases (each user's capped as the config
        says), with the config's alpha, top_k."""
        key = (config.copurchase_alpha, config.copurchase_top_k, beta, config.max_history,
               config.seed)
        if key not in graphs:
            graphs[key] = [tf.constant(a) for a in model_lib.copurchase_graph(
                model_lib.cap_history(history, config.max_history, config.seed), num_items,
                config.copurchase_alpha, config.copurchase_top_k, beta)]
        return graphs[key]

    learned = {}
    for overrides in grid:
        config = model_lib.DEFAULT.replace(**{"copurchase_weight": 1.0, **overrides})
        model = model_lib.Recommender(num_users, num_items, config, user_history=history)
        start = time.time()
        model_lib.train(model, users[fit], items[fit])
        print(f"[tune] trained {json.dumps(overrides)} in {time.time() - start:.0f} s", flush=True)
        learned[json.dumps(overrides)] = model

    def mixed(scores, share):
        """(1 - share) * softmax(scores) + share * popularity (the purchases' share of each
        product): a mixture of the model's distribution and popularity's."""
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return (1.0 - share) * probs + share * pop_share

    def score_fns(batch):
        if reference is not None:
            yield "popularity", np.broadcast_to(reference.popularity.numpy(), (len(batch), num_items))
            for weights in REFERENCE_WEIGHTS:  # one model, its weights changed (eager calls)
                reference.weights = weights
                yield references.label(weights), reference.score_all(batch).numpy()
        for name, model in learned.items():
            dot = model.learned_scores(batch).numpy()
            rows, entries = model_lib.history_entries(model.history_splits, model.history_items,
                                                      tf.constant(batch))
            counts = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, len(batch))
            for beta in betas:
                raw = model_lib.graph_scores(rows, entries, len(batch), num_items,
                                             *graph(model.config, beta))
                for norm in norms:
                    scaled = model_lib.normalise_graph_scores(raw, counts, norm).numpy()
                    for w in graph_weights[norm]:
                        if w == 0 and (norm != norms[0] or beta != betas[0]):
                            continue  # the learned model alone: once
                        label = f"model {name} + {w} x {norm} graph" + (f", beta {beta}" if beta else "")
                        for p in pop_weights:
                            total = dot + w * scaled + p * log_popularity
                            for m in pop_mix:
                                yield (label + (f" + {p} x log popularity" if p else "")
                                       + (f", mixed {m} with popularity" if m else ""),
                                       mixed(total, m) if m else total)

    start = time.time()
    ranks = validation_ranks(score_fns, history, users[val], items[val])
    print(f"[tune] ranked in {time.time() - start:.0f} s\n")
    if args.compare and args.compare not in ranks:
        p.error(f"--compare {args.compare}: no such row; the rows: {', '.join(ranks)}")
    groups = {"validation split": np.ones(val.sum(), bool)}
    if args.heavy_at:
        heavy = history.lengths()[users[val]] >= args.heavy_at
        groups[f"users with >= {args.heavy_at} fit purchases ({heavy.sum()})"] = heavy
        groups[f"users with fewer ({(~heavy).sum()})"] = ~heavy
    for group, chosen in groups.items():
        rows = {name: summary(users[val][chosen], items[val][chosen], r[chosen])
                for name, r in ranks.items()}
        names = COLUMNS
        if args.compare:
            names += (f"HitRate@10 - {args.compare}", "paired se")
            for name, values in rows.items():
                values[names[-2]], values[names[-1]] = paired_hit_difference(
                    ranks[name][chosen], ranks[args.compare][chosen])
        print(f"| model ({group}) | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for label, values in rows.items():
            print(f"| {label} | " + " | ".join(f"{values[n]:.4f}" for n in names) + " |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
