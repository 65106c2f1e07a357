"""Warm start: rows carried over by raw product id across vocabularies that differ; the served
model's tables read back from its SavedModel; what makes a served model unusable."""

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
])
def test_an_incompatible_served_model_is_named(config, preset, facts, reason):
    tables = warm_start.ServedTables.of(_model(3), np.array([1, 2, 3]))
    assert reason in warm_start.incompatibility(tables, config, preset, facts)


def test_a_missing_table_is_named():
    tables = warm_start.ServedTables.of(_model(3, CONFIG.replace(use_item_bias=False)), np.array([1, 2, 3]))
    assert warm_start.incompatibility(tables, CONFIG, "default") == "the served model has no item biases"
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


def test_a_savedmodel_that_is_not_a_recommender_is_refused(tmp_path):
    module = tf.Module()
    module.weights = tf.Variable([1.0, 2.0])
    tf.saved_model.save(module, str(tmp_path / "other"))
    with pytest.raises(warm_start.IncompatibleModel, match="no product_ids and no recommender/item_embeddings"):
        warm_start.read_tables(str(tmp_path / "other"))
    with pytest.raises(warm_start.IncompatibleModel, match="no readable variables"):
        warm_start.read_tables(str(tmp_path / "nothing"))
