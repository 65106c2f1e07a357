"""A validation split carved out of the train purchases, to choose model settings on.

The eval split (the notebook's valid file) is reported once, with the chosen settings; every
setting is chosen on this split instead (benchmarks/tune.py).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def carve_validation(user_idx: np.ndarray, item_idx: np.ndarray, seed: int = 0
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Holds out one purchase, at random, of every user with at least two train purchases.

    A user's only purchase is never held out: that user would have no history left to be
    scored from. Deterministic given `seed`.

    Args:
      user_idx, item_idx: the train purchases (equal-length integer arrays).
      seed: numpy seed of the draw.

    Returns:
      (fit, validation): boolean masks over the purchases, complementary.
    """
    users = np.asarray(user_idx)
    if users.shape != np.asarray(item_idx).shape or users.ndim != 1:
        raise ValueError(f"user_idx and item_idx must be 1-d of equal length, got "
                         f"{users.shape} and {np.asarray(item_idx).shape}")
    order = np.random.default_rng(seed).permutation(len(users))
    _, first = np.unique(users[order], return_index=True)
    held_out = order[first]  # one purchase per user, at random
    _, inverse, counts = np.unique(users, return_inverse=True, return_counts=True)
    held_out = held_out[counts[inverse[held_out]] >= 2]
    validation = np.zeros(len(users), dtype=bool)
    validation[held_out] = True
    return ~validation, validation
