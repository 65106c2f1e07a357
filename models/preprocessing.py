"""Transform's preprocessing_fn: the user and product vocabularies.

Both vocabularies are computed on the train split, ordered by descending frequency, and written
under `transform_fn/assets/` with the fixed names in `models.features` so the serving model can
load them. Ids never seen in training map to the single OOV bucket (index == vocabulary size);
that row is never trained as a positive nor offered as a candidate (see exporter.py).
"""

import tensorflow as tf
import tensorflow_transform as tft

from models import features


def _dense(x: tf.Tensor) -> tf.Tensor:
    """[batch, 1] (schema shape [1]) -> [batch]."""
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs):
    users = _dense(inputs[features.USER_KEY])
    products = _dense(inputs[features.PRODUCT_KEY])
    return {
        features.USER_INDEX: tft.compute_and_apply_vocabulary(
            users, vocab_filename=features.USER_VOCAB, num_oov_buckets=features.NUM_OOV_BUCKETS),
        features.PRODUCT_INDEX: tft.compute_and_apply_vocabulary(
            products, vocab_filename=features.PRODUCT_VOCAB, num_oov_buckets=features.NUM_OOV_BUCKETS),
    }
