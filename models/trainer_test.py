"""The Trainer's start: warm from the served model when it can, cold otherwise, said on the console;
and the key that tells one training from another."""

import contextlib
import dataclasses
import json
import logging
import os
import shutil

import numpy as np
import pytest

from models import features, trainer, warm_start
from models import model as model_lib
from models import testing


@pytest.fixture(scope="module")
def served(tmp_path_factory, curated_schema):
    built = testing.build(str(tmp_path_factory.mktemp("served")), curated_schema)
    ids = np.array([int(p) for p in built.transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)])
    return built, ids


def _pairs(built, extra=(), slid=False):
    """The served model's own purchases as (user indices, product indices, user vocabulary),
    and `extra` (user index, product index) pairs after them; `slid`: without those of the first
    purchase's (user, product), as a window that slid past some of them."""
    user_ids = np.array(built.transform_output.vocabulary_by_name(features.USER_VOCAB), bytes)
    ids = np.array([int(p) for p in built.transform_output.vocabulary_by_name(features.PRODUCT_VOCAB)])
    users = warm_start.index_in(user_ids, np.array([r[features.USER_KEY][0] for r in built.rows]))
    items = warm_start.index_in(ids, np.array([r[features.PRODUCT_KEY][0] for r in built.rows]))
    if slid:
        kept = (users != users[0]) | (items != items[0])
        users, items = users[kept], items[kept]
    return (np.append(users, [u for u, _ in extra]), np.append(items, [i for _, i in extra]), user_ids)


def _start(served, caplog, custom_config, base="served", pairs=None, reason=None, **config_changes):
    built, ids = served
    old = built.recommender
    config = old.config.replace(**config_changes)
    history = model_lib.UserHistory(old.history_splits.numpy(), old.history_items.numpy())
    model = model_lib.Recommender(old.num_users, old.num_items, config, user_history=history)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recsys.train"):
        started, new = trainer.start_from(built.export_dir if base == "served" else base, model, ids,
                                          custom_config, "1796000000", pairs, reason)
    lines = [r.getMessage() for r in caplog.records if r.name == "recsys.train"]
    return started, new, lines, model


def _fresh(built, n=7):
    """`n` (user index, product index) pairs the served model did not train on."""
    bought = set(zip(*[a.tolist() for a in _pairs(built)[:2]]))
    return [(u, i) for u in range(30) for i in range(20) if (u, i) not in bought][:n]


@contextlib.contextmanager
def _with_facts(built, facts):
    """The served model with `facts` as its training.json while the block runs."""
    path = os.path.join(built.export_dir, trainer.TRAINING_FACTS)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(facts, f)
    try:
        yield
    finally:
        os.remove(path)


def test_a_compatible_served_model_is_warm_started_from(served, caplog):
    built = served[0]
    fresh = _fresh(built)
    # a window that slid past one of the purchases the served model trained on: a model without
    # training.json, perhaps warm-started, is warm-started from (warm_start.chain_ended)
    pairs = _pairs(built, fresh, slid=True)
    seen = len(pairs[0]) - 7
    started, new, [line, said], model = _start(served, caplog, {"preset": "default"}, pairs=pairs)
    assert started["kind"] == "warm" and started["from_version"] == "1796000000"
    assert (started["carried_products"], started["new_products"], started["dropped_products"]) == (20, 0, 0)
    assert line == "[train] warm start from version 1796000000: 20 products carried over, 0 new, 0 dropped"
    # the served model trained on the window's other purchases: only the 7 after them are new
    assert started["new_purchases"] == 7 and new.tolist() == [False] * seen + [True] * 7
    # a served model with no training.json may have been warm-started: its purchases are rehearsed
    # (0.5 of them per new one: 4)
    assert said == (f"[train] 7 of {seen + 7} purchases are new to version 1796000000: 1 epoch over them and 4 "
                    "it has seen (warm_start_rehearsal 0.5: its training.json does not say it was trained "
                    "cold) at learning rate 0.02")
    assert (started["rehearsal"], started["rehearsed_purchases"]) == (0.5, 4)
    np.testing.assert_array_equal(model.item_embeddings.numpy(), built.recommender.item_embeddings.numpy())
    # one trained cold gave every purchase its full passes: none is rehearsed
    with _with_facts(built, {"start": {"kind": "cold"}}):
        started, _, [_, said], _ = _start(served, caplog, {"preset": "default"}, pairs=_pairs(built, fresh))
    with _with_facts(built, {"start": {"kind": "warm", "chain": 1}}):
        _, _, [_, said_warm], _ = _start(served, caplog, {"preset": "default"}, pairs=pairs)
    assert said == ("[train] 7 of 97 purchases are new to version 1796000000: 1 epoch over them at "
                    "learning rate 0.02")
    assert (started["rehearsal"], started["rehearsed_purchases"]) == (0.0, 0)
    assert "(warm_start_rehearsal 0.5: it was warm-started)" in said_warm
    # the very purchases it trained on: nothing to learn, and said so
    started, new, [_, said], _ = _start(served, caplog, {"preset": "default"}, pairs=_pairs(built))
    assert started["new_purchases"] == 0 and not new.any()
    assert said == "[train] none of the 90 purchases is new to version 1796000000: nothing to learn, no step"


def test_a_warm_started_model_whose_purchases_the_window_all_holds_is_followed_by_a_cold_start(served, caplog):
    """warm_start.chain_ended: after a warm start, a window holding every purchase the served
    model trained on trains cold (a cold training sees all it learned from, with full passes);
    once the window slid past some, the chain goes on. warm_start_max_chain caps a chain
    whatever the window. A warm start with nothing new takes no step: the chain as it was."""
    built = served[0]
    holds_all, slid = _pairs(built, _fresh(built)), _pairs(built, _fresh(built), slid=True)
    with _with_facts(built, {"start": {"kind": "cold"}}):
        started, _, _, _ = _start(served, caplog, {"preset": "default"}, pairs=holds_all)
    assert (started["kind"], started["chain"]) == ("warm", 1)
    reason = "this window holds all that version 1796000000 (warm-started) trained on"
    with _with_facts(built, {"start": {"kind": "warm", "chain": 1}}):
        started, new, lines, model = _start(served, caplog, {"preset": "default"}, pairs=holds_all)
        assert started["kind"] == "cold" and new is None and started["carried_products"] == 0
        assert lines == [f"[train] cold start: {reason}"] and started["reason"] == reason
        # a cold start's tables are its own, not the served model's
        assert not np.allclose(model.item_embeddings.numpy(), built.recommender.item_embeddings.numpy())
        started, _, _, _ = _start(served, caplog, {"preset": "default"}, pairs=slid)
        assert (started["kind"], started["chain"]) == ("warm", 2)
        started, _, _, _ = _start(served, caplog, {"preset": "default"}, pairs=_pairs(built))
        assert (started["kind"], started["chain"], started["new_purchases"]) == ("warm", 1, 0)
    with _with_facts(built, {"start": {"kind": "warm", "chain": 3}}):
        _, _, lines, _ = _start(served, caplog, {"preset": "default"}, pairs=slid, warm_start_max_chain=3)
        assert lines == ["[train] cold start: version 1796000000 ends 3 warm starts in a row (warm_start_max_chain 3)"]
    with _with_facts(built, {"start": {"kind": "cold"}}):
        _, _, lines, _ = _start(served, caplog, {"preset": "default"}, pairs=slid, warm_start_max_chain=1)
        assert lines[0].startswith("[train] warm start from")  # a cold-trained model starts no chain to cap
    # without training.json: perhaps warm-started
    _, _, lines, _ = _start(served, caplog, {"preset": "default"}, pairs=holds_all)
    assert lines == ["[train] cold start: this window holds all that version 1796000000 (perhaps warm-started) "
                     "trained on"]


@pytest.mark.parametrize("custom_config, base, changes, said", [
    ({"preset": "default"}, None, {}, "[train] cold start: no model is served yet"),
    ({"preset": "default", "reason": "version 5, the served one, was trained on this data with this "
      "configuration: its own baseline again"}, None, {},
     "[train] cold start: version 5, the served one, was trained on this data with this configuration: "
     "its own baseline again"),
    ({"preset": "default", "cold_start": True}, "served", {},
     "[train] cold start (--cold-start): version 1796000000 is not used"),
    ({"preset": "default"}, "served", {"embedding_dim": 16},
     "[train] cold start: version 1796000000 cannot be warm-started from: its embeddings have 8 "
     "dimensions, this one's 16"),
])
def test_otherwise_a_cold_start_says_why(served, caplog, custom_config, base, changes, said):
    custom_config = dict(custom_config)
    reason = custom_config.pop("reason", None)  # ServedBaseline's, when there is no base model
    started, new, lines, model = _start(served, caplog, custom_config, base, reason=reason, **changes)
    assert started["kind"] == "cold" and started["carried_products"] == 0 and new is None
    assert lines == [said]


def test_a_served_model_trained_with_other_settings_means_a_cold_start(served, caplog, tmp_path):
    """Found by following the README: `--model-param epochs=8 --model-param sampling=mixed` after a
    first run warm-started, trained nothing (no purchase was new) and pushed the served model's
    variables again as the model asked for."""
    built, ids = served
    copy = str(tmp_path / "served")
    shutil.copytree(built.export_dir, copy)
    with open(os.path.join(copy, trainer.TRAINING_FACTS), "w") as f:
        json.dump({"model": {"preset": "default", "config": built.recommender.config.to_dict()}}, f)
    lr = built.recommender.config.learning_rate
    started, new, lines, _ = _start((dataclasses.replace(built, export_dir=copy), ids), caplog, {"preset": "default"},
                                    pairs=_pairs(built), learning_rate=lr * 10, warm_start_epochs=2.0)
    assert started["kind"] == "cold" and new is None
    assert lines == ["[train] cold start: version 1796000000 cannot be warm-started from: it was trained with "
                     f"other settings, which a warm start would not apply: learning_rate={lr!r} (this run {lr * 10!r})"]
    started, _, _, _ = _start((dataclasses.replace(built, export_dir=copy), ids), caplog, {"preset": "default"},
                              pairs=_pairs(built), warm_start_epochs=2.0)
    assert started["kind"] == "warm"  # the warm start's own settings may change


def test_the_training_key_is_the_compiled_configuration_only():
    compiled = {"preset": "default", "model": {"epochs": 2}, "serving_top_k": 100, "cold_start": False,
                "module_code": "abc"}
    key = trainer.training_key(compiled)
    assert trainer.training_key({**compiled, trainer.RUN_KEY: {"baseline": {"version": "1"}}}) == key
    assert trainer.training_key({**compiled, "cold_start": True}) != key
    assert trainer.training_key({**compiled, "module_code": "abd"}) != key
    # the settings as they come to: a default's own value written out is the same training
    default = model_lib.DEFAULT.embedding_dim
    written = trainer.training_key({**compiled, "model": {**compiled["model"], "embedding_dim": default}})
    assert written == key
    assert trainer.training_key({**compiled, "model": {**compiled["model"], "embedding_dim": default * 2}}) != key


def test_pairs_are_read_in_one_order_whatever_order_the_files_hold(tmp_path, curated_schema):
    """ExampleGen writes the same examples in another order from run to run; training visits
    the pairs in a seeded permutation of their positions, so read_pairs sorts them."""
    import tensorflow as tf
    from tfx import v1 as tfx
    from tfx.components.util import tfxio_utils
    from tfx.types import artifact_utils, standard_artifacts

    transformed, output = testing.transform_graph(testing.purchases(seed=0), curated_schema, str(tmp_path))

    def read(order, name):
        split = tmp_path / name / "Split-train"
        split.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(split / "data.gz"), "GZIP") as writer:
            for i in order:
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    key: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(transformed[i][key])]))
                    for key in (features.USER_INDEX, features.PRODUCT_INDEX)})).SerializeToString())
        examples = standard_artifacts.Examples()
        examples.uri = str(tmp_path / name)
        examples.split_names = artifact_utils.encode_split_names(["train"])
        accessor = tfx.components.DataAccessor(
            tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
            record_batch_factory=None, data_view_decode_fn=None)
        return trainer.read_pairs(accessor, [str(split / "*")], output)

    in_order = read(range(len(transformed)), "a")
    shuffled = read(np.random.default_rng(0).permutation(len(transformed)), "b")
    np.testing.assert_array_equal(in_order[0], shuffled[0])
    np.testing.assert_array_equal(in_order[1], shuffled[1])
    assert sorted(zip(*[a.tolist() for a in in_order])) == sorted(
        (int(r[features.USER_INDEX]), int(r[features.PRODUCT_INDEX])) for r in transformed)
