"""A validation split carved out of the train purchases, to choose model settings on.

The eval split (the notebook's valid file) is reported once, with the chosen settings; every
setting is chosen on this split instead (benchmarks/tune.py).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def carve_validation(user_idx: np.ndarray, item_idx: np.ndarray, seed: int = 0, share: float = 1.0
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Holds out one purchase, at random, of every user with at least two train purchases (of a
    random `share` of those users).

    A user's only purchase is never held out: that user would have no history left to be
    scored from. Deterministic given `seed`. A share below 1 leaves more to train on (the whole
    carve takes 18% of the ASOS train purchases), for a question whose answer moves with how
    much a model trains on (benchmarks/warm_start.py), at the price of a smaller validation set.

    Args:
      user_idx, item_idx: the train purchases (equal-length integer arrays).
      seed: numpy seed of the draw.
      share: the share of the users with two or more purchases who lose one, in (0, 1].

    Returns:
      (fit, validation): boolean masks over the purchases, complementary.
    """
    users = np.asarray(user_idx)
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if users.shape != np.asarray(item_idx).shape or users.ndim != 1:
        raise ValueError(f"user_idx and item_idx must be 1-d of equal length, got "
                         f"{users.shape} and {np.asarray(item_idx).shape}")
    order = np.random.default_rng(seed).permutation(len(users))
    _, first = np.unique(users[order], return_index=True)
    held_out = order[first]  # one purchase per user, at random
    _, inverse, counts = np.unique(users, return_inverse=True, return_counts=True)
    held_out = held_out[counts[inverse[held_out]] >= 2]
    if share < 1.0:  # a seeded share of them (a draw of its own: share 1 draws as before)
        held_out = held_out[np.random.default_rng([seed, 1]).random(len(held_out)) < share]
    validation = np.zeros(len(users), dtype=bool)
    validation[held_out] = True
    return ~validation, validation
