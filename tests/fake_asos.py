"""Small generated data in the shape of the ASOS files, for tests (never the real data)."""

from __future__ import annotations

import hashlib
import os
import random
import string
from typing import Dict, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from models import features
from pipeline import configs

PRODUCT_ID_MIN, PRODUCT_ID_MAX = 1864055, 13881282
# The drift gate's thresholds for generated spans: a few hundred rows are noisier than the
# ASOS-size spans of the defaults (components/drift_test.py: these pass the generated spans and
# stop them inverted, heavier or repeated)
SPAN_DRIFT_THRESHOLDS = {**configs.DEFAULT_DRIFT_THRESHOLDS, "product_l_infinity": 0.06,
                         "product_jensen_shannon": 0.25, "purchases_per_user_jensen_shannon": 0.06,
                         "top_users_share_ratio": 1.6, "user_l_infinity": 0.08, "repeated_rows": 0.7}


def user_id(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))


def write_purchases(path: str, users, products) -> None:
    """A parquet file with the ASOS columns and types: dummyUserId binary, productId int32."""
    table = pa.table({
        features.USER_KEY: pa.array([u.encode() if isinstance(u, str) else u for u in users], pa.binary()),
        features.PRODUCT_KEY: pa.array(products, pa.int32()),
    })
    pq.write_table(table, path)


def write_fake_asos(data_dir: str, num_users: int = 120, num_products: int = 60,
                    seed: int = 0, catalog_extra: int = 5, tastes: int = 0) -> Dict[str, str]:
    """Writes the train, eval and catalog files (ASOS's users file is read by nothing); returns
    {file name: sha256}.

    Purchases follow a skewed popularity (a few products sell most, as in ASOS), no (user,
    product) pair repeats in train, and every eval user and product also occurs in train. The
    catalog lists every product plus `catalog_extra` never bought.

    With `tastes` = 0 whoever buys draws from the same popularity: nothing beyond popularity to
    learn, so no model beats recommending the most bought products (the gate's popularity rule
    refuses it). With `tastes` > 0 each user has one of that many tastes (the user's position
    modulo `tastes`) and buys only products of that taste (every `tastes`-th product from it
    on, with the same skew within it): a trained model does far better than popularity.
    """
    rng = random.Random(seed)
    os.makedirs(data_dir, exist_ok=True)
    users = [user_id(rng) for _ in range(num_users)]
    products = rng.sample(range(PRODUCT_ID_MIN, PRODUCT_ID_MAX + 1), num_products + catalog_extra)
    sold, unsold = products[:num_products], products[num_products:]
    weights = [1.0 / (rank + 1) for rank in range(num_products)]
    train_users, train_products, eval_users, eval_products = [], [], [], []
    for position, u in enumerate(users):
        offered = sold[position % tastes::tastes] if tastes else sold
        bought = set()
        for _ in range(rng.randint(2, 6)):
            bought.add(rng.choices(offered, weights[:len(offered)])[0])
        bought = sorted(bought)
        *train_part, held_out = bought if len(bought) > 1 else bought * 2
        for p in train_part or bought:
            train_users.append(u)
            train_products.append(p)
        if len(bought) > 1 and rng.random() < 0.6:
            eval_users.append(u)
            eval_products.append(held_out)
        elif len(bought) > 1:  # (one product bought: in train once, as the docstring says)
            train_users.append(u)
            train_products.append(held_out)
    seen = set(train_products)
    keep = [i for i, p in enumerate(eval_products) if p in seen]
    write_purchases(os.path.join(data_dir, configs.TRAIN_FILE), train_users, train_products)
    write_purchases(os.path.join(data_dir, configs.EVAL_FILE),
                    [eval_users[i] for i in keep], [eval_products[i] for i in keep])
    with open(os.path.join(data_dir, configs.CATALOG_FILE), "w") as f:
        f.write("".join(f"{p}\n" for p in sold + unsold))
    return {name: sha256(os.path.join(data_dir, name)) for name in configs.DATA_SHA256}


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_fake_spans(data_dir: str, num_spans: int = 3, rows_per_span: int = 600, num_products: int = 60,
                     new_products_per_span: int = 8, num_users: int = 150, seed: int = 0,
                     span_eval: Sequence[int] = (), standing_eval: bool = True,
                     catalog_extra: int = 5, tastes: int = 0) -> Dict[int, str]:
    """Spans in the layout of components/spans.py: `span-1/` ... `span-N/`, each with a train
    file (and an eval file for the spans in `span_eval`); the catalog and (with
    `standing_eval`) a standing eval file at the top. Returns {span number: its folder}.

    As real data is rougher than the ASOS sample: every span brings `new_products_per_span`
    products never sold before (two of them straight into the top twenty) and retires a few;
    popularity is skewed (1/rank); how much a user buys is heavy-tailed (most buy once or twice,
    a few tens of times); the same users come back across spans. Eval purchases are held out of
    the span's train file (the last purchase of about half its users, of a product that file
    sells): the span's own eval file, or else the standing eval file. `tastes` as in
    write_fake_asos: with 0 nothing beyond popularity to learn (the gate's popularity rule refuses
    any model), with more each user buys only every `tastes`-th live product from its own on."""
    rng = random.Random(seed)
    os.makedirs(data_dir, exist_ok=True)
    users = [user_id(rng) for _ in range(num_users)]
    activity = [min(40, int(rng.paretovariate(1.3))) for _ in users]  # heavy tail of purchases
    pool = rng.sample(range(PRODUCT_ID_MIN, PRODUCT_ID_MAX + 1),
                      num_products + new_products_per_span * num_spans + catalog_extra)
    live, fresh = pool[:num_products], pool[num_products:num_products + new_products_per_span * num_spans]
    folders, standing = {}, []
    for number in range(1, num_spans + 1):
        if number > 1:  # new products arrive (two of them in the top twenty at once), a few leave
            arriving = fresh[(number - 2) * new_products_per_span:(number - 1) * new_products_per_span]
            live = live[:12] + arriving[:2] + live[12:len(live) - new_products_per_span // 2] + arriving[2:]
        weights = [1.0 / (rank + 1) for rank in range(len(live))]
        buyers = rng.choices(range(num_users), weights=activity, k=rows_per_span)
        if tastes:
            chosen = [rng.choices(live[b % tastes::tastes], weights[b % tastes::tastes])[0] for b in buyers]
        else:
            chosen = rng.choices(live, weights, k=rows_per_span)
        bought = sorted({(users[b], p) for b, p in zip(buyers, chosen)})
        last = {}
        for u, p in bought:
            last[u] = (u, p)
        held = {pair for pair in last.values() if rng.random() < 0.5}
        train = [pair for pair in bought if pair not in held]
        sold = {p for _, p in train}
        held_out = [(u, p) for u, p in sorted(held) if p in sold]
        folder = os.path.join(data_dir, configs.span_folder(number))
        os.makedirs(folder, exist_ok=True)
        write_purchases(os.path.join(folder, configs.TRAIN_FILE), *zip(*train))
        if number in span_eval:
            write_purchases(os.path.join(folder, configs.EVAL_FILE), *zip(*held_out))
        else:
            standing += held_out
        folders[number] = folder
    if standing_eval and standing:
        write_purchases(os.path.join(data_dir, configs.EVAL_FILE), *zip(*standing))
    with open(os.path.join(data_dir, configs.CATALOG_FILE), "w") as f:
        f.write("".join(f"{p}\n" for p in pool))
    return folders
