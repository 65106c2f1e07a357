"""The recommender pipeline: configuration, data, and the TFX pipeline definition.

TFT 1.21 and TFMA 0.52 need Keras 2 (tf-keras). TF_USE_LEGACY_KERAS must be set before
TensorFlow is first imported; every entry point imports this package first (which also keeps a
third-party warning no user can act on off their consoles).
"""

import os
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TFX imports google-cloud-aiplatform, which nags at import about google-cloud-storage < 3; that is
# apache-beam[gcp] 2.73's pin (< 3), nothing a user of this project can act on
warnings.filterwarnings("ignore", message=r"Support for google-cloud-storage < 3\.0\.0", category=FutureWarning)


def check_keras() -> None:
    """Fails fast, in plain words, if TensorFlow was imported with Keras 3."""
    import tensorflow as tf

    module = tf.keras.Model.__module__
    if not module.startswith("tf_keras"):
        raise RuntimeError(
            f"tf.keras is {module.split('.')[0]}, not tf_keras; TFT/TFMA need Keras 2: install tf-keras and set "
            "TF_USE_LEGACY_KERAS=1 before TensorFlow is imported")
