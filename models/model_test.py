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


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match="unknown ModelConfig keys: dropout"):
        model_lib.ModelConfig.from_dict({"dropout": 0.1})
    with pytest.raises(ValueError, match="sampling must be one of"):
        model_lib.DEFAULT.replace(sampling="hard")
