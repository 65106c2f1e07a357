"""The Trainer's start: warm from the served model when it can, cold otherwise, said on the console;
and the key that tells one training from another."""

import logging

import numpy as np
import pytest

from models import features, trainer
from models import model as model_lib
from models import testing


@pytest.fixture(scope="module")
def served(tmp_path_factory, curated_schema):
    built = testing.build(str(tmp_path_factory.mktemp("served")), curated_schema)
    ids = np.array([int(p) for p in built.transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)])
    return built, ids


def _start(served, caplog, custom_config, base="served", **config_changes):
    built, ids = served
    old = built.recommender
    config = old.config.replace(**config_changes)
    history = model_lib.UserHistory(old.history_splits.numpy(), old.history_items.numpy())
    model = model_lib.Recommender(old.num_users, old.num_items, config, user_history=history)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recsys.train"):
        started = trainer.start_from(built.export_dir if base == "served" else base, model, ids,
                                     custom_config, "1796000000")
    lines = [r.getMessage() for r in caplog.records if r.name == "recsys.train"]
    return started, lines, model


def test_a_compatible_served_model_is_warm_started_from(served, caplog):
    started, [line], model = _start(served, caplog, {"preset": "default"})
    assert started["kind"] == "warm" and started["from_version"] == "1796000000"
    assert (started["carried_products"], started["new_products"], started["dropped_products"]) == (20, 0, 0)
    assert line.startswith("[train] warm start from version 1796000000: 20 products carried over, 0 new, "
                           "0 dropped; 0.5 epochs at learning rate 0.0125")
    np.testing.assert_array_equal(model.item_embeddings.numpy(), served[0].recommender.item_embeddings.numpy())


@pytest.mark.parametrize("custom_config, base, changes, said", [
    ({"preset": "default"}, None, {}, "[train] cold start: no model is served yet"),
    ({"preset": "default", "cold_start": True}, "served", {},
     "[train] cold start (--cold-start): version 1796000000 is not used"),
    ({"preset": "default"}, "served", {"embedding_dim": 16},
     "[train] cold start: version 1796000000 cannot be warm-started from: the served model's "
     "embeddings have 8 dimensions, this one's 16"),
])
def test_otherwise_a_cold_start_says_why(served, caplog, custom_config, base, changes, said):
    started, lines, model = _start(served, caplog, custom_config, base, **changes)
    assert started["kind"] == "cold" and started["carried_products"] == 0
    assert lines == [said]


def test_the_training_key_is_the_compiled_configuration_only():
    compiled = {"preset": "default", "model": {"epochs": 2}, "serving_top_k": 100, "cold_start": False,
                "module_code": "abc"}
    key = trainer.training_key(compiled)
    assert trainer.training_key({**compiled, trainer.RUN_KEY: {"baseline": {"version": "1"}}}) == key
    assert trainer.training_key({**compiled, "cold_start": True}) != key
    assert trainer.training_key({**compiled, "module_code": "abd"}) != key
