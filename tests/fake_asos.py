"""Small generated data in the shape of the ASOS files, for tests (never the real data)."""

from __future__ import annotations

import hashlib
import os
import random
import string
from typing import Dict

import pyarrow as pa
import pyarrow.parquet as pq

from models import features
from pipeline import configs

PRODUCT_ID_MIN, PRODUCT_ID_MAX = 1864055, 13881282


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
    """Writes the four files; returns {file name: sha256}.

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
        else:
            train_users.append(u)
            train_products.append(held_out)
    seen = set(train_products)
    keep = [i for i, p in enumerate(eval_products) if p in seen]
    write_purchases(os.path.join(data_dir, configs.TRAIN_FILE), train_users, train_products)
    write_purchases(os.path.join(data_dir, configs.EVAL_FILE),
                    [eval_users[i] for i in keep], [eval_products[i] for i in keep])
    with open(os.path.join(data_dir, configs.USERS_FILE), "w") as f:
        f.write("".join(u + "\n" for u in users))
    with open(os.path.join(data_dir, configs.CATALOG_FILE), "w") as f:
        f.write("".join(f"{p}\n" for p in sold + unsold))
    return {name: sha256(os.path.join(data_dir, name)) for name in configs.DATA_SHA256}


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
