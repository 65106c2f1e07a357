"""Faster training of components.model.Recommender: pooled history without padding rows,
whole-epoch tf.function, optional XLA; same loss."""
import sys, os; sys.path.insert(0, "/work/wt-model")
import time
import numpy as np, tensorflow as tf
from components import model as M, sampling


class Fast(M.Recommender):
    def _history_entries(self, user_idx, exclude_items=None):
        history = tf.gather(self.user_history, user_idx)
        valid = history < self.num_items
        if exclude_items is not None:
            valid &= tf.not_equal(history, tf.cast(exclude_items, history.dtype)[:, None])
        where = tf.where(valid)  # [n, 2]
        return tf.cast(where[:, 0], tf.int32), tf.gather_nd(history, where), tf.shape(history)[0]

    def _user_vectors(self, user_idx, exclude_items=None):
        vectors = tf.zeros([tf.shape(user_idx)[0], self.config.embedding_dim])
        if self.user_embeddings is not None:
            vectors += tf.gather(self.user_embeddings, user_idx)
        if self.config.use_history:
            rows, items, b = self._history_entries(user_idx, exclude_items)
            summed = tf.math.unsorted_segment_sum(tf.gather(self.history_embeddings, items), rows, b)
            count = tf.math.unsorted_segment_sum(tf.ones_like(rows, tf.float32), rows, b)
            vectors += summed / tf.maximum(count, 1.0)[:, None]
        return vectors

    def _l2_term(self, users, items, negatives):
        batch = tf.cast(tf.shape(users)[0], tf.float32)
        used = tf.concat([items, tf.reshape(negatives, [-1])], axis=0)
        total = tf.reduce_sum(tf.square(tf.gather(self.item_embeddings, used)))
        if self.user_embeddings is not None:
            total += tf.reduce_sum(tf.square(tf.gather(self.user_embeddings, users)))
        if self.item_bias is not None:
            total += tf.reduce_sum(tf.square(tf.gather(self.item_bias, used)))
        if self.config.use_history:
            _, hitems, _ = self._history_entries(users)
            total += tf.reduce_sum(tf.square(tf.gather(self.history_embeddings, hitems)))
        return total / batch


def train(model, user_idx, item_idx, optimizer=None, jit=False, verbose=True):
    config = model.config
    tf.random.set_seed(config.seed)
    user_idx = np.asarray(user_idx, np.int32); item_idx = np.asarray(item_idx, np.int32)
    keep = (user_idx < model.num_users) & (item_idx < model.num_items)
    user_idx, item_idx = user_idx[keep], item_idx[keep]
    counts = np.bincount(item_idx, minlength=model.num_items)
    sample = M._sampler(config, model.num_items, counts)
    ds = tf.data.Dataset.from_tensor_slices((user_idx, item_idx))
    ds = ds.shuffle(len(user_idx), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)
    optimizer = optimizer or M._make_optimizer(config)
    variables = model.trainable_variables
    step = tf.Variable(0, dtype=tf.int64, trainable=False)

    @tf.function(jit_compile=jit)
    def train_step(users, items):
        seed = tf.stack([tf.constant(config.seed, tf.int64), step])
        with tf.GradientTape() as tape:
            loss = model.loss(users, items, sample(items, seed))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        step.assign_add(1)
        return loss

    @tf.function
    def epoch():
        total = tf.constant(0.0); n = tf.constant(0.0)
        for users, items in ds:
            total += train_step(users, items); n += 1.0
        return total / n

    for e in range(config.epochs):
        t = time.time(); loss = float(epoch())
        if verbose: print(f"epoch {e+1}: loss {loss:.4f} {time.time()-t:.1f}s", flush=True)


class LazyAdam:
    """Adam whose moments and weights change only on the rows a step's sparse gradient touches."""

    def __init__(self, variables, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.b1, self.b2, self.eps = learning_rate, beta1, beta2, epsilon
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.t = tf.Variable(0.0, trainable=False)

    def apply_gradients(self, grads_and_vars):
        self.t.assign_add(1.0)
        lr = self.lr * tf.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        for (g, var), m, v in zip(grads_and_vars, self.m, self.v):
            if isinstance(g, tf.IndexedSlices):
                idx, pos = tf.unique(g.indices)
                g = tf.math.unsorted_segment_sum(g.values, pos, tf.shape(idx)[0])
                m_rows = self.b1 * tf.gather(m, idx) + (1 - self.b1) * g
                v_rows = self.b2 * tf.gather(v, idx) + (1 - self.b2) * tf.square(g)
                m.scatter_update(tf.IndexedSlices(m_rows, idx))
                v.scatter_update(tf.IndexedSlices(v_rows, idx))
                var.scatter_sub(tf.IndexedSlices(lr * m_rows / (tf.sqrt(v_rows) + self.eps), idx))
            else:
                m.assign(self.b1 * m + (1 - self.b1) * g)
                v.assign(self.b2 * v + (1 - self.b2) * tf.square(g))
                var.assign_sub(lr * m / (tf.sqrt(v) + self.eps))
