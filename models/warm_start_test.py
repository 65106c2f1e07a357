"""Warm start: rows carried over by raw product id across vocabularies that differ; the served
model's tables read back from its SavedModel; what makes a served model unusable."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from models import model as model_lib
from models import warm_start

CONFIG = model_lib.DEFAULT.replace(embedding_dim=4, copurchase_weight=0.0)


def _model(num_items, config=CONFIG, seed=0):
    users = np.arange(6, dtype=np.int32).repeat(2)
    items = (np.arange(12, dtype=np.int32) * 5 + seed) % num_items
    history = model_lib.build_user_history(users, items, 6, num_items)
    return model_lib.Recommender(6, num_items, config.replace(seed=seed), user_history=history)


def _fill(model, offset):
    """Recognisable values: row i of every table is offset + i."""
    for name in warm_start.TABLES:
        variable = getattr(model, name)
        rows = np.arange(variable.shape[0], dtype=np.float32) + offset
        variable.assign(np.broadcast_to(rows.reshape((-1,) + (1,) * (len(variable.shape) - 1)),
                                        variable.shape))


def test_rows_follow_the_product_id_not_the_index():
    served_ids = np.array([501, 502, 503, 504, 505], np.int64)  # vocabulary order of the served model
    served = _model(5)
    _fill(served, offset=100.0)
    tables = warm_start.ServedTables.of(served, served_ids)
    # the new vocabulary: other order, 502 and 505 gone, 601 and 602 new
    new_ids = np.array([504, 601, 501, 503, 602], np.int64)
    model = _model(5, seed=1)
    fresh = {name: getattr(model, name).numpy().copy() for name in warm_start.TABLES}
    carried = warm_start.carry_over(model, new_ids, tables)
    assert (carried.carried, carried.new, carried.dropped) == (3, 2, 2)
    for name in warm_start.TABLES:
        values, before = getattr(model, name).numpy(), fresh[name]
        for new_row, served_row in [(0, 3), (2, 0), (3, 2)]:  # 504, 501, 503
            np.testing.assert_array_equal(values[new_row], 100.0 + served_row)
        for row in (1, 4, 5):  # the new products and the OOV row start as a cold start has them
            np.testing.assert_array_equal(values[row], before[row])


def test_nothing_in_common_carries_nothing():
    tables = warm_start.ServedTables.of(_model(3), np.array([1, 2, 3]))
    model = _model(2, seed=1)
    before = model.item_embeddings.numpy().copy()
    carried = warm_start.carry_over(model, np.array([7, 8]), tables)
    assert (carried.carried, carried.new, carried.dropped) == (0, 2, 3)
    np.testing.assert_array_equal(model.item_embeddings.numpy(), before)


def test_a_vocabulary_of_another_size_is_refused():
    tables = warm_start.ServedTables.of(_model(3), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="2 product ids for a model of 3 products"):
        warm_start.carry_over(_model(3), np.array([1, 2]), tables)


@pytest.mark.parametrize("config, preset, facts, reason", [
    (CONFIG.replace(embedding_dim=8), "default", None, "embeddings have 4 dimensions, this one's 8"),
    (CONFIG, "notebook", {"model": {"preset": "default"}}, "the 'default' preset, this run trains 'notebook'"),
    (CONFIG, "default", {"model": {"preset": "default", "config": {"use_item_bias": False}}},
     "use_item_bias=False, this one True"),
    (CONFIG.replace(epochs=8, sampling="mixed"), "default",
     {"model": {"preset": "default", "config": CONFIG.to_dict()}},
     f"it was trained with other settings, which a warm start would not apply: sampling={CONFIG.sampling!r} "
     f"(this run 'mixed'), epochs={CONFIG.epochs} (this run 8)"),
])
def test_an_incompatible_served_model_is_named(config, preset, facts, reason):
    tables = warm_start.ServedTables.of(_model(3), np.array([1, 2, 3]))
    assert reason in warm_start.incompatibility(tables, config, preset, facts)


def test_only_the_warm_start_settings_may_differ_and_fields_the_served_model_lacks_are_not_compared():
    tables = warm_start.ServedTables.of(_model(3), np.array([1, 2, 3]))
    served = {k: v for k, v in CONFIG.to_dict().items() if k != "max_history"}  # older code: no such field
    facts = {"model": {"preset": "default", "config": served}}
    config = CONFIG.replace(warm_start_epochs=2.0, warm_start_learning_rate=0.1, warm_start_rehearsal=0.0,
                            max_history=CONFIG.max_history + 1)
    assert warm_start.incompatibility(tables, config, "default", facts) is None


def test_rehearsal_follows_how_the_served_model_was_trained():
    """Only a warm-started served model holds purchases with fewer passes than a cold training
    gives; a model with no training.json may be one."""
    config = CONFIG.replace(warm_start_rehearsal=0.5)
    assert warm_start.rehearsal(config, {"start": {"kind": "cold"}}) == 0.0
    assert warm_start.rehearsal(config, {"start": {"kind": "warm"}}) == 0.5
    assert warm_start.rehearsal(config, None) == 0.5 and warm_start.rehearsal(config, {}) == 0.5
    assert warm_start.rehearsal(config.replace(warm_start_rehearsal=0.0), {"start": {"kind": "warm"}}) == 0.0


def test_the_chain_is_counted_from_the_served_models_training_facts():
    assert warm_start.chain_length({"start": {"kind": "cold", "chain": 4}}) == 0
    assert warm_start.chain_length({"start": {"kind": "warm", "chain": 2}}) == 2
    # from before the chain was recorded, or without training.json: at least one
    assert warm_start.chain_length({"start": {"kind": "warm"}}) == 1
    assert warm_start.chain_length(None) == 1 and warm_start.chain_length({}) == 1
    warm, cold = {"start": {"kind": "warm", "chain": 2}}, {"start": {"kind": "cold"}}
    assert warm_start.chain_ended(CONFIG, warm, "version 7", outside=0) == (
        "this window holds all that version 7 (warm-started) trained on")
    assert warm_start.chain_ended(CONFIG, {"start": {"kind": "warm"}}, "version 7", outside=0) == (
        "this window holds all that version 7 (warm-started) trained on")  # from before the chain was recorded
    assert warm_start.chain_ended(CONFIG, None, "version 7", outside=0) == (
        "this window holds all that version 7 (perhaps warm-started) trained on")  # no training.json
    assert warm_start.chain_ended(CONFIG, warm, outside=5) is None  # the window slid past some
    assert warm_start.chain_ended(CONFIG, warm, outside=None) is None  # not known
    assert warm_start.chain_ended(CONFIG, cold, outside=0) is None
    capped = CONFIG.replace(warm_start_max_chain=2)
    assert warm_start.chain_ended(capped, warm, "version 7", outside=5) == (
        "version 7 ends 2 warm starts in a row (warm_start_max_chain 2)")
    assert warm_start.chain_ended(capped, {"start": {"kind": "warm", "chain": 1}}, outside=5) is None


def test_the_purchases_a_window_left_out_are_counted_by_raw_ids():
    """left_out: the served model's distinct (user, product) pairs this window does not hold,
    whatever the vocabularies' order; a user or product gone from the window leaves all its
    pairs out."""
    model = _model(3)
    # the served model: users b"a", b"b"; products 10, 20, 30; a bought 10 twice and 20, b bought 30
    tables = warm_start.ServedTables.of(model, np.array([10, 20, 30]), np.array([b"a", b"b"]),
                                        model_lib.UserHistory(np.array([0, 3, 4, 4]), np.array([0, 0, 1, 2])))
    users, products = np.array([b"b", b"a", b"c"]), np.array([30, 20, 10, 40])  # other orders
    # the window: a-10, a-20, b-30 and a new one: holds all
    assert warm_start.left_out(tables, np.array([1, 1, 0, 2]), np.array([2, 1, 0, 3]), users, products) == 0
    # without a-10: one pair left out (bought twice, one pair)
    assert warm_start.left_out(tables, np.array([1, 0]), np.array([1, 0]), users, products) == 1
    # without user b and product 20 in the window
    assert warm_start.left_out(tables, np.array([0]), np.array([1]), np.array([b"a"]), np.array([40, 10])) == 2
    assert warm_start.left_out(warm_start.ServedTables.of(model, np.array([10, 20, 30])), np.array([0]),
                               np.array([0]), users, products) is None


def test_a_missing_table_is_named():
    tables = warm_start.ServedTables.of(_model(3, CONFIG.replace(use_item_bias=False)), np.array([1, 2, 3]))
    assert warm_start.incompatibility(tables, CONFIG, "default") == "it has no item biases"
    assert warm_start.incompatibility(tables, CONFIG.replace(use_item_bias=False), "default") is None


def test_the_tables_are_read_back_from_the_exported_model(tmp_path, curated_schema):
    from models import features, testing

    built = testing.build(str(tmp_path), curated_schema)
    tables = warm_start.read_tables(built.export_dir)
    vocab = [int(p) for p in built.transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)]
    assert tables.product_ids.tolist() == vocab
    for name in warm_start.TABLES:
        np.testing.assert_array_equal(getattr(tables, name), getattr(built.recommender, name).numpy())
    assert warm_start.incompatibility(tables, built.recommender.config, "default") is None


def test_new_pairs_are_found_by_raw_ids_across_vocabularies():
    # the served model: users a, b; products 10, 20, 30; a bought 10 and 20, b bought 30
    served = warm_start.ServedTables(product_ids=np.array([10, 20, 30]), item_embeddings=np.zeros((4, 2)),
                                     user_ids=np.array([b"a", b"b"]),
                                     purchases=(np.array([0, 2, 3, 3]), np.array([0, 1, 2])))
    user_ids, product_ids = np.array([b"b", b"c", b"a"]), np.array([30, 10, 40, 20])  # this window's
    pairs = [(b"a", 10), (b"a", 40), (b"b", 30), (b"c", 10), (b"b", 20), (b"a", 20)]
    users = warm_start.index_in(user_ids, np.array([u for u, _ in pairs]))
    items = warm_start.index_in(product_ids, np.array([p for _, p in pairs]))
    new = warm_start.unseen_pairs(served, users, items, user_ids, product_ids)
    assert new.tolist() == [False, True, False, True, True, False]
    # a served model that does not hold what it trained on: unknown
    lacking = dataclasses.replace(served, purchases=None)
    assert warm_start.unseen_pairs(lacking, users, items, user_ids, product_ids) is None


def test_the_served_models_own_purchases_are_not_new(tmp_path, curated_schema):
    from models import features, testing

    built = testing.build(str(tmp_path), curated_schema)
    tables = warm_start.read_tables(built.export_dir)
    user_ids = np.array(built.transform_output.vocabulary_by_name(features.USER_VOCAB), bytes)
    product_ids = tables.product_ids
    assert tables.user_ids.tolist() == user_ids.tolist()
    users = warm_start.index_in(user_ids, np.array([r[features.USER_KEY][0] for r in built.rows]))
    items = warm_start.index_in(product_ids, np.array([r[features.PRODUCT_KEY][0] for r in built.rows]))
    assert not warm_start.unseen_pairs(tables, users, items, user_ids, product_ids).any()
    # a purchase it has not seen, by a user it knows, of a product it knows
    bought = set(zip(users.tolist(), items.tolist()))
    fresh = next((u, i) for u in range(len(user_ids)) for i in range(len(product_ids)) if (u, i) not in bought)
    assert warm_start.unseen_pairs(tables, [fresh[0]], [fresh[1]], user_ids, product_ids).tolist() == [True]


def test_a_savedmodel_that_is_not_a_recommender_is_refused(tmp_path):
    module = tf.Module()
    module.weights = tf.Variable([1.0, 2.0])
    tf.saved_model.save(module, str(tmp_path / "other"))
    with pytest.raises(warm_start.IncompatibleModel, match="no product_ids and no recommender/item_embeddings"):
        warm_start.read_tables(str(tmp_path / "other"))
    with pytest.raises(warm_start.IncompatibleModel, match="no readable variables"):
        warm_start.read_tables(str(tmp_path / "nothing"))
