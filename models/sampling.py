"""Negative samplers for sampled-softmax training of a two-tower (dot product) recommender.

Every sampler is plain TensorFlow, usable inside a `tf.function` train step, and deterministic
given its `seed` (a shape [2] int tensor, e.g. `[config.seed, step]`, fed to the stateless random
ops). Item indices are 0..num_items-1 (real products); the out-of-vocabulary row num_items is
never sampled.

A sampler returns `NegativeSamples`:

- `items`: the negative candidates, either shared by the whole batch ([C]) or drawn per
  positive ([B, C]);
- `log_q`: for each candidate, the log of its expected number of occurrences in the sample
  (same shape as `items`);
- `positive_log_q`: the same quantity for each positive item ([B]);
- `self_mask`: [B, C] bool, True where a candidate is the example's own positive by
  construction (the diagonal of in-batch sampling), or None.

The loss subtracts `log_q` from the candidate logits and `positive_log_q` from the positive
logit (the "log-Q correction" of sampled softmax: Bengio & Senecal 2008; Yi et al. 2019), which
makes the sampled softmax an unbiased stand-in for the full softmax over all items. For uniform
sampling the correction is the same constant for every logit and changes nothing.

`accidental_hits` marks candidates equal to the example's positive, so that the loss can mask
them out (a bought product is not a negative).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

SCHEMES = ("uniform", "popularity", "in_batch", "mixed")


class NegativeSamples(NamedTuple):
    """Negatives of one batch and their log-Q correction terms (see the module docstring)."""

    items: tf.Tensor
    log_q: tf.Tensor
    positive_log_q: tf.Tensor
    self_mask: Optional[tf.Tensor]


def item_log_probs(item_counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """log of the sampling distribution p_j ∝ count_j ** alpha over the real items.

    Items with zero count get count 1 (so every item can be sampled when alpha > 0).
    alpha=1 is the empirical item frequency (the distribution of in-batch negatives),
    alpha=0 is uniform. Returns float32 [num_items].
    """
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    logits = alpha * np.log(counts)
    return (logits - np.logaddexp.reduce(logits)).astype(np.float32)


def uniform_negatives(positives: tf.Tensor, num_items: int, num_negatives: int,
                      seed: tf.Tensor) -> NegativeSamples:
    """`num_negatives` items per positive, uniform over the num_items real items (the notebook).

    Args:
      positives: int [B] positive item indices.
      num_items: number of real items; indices are drawn from [0, num_items).
      num_negatives: negatives per positive.
      seed: int [2] seed of the stateless draw.

    Returns:
      NegativeSamples with items [B, num_negatives] and log_q = log(num_negatives / num_items).
    """
    batch = tf.shape(positives)[0]
    items = tf.random.stateless_uniform([batch, num_negatives], seed=seed, minval=0,
                                        maxval=num_items, dtype=tf.int32)
    log_q = tf.fill([batch, num_negatives], float(np.log(num_negatives / num_items)))
    positive_log_q = tf.fill([batch], float(np.log(num_negatives / num_items)))
    return NegativeSamples(items, log_q, positive_log_q, None)


def popularity_negatives(positives: tf.Tensor, log_probs: tf.Tensor, num_negatives: int,
                         seed: tf.Tensor) -> NegativeSamples:
    """`num_negatives` items shared by the batch, drawn with replacement from `log_probs`.

    Args:
      positives: int [B] positive item indices (for their log-Q terms).
      log_probs: float [num_items] log sampling distribution (`item_log_probs(counts, alpha)`).
      num_negatives: size of the shared sample.
      seed: int [2] seed of the stateless draw.

    Returns:
      NegativeSamples with items [num_negatives] and log_q_j = log(num_negatives * p_j).
    """
    items = tf.random.stateless_categorical(log_probs[tf.newaxis, :], num_negatives, seed=seed,
                                            dtype=tf.int32)[0]
    log_n = tf.math.log(float(num_negatives))
    return NegativeSamples(items, log_n + tf.gather(log_probs, items),
                           log_n + tf.gather(log_probs, positives), None)


def in_batch_negatives(positives: tf.Tensor, frequency_log_probs: tf.Tensor) -> NegativeSamples:
    """The batch's positives as shared negatives of every example.

    The positives of a shuffled batch are a sample of the training distribution, so item j
    appears about B * f_j times, with f_j its train frequency.

    Args:
      positives: int [B] positive item indices.
      frequency_log_probs: float [num_items] log train frequency (`item_log_probs(counts, 1)`).

    Returns:
      NegativeSamples with items = positives [B], log_q_j = log(B * f_j), and self_mask the
      identity (an example's own positive is not one of its negatives).
    """
    batch = tf.shape(positives)[0]
    log_q = tf.math.log(tf.cast(batch, tf.float32)) + tf.gather(frequency_log_probs, positives)
    return NegativeSamples(positives, log_q, log_q, tf.eye(batch, dtype=tf.bool))


def mixed_negatives(positives: tf.Tensor, frequency_log_probs: tf.Tensor,
                    log_probs: tf.Tensor, num_negatives: int,
                    seed: tf.Tensor) -> NegativeSamples:
    """In-batch negatives plus `num_negatives` shared items drawn from `log_probs`.

    Mixed negative sampling (Yang et al. 2020): the extra sample (uniform or flattened
    popularity) reaches the long tail that in-batch negatives rarely contain. Every candidate is
    corrected with its expected count under the mixture, log(B * f_j + N * p_j).

    Args:
      positives: int [B] positive item indices.
      frequency_log_probs: float [num_items] log train frequency.
      log_probs: float [num_items] log distribution of the extra sample.
      num_negatives: size N of the extra shared sample.
      seed: int [2] seed of the stateless draw.

    Returns:
      NegativeSamples with items [B + N] (the positives first) and self_mask [B, B + N].
    """
    batch = tf.shape(positives)[0]
    extra = tf.random.stateless_categorical(log_probs[tf.newaxis, :], num_negatives, seed=seed,
                                            dtype=tf.int32)[0]
    items = tf.concat([positives, extra], axis=0)
    log_b = tf.math.log(tf.cast(batch, tf.float32))
    log_n = tf.math.log(float(num_negatives))

    def mixture_log_q(idx):
        return tf.reduce_logsumexp(tf.stack([log_b + tf.gather(frequency_log_probs, idx),
                                             log_n + tf.gather(log_probs, idx)]), axis=0)

    self_mask = tf.concat([tf.eye(batch, dtype=tf.bool),
                           tf.zeros([batch, num_negatives], dtype=tf.bool)], axis=1)
    return NegativeSamples(items, mixture_log_q(items), mixture_log_q(positives), self_mask)


def accidental_hits(positives: tf.Tensor, negatives: tf.Tensor) -> tf.Tensor:
    """bool [B, C]: True where a negative is the example's positive item.

    `negatives` is either shared ([C]) or per positive ([B, C]).
    """
    if negatives.shape.rank == 1:
        negatives = negatives[tf.newaxis, :]
    return tf.equal(negatives, positives[:, tf.newaxis])
