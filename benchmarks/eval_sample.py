"""How the Evaluator's figures on a seeded sample of eval users (`--eval-users N`,
components/eval_sample.py) compare with its figures on every eval purchase, for one model.

    env/run-in-env python benchmarks/eval_sample.py MODEL_DIR DATA_DIR [--users 2000,5000,20000] [--seeds 5]

MODEL_DIR: a serving SavedModel (a pushed version, or a Trainer's `Format-Serving`); DATA_DIR: the
files it was trained on. Ranks every eval purchase once through the model's `evaluate`
signature (the Evaluator's protocol), then, for each sample size and seed, takes the purchases
of the users EvalSample would choose and computes the gate's metrics on them. Prints the full
figures, and per sample size the mean over the seeds, the largest deviation from the full
figure and the seeds' standard deviation (with the sample's purchases and the seconds the
full evaluation took, to scale the Evaluator's time by).
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import os
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf

from components import eval_sample
from models import features, ranking_metrics
from models.examples import purchase_examples
from pipeline import configs

METRICS = ("recall_at_10", "ndcg_at_10", "sampled_accuracy")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("data_dir")
    p.add_argument("--users", default="2000,5000,10000,20000", help="sample sizes, comma-separated")
    p.add_argument("--seeds", type=int, default=5, help="seeds per sample size (0 is the pipeline's)")
    args = p.parse_args(argv)
    table = pq.read_table(os.path.join(args.data_dir, configs.EVAL_FILE))
    users = np.asarray(table[features.USER_KEY].to_pylist(), dtype=object)
    products = table[features.PRODUCT_KEY].to_numpy()
    start = time.time()
    signatures = tf.saved_model.load(args.model_dir).signatures
    ranks = ranking_metrics.evaluate_ranks(signatures, purchase_examples(users, products), batch=8192)
    seconds = time.time() - start
    full = ranking_metrics.purchase_metrics(ranks)
    distinct = np.unique(users)
    print(f"[eval_sample] {len(users):,} eval purchases of {len(distinct):,} users, ranked in {seconds:.1f} s")
    print(f"  {'eval users':>10}{'purchases':>11}" + "".join(f"{m:>34}" for m in METRICS))
    print(f"  {'all':>10}{len(users):>11,}" + "".join(f"{full[m]:>34.4f}" for m in METRICS))
    print(f"  {'':>21}" + "".join(f"{'mean  max|dev|  sd over seeds':>34}" for _ in METRICS))
    orders = [np.argsort(np.array([eval_sample.user_key(u, seed) for u in distinct], dtype=np.uint64))
              for seed in range(args.seeds)]  # the users in each seed's order, as EvalSample takes them
    for n in (int(x) for x in args.users.split(",")):
        figures, sizes = [], []
        for order in orders:
            kept = np.isin(users, distinct[order[:n]])
            figures.append(ranking_metrics.purchase_metrics(ranks[kept]))
            sizes.append(int(kept.sum()))
        cells = ""
        for m in METRICS:
            values = np.array([f[m] for f in figures])
            cells += f"{values.mean():>16.4f}{np.abs(values - full[m]).max():>9.4f}{values.std():>9.4f}"
        print(f"  {n:>10,}{int(np.mean(sizes)):>11,}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
