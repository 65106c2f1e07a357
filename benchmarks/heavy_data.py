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

The helpers the other data generators share live here too (benchmarks/heavy_spans.py,
benchmarks/scale.py): the catalog read and each purchase's place in it (`read_catalog`,
`catalog_positions`), product ids new to a catalog and valid for the schema
(`schema_product_range`, `fresh_product_ids`), and purchases written with the source's column
types (`purchase_table`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import List, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from models import features
from pipeline import configs

HEAVY_PREFIX = "HEAVY"
ID_LENGTH = 20  # the schema's id_pattern: [A-Za-z0-9]{20}
SCHEMA_FILE = os.path.join(configs.SCHEMA_DIR, "schema.pbtxt")


def read_catalog(path: str) -> np.ndarray:
    """The catalog's product ids (one a line; a first line `productId`, pandas' header, skipped)."""
    with open(path) as f:
        return np.array([int(line) for line in f if line.strip() and line.strip().strip('"') != features.PRODUCT_KEY],
                        np.int64)


def catalog_positions(catalog: np.ndarray, products: np.ndarray) -> np.ndarray:
    """Each product's index in `catalog`; ValueError naming a product the catalog lacks."""
    order = np.argsort(catalog, kind="stable")
    found = np.minimum(np.searchsorted(catalog[order], products), len(catalog) - 1)
    missing = catalog[order][found] != products
    if np.any(missing):
        raise ValueError(f"{int(np.sum(missing)):,} purchases of products not in the catalog, e.g. "
                         f"{np.asarray(products)[missing][:3].tolist()}")
    return order[found]


def schema_product_range(schema_file: str = SCHEMA_FILE) -> Tuple[int, int]:
    """(min, max) of the curated schema's product id domain: the ids a generated product may take."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(schema_file) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    [feature] = [f for f in schema.feature if f.name == features.PRODUCT_KEY]
    return int(feature.int_domain.min), int(feature.int_domain.max)


def fresh_product_ids(taken: np.ndarray, count: int, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """`count` distinct product ids in [low, high] (the schema's int_domain), none of them in
    `taken`, drawn at random with `rng`; ValueError when the range has too few free ids."""
    taken = np.asarray(taken, np.int64)
    if count <= 0:
        return np.zeros(0, np.int64)
    size = min(count + len(taken), high - low + 1)
    drawn = low + rng.choice(high - low + 1, size=size, replace=False)
    fresh = drawn[~np.isin(drawn, taken)][:count]
    if len(fresh) < count:
        raise ValueError(f"the product id range {low}..{high} has too few free ids for {count:,} new products")
    return fresh.astype(np.int64)


def purchase_table(users, products, schema: pa.Schema) -> pa.Table:
    """Purchases with the column types of `schema` (a source file's: the ASOS files' binary user
    ids and int32 product ids)."""
    return pa.table({
        features.USER_KEY: pa.array(list(users), schema.field(features.USER_KEY).type),
        features.PRODUCT_KEY: pa.array(np.asarray(products, np.int64), schema.field(features.PRODUCT_KEY).type),
    })


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
    extra = purchase_table(rows[features.USER_KEY], rows[features.PRODUCT_KEY], table.schema)
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
    catalog = read_catalog(os.path.join(out_dir, configs.CATALOG_FILE))
    popularity = None
    if skew:
        bought = pq.read_table(os.path.join(out_dir, configs.TRAIN_FILE),
                               columns=[features.PRODUCT_KEY])[features.PRODUCT_KEY].to_numpy()
        in_catalog = np.isin(bought, catalog)
        counts_by_product = np.bincount(catalog_positions(catalog, bought[in_catalog]), minlength=len(catalog))
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
