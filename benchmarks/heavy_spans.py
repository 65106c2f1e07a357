"""Heavy-tail spans: the ASOS purchases as K spans in the layout the pipeline reads, rougher than
the sample (whose users have at most 27 purchases and whose popularity is flat).

    env/run-in-env python benchmarks/heavy_spans.py OUT_DIR                  # 3 spans, seed 0
    env/run-in-env python benchmarks/heavy_spans.py OUT_DIR --spans 5 --heavy-users 40 --seed 1
    env/run-in-env python local_runner.py --data-dir OUT_DIR --skip-checksums

What `make_spans` writes into OUT_DIR (replaced), from the ASOS files of `--data-dir`:

- **The layout** of components/spans.py: `span-1/` ... `span-K/`, each with its train file and
  its own eval file (the ASOS names), and the catalog at the top; no standing eval file (one ages
  as the catalogue turns over: docs/pipeline.md, "Spans"). Run it with `--skip-checksums`.
- **Spans of the ASOS purchases.** The train purchases are split at random into K equal shares,
  one a span, and the eval purchases likewise, so span k's users are the sample's (their ids, and
  at most 27 purchases each), as the replay's spans are (no timestamps: not periods of time). The
  K spans are one draw: span 1 of `--spans 3` is not span 1 of `--spans 4`. To deliver spans one
  at a time, as they arrive, make the K spans once and copy `span-k/` into a run's data directory
  after the catalog.
- **Skewed popularity that shifts.** A share of each span's ASOS purchases (`--popular-share`)
  buys instead a product drawn from a Zipf law (`--zipf`, the exponent) over the span's popularity
  ranking: span 1's ranking is the sample's own (most bought first), and each later span moves
  every product's log-rank by a normal step of standard deviation `--shift` (0.3: a product of
  rank 100 lands between ranks 74 and 135 two times in three); 0 keeps the ranking.
- **New products every span.** From span 2 on, `--turnover` of the products are replaced by new
  ids (a new season's version of each): drawn inside the curated schema's product id range, in no
  earlier span and not in the ASOS catalog. A new id takes over its predecessor's purchases and
  its place in the ranking, so the model has something to learn about it, but nothing carried
  over by id. The catalog lists the ASOS products and every new one (the old ones stay: the
  window's older spans still hold them).
- **Heavy users** across every span: `--heavy-users` accounts (`HEAVY...` ids,
  benchmarks/heavy_data.py) with `--heavy-low`..`--heavy-high` purchases in all (log-uniform: as
  many with hundreds as with thousands), shared between the spans with a random ±`--heavy-jitter`
  (about 20%) from span to span. Within a span each buys distinct products, drawn from the span's
  Zipf popularity with a tenfold preference for 2% of the catalog of its own (a reseller's
  brands); `--eval-share` of each one's span purchases go to the span's eval file.

A (user, product) pair is bought at most once in a span's train file (a Zipf draw that repeats
one is dropped), and a span's eval file repeats no purchase of its train file, as in the ASOS
files; across spans pairs may repeat (a warm start counts them as seen). Train rows are shuffled.
Same source, arguments and seed: the same bytes. It prints one line per span.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Dict, List

import numpy as np
import pyarrow.parquet as pq

from benchmarks import heavy_data
from models import features
from pipeline import configs

SPANS = 3
SEED = 0
POPULAR_SHARE = 0.3  # of the ASOS purchases, re-drawn from the span's Zipf popularity
ZIPF = 0.9  # exponent: the top product of 29,696 takes 5.4% of the Zipf draws, the 100th 0.09%
SHIFT = 0.3  # standard deviation of each product's log-rank step from one span to the next
TURNOVER = 0.05  # of the products, replaced by new ids at every span after the first
HEAVY_USERS = 20
HEAVY_LOW, HEAVY_HIGH = 100, 5000  # purchases of one heavy user over all the spans
HEAVY_JITTER = 0.2  # a heavy user's purchases move by about this much from span to span
EVAL_SHARE = 0.15  # of a heavy user's purchases in a span, held out to the span's eval file
FOCUS_SHARE, FOCUS_WEIGHT = 0.02, 10.0  # a heavy user's own products, and how much it prefers them


def zipf_weights(key: np.ndarray, exponent: float) -> np.ndarray:
    """Probabilities over products from their ranking keys (lowest first): rank r gets r^-exponent."""
    rank = np.empty(len(key), np.float64)
    rank[np.argsort(key, kind="stable")] = np.arange(1, len(key) + 1)
    weights = rank ** -exponent
    return weights / weights.sum()


def distinct_draws(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """`size` distinct indices drawn one after the other with probabilities `p` (without
    replacement; the Gumbel top-k), in the order drawn."""
    size = min(size, int(np.count_nonzero(p)))
    keys = np.log(p, where=p > 0, out=np.full(len(p), -np.inf)) + rng.gumbel(size=len(p))
    top = np.argpartition(-keys, size - 1)[:size] if size else np.zeros(0, np.int64)
    return top[np.argsort(-keys[top], kind="stable")]


def _pair_keys(user_codes: np.ndarray, positions: np.ndarray, products: int) -> np.ndarray:
    return user_codes.astype(np.int64) * products + positions


def make_spans(source_dir: str, out_dir: str, spans: int = SPANS, *, seed: int = SEED,
               popular_share: float = POPULAR_SHARE, zipf: float = ZIPF, shift: float = SHIFT,
               turnover: float = TURNOVER, heavy_users: int = HEAVY_USERS, heavy_low: int = HEAVY_LOW,
               heavy_high: int = HEAVY_HIGH, heavy_jitter: float = HEAVY_JITTER,
               eval_share: float = EVAL_SHARE) -> List[Dict]:
    """Writes the spans (the module docstring) into `out_dir` (replaced); returns one dict of
    figures per span: train and eval rows, users and products of its train file, new products
    (new ids first sold in the span), the heavy users' train rows, the heaviest buyer's
    purchases and the top product's share of the span's train rows."""
    if spans < 1:
        raise ValueError(f"spans must be 1 or more, got {spans}")
    for name, value in (("popular_share", popular_share), ("turnover", turnover), ("eval_share", eval_share)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    if min(zipf, shift, heavy_jitter, heavy_users) < 0 or not 0 < heavy_low <= heavy_high:
        raise ValueError("zipf, shift, heavy_jitter and heavy_users must be 0 or more, and 0 < heavy_low <= heavy_high")
    if os.path.abspath(source_dir) == os.path.abspath(out_dir):
        raise ValueError(f"the spans must go to a directory of their own, not {source_dir}")
    rng = np.random.default_rng(seed)
    catalog = heavy_data.read_catalog(os.path.join(source_dir, configs.CATALOG_FILE))
    products = len(catalog)
    source, columns = {}, [features.USER_KEY, features.PRODUCT_KEY]
    for split, name in (("train", configs.TRAIN_FILE), ("eval", configs.EVAL_FILE)):
        table = pq.read_table(os.path.join(source_dir, name), columns=columns)
        source[split] = (np.array(table[features.USER_KEY].to_pylist(), dtype=object),
                         heavy_data.catalog_positions(catalog, table[features.PRODUCT_KEY].to_numpy().astype(np.int64)),
                         table.schema)
    heavy_ids = np.array([u.encode() for u in heavy_data.heavy_user_ids(heavy_users)], dtype=object)
    sample_users = np.concatenate([source["train"][0], source["eval"][0]])
    if np.isin(heavy_ids, sample_users).any():
        raise ValueError(f"a user of {source_dir} has a heavy user's id ({heavy_data.HEAVY_PREFIX}...)")
    every_user, codes = np.unique(np.concatenate([sample_users, heavy_ids]), return_inverse=True)
    user_code = {"train": codes[:len(source["train"][0])],
                 "eval": codes[len(source["train"][0]):len(source["train"][0]) + len(source["eval"][0])]}
    heavy_codes = codes[len(codes) - heavy_users:]
    span_of = {split: rng.permutation(len(source[split][0])) % spans for split in source}

    # span 1's ranking: the sample's own popularity, ties in random order
    bought = np.bincount(source["train"][1], minlength=products)
    key = np.empty(products)
    key[np.lexsort((rng.random(products), -bought))] = np.log(np.arange(1, products + 1))
    replaced = int(round(turnover * products))
    low, high = heavy_data.schema_product_range()
    fresh = heavy_data.fresh_product_ids(catalog, replaced * (spans - 1), low, high, rng)
    ids = catalog.copy()
    totals = np.asarray(heavy_data.heavy_tail_counts(heavy_users, heavy_low, heavy_high, seed=seed), np.float64)
    shares = np.exp(heavy_jitter * rng.standard_normal((heavy_users, spans)))
    per_span = np.round(totals[:, None] * shares / shares.sum(axis=1, keepdims=True)).astype(int)
    focus = np.where(rng.random((heavy_users, products)) < FOCUS_SHARE, FOCUS_WEIGHT, 1.0)

    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    seen_ids, fresh_ids = set(), set(fresh.tolist())
    figures = []
    for k in range(1, spans + 1):
        if k > 1:  # popularity moves, and products are replaced by new ids
            key = key + shift * rng.standard_normal(products)
            ids = ids.copy()
            ids[rng.choice(products, replaced, replace=False)] = fresh[(k - 2) * replaced:(k - 1) * replaced]
        p = zipf_weights(key, zipf)
        rows = {}
        for split in ("train", "eval"):
            chosen = span_of[split] == k - 1
            positions = source[split][1][chosen].copy()
            redrawn = rng.random(len(positions)) < popular_share
            positions[redrawn] = rng.choice(products, int(redrawn.sum()), p=p)
            rows[split] = [user_code[split][chosen], positions]
        for u in range(heavy_users):
            drawn = rng.permutation(distinct_draws(rng, p * focus[u], per_span[u, k - 1]))  # held out at random
            held = int(round(eval_share * len(drawn))) if len(drawn) > 1 else 0
            if eval_share > 0 and len(drawn) > 1:
                held = min(max(held, 1), len(drawn) - 1)
            for split, part in (("eval", drawn[:held]), ("train", drawn[held:])):
                rows[split][0] = np.concatenate([rows[split][0], np.full(len(part), heavy_codes[u])])
                rows[split][1] = np.concatenate([rows[split][1], part])
        # once per pair in train; eval repeats nothing of its span's train
        train_keys = _pair_keys(rows["train"][0], rows["train"][1], products)
        _, first = np.unique(train_keys, return_index=True)
        keep = np.sort(first)[rng.permutation(len(first))]
        train_users, train_positions = rows["train"][0][keep], rows["train"][1][keep]
        eval_keys = _pair_keys(rows["eval"][0], rows["eval"][1], products)
        _, first = np.unique(eval_keys, return_index=True)
        first = np.sort(first)
        first = first[~np.isin(eval_keys[first], train_keys)]
        eval_users, eval_positions = rows["eval"][0][first], rows["eval"][1][first]

        folder = os.path.join(out_dir, configs.span_folder(k))
        os.makedirs(folder)
        for name, (users, positions), schema in (
                (configs.TRAIN_FILE, (train_users, train_positions), source["train"][2]),
                (configs.EVAL_FILE, (eval_users, eval_positions), source["eval"][2])):
            pq.write_table(heavy_data.purchase_table(every_user[users], ids[positions], schema),
                           os.path.join(folder, name))
        span_ids = set(ids[np.unique(train_positions)].tolist()) - seen_ids
        per_user = np.bincount(train_users)
        top_product = np.bincount(train_positions).max()
        figures.append({"span": k, "train": len(train_users), "eval": len(eval_users),
                        "users": int(np.count_nonzero(per_user)), "products": len(np.unique(train_positions)),
                        "new_products": len(span_ids & fresh_ids),
                        "heavy_rows": int(np.isin(train_users, heavy_codes).sum()),
                        "heaviest": int(per_user.max()), "top_product_share": top_product / len(train_users)})
        seen_ids |= span_ids
    with open(os.path.join(out_dir, configs.CATALOG_FILE), "w") as f:
        f.write("".join(f"{product}\n" for product in np.concatenate([catalog, fresh])))
    return figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", help="the data directory to write (replaced)")
    p.add_argument("--data-dir", default=configs.default_data_dir(), help="the ASOS files; default %(default)s")
    p.add_argument("--spans", type=int, default=SPANS, help="default %(default)s")
    p.add_argument("--seed", type=int, default=SEED, help="default %(default)s")
    p.add_argument("--popular-share", type=float, default=POPULAR_SHARE, help="default %(default)s")
    p.add_argument("--zipf", type=float, default=ZIPF, help="default %(default)s")
    p.add_argument("--shift", type=float, default=SHIFT, help="default %(default)s")
    p.add_argument("--turnover", type=float, default=TURNOVER, help="default %(default)s")
    p.add_argument("--heavy-users", type=int, default=HEAVY_USERS, help="default %(default)s")
    p.add_argument("--heavy-low", type=int, default=HEAVY_LOW, help="default %(default)s")
    p.add_argument("--heavy-high", type=int, default=HEAVY_HIGH, help="default %(default)s")
    p.add_argument("--heavy-jitter", type=float, default=HEAVY_JITTER, help="default %(default)s")
    p.add_argument("--eval-share", type=float, default=EVAL_SHARE, help="default %(default)s")
    args = p.parse_args(argv)
    try:
        figures = make_spans(args.data_dir, args.out_dir, args.spans, seed=args.seed,
                             popular_share=args.popular_share, zipf=args.zipf, shift=args.shift,
                             turnover=args.turnover, heavy_users=args.heavy_users, heavy_low=args.heavy_low,
                             heavy_high=args.heavy_high, heavy_jitter=args.heavy_jitter,
                             eval_share=args.eval_share)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[spans] {args.out_dir}: {len(figures)} spans from {args.data_dir} (seed {args.seed}); "
          "run with --skip-checksums")
    print(f"{'span':<8}{'train':>9}{'eval':>8}{'users':>8}{'products':>10}{'new ids':>9}{'heavy rows':>12}"
          f"{'heaviest':>10}{'top product':>13}")
    for f in figures:
        print(f"{configs.span_folder(f['span']):<8}{f['train']:>9,}{f['eval']:>8,}{f['users']:>8,}{f['products']:>10,}"
              f"{f['new_products']:>9,}{f['heavy_rows']:>12,}{f['heaviest']:>10,}{f['top_product_share']:>12.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
