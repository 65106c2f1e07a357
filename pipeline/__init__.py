"""The recommender pipeline: configuration, data, and the TFX pipeline definition.

TFT 1.21 and TFMA 0.52 need Keras 2 (tf-keras). TF_USE_LEGACY_KERAS must be set before
TensorFlow is first imported; every entry point imports this package first.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def check_keras() -> None:
    """Fails fast, in plain words, if TensorFlow was imported with Keras 3."""
    import tensorflow as tf

    module = tf.keras.Model.__module__
    if not module.startswith("tf_keras"):
        raise RuntimeError(
            f"tf.keras is {module.split('.')[0]}, not tf_keras; TFT/TFMA need Keras 2: install tf-keras and set "
            "TF_USE_LEGACY_KERAS=1 before TensorFlow is imported")
