"""Negative samplers: what they draw, the distribution they claim, and accidental hits."""

import numpy as np
import pytest
import tensorflow as tf

from models import sampling

COUNTS = np.array([400, 200, 100, 50, 25, 25, 0, 200], np.float64)
SEED = tf.constant([7, 0], tf.int64)


def test_item_log_probs_is_count_to_the_alpha():
    for alpha in (0.0, 0.5, 1.0):
        p = np.exp(sampling.item_log_probs(COUNTS, alpha))
        expected = np.maximum(COUNTS, 1) ** alpha
        np.testing.assert_allclose(p, expected / expected.sum(), rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_popularity_sample_follows_the_claimed_distribution(alpha):
    log_probs = tf.constant(sampling.item_log_probs(COUNTS, alpha))
    draws = sampling.popularity_negatives(tf.constant([0, 1]), log_probs, 200_000, SEED)
    empirical = np.bincount(draws.items.numpy(), minlength=len(COUNTS)) / 200_000
    np.testing.assert_allclose(empirical, np.exp(log_probs.numpy()), atol=0.004)
    # log-Q is the log of the expected number of draws of each candidate
    np.testing.assert_allclose(draws.log_q.numpy()[:5],
                               np.log(200_000) + log_probs.numpy()[draws.items.numpy()[:5]], rtol=1e-5)


def test_uniform_sample_covers_real_items_only():
    positives = tf.constant([0, 3, 5, 7])
    draws = sampling.uniform_negatives(positives, num_items=8, num_negatives=5000, seed=SEED)
    items = draws.items.numpy()
    assert items.shape == (4, 5000)
    assert items.min() == 0 and items.max() == 7  # never the OOV row (index 8)
    counts = np.bincount(items.ravel(), minlength=8) / items.size
    np.testing.assert_allclose(counts, np.full(8, 1 / 8), atol=0.01)


def test_samples_are_reproducible_from_the_seed():
    log_probs = tf.constant(sampling.item_log_probs(COUNTS, 1.0))
    a = sampling.popularity_negatives(tf.constant([1]), log_probs, 50, SEED).items.numpy()
    b = sampling.popularity_negatives(tf.constant([1]), log_probs, 50, SEED).items.numpy()
    c = sampling.popularity_negatives(tf.constant([1]), log_probs, 50, tf.constant([7, 1], tf.int64)).items.numpy()
    assert (a == b).all() and not (a == c).all()


def test_in_batch_negatives_never_include_the_example_itself():
    positives = tf.constant([2, 4, 2, 7])
    draws = sampling.in_batch_negatives(positives, tf.constant(sampling.item_log_probs(COUNTS, 1.0)))
    assert (draws.items.numpy() == positives.numpy()).all()
    assert (draws.self_mask.numpy() == np.eye(4, dtype=bool)).all()


def test_accidental_hits_mark_every_negative_equal_to_the_positive():
    positives = tf.constant([2, 4, 2, 7])
    for draws in (sampling.in_batch_negatives(positives, tf.constant(sampling.item_log_probs(COUNTS, 1.0))),
                  sampling.uniform_negatives(positives, 8, 50, SEED),
                  sampling.mixed_negatives(positives, tf.constant(sampling.item_log_probs(COUNTS, 1.0)),
                                           tf.constant(sampling.item_log_probs(COUNTS, 0.5)), 50, SEED)):
        hits = sampling.accidental_hits(positives, draws.items).numpy()
        items = draws.items.numpy()
        items = np.broadcast_to(items, hits.shape) if items.ndim == 1 else items
        assert (hits == (items == positives.numpy()[:, None])).all()
        # with hits and the self mask removed, no example keeps its own positive as a negative
        kept = ~hits if draws.self_mask is None else ~(hits | draws.self_mask.numpy())
        assert not (items[kept].reshape(-1) == np.repeat(positives.numpy(), kept.sum(1))).any()
