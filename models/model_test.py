"""The recommender: shapes, configuration, and that a few training steps lower the loss."""

import numpy as np
import pytest

from models import model as model_lib

NUM_USERS, NUM_ITEMS = 40, 30


def _pairs(seed=0, n=600):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, NUM_USERS, n)
    # each user prefers items near (3 * user) mod NUM_ITEMS: a pattern worth learning
    items = (3 * users + rng.integers(0, 4, n)) % NUM_ITEMS
    return users.astype(np.int32), items.astype(np.int32)


def _model(config):
    users, items = _pairs()
    history = model_lib.build_user_history(users, items, NUM_USERS, NUM_ITEMS)
    return model_lib.Recommender(NUM_USERS, NUM_ITEMS, config,
                                 user_history=history if config.use_history else None), users, items


@pytest.mark.parametrize("config", [model_lib.DEFAULT, model_lib.NOTEBOOK])
def test_shapes(config):
    model, _, _ = _model(config.replace(embedding_dim=8))
    if config.use_user_embedding:
        assert model.user_embeddings.shape == (NUM_USERS + 1, 8)  # + the OOV row
    else:
        assert model.user_embeddings is None  # the user vector is the history's alone
    assert model.item_embeddings.shape == (NUM_ITEMS + 1, 8)
    assert model.user_vectors([0, 1, NUM_USERS]).shape == (3, 8)
    assert model.score_all([0, 5]).shape == (2, NUM_ITEMS)  # real items only, never the OOV row


@pytest.mark.parametrize("sampling", ["uniform", "popularity", "in_batch", "mixed"])
def test_a_few_epochs_lower_the_loss(sampling):
    config = model_lib.DEFAULT.replace(sampling=sampling, embedding_dim=8, num_negatives=10,
                                       batch_size=64, epochs=4, learning_rate=0.05)
    model, users, items = _model(config)
    history = model_lib.train(model, users, items)
    losses = [h["loss"] for h in history]
    assert losses[-1] < 0.9 * losses[0], losses
    assert all(h["examples_per_sec"] > 0 for h in history)


def test_training_is_reproducible_with_a_seed():
    config = model_lib.DEFAULT.replace(embedding_dim=8, batch_size=64, epochs=1)
    a, users, items = _model(config)
    b, _, _ = _model(config)
    model_lib.train(a, users, items)
    model_lib.train(b, users, items)
    np.testing.assert_allclose(a.item_embeddings.numpy(), b.item_embeddings.numpy(), rtol=1e-5, atol=1e-6)


def test_a_warm_start_trains_its_share_of_an_epoch_at_its_learning_rate():
    """warm_start_epochs 0.5 of 600 pairs in batches of 64: the first 5 of the epoch's 10 batches."""
    config = model_lib.DEFAULT.replace(embedding_dim=8, batch_size=64, warm_start_epochs=0.5,
                                       warm_start_learning_rate=0.02, copurchase_weight=0.0)
    a, users, items = _model(config)
    history = model_lib.train(a, users, items, warm=True)
    assert len(history) == 1 and history[0]["share"] == pytest.approx(320 / len(users))
    # the warm learning rate, not the cold one: another cold rate changes nothing, another warm one does
    b, _, _ = _model(config.replace(learning_rate=0.5))
    model_lib.train(b, users, items, warm=True)
    np.testing.assert_allclose(a.item_embeddings.numpy(), b.item_embeddings.numpy(), rtol=1e-5, atol=1e-6)
    c, _, _ = _model(config.replace(warm_start_learning_rate=0.001))
    model_lib.train(c, users, items, warm=True)
    assert not np.allclose(a.item_embeddings.numpy(), c.item_embeddings.numpy())
    with pytest.raises(ValueError, match="warm_start_epochs must be > 0"):
        config.replace(warm_start_epochs=0)


def test_warm_pairs_are_the_new_ones_and_a_seeded_rehearsal_sample():
    new = np.zeros(100, bool)
    new[[3, 50, 97]] = True
    assert model_lib.warm_pairs(new, 0.0, seed=1).tolist() == [3, 50, 97]
    chosen = model_lib.warm_pairs(new, 2.0, seed=1)
    assert len(chosen) == 9 and {3, 50, 97} <= set(chosen.tolist())  # 3 new, 6 rehearsed
    np.testing.assert_array_equal(chosen, model_lib.warm_pairs(new, 2.0, seed=1))
    assert len(model_lib.warm_pairs(new, 1000.0, seed=1)) == 100  # no more than there are
    assert len(model_lib.warm_pairs(np.zeros(5, bool), 1.0, seed=1)) == 0
    with pytest.raises(ValueError, match="warm_start_rehearsal must be >= 0"):
        model_lib.DEFAULT.replace(warm_start_rehearsal=-1.0)


def test_a_warm_start_trains_on_the_new_pairs_only():
    """Two groups of users and products that never meet: with the first group's pairs new (and no
    rehearsal) the second group's rows are never touched (lazy Adam updates used rows only)."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, NUM_USERS, 600).astype(np.int32)
    items = ((users % 2) * 15 + rng.integers(0, 15, 600)).astype(np.int32)  # even users: 0-14, odd: 15-29
    config = model_lib.DEFAULT.replace(embedding_dim=8, batch_size=64, warm_start_epochs=1.0,
                                       warm_start_rehearsal=0.0, copurchase_weight=0.0)
    history = model_lib.build_user_history(users, items, NUM_USERS, NUM_ITEMS)
    model = model_lib.Recommender(NUM_USERS, NUM_ITEMS, config, user_history=history)
    before = model.item_embeddings.numpy().copy()
    new = users % 2 == 0
    trained = model_lib.train(model, users, items, warm=True, new=new)
    assert len(trained) == 1 and "share" not in trained[0]  # one whole pass over the new pairs
    after = model.item_embeddings.numpy()
    assert not np.allclose(after[:15], before[:15])
    np.testing.assert_array_equal(after[15:], before[15:])
    # nothing new: no step, the tables as they started
    assert model_lib.train(model, users, items, warm=True, new=np.zeros(600, bool)) == []
    np.testing.assert_array_equal(model.item_embeddings.numpy(), after)
    with pytest.raises(ValueError, match="new marks 5 pairs, there are 600"):
        model_lib.train(model, users, items, warm=True, new=np.ones(5, bool))
    # the caller's rehearsal (models/warm_start.py `rehearsal`) overrides the config's: with
    # rehearsed pairs the second group's rows move too
    model_lib.train(model, users, items, warm=True, new=new, rehearsal=0.0)
    np.testing.assert_array_equal(model.item_embeddings.numpy()[15:], before[15:])
    model_lib.train(model, users, items, warm=True, new=new, rehearsal=0.5)
    assert not np.allclose(model.item_embeddings.numpy()[15:], before[15:])


@pytest.mark.parametrize("field, value, message", [
    ("learning_rate", -1.0, "learning_rate must be > 0, got -1.0"),
    ("init_scale", 0.0, "init_scale must be > 0, got 0.0"),
    ("l2", -0.5, "l2 must be >= 0, got -0.5"),
    ("max_history", -1, "max_history must be >= 0, got -1"),
    ("warm_start_max_chain", -1, "warm_start_max_chain must be >= 0, got -1")])
def test_a_value_out_of_range_is_named_with_its_field(field, value, message):
    """Found by exploratory testing: learning_rate=-1 read "learning_rate, warm_start_learning_rate
    and init_scale must be > 0, l2 >= 0"."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        model_lib.DEFAULT.replace(**{field: value})


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match="unknown ModelConfig keys: dropout"):
        model_lib.ModelConfig.from_dict({"dropout": 0.1})
    with pytest.raises(ValueError, match="sampling must be one of"):
        model_lib.DEFAULT.replace(sampling="hard")


def _dense_rp3(users, items, num_users, num_items, alpha, beta=0.0):
    """RP3beta written out densely: the numpy reference of copurchase_graph."""
    x = np.zeros((num_users + 1, num_items))
    x[users, items] = 1.0
    du = np.maximum(x.sum(1), 1.0)
    di = np.maximum(x.sum(0), 1.0)
    w = (x.T * di[:, None] ** -alpha) @ (x * du[:, None] ** -alpha) * di[None, :] ** -beta
    np.fill_diagonal(w, 0.0)
    return x, w


@pytest.mark.parametrize("alpha", [0.0, 0.25, 1.0])
def test_copurchase_graph_and_scores_match_a_numpy_reference(alpha):
    users, items = _pairs(n=120)
    history = model_lib.build_user_history(users, items, NUM_USERS, NUM_ITEMS)
    x, w = _dense_rp3(users, items, NUM_USERS, NUM_ITEMS, alpha)
    splits, columns, values = model_lib.copurchase_graph(history, NUM_ITEMS, alpha)
    graph = np.zeros((NUM_ITEMS, NUM_ITEMS))
    for i in range(NUM_ITEMS):
        graph[i, columns[splits[i]:splits[i + 1]]] = values[splits[i]:splits[i + 1]]
    np.testing.assert_allclose(graph, w, rtol=1e-5)

    config = model_lib.DEFAULT.replace(embedding_dim=4, copurchase_weight=2.5,
                                       copurchase_alpha=alpha)
    model = model_lib.Recommender(NUM_USERS, NUM_ITEMS, config, user_history=history)
    batch = np.array([0, 7, 3, NUM_USERS], np.int32)  # the OOV user has no purchases
    np.testing.assert_allclose(model.copurchase_scores(batch).numpy(), x[batch] @ w,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score_all(batch).numpy(),
                               model.learned_scores(batch).numpy() + 2.5 * x[batch] @ w,
                               rtol=1e-5, atol=1e-5)
    assert not model.copurchase_scores([NUM_USERS]).numpy().any()


def test_the_graph_holds_only_the_purchases_it_is_given():
    """Held-out purchases (validation, eval) cannot leak into the item graph."""
    users, items = _pairs(n=200)
    fit = np.arange(len(users)) % 5 != 0
    history = model_lib.build_user_history(users[fit], items[fit], NUM_USERS, NUM_ITEMS)
    _, w_fit = _dense_rp3(users[fit], items[fit], NUM_USERS, NUM_ITEMS, 0.25)
    splits, columns, values = model_lib.copurchase_graph(history, NUM_ITEMS, 0.25)
    assert len(values) == np.count_nonzero(w_fit)


def test_no_graph_without_weight_and_no_weight_without_history():
    model, _, _ = _model(model_lib.DEFAULT.replace(embedding_dim=4, copurchase_weight=0.0))
    assert not hasattr(model, "graph_values")
    np.testing.assert_allclose(model.score_all([1, 2]).numpy(), model.learned_scores([1, 2]).numpy())
    with pytest.raises(ValueError, match="copurchase_weight > 0 needs use_history"):
        model_lib.NOTEBOOK.replace(copurchase_weight=1.0)


def test_the_popularity_prior_adds_its_weight_times_log_buyers_counted_before_the_cap():
    """popularity_weight * log(1 + distinct buyers of the product), every buyer counted even when
    max_history caps a heavy user's history; the same for every user (OOV too); none at 0."""
    users, items = _pairs(n=300)
    users = np.concatenate([users, np.zeros(NUM_ITEMS, np.int32)])  # user 0 buys everything
    items = np.concatenate([items, np.arange(NUM_ITEMS, dtype=np.int32)])
    users, items = np.concatenate([users, users[:5]]), np.concatenate([items, items[:5]])  # repeats
    history = model_lib.build_user_history(users, items, NUM_USERS, NUM_ITEMS)
    x = np.zeros((NUM_USERS, NUM_ITEMS))
    x[users, items] = 1.0
    expected = np.log1p(x.sum(0))  # distinct buyers: a repeated purchase counts once
    np.testing.assert_allclose(model_lib.log_popularity(history, NUM_ITEMS), expected, rtol=1e-6)
    config = model_lib.DEFAULT.replace(embedding_dim=4, popularity_weight=0.7, max_history=3)
    model = model_lib.Recommender(NUM_USERS, NUM_ITEMS, config, user_history=history)
    assert model.history_splits.numpy()[1] == 3  # user 0's history is capped ...
    np.testing.assert_allclose(model.log_popularity.numpy(), expected, rtol=1e-6)  # ... its buys count
    assert not any(v is model.log_popularity for v in model.trainable_variables)
    batch = np.array([0, 7, NUM_USERS], np.int32)
    without = model_lib.Recommender(NUM_USERS, NUM_ITEMS, config.replace(popularity_weight=0.0),
                                    user_history=history)
    assert not hasattr(without, "log_popularity")
    np.testing.assert_allclose(model.score_all(batch).numpy(),
                               without.score_all(batch).numpy() + 0.7 * expected[np.newaxis, :],
                               rtol=1e-5, atol=1e-5)
    # a large weight ranks by popularity alone
    top = model_lib.Recommender(NUM_USERS, NUM_ITEMS, config.replace(popularity_weight=1e4),
                                user_history=history).score_all(batch).numpy()
    assert (expected[np.argmax(top, axis=1)] == expected.max()).all()


def test_popularity_weight_is_checked():
    with pytest.raises(ValueError, match="^popularity_weight must be >= 0, got -0.5$"):
        model_lib.DEFAULT.replace(popularity_weight=-0.5)
    with pytest.raises(ValueError, match="popularity_weight > 0 needs use_history"):
        model_lib.NOTEBOOK.replace(popularity_weight=1.0)
    assert model_lib.DEFAULT.popularity_weight == 0.0


def test_lazy_adam_moves_only_the_rows_a_step_uses():
    import tensorflow as tf
    table = tf.Variable(np.arange(12, dtype=np.float32).reshape(6, 2))
    reference = tf.Variable(table.numpy())
    lazy = model_lib.LazyAdam([table], learning_rate=0.1)
    dense = model_lib.keras.optimizers.Adam(learning_rate=0.1)

    def step(optimizer, var, rows):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(tf.gather(var, rows)))
        optimizer.apply_gradients([(tape.gradient(loss, var), var)])

    step(lazy, table, [0, 2, 2])
    step(dense, reference, [0, 2, 2])
    # first step: Adam's moments start at zero, so lazy and dense Adam agree everywhere
    np.testing.assert_allclose(table.numpy(), reference.numpy(), rtol=1e-5)
    before = table.numpy()
    step(lazy, table, [1])
    after = table.numpy()
    np.testing.assert_array_equal(after[[0, 2, 3, 4, 5]], before[[0, 2, 3, 4, 5]])
    assert (after[1] < before[1]).all()


def test_copurchase_top_k_keeps_each_rows_largest_entries():
    users, items = _pairs(n=300)
    history = model_lib.build_user_history(users, items, NUM_USERS, NUM_ITEMS)
    _, w = _dense_rp3(users, items, NUM_USERS, NUM_ITEMS, 0.25)
    splits, columns, values = model_lib.copurchase_graph(history, NUM_ITEMS, 0.25, top_k=3)
    for i in range(NUM_ITEMS):
        cols, vals = columns[splits[i]:splits[i + 1]], values[splits[i]:splits[i + 1]]
        assert len(cols) == min(3, np.count_nonzero(w[i]))
        assert (np.diff(cols) > 0).all()  # still sorted by column
        np.testing.assert_allclose(np.sort(vals)[::-1], np.sort(w[i])[::-1][:len(vals)], rtol=1e-5)


@pytest.mark.parametrize("norm", model_lib.GRAPH_NORMS)
def test_graph_norms_and_beta_match_a_numpy_reference(norm):
    users, items = _pairs(n=150)
    history = model_lib.build_user_history(users, items, NUM_USERS, NUM_ITEMS)
    x, w = _dense_rp3(users, items, NUM_USERS, NUM_ITEMS, 0.25, beta=0.3)
    config = model_lib.DEFAULT.replace(embedding_dim=4, copurchase_weight=1.0,
                                       copurchase_beta=0.3, copurchase_norm=norm)
    model = model_lib.Recommender(NUM_USERS, NUM_ITEMS, config, user_history=history)
    batch = np.array([0, 7, 3, NUM_USERS], np.int32)
    raw = x[batch] @ w
    n = np.maximum(x[batch].sum(1), 1.0)[:, None]  # distinct train purchases of each user
    expected = {"sum": raw, "sqrt": raw / np.sqrt(n), "mean": raw / n,
                "max": raw / np.maximum(raw.max(1, keepdims=True), 1e-12)}[norm]
    np.testing.assert_allclose(model.copurchase_scores(batch).numpy(), expected, rtol=1e-5,
                               atol=1e-6)
    assert not model.copurchase_scores([NUM_USERS]).numpy().any()  # no purchases: zero
    with pytest.raises(ValueError, match="copurchase_norm must be one of"):
        config.replace(copurchase_norm="median")


def test_each_epoch_visits_every_pair_once_in_its_own_seeded_order():
    orders = [model_lib.epoch_order(1000, seed=42, epoch=e).numpy() for e in (1, 2, 1)]
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), np.arange(1000))
    assert (orders[0] != orders[1]).any()  # reshuffled every epoch
    np.testing.assert_array_equal(orders[0], orders[2])  # the same for the same seed and epoch
    assert (model_lib.epoch_order(1000, seed=7, epoch=1).numpy() != orders[0]).any()
    # without shuffle (the notebook): one seeded order for every epoch, never the pairs' own
    # (the Trainer sorts them by user: batches of one user after another)
    fixed = [model_lib.epoch_order(1000, 42, e, shuffle=False).numpy() for e in (1, 2)]
    np.testing.assert_array_equal(fixed[0], fixed[1])
    np.testing.assert_array_equal(np.sort(fixed[0]), np.arange(1000))
    assert (fixed[0] != np.arange(1000)).mean() > 0.9


def test_the_in_batch_loss_equals_the_general_sampled_softmax():
    """The in-batch path (the positives' rows reused as candidates, the diagonal as label) is
    the same loss as the general path (positive logit first, masked candidates after)."""
    import tensorflow as tf
    from models import sampling
    model, users, items = _model(model_lib.DEFAULT.replace(embedding_dim=8))
    users, items = tf.constant(users[:64]), tf.constant(items[:64])  # with repeated items
    frequency = tf.constant(sampling.item_log_probs(np.bincount(items, minlength=NUM_ITEMS)))
    fast = sampling.in_batch_negatives(items, frequency)
    general = fast._replace(items=tf.identity(items))  # not `items` itself: the general path
    np.testing.assert_allclose(model.loss(users, items, fast).numpy(),
                               model.loss(users, items, general).numpy(), rtol=1e-5)


@pytest.mark.parametrize("field, value, message", [
    ("embedding_dim", "abc", "embedding_dim must be an integer, got 'abc'"),
    ("epochs", 2.5, "epochs must be an integer, got 2.5"),
    ("batch_size", True, "batch_size must be an integer, got True"),  # JSON true: not batches of 1
    ("learning_rate", float("nan"), "learning_rate must be a finite number, got nan"),
    ("l2", "0.1x", "l2 must be a finite number, got '0.1x'"),
    ("use_history", 1, "use_history must be true or false, got 1"),
    ("sampling", 3, "sampling must be a string, got 3"),
])
def test_config_names_a_value_of_the_wrong_type(field, value, message):
    """--model-param values are JSON or bare strings: a wrong one is named, before any comparison
    (embedding_dim=abc used to end in "'<' not supported between instances of 'str' and 'int'")."""
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        model_lib.ModelConfig.from_dict({field: value})


def test_config_takes_numpy_numbers_and_ints_for_floats():
    config = model_lib.ModelConfig.from_dict({"embedding_dim": np.int64(8), "learning_rate": 1,
                                              "l2": np.float32(0.5)})
    assert (config.embedding_dim, config.learning_rate) == (8, 1)


def test_user_history_lists_each_users_distinct_items_and_drops_oov_pairs():
    users = np.array([2, 0, 2, 2, 0, 5, 1, 3], np.int32)
    items = np.array([4, 1, 0, 4, 3, 1, 9, 2], np.int32)  # user 5 and item 9 are out of vocabulary
    history = model_lib.build_user_history(users, items, num_users=4, num_items=5)
    assert history.splits.tolist() == [0, 2, 2, 4, 5, 5]  # 4 users and the (empty) OOV user
    assert history.items.tolist() == [1, 3, 0, 4, 2]
    rows, entries = history.entries(np.array([2, 4, 0]))
    assert rows.tolist() == [0, 0, 2, 2] and entries.tolist() == [0, 4, 1, 3]
    import tensorflow as tf
    rows, entries = model_lib.history_entries(tf.constant(history.splits), tf.constant(history.items),
                                              tf.constant([2, 4, 0]), exclude_items=tf.constant([4, 0, 2]))
    assert rows.numpy().tolist() == [0, 2, 2] and entries.numpy().tolist() == [0, 1, 3]


def test_cap_history_keeps_a_seeded_sample_of_each_long_history():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(4), [3, 40, 10, 25])
    items = np.concatenate([rng.choice(100, n, replace=False) for n in (3, 40, 10, 25)])
    full = model_lib.build_user_history(users, items, 4, 100)
    capped = model_lib.cap_history(full, 10, seed=1)
    assert capped.lengths().tolist() == [3, 10, 10, 10, 0]
    for u in range(4):
        kept = capped.items[capped.splits[u]:capped.splits[u + 1]]
        assert (np.diff(kept) > 0).all() and set(kept) <= set(full.items[full.splits[u]:full.splits[u + 1]])
    for u in (0, 2):  # short histories are kept whole
        np.testing.assert_array_equal(capped.items[capped.splits[u]:capped.splits[u + 1]],
                                      full.items[full.splits[u]:full.splits[u + 1]])
    assert model_lib.cap_history(full, 40) is full and model_lib.cap_history(full, 0) is full
    again = model_lib.cap_history(full, 10, seed=1)
    np.testing.assert_array_equal(again.items, capped.items)  # seeded
    assert (model_lib.cap_history(full, 10, seed=2).items != capped.items).any()
    # a user's sample depends on that user's purchases only, not on the other users'
    alone = model_lib.build_user_history(users[users == 1], items[users == 1], 4, 100)
    np.testing.assert_array_equal(model_lib.cap_history(alone, 10, seed=1).items,
                                  capped.items[capped.splits[1]:capped.splits[2]])


def _heavy_user_work(heavy_purchases: int, config) -> dict:
    """The work (gathered entries, not seconds) that one heavy user adds, with the model's own
    code paths: normal users with 1-6 purchases plus user 0 with `heavy_purchases`."""
    import tensorflow as tf
    num_users, num_items = 200, 3000
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 7, num_users)
    counts[0] = heavy_purchases
    users = np.repeat(np.arange(num_users), counts).astype(np.int32)
    items = np.concatenate([rng.choice(num_items, n, replace=False) for n in counts]).astype(np.int32)
    history = model_lib.build_user_history(users, items, num_users, num_items)
    model = model_lib.Recommender(num_users, num_items, config, user_history=history)
    heavy = users == 0
    # training: the history rows the loss pools for each of the heavy user's examples
    _, used = model._user_vectors_and_rows(tf.constant(users[heavy]), tf.constant(items[heavy]))
    # scoring (serving, evaluation, batch lists): graph entries summed for the heavy user and,
    # through the products it bought, for everyone
    splits = model.graph_splits.numpy()

    def scored(who):
        _, entries = model._history_entries(tf.constant(who, tf.int32))
        return int((splits[entries.numpy() + 1] - splits[entries.numpy()]).sum())

    without = model_lib.Recommender(num_users, num_items, config, user_history=model_lib.build_user_history(
        users[~heavy], items[~heavy], num_users, num_items))
    return {"training rows": int(used[-1].shape[0]),
            "graph entries scored for the user": scored([0]),
            "graph entries scored for everyone": scored(np.arange(num_users)),
            "item graph entries added": len(model.graph_values.numpy()) - len(without.graph_values.numpy()),
            "history entries stored": len(model.history_items.numpy())}


def test_a_heavy_users_cost_grows_linearly_with_its_purchases():
    """Twice the purchases may cost at most about twice the work, in training (each example's
    pooled history), scoring and the item graph: without a cap on the history used
    (ModelConfig.max_history), each of these grew with the square of the user's purchases (a
    user with 20,000 purchases made a 12 s training take 467 s)."""
    config = model_lib.DEFAULT.replace(embedding_dim=4)
    n = max(300, 2 * config.max_history)
    small, large = _heavy_user_work(n, config), _heavy_user_work(2 * n, config)
    for key in small:
        assert large[key] <= 2.2 * max(small[key], 1), (key, small[key], large[key])
    # the check can fail: the uncapped model's work grows with the square
    uncapped = config.replace(max_history=0)
    small, large = _heavy_user_work(n, uncapped), _heavy_user_work(2 * n, uncapped)
    assert large["training rows"] > 3.5 * small["training rows"]
    assert large["item graph entries added"] > 3.5 * small["item graph entries added"]
    assert large["graph entries scored for the user"] > 3.5 * small["graph entries scored for the user"]
    assert large["graph entries scored for everyone"] > 3.5 * small["graph entries scored for everyone"]
