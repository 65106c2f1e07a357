"""Heavy users added to a copy of the ASOS files: data rougher than the sample (whose users have
at most 27 purchases), as resellers, shared accounts and bots make it.

    env/run-in-env python benchmarks/heavy_data.py OUT_DIR                    # one user, 20,000
    env/run-in-env python benchmarks/heavy_data.py OUT_DIR --purchases 300 --purchases 5000

`add_heavy_users` copies the ASOS files a run reads into a new directory and adds users with the given
numbers of purchases of distinct catalog products (uniformly at random, or skewed towards the
products the sample's users buy most with `popularity`), a share of each user's purchases in the
eval split. `heavy_tail_counts` draws such numbers from a heavy tail (log-uniform between a low
and a high count). The new user ids have the ASOS shape (20 letters and digits) and start with
`HEAVY_PREFIX`; the run needs `--skip-checksums` (the files are no longer the published ones).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import List, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from models import features
from pipeline import configs

HEAVY_PREFIX = "HEAVY"
ID_LENGTH = 20  # the schema's id_pattern: [A-Za-z0-9]{20}


def heavy_user_ids(count: int, start: int = 0) -> List[str]:
    """`count` ids in the ASOS shape, HEAVY000...0<n>, none of them an ASOS user's."""
    digits = ID_LENGTH - len(HEAVY_PREFIX)
    return [f"{HEAVY_PREFIX}{n:0{digits}d}" for n in range(start, start + count)]


def heavy_tail_counts(users: int, low: int = 100, high: int = 5000, seed: int = 0) -> List[int]:
    """Purchase counts of `users` heavy users, log-uniform in [low, high]: as many users with
    hundreds as with thousands of purchases."""
    rng = np.random.default_rng(seed)
    return np.round(np.exp(rng.uniform(np.log(low), np.log(high), users))).astype(int).tolist()


def heavy_purchases(catalog: np.ndarray, counts: Sequence[int], *, eval_share: float = 0.15,
                    popularity: np.ndarray = None, seed: int = 0, first_user: int = 0):
    """(train, eval) purchases of heavy users, each a dict {USER_KEY: [bytes], PRODUCT_KEY: [int]}.

    User n buys counts[n] distinct products of `catalog` (all of it, when counts[n] is larger),
    drawn uniformly or with probabilities `popularity` (one per catalog product); a random
    `eval_share` of them (at least one, when the user has two or more) goes to eval."""
    rng = np.random.default_rng(seed)
    catalog = np.asarray(catalog, np.int64)
    p = None if popularity is None else np.asarray(popularity, np.float64) / np.sum(popularity)
    splits = {"train": ([], []), "eval": ([], [])}
    for user, count in zip(heavy_user_ids(len(counts), first_user), counts):
        count = min(int(count), len(catalog))
        bought = rng.choice(catalog, size=count, replace=False, p=p)
        held = int(round(eval_share * count)) if count > 1 else 0
        if eval_share > 0 and count > 1:
            held = min(max(held, 1), count - 1)
        for split, products in (("eval", bought[:held]), ("train", bought[held:])):
            splits[split][0].extend([user.encode()] * len(products))
            splits[split][1].extend(products.tolist())
    return {split: {features.USER_KEY: users, features.PRODUCT_KEY: products}
            for split, (users, products) in splits.items()}


def _append(path: str, rows) -> None:
    table = pq.read_table(path)
    extra = pa.table({
        features.USER_KEY: pa.array(rows[features.USER_KEY], table.schema.field(features.USER_KEY).type),
        features.PRODUCT_KEY: pa.array(rows[features.PRODUCT_KEY],
                                       table.schema.field(features.PRODUCT_KEY).type),
    })
    pq.write_table(pa.concat_tables([table.select(extra.column_names), extra]), path)


def add_heavy_users(source_dir: str, out_dir: str, counts: Sequence[int], *,
                    eval_share: float = 0.15, skew: float = 0.0, seed: int = 0) -> List[str]:
    """Copies the ASOS files of `source_dir` to `out_dir` (replaced) with heavy users added;
    returns their ids. `skew`: 0 draws catalog products uniformly, 1 in proportion to their
    train purchases (+1, so every product can be drawn)."""
    if os.path.abspath(source_dir) == os.path.abspath(out_dir):
        raise ValueError(f"the heavy data must go to a directory of its own, not {source_dir}")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    for name in configs.DATA_SHA256:
        shutil.copyfile(os.path.join(source_dir, name), os.path.join(out_dir, name))
    with open(os.path.join(out_dir, configs.CATALOG_FILE)) as f:
        catalog = np.array([int(line) for line in f if line.strip()], np.int64)
    popularity = None
    if skew:
        bought = pq.read_table(os.path.join(out_dir, configs.TRAIN_FILE),
                               columns=[features.PRODUCT_KEY])[features.PRODUCT_KEY].to_numpy()
        order = np.argsort(catalog)
        found = np.minimum(np.searchsorted(catalog[order], bought), len(catalog) - 1)
        in_catalog = catalog[order][found] == bought
        counts_by_product = np.bincount(order[found[in_catalog]], minlength=len(catalog))
        popularity = (counts_by_product + 1.0) ** skew
    added = heavy_purchases(catalog, counts, eval_share=eval_share, popularity=popularity, seed=seed)
    _append(os.path.join(out_dir, configs.TRAIN_FILE), added["train"])
    _append(os.path.join(out_dir, configs.EVAL_FILE), added["eval"])
    return heavy_user_ids(len(counts))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--data-dir", default=configs.default_data_dir())
    p.add_argument("--purchases", type=int, action="append",
                   help="purchases of one heavy user (repeatable); default one user with 20,000")
    p.add_argument("--eval-share", type=float, default=0.15)
    p.add_argument("--skew", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    counts = args.purchases or [20000]
    users = add_heavy_users(args.data_dir, args.out_dir, counts, eval_share=args.eval_share,
                            skew=args.skew, seed=args.seed)
    print(f"[heavy] {args.out_dir}: ASOS + {len(users)} heavy users "
          f"({', '.join(f'{u}: {c:,}' for u, c in zip(users, counts))} purchases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
