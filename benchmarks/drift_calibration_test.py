"""The calibration's spans and their altered versions (the gate's verdicts on them:
components/drift_test.py)."""

import numpy as np
import pyarrow as pa

from benchmarks import drift_calibration
from models import features


def _table(users, products):
    return pa.table({features.USER_KEY: pa.array(users, pa.binary()),
                     features.PRODUCT_KEY: pa.array(products, pa.int32())})


def test_random_spans_are_seeded_and_the_first_twice_as_large():
    spans = drift_calibration.random_spans(100_000, 4, seed=0)
    shares = np.bincount(spans)[1:] / len(spans)
    np.testing.assert_allclose(shares, [0.4, 0.2, 0.2, 0.2], atol=0.01)
    assert (drift_calibration.random_spans(100_000, 4, seed=0) == spans).all()


def test_inverted_popularity_swaps_ranks_and_keeps_everything_else():
    reference = _table([b"u"] * 6, [1, 1, 1, 2, 2, 3])  # ranking 1, 2, 3
    table = _table([b"a", b"b", b"c", b"d"], [1, 1, 3, 9])
    flipped = drift_calibration.inverted(table, reference)
    assert flipped.column(features.PRODUCT_KEY).to_pylist() == [3, 3, 1, 9]  # 9: unknown, stays
    assert flipped.schema == table.schema and flipped.column(0).equals(table.column(0))


def test_heavier_buyers_buy_times_as_much():
    table = _table([b"a", b"a", b"a", b"b", b"c"], [1, 2, 3, 1, 1])
    heavy = drift_calibration.heavier(table, buyers=1, times=3)
    assert heavy.num_rows == 5 + 2 * 3
    assert heavy.column(features.USER_KEY).to_pylist().count(b"a") == 9


def test_busier_is_twice_the_customers_buying_as_before():
    table = _table([b"a", b"a", b"b"], [1, 2, 1])
    busy = drift_calibration.busier(table)
    assert busy.num_rows == 6 and busy.schema == table.schema
    users = busy.column(features.USER_KEY).to_pylist()
    assert sorted(users.count(u) for u in set(users)) == [1, 1, 2, 2]  # each user's count as before
    assert busy.column(features.PRODUCT_KEY).to_pylist() == [1, 2, 1] * 2
