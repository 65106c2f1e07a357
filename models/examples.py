"""Purchases as serialized tf.Examples, the records ExampleGen writes and the `evaluate` signature
reads: one user id (bytes) and one product id (int64) each."""

from __future__ import annotations

from typing import List, Sequence

import tensorflow as tf

from models import features


def purchase_example(user: bytes, product: int) -> bytes:
    """One purchase as a serialized tf.Example."""
    return tf.train.Example(features=tf.train.Features(feature={
        features.USER_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[user])),
        features.PRODUCT_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(product)])),
    })).SerializeToString()


def purchase_examples(users: Sequence[bytes], products: Sequence[int]) -> List[bytes]:
    """The purchases (users[i], products[i]) as serialized tf.Examples, in order."""
    if len(users) != len(products):
        raise ValueError(f"{len(users)} users for {len(products)} products: one of each per purchase")
    return [purchase_example(u, p) for u, p in zip(users, products)]
