"""How noisy is the gate's "no more than 1% below the served model" rule? (prints a table)

    env/run-in-env python benchmarks/gate_noise.py SERVED_MODEL_DIR CANDIDATE_MODEL_DIR [...]

Scores every eval purchase with each serving SavedModel's `evaluate` signature (the ranks TFMA
gates on), then, for the first model as the served one and each other as the candidate, on the
whole eval file and on random subsamples of it (100, 1,000, 10,000 purchases): recall@10 of both,
the paired difference and its standard error (per purchase, and clustered by user), the standard
error an unpaired comparison would have, 1% of the served value, and how often each rule refuses
the candidate over the subsamples: TFMA's relative change threshold (point estimates) and the
gate's rule (components/evaluator.py `without_forgiven_failures`: refused when more than 1%
below and the whole 95% interval of the paired difference below 0, the interval as the gate
computes it: models/ranking_metrics.py `paired_interval`, clustered by user).
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import argparse
import os
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf

from models import features
from models.examples import purchase_examples
from components.evaluator import change_interval
from models.ranking_metrics import evaluate_ranks, paired_interval, purchase_values
from pipeline import configs


def paired(served: np.ndarray, candidate: np.ndarray, users: np.ndarray) -> dict:
    """Paired comparison of per-purchase values (0/1 hits for recall): the gate's interval
    (clustered by user, `se_cluster`, `dof`), the per-purchase one and the unpaired one."""
    n = len(served)
    d = candidate - served
    _, idx = np.unique(users, return_inverse=True)
    _, se_cluster, dof = paired_interval(np.bincount(idx, weights=d), np.bincount(idx))
    return {"n": n, "served": served.mean(), "candidate": candidate.mean(), "diff": d.mean(),
            "se_paired": d.std(ddof=1) / np.sqrt(n), "se_cluster": se_cluster, "dof": dof,
            "se_unpaired": np.sqrt(served.var(ddof=1) / n + candidate.var(ddof=1) / n),
            "cand_only": int(((candidate > 0) & (served == 0)).sum()),
            "served_only": int(((served > 0) & (candidate == 0)).sum())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="serving SavedModel dirs; the first is the served one")
    p.add_argument("--data-dir", default=configs.default_data_dir())
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--reps", type=int, default=2000)
    p.add_argument("--tolerance", type=float, default=0.01)
    args = p.parse_args(argv)
    rows = pq.read_table(os.path.join(args.data_dir, configs.EVAL_FILE)).to_pydict()
    users = np.array(rows[features.USER_KEY], dtype=object)
    items = np.array(rows[features.PRODUCT_KEY], dtype=np.int64)
    examples = purchase_examples(users, items)
    hits = []
    for d in args.models:
        start = time.time()
        ranks = evaluate_ranks(tf.saved_model.load(d).signatures, examples)
        hits.append(purchase_values("recall", 10, ranks))
        print(f"[noise] {d}: recall@10 {hits[-1].mean():.4f} over {len(ranks)} purchases "
              f"({time.time() - start:.0f} s)", flush=True)
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in args.sizes.split(",")]
    served = hits[0]
    for i, candidate in enumerate(hits[1:], 1):
        full = paired(served, candidate, users)
        print(f"\n## served = {args.models[0]}\n## candidate = {args.models[i]}")
        print(f"whole eval file: n {full['n']}, served {full['served']:.4f}, candidate "
              f"{full['candidate']:.4f}, diff {full['diff']:+.5f} ({full['diff'] / full['served']:+.1%}); "
              f"hits only the candidate's {full['cand_only']}, only the served's {full['served_only']}; "
              f"SE paired {full['se_paired']:.5f} (by user {full['se_cluster']:.5f}), unpaired "
              f"{full['se_unpaired']:.5f}; 1% of served {args.tolerance * full['served']:.5f}")
        print("| purchases | served recall@10 (mean over subsamples) | SD of the paired diff over subsamples "
              "| mean paired SE, by user (the gate's) | unpaired SE | 1% of served | SE / 1% | refused by the 1% rule "
              "| refused by the interval rule |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in sizes + [len(served)]:
            reps = args.reps if n < len(served) else 1
            diffs, ses, unp, srv, refused_rule, refused_test = [], [], [], [], 0, 0
            for _ in range(reps):
                idx = rng.choice(len(served), n, replace=False) if n < len(served) else np.arange(n)
                s = paired(served[idx], candidate[idx], users[idx])
                diffs.append(s["diff"]), ses.append(s["se_cluster"]), unp.append(s["se_unpaired"])
                srv.append(s["served"])
                margin = -args.tolerance * s["served"]
                if s["served"] > 0 and s["diff"] < margin:  # TFMA: diff / served < -1%
                    refused_rule += 1
                if s["diff"] < margin and s["served"] > 0 and change_interval(
                        s["served"], (s["diff"], s["se_cluster"], s["dof"]))[2] < 0:  # whole interval below 0
                    refused_test += 1
            tol = args.tolerance * np.mean(srv)
            sd = np.std(diffs, ddof=1) if reps > 1 else ses[0]
            print(f"| {n:,} | {np.mean(srv):.4f} | {sd:.5f} | {np.mean(ses):.5f} | {np.mean(unp):.5f} "
                  f"| {tol:.5f} | {sd / tol:.1f} | {refused_rule / reps:.1%} | {refused_test / reps:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
