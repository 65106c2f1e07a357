"""The validation carve: one purchase per user with two or more, never a user's only one."""

import numpy as np
import pytest

from models import validation


def test_one_purchase_per_user_with_two_or_more_never_the_only_one():
    rng = np.random.default_rng(1)
    users = rng.integers(0, 50, 400)
    users[:3] = [1000, 1001, 1001]  # 1000 has one purchase, 1001 two
    items = rng.integers(0, 30, 400)
    fit, val = validation.carve_validation(users, items, seed=3)
    assert not (fit & val).any() and (fit | val).all()
    counts = np.bincount(users)
    held = np.bincount(users[val], minlength=len(counts))
    assert (held[counts >= 2] == 1).all()
    assert (held[counts == 1] == 0).all()
    assert not val[0] and val[1:3].sum() == 1
    # every user keeps at least one purchase to be scored from
    assert set(users[fit]) == set(users)


def test_deterministic_given_the_seed():
    users = np.repeat(np.arange(100), 3)
    items = np.arange(300)
    a = validation.carve_validation(users, items, seed=0)[1]
    b = validation.carve_validation(users, items, seed=0)[1]
    c = validation.carve_validation(users, items, seed=1)[1]
    assert (a == b).all() and not (a == c).all()


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="equal length"):
        validation.carve_validation(np.arange(3), np.arange(4))


def test_a_share_of_the_users_lose_a_purchase():
    users = np.repeat(np.arange(1000), 3)
    items = np.arange(3000)
    _, whole = validation.carve_validation(users, items, seed=0)
    _, part = validation.carve_validation(users, items, seed=0, share=0.25)
    assert 200 < part.sum() < 300 and not (part & ~whole).any()  # the same draws, a quarter kept
    np.testing.assert_array_equal(part, validation.carve_validation(users, items, seed=0, share=0.25)[1])
    with pytest.raises(ValueError, match="share must be in"):
        validation.carve_validation(users, items, share=0.0)
