"""Two-tower recommender: a user vector and a product embedding combined by a dot product.

score(u, j) = <user_vector(u), item_embedding[j]> (+ item_bias[j])

plus, by default, copurchase_weight * graph(u, j): RP3beta's item-to-item co-purchase scores
summed over the user's train purchases (`copurchase_graph`; no training, part of the model).

user_vector(u) is a user-id embedding (`use_user_embedding`), the mean embedding of the user's
train purchases (`use_history`, from a separate "history" item table), or their sum. The model
is trained on (user, item) purchase pairs with a sampled softmax: each positive competes
against negatives sampled in TensorFlow during training (`models.sampling`), with log-Q
correction.

Inputs are integer indices as produced by the Transform vocabularies (sorted by descending
frequency): users 0..num_users-1, items 0..num_items-1. The extra row of each table (index ==
vocabulary size) is the out-of-vocabulary bucket: it is never sampled as a negative and never
recommended (`score_all` covers the real items only).
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
import tf_keras as keras

from models import sampling

OPTIMIZERS = ("sgd", "adam", "lazy_adam", "adagrad")
# How a user's item-graph score is scaled by the user's number of train purchases n:
# "sum" (not at all), "sqrt" (divided by sqrt(n)), "mean" (by n), "max" (by its largest value).
GRAPH_NORMS = ("sum", "sqrt", "mean", "max")
# Per-epoch progress: the `recsys` logger hierarchy is what the local run's console shows.
progress = logging.getLogger("recsys.train")
_MASKED_LOGIT = -1e9


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model and its training; the field defaults are DEFAULT.

    Attributes:
      embedding_dim: length of user and item embeddings.
      num_negatives: negatives per positive ("uniform") or size of the shared sample
        ("popularity", and the extra sample of "mixed"; "in_batch" ignores it).
      sampling: one of `sampling.SCHEMES`: "uniform" (per-positive uniform negatives, the
        notebook), "popularity" (shared negatives ∝ count**popularity_alpha), "in_batch" (the
        batch's other positives), "mixed" (in-batch plus a popularity sample).
      popularity_alpha: exponent of the popularity sample (0 = uniform, 1 = frequency).
      remove_accidental_hits: mask negatives equal to the example's positive.
      use_item_bias: add a learned per-item bias to the score.
      use_user_embedding: include a learned user-id embedding in the user vector. With few
        purchases per user it memorises the train items and hurts generalisation; without it
        (needs use_history) the model has no user table.
      use_history: add the mean embedding of the user's train purchases to the user vector
        (the example's own item is left out during training).
      epochs: passes over the training pairs.
      warm_start_epochs: passes over the warm training pairs when the model starts from the
        served one (models/warm_start.py); a fraction is a share of one pass. The warm training
        pairs are those the served model has not trained on and a sample of those it has
        (`warm_start_rehearsal`; `warm_pairs`).
      warm_start_rehearsal: pairs the served model already trained on, drawn at random into a
        warm start's training pairs per pair it has not (0: the new pairs only), when the
        served model was itself warm-started (models/warm_start.py `rehearsal`: after a cold
        training every pair had its full passes, and none is drawn). They keep the products of
        the older spans in the batches: without them a chain of warm starts pulls the tables
        towards the newest spans' products.
      warm_start_learning_rate: the optimizer's learning rate when the model starts from the
        served one.
      warm_start_max_chain: warm starts in a row, at most (0: no bound): when the served model
        ends a chain of this many (models/warm_start.py `chain_length`), a training with
        purchases new to it starts cold. Without a bound a chain still ends when the window
        holds every purchase the served model trained on (`warm_start.chain_ended`).
      batch_size: training pairs per step.
      optimizer: one of OPTIMIZERS. "lazy_adam" is Adam whose moments and weights change only
        on the embedding rows a step uses (`LazyAdam`); Keras' "adam" decays every row's
        moments and updates every row at every step, most of a step's time with these tables.
      learning_rate: optimizer learning rate.
      l2: weight of the squared L2 norm of the embeddings (and biases) used by a batch,
        averaged over the batch.
      init_scale: embeddings start uniform in [-init_scale, init_scale] (0.05 as Keras'
        Embedding); biases start at 0.
      copurchase_weight: weight of the item-graph score added to the learned score (0: none).
        The item graph is RP3beta's (`copurchase_graph`): a two-step walk product -> buyer ->
        product over the train purchases; a user's graph score for product j is the sum over
        the user's train purchases i of graph[i, j]. Needs use_history (the same matrix).
      copurchase_alpha: RP3beta's exponent on the walk's transition probabilities.
      copurchase_beta: RP3beta's popularity penalty: graph[i, j] is divided by deg(j)**beta.
      copurchase_norm: one of GRAPH_NORMS: how a user's graph score is scaled by the number
        of the user's train purchases (`normalise_graph_scores`).
      copurchase_top_k: keep each product's top_k graph neighbours only (0: all); fewer
        entries make scoring cheaper.
      popularity_weight: weight of a popularity prior added to the score (0: none):
        popularity_weight * log(1 + deg(j)), deg(j) the number of users who bought product j
        in train (`log_popularity`; all of them, not capped by max_history). No training, part
        of the model. It matters where many purchases follow popularity whoever buys
        (docs/model.md, "Skewed popularity"). Needs use_history (the purchase matrix).
      max_history: the most of a user's distinct train purchases the model uses (0: all): a
        user with more has a seeded sample of that many (`cap_history`), used for the pooled
        user vector, the user's graph score and the user's part of the item graph. It bounds
        a user's cost: without it a user with n purchases costs n per training example (n**2
        in all) and adds n**2 entries to the item graph. Recommendations still leave out all
        of a user's purchases (models/exporter.py).
      shuffle: reshuffle the training pairs every epoch (seeded); False: one seeded order for
        every epoch, as the notebook read its (randomly ordered) file.
      seed: seed of initialisation, shuffling and negative sampling.
    """

    embedding_dim: int = 128
    num_negatives: int = 1024
    sampling: str = "in_batch"
    popularity_alpha: float = 0.5
    remove_accidental_hits: bool = True
    use_item_bias: bool = True
    use_user_embedding: bool = False
    use_history: bool = True
    epochs: int = 3
    warm_start_epochs: float = 1.0
    warm_start_rehearsal: float = 0.5
    warm_start_learning_rate: float = 0.02
    warm_start_max_chain: int = 0
    batch_size: int = 512
    optimizer: str = "lazy_adam"
    learning_rate: float = 0.0075
    l2: float = 0.01
    init_scale: float = 0.05
    copurchase_weight: float = 6.0
    copurchase_alpha: float = 0.25
    copurchase_beta: float = 0.0
    copurchase_norm: str = "sum"
    copurchase_top_k: int = 0
    popularity_weight: float = 0.0
    max_history: int = 32
    shuffle: bool = True
    seed: int = 42

    def __post_init__(self):
        self._check_types()
        if self.sampling not in sampling.SCHEMES:
            raise ValueError(f"sampling must be one of {sampling.SCHEMES}, not {self.sampling!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}")
        for name in ("embedding_dim", "num_negatives", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.warm_start_epochs > 0:
            raise ValueError(f"warm_start_epochs must be > 0, got {self.warm_start_epochs}")
        if self.warm_start_rehearsal < 0:
            raise ValueError(f"warm_start_rehearsal must be >= 0, got {self.warm_start_rehearsal}")
        if not (self.use_user_embedding or self.use_history):
            raise ValueError("the user vector needs use_user_embedding or use_history")
        # each field named with its value (found by exploratory testing: learning_rate=-1 read
        # "learning_rate, warm_start_learning_rate and init_scale must be > 0, l2 >= 0")
        for name in ("learning_rate", "warm_start_learning_rate", "init_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("l2", "copurchase_weight", "copurchase_alpha", "copurchase_beta", "copurchase_top_k",
                     "popularity_weight", "max_history", "warm_start_max_chain"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.copurchase_norm not in GRAPH_NORMS:
            raise ValueError(f"copurchase_norm must be one of {GRAPH_NORMS}, "
                             f"not {self.copurchase_norm!r}")
        if self.copurchase_weight > 0 and not self.use_history:
            raise ValueError("copurchase_weight > 0 needs use_history (the purchase matrix)")
        if self.popularity_weight > 0 and not self.use_history:
            raise ValueError("popularity_weight > 0 needs use_history (the purchase matrix)")

    def _check_types(self) -> None:
        """Each field of its declared type (a value from `--model-param` is JSON or a bare
        string): `embedding_dim=abc`, `epochs=2.5`, `batch_size=true` or `learning_rate=NaN`
        raise ValueError naming the field, not a TypeError from a comparison or from inside
        the Trainer."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            kind = field.type if isinstance(field.type, str) else field.type.__name__
            if kind == "bool":
                ok, wanted = isinstance(value, bool), "true or false"
            elif kind == "int":
                ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
                wanted = "an integer"
            elif kind == "float":
                ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
                      and bool(np.isfinite(value)))
                wanted = "a finite number"
            elif kind == "str":
                ok, wanted = isinstance(value, str), "a string"
            else:
                continue
            if not ok:
                raise ValueError(f"{field.name} must be {wanted}, got {value!r}")

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ModelConfig":
        """A config from a dict of field values; unknown keys raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {', '.join(unknown)}")
        return cls(**d)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


# The workshop notebook: 15-d user-id and item embeddings, 100 uniform negatives per purchase,
# softmax cross-entropy, SGD with learning rate 100, batches of 1024, 5 epochs.
NOTEBOOK = ModelConfig(embedding_dim=15, num_negatives=100, sampling="uniform",
                       popularity_alpha=0.0, remove_accidental_hits=False, use_item_bias=False,
                       use_user_embedding=True, use_history=False, epochs=5, batch_size=1024,
                       optimizer="sgd", learning_rate=100.0, l2=0.0, init_scale=0.05,
                       warm_start_learning_rate=100.0,  # its own (not tuned: the gate refuses it)
                       copurchase_weight=0.0, shuffle=False, seed=42)

# The team's default, the field defaults above: in-batch negatives with log-Q correction, user
# vector = mean embedding of the user's train purchases (no user-id embedding: it memorises the
# 1-2 purchases most users have), item bias, L2 0.01, lazy Adam, and the item-graph score
# (RP3beta, summed over the user's purchases) with weight 6; batches of 512 for 3 epochs at
# 0.0075, the fastest setting within noise of the best. Chosen on a validation split carved from
# train (benchmarks/tune.py); the figures and the settings tried: docs/model.md.
# num_negatives and popularity_alpha only matter when switching sampling to "popularity" or
# "mixed". max_history 32 (above the sample's 27, so the ASOS model is unchanged) was chosen on
# the validation split of ASOS plus 200 generated heavy users with 50 to 1,000 purchases
# (benchmarks/heavy_data.py, `tune.py --heavy-at 50`): HitRate@10 0.0326 there against 0.0320
# with 64, 0.0310 with 128, 0.0282 with 256 and 0.0263 with no cap (one standard error 0.0010):
# a heavy user's hundreds of purchases, pooled whole, drown the other users' signal.
DEFAULT = ModelConfig()


class UserHistory(NamedTuple):
    """Each user's distinct train items, as CSR arrays: user u's are
    items[splits[u]:splits[u + 1]], ascending. Rows 0..num_users, the last (the OOV user)
    empty: memory is linear in the purchases, whatever the longest history."""

    splits: np.ndarray  # int64 [num_users + 2]
    items: np.ndarray  # int32 [entries]

    def lengths(self) -> np.ndarray:
        """int64 [num_users + 1]: each user's number of items."""
        return np.diff(self.splits)

    def users(self) -> np.ndarray:
        """int64 [entries]: the user of each entry of `items`."""
        return np.repeat(np.arange(len(self.splits) - 1), self.lengths())

    def entries(self, users: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(position in `users`, item) int64 pairs of the given users' items, row by row: numpy's
        `history_entries`."""
        users = np.asarray(users, np.int64)
        starts = self.splits[users]
        lengths = self.splits[users + 1] - starts
        rows = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, self.items[np.repeat(starts, lengths) + offsets].astype(np.int64)

    def matrix(self, num_items: int) -> sp.csr_matrix:
        """The binary [num_users + 1, num_items] purchase matrix."""
        return sp.csr_matrix((np.ones(len(self.items), np.float64), self.items, self.splits),
                             shape=(len(self.splits) - 1, num_items))


def build_user_history(user_idx: np.ndarray, item_idx: np.ndarray, num_users: int,
                       num_items: int) -> UserHistory:
    """Each user's distinct train items (in vocabulary order); pairs with an OOV user or item
    are dropped. Row num_users (the OOV user) is empty."""
    user_idx = np.asarray(user_idx, dtype=np.int64)
    item_idx = np.asarray(item_idx, dtype=np.int64)
    keep = (user_idx >= 0) & (user_idx < num_users) & (item_idx >= 0) & (item_idx < num_items)
    pairs = np.unique(user_idx[keep] * num_items + item_idx[keep])  # sorted by user, then item
    counts = np.bincount(pairs // num_items, minlength=num_users + 1)
    return UserHistory(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                       (pairs % num_items).astype(np.int32))


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: well-spread uint64 hashes of uint64 values."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def cap_history(history: UserHistory, max_items: int, seed: int = 0) -> UserHistory:
    """`history` with each user's items cut to a seeded sample of at most `max_items` (0: all;
    still ascending). A user's sample depends only on the seed, the user's index and items
    (a hash of each), not on other users. Returns `history` itself when nobody has more."""
    lengths = history.lengths()
    if max_items <= 0 or not len(lengths) or lengths.max() <= max_items:
        return history
    users = history.users()
    with np.errstate(over="ignore"):
        keys = _mix64((users.astype(np.uint64) << np.uint64(32))
                      ^ history.items.astype(np.uint64) ^ _mix64(np.uint64(seed)))
    order = np.lexsort((keys, users))  # by user, then by hash
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - history.splits[users[order]]
    keep = rank < max_items
    counts = np.bincount(users[keep], minlength=len(lengths))
    return UserHistory(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                       history.items[keep])


def copurchase_graph(user_history: UserHistory, num_items: int, alpha: float = 0.25,
                     top_k: int = 0, beta: float = 0.0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RP3beta's item graph of the purchases in `user_history`, as CSR arrays.

    graph[i, j] = deg(i)^-alpha * deg(j)^-beta * sum over users u who bought both i and j of
    deg(u)^-alpha, with deg the number of purchases of a product or a user (Paudel et al. 2016, "Updatable,
    accurate, diverse, and scalable recommendations for interactive applications": a two-step
    random walk product -> buyer -> product with transition probabilities raised to alpha).
    The diagonal is zero. Built from the history the model is given (its train purchases,
    capped by `cap_history`), so only those are in the graph, and a user with n of them adds
    at most n**2 entries.

    Args:
      user_history: `build_user_history(...)` (or its `cap_history`).
      num_items: number of real products.
      alpha: exponent of the transition probabilities (0: plain co-purchase counts).
      beta: popularity penalty, the exponent of the target product's degree (0: none).
      top_k: keep only each row's top_k largest entries (ties to the lower column); 0 keeps all.

    Returns:
      (row_splits int64 [num_items + 1], columns int32 [nnz], values float32 [nnz]): row i's
      neighbours are columns[row_splits[i]:row_splits[i + 1]], sorted by column.
    """
    purchases = user_history.matrix(num_items)
    user_degree = np.maximum(np.asarray(purchases.sum(axis=1)).ravel(), 1.0)
    item_degree = np.maximum(np.asarray(purchases.sum(axis=0)).ravel(), 1.0)
    user_step = sp.diags(user_degree ** -alpha) @ purchases            # [U, N]
    item_step = sp.diags(item_degree ** -alpha) @ purchases.T.tocsr()  # [N, U]
    graph = (item_step @ user_step).tocsr()
    if beta:
        graph = graph @ sp.diags(item_degree ** -beta)
        graph = graph.tocsr()
    graph.setdiag(0.0)
    graph.eliminate_zeros()
    graph.sort_indices()
    if top_k > 0:
        rows = np.repeat(np.arange(num_items), np.diff(graph.indptr))
        order = np.lexsort((graph.indices, -graph.data, rows))  # by row, largest first
        rank = np.arange(len(order)) - graph.indptr[rows[order]]
        keep = np.sort(order[rank < top_k])
        graph = sp.csr_matrix((graph.data[keep], graph.indices[keep], np.concatenate(
            [[0], np.cumsum(np.bincount(rows[keep], minlength=num_items))])),
            shape=graph.shape)
    return (graph.indptr.astype(np.int64), graph.indices.astype(np.int32),
            graph.data.astype(np.float32))


def log_popularity(user_history: UserHistory, num_items: int) -> np.ndarray:
    """float32 [num_items]: log(1 + the number of users who bought each product) in
    `user_history`: the popularity prior of `ModelConfig.popularity_weight`."""
    buyers = np.bincount(user_history.items, minlength=num_items)[:num_items]
    return np.log1p(buyers).astype(np.float32)


def history_entries(splits: tf.Tensor, items: tf.Tensor, user_idx: tf.Tensor,
                    exclude_items: Optional[tf.Tensor] = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """The users' history entries (a `UserHistory`'s splits and items) as flat (row in the
    batch, item) int32 pairs, row by row, items ascending; each row's `exclude_items` entry left
    out, when given. Costs the number of entries gathered, whatever the longest history."""
    user_idx = tf.cast(user_idx, splits.dtype)
    positions = tf.ragged.range(tf.gather(splits, user_idx), tf.gather(splits, user_idx + 1))
    rows = tf.cast(positions.value_rowids(), tf.int32)
    entries = tf.gather(items, positions.flat_values)
    if exclude_items is not None:
        keep = tf.not_equal(entries, tf.gather(tf.cast(exclude_items, entries.dtype), rows))
        rows, entries = tf.boolean_mask(rows, keep), tf.boolean_mask(entries, keep)
    return rows, entries


def normalise_graph_scores(scores: tf.Tensor, counts: tf.Tensor, norm: str) -> tf.Tensor:
    """Each row of item-graph scores [B, N] scaled by its user's number of train purchases
    `counts` [B] (see GRAPH_NORMS); rows without purchases stay zero."""
    if norm not in GRAPH_NORMS:
        raise ValueError(f"norm must be one of {GRAPH_NORMS}, not {norm!r}")
    counts = tf.maximum(tf.cast(counts, scores.dtype), 1.0)[:, tf.newaxis]
    if norm == "sqrt":
        return scores / tf.sqrt(counts)
    if norm == "mean":
        return scores / counts
    if norm == "max":
        return scores / tf.maximum(tf.reduce_max(scores, axis=1, keepdims=True), 1e-12)
    return scores


def graph_scores(rows: tf.Tensor, items: tf.Tensor, batch: tf.Tensor, num_items: int,
                 splits: tf.Tensor, columns: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """float [batch, num_items]: for each row, the sum of the graph rows of its items.

    (rows, items) are `history_entries`; (splits, columns, values) a CSR graph
    (`copurchase_graph`). Only the neighbours of the given items are touched."""
    starts = tf.gather(splits, items)
    lengths = tf.gather(splits, items + 1) - starts
    positions = tf.ragged.range(starts, starts + lengths).flat_values
    entry_rows = tf.repeat(rows, tf.cast(lengths, tf.int32))
    where = tf.stack([entry_rows, tf.gather(columns, positions)], axis=1)
    return tf.tensor_scatter_nd_add(tf.zeros([batch, num_items]), where,
                                    tf.gather(values, positions))


class Recommender(tf.Module):
    """User and item tables, the scoring functions and the sampled-softmax train step.

    Args:
      num_users: size of the user vocabulary (tables get one more row, the OOV user).
      num_items: size of the item vocabulary (tables get one more row, the OOV item).
      config: the ModelConfig.
      user_history: `build_user_history(...)` of the train pairs; required with
        config.use_history. The model keeps its `cap_history(..., config.max_history,
        config.seed)` (serving scores users from it) and the item graph of that.
    """

    def __init__(self, num_users: int, num_items: int, config: ModelConfig,
                 user_history: Optional[UserHistory] = None, name: str = "recommender"):
        super().__init__(name=name)
        if config.use_history and user_history is None:
            raise ValueError("config.use_history needs user_history (build_user_history)")
        self.config = config
        self.num_users = num_users
        self.num_items = num_items
        d, s = config.embedding_dim, config.init_scale

        def table(rows, salt):
            init = tf.random.stateless_uniform([rows, d], seed=[config.seed, salt],
                                               minval=-s, maxval=s)
            return tf.Variable(init, name=f"table_{salt}")

        self.user_embeddings = table(num_users + 1, 0) if config.use_user_embedding else None
        self.item_embeddings = table(num_items + 1, 1)
        self.item_bias = (tf.Variable(tf.zeros([num_items + 1]), name="item_bias")
                          if config.use_item_bias else None)
        if config.use_history:
            if len(user_history.splits) != num_users + 2:
                raise ValueError(f"user_history has {len(user_history.splits) - 1} rows, the model "
                                 f"{num_users + 1} (users and the OOV user)")
            if config.popularity_weight > 0:  # every buyer counts, before the cap
                self.log_popularity = tf.Variable(log_popularity(user_history, num_items),
                                                  trainable=False, name="log_popularity")
            user_history = cap_history(user_history, config.max_history, config.seed)
            self.history_embeddings = table(num_items + 1, 2)
            self.history_splits = tf.Variable(user_history.splits, trainable=False,
                                              name="history_splits")
            self.history_items = tf.Variable(user_history.items, trainable=False,
                                             name="history_items")
        else:
            self.history_embeddings = None
            self.history_splits = self.history_items = None
        if config.copurchase_weight > 0:
            splits, columns, values = copurchase_graph(user_history, num_items,
                                                       config.copurchase_alpha,
                                                       config.copurchase_top_k,
                                                       config.copurchase_beta)
            self.graph_splits = tf.Variable(splits, trainable=False, name="graph_splits")
            self.graph_columns = tf.Variable(columns, trainable=False, name="graph_columns")
            self.graph_values = tf.Variable(values, trainable=False, name="graph_values")

    def _history_entries(self, user_idx: tf.Tensor, exclude_items: Optional[tf.Tensor] = None):
        return history_entries(self.history_splits, self.history_items, user_idx, exclude_items)

    def _user_vectors(self, user_idx: tf.Tensor,
                      exclude_items: Optional[tf.Tensor] = None) -> tf.Tensor:
        return self._user_vectors_and_rows(user_idx, exclude_items)[0]

    def _user_vectors_and_rows(self, user_idx: tf.Tensor,
                               exclude_items: Optional[tf.Tensor] = None
                               ) -> Tuple[tf.Tensor, List[tf.Tensor]]:
        """The user vectors [B, d] and the embedding rows they were pooled from (for the L2
        term: each table is gathered once per step, so its sparse gradient has one part)."""
        batch = tf.shape(user_idx)[0]
        vectors = tf.zeros([batch, self.config.embedding_dim])
        used = []
        if self.user_embeddings is not None:
            rows = tf.gather(self.user_embeddings, user_idx)
            vectors += rows
            used.append(rows)
        if self.config.use_history:
            # Only the user's entries are gathered (at most max_history each), so a step's
            # gradient touches only those rows.
            entry_rows, items = self._history_entries(user_idx, exclude_items)
            history = tf.gather(self.history_embeddings, items)
            # entry_rows is sorted (tf.where's row-major order): segment_sum, whose gradient
            # is a plain gather (unsorted_segment_sum's also masks negative ids), padded to
            # the batch for users without entries at its end
            pooled = tf.math.segment_sum(history, entry_rows)
            pooled = tf.pad(pooled, [[0, batch - tf.shape(pooled)[0]], [0, 0]])
            count = tf.math.unsorted_segment_sum(tf.ones_like(entry_rows, tf.float32), entry_rows,
                                                 batch)
            vectors += pooled / tf.maximum(count, 1.0)[:, tf.newaxis]
            used.append(history)
        return vectors, used

    def copurchase_scores(self, user_idx) -> tf.Tensor:
        """float [B, num_items]: each user's item-graph score, the sum of the graph rows of the
        user's train purchases, scaled as config.copurchase_norm says (zero for a user without
        any, and without a graph)."""
        user_idx = tf.convert_to_tensor(user_idx, dtype=tf.int32)
        batch = tf.shape(user_idx)[0]
        if self.config.copurchase_weight <= 0:
            return tf.zeros([batch, self.num_items])
        rows, items = self._history_entries(user_idx)
        scores = graph_scores(rows, items, batch, self.num_items, self.graph_splits,
                              self.graph_columns, self.graph_values)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, batch)
        return normalise_graph_scores(scores, counts, self.config.copurchase_norm)

    def user_vectors(self, user_idx) -> tf.Tensor:
        """float [B, d]: the user representation of each user index (OOV row for unknown)."""
        return self._user_vectors(tf.convert_to_tensor(user_idx, dtype=tf.int32))

    def score_all(self, user_idx) -> tf.Tensor:
        """float [B, num_items]: the score of every real item for each user index: the learned
        score, plus copurchase_weight times the item-graph score, plus popularity_weight times
        the log popularity prior."""
        scores = self.learned_scores(user_idx)
        if self.config.copurchase_weight > 0:
            scores += self.config.copurchase_weight * self.copurchase_scores(user_idx)
        if self.config.popularity_weight > 0:
            scores += self.config.popularity_weight * self.log_popularity[tf.newaxis, :]
        return scores

    def learned_scores(self, user_idx) -> tf.Tensor:
        """float [B, num_items]: the dot product (and item bias) part of `score_all`."""
        vectors = self.user_vectors(user_idx)
        scores = tf.matmul(vectors, self.item_embeddings[:self.num_items], transpose_b=True)
        if self.item_bias is not None:
            scores += self.item_bias[tf.newaxis, :self.num_items]
        return scores

    def loss(self, users: tf.Tensor, items: tf.Tensor, negatives: sampling.NegativeSamples
             ) -> tf.Tensor:
        """Mean sampled-softmax cross-entropy of a batch (plus the L2 term).

        Each row's logits are its positive's score and its candidates' scores, each minus its
        log-Q term; candidates in `negatives.self_mask` (and, with remove_accidental_hits,
        those equal to the positive) are masked out. Each table is gathered once: in-batch
        candidates reuse the positives' rows (`negatives.items is items`)."""
        exclude = items if self.config.use_history else None
        vectors, used = self._user_vectors_and_rows(users, exclude_items=exclude)
        item_rows = tf.gather(self.item_embeddings, items)
        item_bias = tf.gather(self.item_bias, items) if self.item_bias is not None else None
        in_batch = negatives.items is items
        if in_batch:
            # [B, B]: the diagonal is each row's positive (its log-Q term is the positive's)
            logits = tf.matmul(vectors, item_rows, transpose_b=True) - negatives.log_q[tf.newaxis, :]
            if item_bias is not None:
                logits += item_bias[tf.newaxis, :]
            if self.config.remove_accidental_hits:
                # an added constant, not tf.where: the gradient of tf.where(mask, scalar, x)
                # also builds zeros and a [B, B] tile for the scalar (docs/benchmarks.md)
                hits = sampling.accidental_hits(items, items) & ~tf.eye(tf.shape(items)[0],
                                                                         dtype=tf.bool)
                logits += tf.where(hits, _MASKED_LOGIT, 0.0)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.range(tf.shape(items)[0]), logits))
            candidate_rows, candidate_bias = item_rows, item_bias
        else:
            positive = tf.reduce_sum(vectors * item_rows, axis=1) - negatives.positive_log_q
            if item_bias is not None:
                positive += item_bias
            candidate_rows = tf.gather(self.item_embeddings, negatives.items)
            candidate_bias = (tf.gather(self.item_bias, negatives.items)
                              if self.item_bias is not None else None)
            if negatives.items.shape.rank == 1:
                candidates = tf.matmul(vectors, candidate_rows, transpose_b=True)
            else:
                candidates = tf.einsum("bd,bcd->bc", vectors, candidate_rows)
            if candidate_bias is not None:
                candidates += candidate_bias
            log_q = negatives.log_q
            candidates -= log_q if log_q.shape.rank == 2 else log_q[tf.newaxis, :]
            mask = tf.zeros_like(candidates, dtype=tf.bool)
            if negatives.self_mask is not None:
                mask |= negatives.self_mask
            if self.config.remove_accidental_hits:
                mask |= sampling.accidental_hits(items, negatives.items)
            candidates = tf.where(mask, _MASKED_LOGIT, candidates)
            logits = tf.concat([positive[:, tf.newaxis], candidates], axis=1)
            loss = tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - positive)
        if self.config.l2 > 0:
            # the rows the batch used: positives and candidates (in-batch: the same rows, twice,
            # as before), the pooled user rows, and their biases
            # 2 * tf.nn.l2_loss(x) is sum(x**2); its gradient is one multiplication (that of
            # reduce_sum(square(x)) also tiles the incoming scalar to x's shape)
            tensors = [item_rows, candidate_rows, *used]
            if item_bias is not None:
                tensors += [item_bias, candidate_bias]
            total = 2.0 * tf.add_n([tf.nn.l2_loss(t) for t in tensors])
            loss += self.config.l2 * total / tf.cast(tf.shape(users)[0], tf.float32)
        return loss


class LazyAdam(tf.Module):
    """Adam (Kingma & Ba 2015) that, for a sparse gradient (tf.IndexedSlices, the gradient of an
    embedding lookup), updates the moments and weights of the gathered rows only, as TF Addons'
    LazyAdam did; dense gradients get plain Adam. Rows a step does not use keep their moments
    instead of decaying them. Its slots are created here, outside any tf.function.
    """

    def __init__(self, variables, learning_rate: float, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7):
        super().__init__(name="lazy_adam")
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = (
            learning_rate, beta_1, beta_2, epsilon)
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.iterations = tf.Variable(0.0, trainable=False)

    def apply_gradients(self, grads_and_vars) -> None:
        self.iterations.assign_add(1.0)
        t = self.iterations
        lr = self.learning_rate * tf.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t)
        for (grad, var), m, v in zip(grads_and_vars, self.m, self.v):
            if isinstance(grad, tf.IndexedSlices):
                rows, position = tf.unique(grad.indices)
                grad = tf.math.unsorted_segment_sum(grad.values, position, tf.shape(rows)[0])
                m_rows = self.beta_1 * tf.gather(m, rows) + (1.0 - self.beta_1) * grad
                v_rows = self.beta_2 * tf.gather(v, rows) + (1.0 - self.beta_2) * tf.square(grad)
                # gather + scatter_update: ResourceScatterSub is several times slower here
                var_rows = tf.gather(var, rows) - lr * m_rows / (tf.sqrt(v_rows) + self.epsilon)
                m.scatter_update(tf.IndexedSlices(m_rows, rows))
                v.scatter_update(tf.IndexedSlices(v_rows, rows))
                var.scatter_update(tf.IndexedSlices(var_rows, rows))
            else:
                m.assign(self.beta_1 * m + (1.0 - self.beta_1) * grad)
                v.assign(self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad))
                var.assign_sub(lr * m / (tf.sqrt(v) + self.epsilon))


def _make_optimizer(config: ModelConfig, variables, learning_rate: float):
    if config.optimizer == "lazy_adam":
        return LazyAdam(variables, learning_rate)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    # The loss is a batch mean, so gradients are small: Keras' default initial accumulator (0.1)
    # would dominate them and freeze training.
    return keras.optimizers.Adagrad(learning_rate=learning_rate, initial_accumulator_value=1e-6)


def _sampler(config: ModelConfig, num_items: int, item_counts: np.ndarray):
    """The config's sampling scheme as fn(positives, seed) -> NegativeSamples."""
    frequency = tf.constant(sampling.item_log_probs(item_counts, 1.0))
    popularity = tf.constant(sampling.item_log_probs(item_counts, config.popularity_alpha))
    n = config.num_negatives
    if config.sampling == "uniform":
        return lambda pos, seed: sampling.uniform_negatives(pos, num_items, n, seed)
    if config.sampling == "popularity":
        return lambda pos, seed: sampling.popularity_negatives(pos, popularity, n, seed)
    if config.sampling == "in_batch":
        return lambda pos, seed: sampling.in_batch_negatives(pos, frequency)
    return lambda pos, seed: sampling.mixed_negatives(pos, frequency, popularity, n, seed)


def epoch_order(num_examples: int, seed: int, epoch, shuffle: bool = True) -> tf.Tensor:
    """int32 [num_examples]: the order in which epoch `epoch` visits the training pairs: a
    permutation drawn from (seed, epoch) (stateless: the same for the same arguments, another
    for every epoch), or without `shuffle` one permutation drawn from the seed alone, the same
    for every epoch. Never the pairs' own order: the Trainer sorts them by user
    (models/trainer.py `read_pairs`), and batches of one user after another are no sample of
    the purchases. The notebook read its file in the same order every epoch, and that file's
    order is random (consecutive rows share a user 0.003% of the time), which the seeded
    permutation stands for (found by a fresh benchmark: once the Trainer sorted its input, the
    notebook preset trained on sorted batches and lost 13% of its recall@100)."""
    order = tf.range(num_examples, dtype=tf.int32)
    epoch = tf.cast(epoch, tf.int64) if shuffle else tf.constant(0, tf.int64)
    return tf.random.experimental.stateless_shuffle(
        order, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))


def rehearsed(new: int, seen: int, rehearsal: float) -> int:
    """How many already-seen pairs a warm start draws: `rehearsal` per new pair, at most all."""
    return min(seen, int(round(rehearsal * new)))


def warm_pairs(new: np.ndarray, rehearsal: float, seed: int) -> np.ndarray:
    """The pairs a warm start trains on (ascending indices): every pair marked `new` (the served
    model has not trained on it) and a seeded sample of the others, `rehearsal` of them per new
    pair (all of them when there are fewer)."""
    new = np.asarray(new, bool)
    old = np.flatnonzero(~new)
    size = rehearsed(int(new.sum()), len(old), rehearsal)
    sample = np.random.default_rng(seed).choice(old, size, replace=False) if size else old[:0]
    return np.sort(np.concatenate([np.flatnonzero(new), sample]))


def train(model: Recommender, user_idx: np.ndarray, item_idx: np.ndarray,
          log_dir: Optional[str] = None, warm: bool = False,
          new: Optional[np.ndarray] = None, rehearsal: Optional[float] = None) -> List[Dict[str, float]]:
    """Trains `model` on (user, item) index pairs with its config; returns per-epoch stats.

    config.epochs passes at config.learning_rate, or with `warm` (a model whose tables start
    from the served model's: models/warm_start.py) config.warm_start_epochs at
    config.warm_start_learning_rate over the warm pairs (`warm_pairs`: those `new` marks, bool per
    pair, the ones the served model has not trained on, None: all, and a rehearsal sample of the
    others, `rehearsal` per new pair, None: config.warm_start_rehearsal; none at all: no step).
    A fraction of an epoch trains its last pass on that share of the pairs (the first steps of
    the epoch's seeded order). Pairs with an OOV user or item are
    dropped. Item frequencies for the samplers' log-Q terms come from all the pairs. Each epoch
    visits every pair once, in the order `epoch_order` gives (batches of config.batch_size, the
    last one shorter). Reproducible for the same pairs in the same order (the Trainer sorts them:
    models/trainer.py `read_pairs`): seeds tf (global), numpy, the epoch orders and the stateless
    negative draws (seed [config.seed, step]) from config.seed. Logs loss and examples/sec per
    epoch (logger `recsys.train`), and writes them as TensorBoard scalars under `log_dir` when
    given.

    Returns:
      [{"epoch", "loss", "seconds", "examples_per_sec"}] per epoch (a partial one: "share", the
      share of the pairs it visited).
    """
    config = model.config
    epochs = config.warm_start_epochs if warm else config.epochs
    tf.random.set_seed(config.seed)
    np.random.seed(config.seed)
    user_idx = np.asarray(user_idx, dtype=np.int32)
    item_idx = np.asarray(item_idx, dtype=np.int32)
    keep = (user_idx < model.num_users) & (item_idx < model.num_items)
    user_idx, item_idx = user_idx[keep], item_idx[keep]
    num_examples = len(user_idx)
    counts = np.bincount(item_idx, minlength=model.num_items)
    sample = _sampler(config, model.num_items, counts)
    if warm and new is not None:
        new = np.asarray(new, bool)
        if new.shape != keep.shape:
            raise ValueError(f"new marks {new.shape[0]} pairs, there are {keep.shape[0]}")
        chosen = warm_pairs(new[keep], config.warm_start_rehearsal if rehearsal is None else rehearsal,
                            config.seed)
        user_idx, item_idx = user_idx[chosen], item_idx[chosen]
        num_examples = len(user_idx)
    if not num_examples:  # e.g. a warm start on the very data the served model trained on
        progress.info("[train] no purchase to train on: the tables stay as they started")
        return []

    # The pairs are small (165k on the ASOS data): they stay in memory as two tensors, and each
    # epoch visits them in a seeded permutation (no tf.data shuffle buffer to fill).
    all_users, all_items = tf.constant(user_idx), tf.constant(item_idx)
    batch_size = config.batch_size
    num_steps = -(-num_examples // batch_size)

    variables = model.trainable_variables
    optimizer = _make_optimizer(config, variables,
                                config.warm_start_learning_rate if warm else config.learning_rate)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)

    def train_step(users, items):
        seed = tf.stack([tf.constant(config.seed, tf.int64), step])
        with tf.GradientTape() as tape:
            loss = model.loss(users, items, sample(items, seed))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        step.assign_add(1)
        return loss

    # The whole epoch in one graph, traced once for all epochs: no Python between steps. No
    # autograph (the loop is a tf.while_loop): converting the model's code cost seconds.
    @tf.function(input_signature=[tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int32)],
                 autograph=False)
    def train_epoch(epoch, steps):
        order = epoch_order(num_examples, config.seed, epoch, config.shuffle)

        def one_step(s, total):
            batch = order[s * batch_size:(s + 1) * batch_size]
            return s + 1, total + train_step(tf.gather(all_users, batch),
                                             tf.gather(all_items, batch))

        _, total = tf.while_loop(lambda s, _: s < steps, one_step,
                                 [tf.constant(0), tf.constant(0.0)])
        return total / tf.cast(steps, tf.float32)

    writer = tf.summary.create_file_writer(log_dir) if log_dir else None
    history = []
    passes = int(np.ceil(epochs))
    for epoch in range(1, passes + 1):
        share = min(epochs - (epoch - 1), 1.0)
        steps = max(1, int(np.ceil(share * num_steps)))
        start = time.time()
        loss = float(train_epoch(tf.constant(epoch, tf.int64), tf.constant(steps, tf.int32)))
        seconds = time.time() - start
        visited = min(steps * batch_size, num_examples)
        stats = {"epoch": epoch, "loss": loss, "seconds": seconds,
                 "examples_per_sec": visited / seconds}
        part = "" if steps == num_steps else f" ({visited / num_examples:.0%} of the pairs)"
        if steps != num_steps:
            stats["share"] = visited / num_examples
        progress.info("[train] epoch %d/%d%s: loss %.4f, %s examples/s (%.1f s)", epoch, passes, part,
                      stats["loss"], f"{stats['examples_per_sec']:,.0f}", seconds)
        history.append(stats)
        if writer is not None:
            with writer.as_default():
                for key, value in stats.items():
                    if key != "epoch":
                        tf.summary.scalar(key, value, step=epoch)
    if writer is not None:
        writer.flush()
    return history
