import pytest
import tensorflow as tf

from models import examples, features


def test_purchases_read_back_as_examplegens_records():
    records = examples.purchase_examples([b"userA", b"userB"], [2000001, 7])
    spec = {features.USER_KEY: tf.io.FixedLenFeature([1], tf.string),
            features.PRODUCT_KEY: tf.io.FixedLenFeature([1], tf.int64)}
    parsed = tf.io.parse_example(tf.constant(records), spec)
    assert parsed[features.USER_KEY].numpy().ravel().tolist() == [b"userA", b"userB"]
    assert parsed[features.PRODUCT_KEY].numpy().ravel().tolist() == [2000001, 7]
    assert records[0] == examples.purchase_example(b"userA", 2000001)


def test_one_user_per_product():
    with pytest.raises(ValueError, match="2 users for 1 products"):
        examples.purchase_examples([b"a", b"b"], [1])
