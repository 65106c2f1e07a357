"""The serving SavedModel: raw ids in, raw ids out, loadable by TensorFlow Serving unchanged.

Signatures (all batched on dimension 0; request/response examples: docs/serving.md):

- `call_item_item(item: int64[B])` -> `products: int64[B, K]`, `scores: float[B, K]`,
  `known_item: bool[B]`. The K (default 100) products most similar to each product (cosine
  of product embeddings), the product itself left out. An unknown product id (not bought in
  train) gets the K most popular products with their share of train purchases as scores,
  and `known_item` false.
- `serving_default(user_id: string[B])` -> `products`, `scores`, `known_user: bool[B]`. The K
  best products for each user, leaving out those the user bought in train. An unknown user gets
  the K most popular products (scores: share of train purchases) and `known_user` false.
- `evaluate(examples: string[B])`, serialized tf.Examples with the raw user and product, for
  TFMA -> `ranks: float[B, 2]`: column 0 is the 0-based rank of the example's product among all
  products, leaving out those the user bought in train (`UNRANKED`, 1e9, below every top k, when
  the product cannot be ranked: unknown, or bought before); column 1 its 0-based rank among 100
  products drawn uniformly with a seed derived from the example (the same draws for every model).
  `popularity_ranks: float[B, 2]`: the same two ranks when every product is scored by its train
  purchases (the most-popular-products baseline, the fallback above), so that the Evaluator
  judges the model against popularity in the same pass (models/eval_metrics.py).

Transform's vocabularies are inside the model (TFTransformOutput.transform_features_layer):
ids are mapped to indices with exactly the tables training used; OOV rows are never returned.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from models import model as model_lib
from models import features

EVAL_SIGNATURE = "evaluate"
ITEM_ITEM_SIGNATURE = "call_item_item"
RANKS_KEY = "ranks"
POPULARITY_RANKS_KEY = "popularity_ranks"
PRODUCT_COUNTS = "product_counts"  # the variable of train purchases per product (vocabulary order)
PRODUCT_IDS = "product_ids"  # the variable of raw product ids (vocabulary order)
KNOWN_USER, KNOWN_ITEM = "known_user", "known_item"  # outputs: was the id seen in training
ITEM_INPUT = "item"  # call_item_item's input
SAMPLED_NEGATIVES = features.SAMPLED_NEGATIVES
SAMPLE_SEED = 42
# The full-catalog rank of a purchase the model cannot rank (an unknown user or product, or one
# the user bought in train): below every top k. It used to be the catalog's size, which a top k
# at least that large (recall@100 on a catalog of 80 products) counted as a hit. 1e9 is a float32
# exactly, and REST's JSON prints it as Python does (2^31 prints as 2147483650.0).
UNRANKED = 1e9


class ServingModule(tf.Module):
    """The recommender with its vocabularies, purchase history and popularity fallback."""

    def __init__(self, recommender: model_lib.Recommender, transform_output: tft.TFTransformOutput,
                 train_users: np.ndarray, train_items: np.ndarray,
                 top_k: int = features.SERVING_TOP_K):
        super().__init__(name="serving")
        num_users, num_items = recommender.num_users, recommender.num_items
        if not 1 <= top_k <= num_items:
            raise ValueError(f"top_k must be within 1..{num_items} (the products), got {top_k}")
        self.recommender = recommender
        self.tft_layer = transform_output.transform_features_layer()
        self.num_items = num_items
        self.top_k = top_k
        product_ids = np.array(
            [int(p) for p in transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)], np.int64)
        self.product_ids = tf.Variable(product_ids, trainable=False, name=PRODUCT_IDS)
        # Each user's train purchases, all of them, to leave them out (CSR: memory and work
        # linear in a user's purchases, and a row never costs more than the scores it masks).
        # A model that pools the user's history holds the same arrays when it was built from
        # the same pairs and no user's history was capped (model_lib.cap_history): then they
        # are shared.
        purchased = model_lib.build_user_history(train_users, train_items, num_users, num_items)
        splits = getattr(recommender, "history_splits", None)
        if (splits is not None and np.array_equal(splits.numpy(), purchased.splits)
                and np.array_equal(recommender.history_items.numpy(), purchased.items)):
            self.purchased_splits, self.purchased_items = splits, recommender.history_items
        else:
            self.purchased_splits = tf.Variable(purchased.splits, trainable=False,
                                                name="purchased_splits")
            self.purchased_items = tf.Variable(purchased.items, trainable=False,
                                               name="purchased_items")
        counts = np.bincount(train_items[train_items < num_items], minlength=num_items)
        popular = np.argsort(-counts, kind="stable")[:top_k]
        # item-item similarity is the cosine of item embeddings: normalise them once, here
        self.unit_items = tf.Variable(tf.math.l2_normalize(
            recommender.item_embeddings[:num_items], axis=1), trainable=False, name="unit_items")
        self.popular_items = tf.Variable(popular.astype(np.int32), trainable=False, name="popular")
        self.popular_scores = tf.Variable((counts[popular] / max(counts.sum(), 1)).astype(np.float32),
                                          trainable=False, name="popular_scores")
        # every product's train purchases: the popularity baseline's scores in `evaluate`, and
        # what the request monitor compares requested products with (serving/monitor.py reads
        # it from the checkpoint as `product_counts`)
        self.product_counts = tf.Variable(counts.astype(np.int64), trainable=False, name=PRODUCT_COUNTS)

    # --- id <-> index -------------------------------------------------------------------------
    def _user_index(self, user_ids: tf.Tensor) -> tf.Tensor:
        out = self.tft_layer({features.USER_KEY: tf.reshape(user_ids, [-1, 1])})
        return tf.cast(out[features.USER_INDEX], tf.int32)

    def _item_index(self, item_ids: tf.Tensor) -> tf.Tensor:
        out = self.tft_layer({features.PRODUCT_KEY: tf.reshape(item_ids, [-1, 1])})
        return tf.cast(out[features.PRODUCT_INDEX], tf.int32)

    def _fallback(self, known: tf.Tensor, items: tf.Tensor, scores: tf.Tensor):
        """Rows of unknown ids get the popular products and their popularity scores; places left
        out (-inf: bought, or the product asked about) that top_k had to fill, when fewer products
        than top_k are left, get features.PADDING_PRODUCT and the lowest float32 (found by
        exploratory testing: a user who had bought all but 36 products was recommended 64 of his
        purchases, scored -inf)."""
        batch = tf.shape(known)[0]
        popular = tf.tile(self.popular_items[tf.newaxis, :], [batch, 1])
        popular_scores = tf.tile(self.popular_scores[tf.newaxis, :], [batch, 1])
        left_out = known[:, tf.newaxis] & tf.equal(scores, tf.constant(-np.inf, scores.dtype))
        items = tf.where(known[:, tf.newaxis], items, popular)
        scores = tf.where(known[:, tf.newaxis], scores, popular_scores)
        products = tf.where(left_out, tf.constant(features.PADDING_PRODUCT, tf.int64),
                            tf.gather(self.product_ids, items))
        return products, tf.where(left_out, tf.constant(np.finfo(np.float32).min, scores.dtype), scores)

    def _mask_purchased(self, scores: tf.Tensor, user_idx: tf.Tensor) -> tf.Tensor:
        """-inf for the products each user bought in train."""
        rows, items = model_lib.history_entries(self.purchased_splits, self.purchased_items,
                                                user_idx)
        where = tf.stack([rows, items], axis=1)
        minus_inf = tf.fill([tf.shape(where)[0]], tf.constant(-np.inf, scores.dtype))
        return tf.tensor_scatter_nd_update(scores, where, minus_inf)

    # --- signatures ---------------------------------------------------------------------------
    # serving_default and evaluate score the whole catalog for every row: a [rows, products]
    # matrix and a few copies of it. They work through their input CHUNK rows at a time, so a
    # big request (TFMA sends thousands of examples at once) stays in cache-sized pieces.
    # No autograph in the signatures (no Python control flow on tensors; the loop is a
    # tf.while_loop): converting the model's code took most of the export's time.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")], autograph=False)
    def recommend(self, user_id):
        return in_chunks(self._recommend, user_id, {
            "products": (tf.int64, [self.top_k]), "scores": (tf.float32, [self.top_k]),
            KNOWN_USER: (tf.bool, [])})

    def _recommend(self, user_id):
        user_idx = self._user_index(user_id)
        known = user_idx < self.recommender.num_users
        safe_idx = tf.where(known, user_idx, self.recommender.num_users)
        scores = self._mask_purchased(self.recommender.score_all(safe_idx), safe_idx)
        top = tf.math.top_k(scores, k=self.top_k)
        products, scores = self._fallback(known, top.indices, top.values)
        return {"products": products, "scores": scores, KNOWN_USER: known}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=ITEM_INPUT)], autograph=False)
    def item_item(self, item):
        item_idx = self._item_index(item)
        known = item_idx < self.num_items
        safe_idx = tf.where(known, item_idx, 0)
        similarity = tf.matmul(tf.gather(self.unit_items, safe_idx), self.unit_items, transpose_b=True)
        itself = tf.one_hot(safe_idx, self.num_items, on_value=True, off_value=False)
        similarity = tf.where(itself, tf.constant(-np.inf, similarity.dtype), similarity)
        top = tf.math.top_k(similarity, k=self.top_k)
        products, scores = self._fallback(known, top.indices, top.values)
        return {"products": products, "scores": scores, KNOWN_ITEM: known}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False)
    def evaluate(self, examples):
        return in_chunks(self._evaluate, examples, {RANKS_KEY: (tf.float32, [2]),
                                                    POPULARITY_RANKS_KEY: (tf.float32, [2])})

    def _evaluate(self, examples):
        parsed = tf.io.parse_example(examples, {
            features.USER_KEY: tf.io.FixedLenFeature([1], tf.string),
            features.PRODUCT_KEY: tf.io.FixedLenFeature([1], tf.int64),
        })
        user_idx = self._user_index(parsed[features.USER_KEY])
        item_idx = self._item_index(parsed[features.PRODUCT_KEY])
        known = (user_idx < self.recommender.num_users) & (item_idx < self.num_items)
        safe_user = tf.where(known, user_idx, self.recommender.num_users)
        safe_item = tf.where(known, item_idx, 0)

        # The notebook's sampled accuracy: 100 uniform products, seeded by the example itself.
        key = tf.strings.join([parsed[features.USER_KEY][:, 0],
                               tf.strings.as_string(parsed[features.PRODUCT_KEY][:, 0])], "/")
        seeds = tf.strings.to_hash_bucket_fast(key, 2**31 - 1)
        sampled = tf.map_fn(
            lambda s: tf.random.stateless_uniform([SAMPLED_NEGATIVES], seed=tf.stack([s, SAMPLE_SEED]),
                                                  maxval=self.num_items, dtype=tf.int32),
            seeds, fn_output_signature=tf.TensorSpec([SAMPLED_NEGATIVES], tf.int32))

        return {RANKS_KEY: self._ranks(self.recommender.score_all(safe_user), known, safe_user,
                                       safe_item, sampled),
                POPULARITY_RANKS_KEY: self._popularity_ranks(known, safe_user, safe_item, sampled)}

    def _popularity_ranks(self, known, safe_user, safe_item, sampled):
        """`_ranks` of the scores `product_counts` (the same for every user), without a
        [rows, products] matrix: a product's rank is the number of products bought more often
        than it, less those of them the user bought (left out); it cannot be ranked when the
        user bought it. Linear in the users' purchases."""
        counts = tf.cast(self.product_counts, tf.float32)
        rows = tf.shape(safe_user)[0]
        true = tf.gather(counts, safe_item)
        above = tf.cast(self.num_items - tf.searchsorted(tf.sort(counts), true, side="right"), tf.float32)
        bought_row, bought = model_lib.history_entries(self.purchased_splits, self.purchased_items, safe_user)
        bought_above = tf.math.unsorted_segment_sum(
            tf.cast(tf.gather(counts, bought) > tf.gather(true, bought_row), tf.float32), bought_row, rows)
        bought_itself = tf.math.unsorted_segment_max(
            tf.cast(tf.equal(bought, tf.gather(safe_item, bought_row)), tf.int32), bought_row, rows) > 0
        beaten = (tf.gather(counts, sampled) >= true[:, tf.newaxis]) & tf.not_equal(sampled, safe_item[:, tf.newaxis])
        sampled_rank = tf.reduce_sum(tf.cast(beaten, tf.float32), axis=1)
        return tf.stack([tf.where(known & ~bought_itself, above - bought_above, UNRANKED),
                         tf.where(known, sampled_rank, float(SAMPLED_NEGATIVES))], axis=1)

    def _ranks(self, raw_scores, known, safe_user, safe_item, sampled):
        """[rows, 2]: each row's product's rank among all products by `raw_scores` [rows,
        products] (the user's train purchases left out; ties in its favour), and among the
        `sampled` products (ties against it)."""
        scores = self._mask_purchased(raw_scores, safe_user)
        true_score = tf.gather(scores, safe_item, batch_dims=1)
        rankable = known & tf.math.is_finite(true_score)
        full_rank = tf.reduce_sum(tf.cast(scores > true_score[:, tf.newaxis], tf.float32), axis=1)

        sampled_scores = tf.gather(raw_scores, sampled, batch_dims=1)
        true_raw = tf.gather(raw_scores, safe_item, batch_dims=1)
        beaten = (sampled_scores >= true_raw[:, tf.newaxis]) & tf.not_equal(sampled, safe_item[:, tf.newaxis])
        sampled_rank = tf.reduce_sum(tf.cast(beaten, tf.float32), axis=1)

        return tf.stack([tf.where(rankable, full_rank, UNRANKED),
                         tf.where(known, sampled_rank, float(SAMPLED_NEGATIVES))], axis=1)


CHUNK = 256  # rows per step of serving_default/evaluate: faster than one step over TFMA's batches
#              of 8,192, and a small score matrix (measured: docs/benchmarks.md)


def in_chunks(fn, inputs: tf.Tensor, outputs: Dict[str, Tuple[tf.DType, List[int]]],
              chunk: int = CHUNK) -> Dict[str, tf.Tensor]:
    """`fn(inputs[s:s + chunk])` for s = 0, chunk, 2 chunk, ..., its outputs (a dict name ->
    [rows, *shape] tensor, declared in `outputs` as name -> (dtype, shape)) concatenated: the
    same values as `fn(inputs)` when `fn` treats each row on its own."""
    rows = tf.shape(inputs)[0]
    steps = (rows + chunk - 1) // chunk
    names = sorted(outputs)
    arrays = [tf.TensorArray(outputs[n][0], size=steps, infer_shape=False,
                             element_shape=tf.TensorShape([None] + list(outputs[n][1])))
              for n in names]

    def step(i, arrays):
        out = fn(inputs[i * chunk:(i + 1) * chunk])
        return i + 1, [a.write(i, out[n]) for a, n in zip(arrays, names)]

    _, arrays = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), arrays),
                              parallel_iterations=1)
    return {n: tf.reshape(a.concat(), [rows] + list(outputs[n][1])) for a, n in zip(arrays, names)}


def export_serving_model(module: ServingModule, export_dir: str) -> None:
    """Saves `module` with its three signatures (plain TensorFlow can load and call them)."""
    tf.saved_model.save(module, export_dir, signatures={
        "serving_default": module.recommend.get_concrete_function(),
        ITEM_ITEM_SIGNATURE: module.item_item.get_concrete_function(),
        EVAL_SIGNATURE: module.evaluate.get_concrete_function(),
    })
