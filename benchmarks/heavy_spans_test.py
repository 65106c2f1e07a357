"""The heavy-tail spans: the layout the pipeline reads, heavy users across spans, new product ids
every span inside the schema's range, skewed popularity that moves, and the same bytes for the
same seed."""

import os
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmarks import heavy_data, heavy_spans
from models import features
from pipeline import configs
from runner import data

# Small generated data: 300 users, 120 products; heavy users of 60 to 240 purchases over 3 spans
SMALL = dict(popular_share=0.5, zipf=1.0, shift=0.3, turnover=0.1, heavy_users=4, heavy_low=60, heavy_high=240,
             eval_share=0.2)


@pytest.fixture
def source(tmp_path, write_fake_asos):
    path = str(tmp_path / "asos")
    write_fake_asos(path, num_users=300, num_products=120, catalog_extra=10, seed=1)
    return path


def _span(out, k, name=configs.TRAIN_FILE):
    table = pq.read_table(os.path.join(out, configs.span_folder(k), name)).to_pydict()
    return np.array(table[features.USER_KEY], dtype=object), np.array(table[features.PRODUCT_KEY], np.int64)


def test_spans_in_the_layout_the_pipeline_reads_and_checks(tmp_path, source):
    out = str(tmp_path / "spans")
    before = {name: open(os.path.join(source, name), "rb").read() for name in configs.DATA_SHA256}
    figures = heavy_spans.make_spans(source, out, 3, seed=0, **SMALL)
    for name, content in before.items():  # the source is left as it was
        assert open(os.path.join(source, name), "rb").read() == content
    assert [f["span"] for f in figures] == [1, 2, 3]
    assert sorted(os.listdir(out)) == [configs.CATALOG_FILE, "span-1", "span-2", "span-3"]
    layout = data.read_layout(out)
    assert [s.folder for s in layout.spans] == ["span-1", "span-2", "span-3"] and not layout.flat
    # what a run checks before it reads them (the window of 3: every train file, span-3's eval file)
    assert len(data.check_split_files(out, span_window=3)) == 4
    catalog = data.read_catalog(os.path.join(out, configs.CATALOG_FILE))
    data.check_purchases_in_catalog(out, catalog, span_window=3)
    low, high = heavy_data.schema_product_range()
    source_schema = pq.read_schema(os.path.join(source, configs.TRAIN_FILE))
    for k in (1, 2, 3):
        assert pq.read_schema(os.path.join(out, f"span-{k}", configs.TRAIN_FILE)).equals(
            source_schema, check_metadata=False)
        users, products = _span(out, k)
        eval_users, eval_products = _span(out, k, configs.EVAL_FILE)
        assert (len(users), len(eval_users)) == (figures[k - 1]["train"], figures[k - 1]["eval"])
        assert all(re.fullmatch(r"[A-Za-z0-9]{20}", u.decode()) for u in set(users) | set(eval_users))
        assert products.min() >= low and products.max() <= high
        data.check_parquet(os.path.join(out, f"span-{k}", configs.EVAL_FILE))  # as span k's run checks it
        assert set(eval_products.tolist()) <= set(catalog)
        train_pairs = set(zip(users, products))
        assert len(train_pairs) == len(users)  # a pair once per span's train file
        assert not train_pairs & set(zip(eval_users, eval_products))  # eval repeats none of them


def test_heavy_users_buy_hundreds_across_every_span(tmp_path, source):
    out = str(tmp_path / "spans")
    heavy_spans.make_spans(source, out, 3, seed=0, **SMALL)
    heavy = [u.encode() for u in heavy_data.heavy_user_ids(SMALL["heavy_users"])]
    totals = heavy_data.heavy_tail_counts(SMALL["heavy_users"], SMALL["heavy_low"], SMALL["heavy_high"], seed=0)
    source_users = pq.read_table(os.path.join(source, configs.TRAIN_FILE))[features.USER_KEY].to_pylist()
    source_most = max(np.unique(np.array(source_users, dtype=object), return_counts=True)[1])
    bought = {u: 0 for u in heavy}
    for k in (1, 2, 3):
        for name in (configs.TRAIN_FILE, configs.EVAL_FILE):
            users, products = _span(out, k, name)
            for u in heavy:
                mine = products[users == u]
                assert len(mine) == len(set(mine.tolist()))  # distinct products within a span
                assert len(mine) > 0  # in every span, train and eval
                bought[u] += len(mine)
    for u, total in zip(heavy, totals):  # what was asked (the catalog holds more than a span's share)
        assert abs(bought[u] - total) <= 3
    assert max(bought.values()) > 10 * source_most


def test_new_product_ids_every_span_in_the_catalog_and_never_seen_before(tmp_path, source):
    out = str(tmp_path / "spans")
    figures = heavy_spans.make_spans(source, out, 3, seed=0, **SMALL)
    source_catalog = set(heavy_data.read_catalog(os.path.join(source, configs.CATALOG_FILE)).tolist())
    catalog = heavy_data.read_catalog(os.path.join(out, configs.CATALOG_FILE)).tolist()
    assert len(catalog) == len(set(catalog))
    replaced = round(SMALL["turnover"] * len(source_catalog))
    assert set(catalog) >= source_catalog and len(catalog) == len(source_catalog) + 2 * replaced
    seen = set()
    for k in (1, 2, 3):
        sold = set(_span(out, k)[1].tolist())
        new = sold - seen - source_catalog
        assert len(new) == figures[k - 1]["new_products"]
        assert (k == 1 and not new) or len(new) >= replaced // 2  # most new ids sell in their first span
        seen |= sold


def _shares(out, k, catalog):
    counts = np.bincount(heavy_data.catalog_positions(catalog, _span(out, k)[1]), minlength=len(catalog))
    return counts / counts.sum()


def test_the_zipf_exponent_sets_the_skew(tmp_path, source):
    catalog = heavy_data.read_catalog(os.path.join(source, configs.CATALOG_FILE))
    products = pq.read_table(os.path.join(source, configs.TRAIN_FILE))[features.PRODUCT_KEY].to_numpy()
    source_top = np.bincount(heavy_data.catalog_positions(catalog, products)).max() / len(products)
    tops = {}
    for zipf in (0.0, 2.0):  # every ASOS purchase re-drawn: uniform, then steeper than the sample's 1/rank
        out = str(tmp_path / f"zipf-{zipf}")
        heavy_spans.make_spans(source, out, 1, seed=0, **{**SMALL, "popular_share": 1.0, "zipf": zipf,
                                                           "heavy_users": 0})
        tops[zipf] = _shares(out, 1, catalog).max()
    assert tops[0.0] < source_top / 2 and tops[2.0] > 2 * source_top


def test_popularity_moves_moderately_between_spans(tmp_path, write_fake_asos):
    source = str(tmp_path / "asos")  # about 3,000 rows a span: sampling alone moves the shares little
    write_fake_asos(source, num_users=3000, num_products=120, catalog_extra=10, seed=1)
    moved = {}
    for shift in (0.0, 0.3, 1.0):  # every purchase re-drawn from the ranking, no new ids
        out = str(tmp_path / f"shift-{shift}")
        heavy_spans.make_spans(source, out, 3, seed=0, **{**SMALL, "popular_share": 1.0, "turnover": 0.0,
                                                           "heavy_users": 0, "shift": shift})
        catalog = heavy_data.read_catalog(os.path.join(out, configs.CATALOG_FILE))
        first, last = _shares(out, 1, catalog), _shares(out, 3, catalog)
        moved[shift] = (np.corrcoef(first, last)[0, 1],
                        len(set(np.argsort(-first)[:10].tolist()) & set(np.argsort(-last)[:10].tolist())))
    assert moved[0.0][0] > 0.98 and moved[0.0][1] >= 9  # the same ranking, sampled again
    assert 0.6 < moved[0.3][0] < 0.95 and 5 <= moved[0.3][1] < 10  # moved, moderately
    assert moved[1.0][0] < moved[0.3][0]


def test_zipf_weights_and_distinct_draws():
    p = heavy_spans.zipf_weights(np.array([0.5, 0.1, 2.0, 0.3]), 1.0)
    assert np.allclose(p * np.sum(1 / np.arange(1, 5)), [1 / 3, 1, 1 / 4, 1 / 2])
    rng = np.random.default_rng(0)
    drawn = heavy_spans.distinct_draws(rng, np.array([0.5, 0.0, 0.3, 0.2]), 5)
    assert sorted(drawn.tolist()) == [0, 2, 3]  # never a product of probability 0, never twice
    firsts = [heavy_spans.distinct_draws(rng, np.array([0.7, 0.2, 0.1]), 1)[0] for _ in range(2000)]
    assert 0.65 < np.mean(np.array(firsts) == 0) < 0.75


def test_the_same_seed_writes_the_same_bytes(tmp_path, source):
    def files(path):
        return {os.path.relpath(os.path.join(d, n), path): open(os.path.join(d, n), "rb").read()
                for d, _, names in os.walk(path) for n in names}

    heavy_spans.make_spans(source, str(tmp_path / "a"), 2, seed=5, **SMALL)
    heavy_spans.make_spans(source, str(tmp_path / "b"), 2, seed=5, **SMALL)
    heavy_spans.make_spans(source, str(tmp_path / "c"), 2, seed=6, **SMALL)
    assert files(str(tmp_path / "a")) == files(str(tmp_path / "b")) != files(str(tmp_path / "c"))


def test_bad_arguments_are_refused(tmp_path, source, capsys):
    with pytest.raises(ValueError, match="directory of their own"):
        heavy_spans.make_spans(source, source, 2)
    with pytest.raises(ValueError, match="turnover must be between 0 and 1"):
        heavy_spans.make_spans(source, str(tmp_path / "x"), 2, turnover=1.5)
    assert heavy_spans.main([str(tmp_path / "x"), "--data-dir", source, "--spans", "0"]) == 2
    assert "spans must be 1 or more" in capsys.readouterr().err


def test_cli_prints_a_line_per_span(tmp_path, source, capsys):
    out = str(tmp_path / "spans")
    assert heavy_spans.main([out, "--data-dir", source, "--spans", "2", "--heavy-users", "2",
                             "--heavy-low", "50", "--heavy-high", "80"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "run with --skip-checksums" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["span-1", "span-2"]
    assert sorted(os.listdir(out)) == [configs.CATALOG_FILE, "span-1", "span-2"]
