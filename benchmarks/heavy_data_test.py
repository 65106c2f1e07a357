"""The heavy-user data: the ASOS files' shape, the asked purchase counts, nothing lost."""

import os
import re

import numpy as np
import pytest
import pyarrow.parquet as pq

from benchmarks import heavy_data
from models import features
from pipeline import configs
from runner import data


def _pairs(path):
    table = pq.read_table(path).to_pydict()
    return list(zip(table[features.USER_KEY], table[features.PRODUCT_KEY]))


def test_heavy_users_are_added_to_a_copy_of_the_files(tmp_path, write_fake_asos):
    source, out = str(tmp_path / "asos"), str(tmp_path / "heavy")
    write_fake_asos(source, num_users=50, num_products=40, catalog_extra=20)
    before = {name: open(os.path.join(source, name), "rb").read() for name in configs.DATA_SHA256}
    users = heavy_data.add_heavy_users(source, out, [30, 200], eval_share=0.2, skew=1.0, seed=3)
    for name, content in before.items():  # the source is left as it was
        assert open(os.path.join(source, name), "rb").read() == content
    assert all(re.fullmatch(r"[A-Za-z0-9]{20}", u) for u in users) and len(set(users)) == 2
    with open(os.path.join(out, configs.CATALOG_FILE)) as f:
        catalog = {int(line) for line in f if line.strip()}
    train, held = (_pairs(os.path.join(out, name)) for name in (configs.TRAIN_FILE, configs.EVAL_FILE))
    assert train[:len(_pairs(os.path.join(source, configs.TRAIN_FILE)))] == \
        _pairs(os.path.join(source, configs.TRAIN_FILE))  # the ASOS rows first, unchanged
    for user, count in zip(users, [30, 60]):  # 200 asked, the catalog has 60 products
        bought = [p for u, p in train + held if u == user.encode()]
        assert len(bought) == len(set(bought)) == count and set(bought) <= catalog
        in_eval = sum(u == user.encode() for u, _ in held)
        assert in_eval == round(0.2 * count)
    data.check_split_files(out)  # what the pipeline checks before reading them
    assert pq.read_schema(os.path.join(out, configs.TRAIN_FILE)).equals(
        pq.read_schema(os.path.join(source, configs.TRAIN_FILE)), check_metadata=False)


def test_heavy_tail_counts_span_the_range_log_uniformly():
    counts = np.array(heavy_data.heavy_tail_counts(2000, low=100, high=10000, seed=0))
    assert counts.min() >= 100 and counts.max() <= 10000
    assert 0.4 < np.mean(counts < 1000) < 0.6  # as many in the hundreds as in the thousands


def test_fresh_product_ids_are_new_and_inside_the_schema_range():
    low, high = heavy_data.schema_product_range()
    catalog = np.arange(low, low + 50, dtype=np.int64)  # the bottom of the range taken
    fresh = heavy_data.fresh_product_ids(catalog, 40, low, low + 99, np.random.default_rng(0))
    assert len(set(fresh.tolist())) == 40 and not set(fresh.tolist()) & set(catalog.tolist())
    assert fresh.min() >= low and fresh.max() <= low + 99
    again = heavy_data.fresh_product_ids(catalog, 40, low, low + 99, np.random.default_rng(0))
    assert fresh.tolist() == again.tolist()  # seeded
    with pytest.raises(ValueError, match="too few free ids"):
        heavy_data.fresh_product_ids(catalog, 51, low, low + 99, np.random.default_rng(0))


def test_the_schema_range_is_the_curated_schemas(curated_schema):
    [product] = [f for f in curated_schema.feature if f.name == features.PRODUCT_KEY]
    assert heavy_data.schema_product_range() == (product.int_domain.min, product.int_domain.max)


def test_catalog_positions_name_a_product_the_catalog_lacks(tmp_path):
    path = tmp_path / configs.CATALOG_FILE
    path.write_text(f"{features.PRODUCT_KEY}\n30\n10\n20\n")
    catalog = heavy_data.read_catalog(str(path))
    assert catalog.tolist() == [30, 10, 20]
    assert heavy_data.catalog_positions(catalog, np.array([20, 30, 20])).tolist() == [2, 0, 2]
    with pytest.raises(ValueError, match=r"1 purchases of products not in the catalog, e.g. \[15\]"):
        heavy_data.catalog_positions(catalog, np.array([20, 15]))
