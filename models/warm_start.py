"""Warm start: a new model begins where the served one left off, product by product.

The served SavedModel (models/exporter.py) holds its product vocabulary (`product_ids`, raw ids
in vocabulary order) and the recommender's tables as variables. `read_tables` reads them from
its checkpoint (`tf.train.load_checkpoint`: no graph is loaded, no signature traced).
`carry_over` copies the row of every product the new vocabulary still has into the new model's
tables **by raw product id**: vocabulary indices change from one data window to the next (they
are sorted by frequency), product ids do not. New products keep their fresh initialisation, as in
a cold start; products no longer bought are dropped.

What is carried over: the item embeddings and biases (what the score of a product is made of) and
the history embeddings (the table a user's vector is pooled from: the default model's user
tower; trained item vectors beside random user vectors would start the new model nowhere).
What is not: the user-id table (the notebook's model only: users come and go, and a vector per
user id is what the default model leaves out), the users' histories and the item graph (data,
not learned: rebuilt from the window's purchases), and the optimizer's moments (a SavedModel has
none: Adam starts afresh).

`unseen_pairs` says which of the window's purchases the served model has not trained on: its
SavedModel holds every (user, product) pair it was trained on (models/exporter.py: the purchases
its recommendations leave out) and its user vocabulary (an asset). A warm start trains on those
new pairs and, when the served model was itself warm-started, a rehearsal sample of the others
(`rehearsal`; models/model.py `warm_pairs`): the served model has already learned from the rest
of the window. Nothing here depends on how the data arrived (span folders or one file that grew).

`incompatibility` says why a served model cannot be warm-started from (another embedding size,
another preset, a table this model needs and it lacks, any other training setting), or None;
`chain_ended`, why a training with something new starts cold from a served model that was
warm-started itself when the window holds all it trained on (`left_out`), or that ends a chain of
`warm_start_max_chain` warm starts (`chain_length`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, Set, Tuple

import numpy as np
import tensorflow as tf

from models import features
from models import model as model_lib

# Checkpoint keys of the serving module's variables (object-graph paths of models/exporter.py's
# ServingModule: `product_ids`, and its `recommender`'s tables).
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
PRODUCT_IDS = "product_ids" + _SUFFIX
TABLES = {  # Recommender attribute -> checkpoint key
    "item_embeddings": "recommender/item_embeddings" + _SUFFIX,
    "item_bias": "recommender/item_bias" + _SUFFIX,
    "history_embeddings": "recommender/history_embeddings" + _SUFFIX,
}
# The (user, product) pairs the served model trained on, as CSR (splits, items) in its
# vocabularies: the serving module's own copy when it has one (the recommender's history may be
# capped: max_history), else the recommender's history it shares.
PURCHASES = [tuple(name + _SUFFIX for name in names) for names in (
    ("purchased_splits", "purchased_items"), ("recommender/history_splits", "recommender/history_items"))]


class IncompatibleModel(ValueError):
    """The served model cannot be warm-started from; the message says why."""


@dataclasses.dataclass
class ServedTables:
    """What a served model's checkpoint holds for a warm start: its product ids (vocabulary
    order) and its tables ([products + 1, ...]: the last row is its OOV row); None for a table
    it does not have."""

    product_ids: np.ndarray
    item_embeddings: np.ndarray
    item_bias: Optional[np.ndarray] = None
    history_embeddings: Optional[np.ndarray] = None
    user_ids: Optional[np.ndarray] = None  # its user vocabulary (raw ids, bytes)
    purchases: Optional[Tuple[np.ndarray, np.ndarray]] = None  # CSR (splits, items): what it trained on

    @property
    def embedding_dim(self) -> int:
        return int(self.item_embeddings.shape[1])

    @classmethod
    def of(cls, recommender: model_lib.Recommender, product_ids: np.ndarray,
           user_ids: Optional[np.ndarray] = None,
           purchases: Optional[model_lib.UserHistory] = None) -> "ServedTables":
        """The tables of a model in memory (what `read_tables` reads back once it is exported),
        with its user vocabulary and the purchases it trained on when given."""
        def value(name):
            variable = getattr(recommender, name, None)
            return None if variable is None else variable.numpy()

        return cls(np.asarray(product_ids, np.int64), **{name: value(name) for name in TABLES},
                   user_ids=None if user_ids is None else np.asarray(user_ids, bytes),
                   purchases=None if purchases is None else (purchases.splits, purchases.items))


@dataclasses.dataclass
class CarriedOver:
    """How many products kept their rows (`carried`), started fresh (`new`, not in the served
    model) and were dropped (`dropped`, in the served model, not in this one)."""

    carried: int
    new: int
    dropped: int


def read_tables(saved_model_dir: str) -> ServedTables:
    """The served model's product ids and tables, from `<saved_model_dir>/variables`.

    Raises IncompatibleModel when the SavedModel is not one of this project's recommenders
    (no product ids or item embeddings)."""
    prefix = os.path.join(saved_model_dir, "variables", "variables")
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.NotFoundError, ValueError) as e:
        raise IncompatibleModel(f"no readable variables in {saved_model_dir} ({e})") from None
    shapes = reader.get_variable_to_shape_map()
    missing = [key.split("/.")[0] for key in (PRODUCT_IDS, TABLES["item_embeddings"]) if key not in shapes]
    if missing:
        raise IncompatibleModel(f"it has no {' and no '.join(missing)}: not a "
                                "recommender of this project")
    tables = {name: reader.get_tensor(key) if key in shapes else None for name, key in TABLES.items()}
    product_ids = np.asarray(reader.get_tensor(PRODUCT_IDS), np.int64)
    if tables["item_embeddings"].shape[0] != len(product_ids) + 1:
        raise IncompatibleModel(f"its item table has {tables['item_embeddings'].shape[0]} "
                                f"rows for {len(product_ids)} products (and the OOV row)")
    purchases = next(((reader.get_tensor(splits), reader.get_tensor(items)) for splits, items in PURCHASES
                      if splits in shapes and items in shapes), None)
    vocab = os.path.join(saved_model_dir, "assets", features.USER_VOCAB)
    user_ids = None
    if tf.io.gfile.exists(vocab):
        with tf.io.gfile.GFile(vocab, "rb") as f:
            user_ids = np.array(f.read().splitlines(), bytes)
    return ServedTables(product_ids=product_ids, **tables, user_ids=user_ids, purchases=purchases)


def index_in(vocabulary: np.ndarray, values: np.ndarray) -> np.ndarray:
    """int64 [values]: each value's position in `vocabulary` (distinct values), -1 where absent."""
    vocabulary, values = np.asarray(vocabulary), np.asarray(values)
    if not len(vocabulary):
        return np.full(len(values), -1, np.int64)
    order = np.argsort(vocabulary, kind="stable")
    position = np.clip(np.searchsorted(vocabulary[order], values), 0, len(vocabulary) - 1)
    return np.where(vocabulary[order][position] == values, order[position], -1).astype(np.int64)


def trained_pairs(tables: ServedTables) -> Set[Tuple[bytes, int]]:
    """The (raw user id, raw product id) pairs the served model trained on (`purchases`, in its
    vocabularies); none when it does not hold them or its user vocabulary."""
    if tables.purchases is None or tables.user_ids is None:
        return set()
    splits, items = (np.asarray(a, np.int64) for a in tables.purchases)
    users = np.repeat(np.arange(len(splits) - 1), np.diff(splits))
    known = (users < len(tables.user_ids)) & (items < len(tables.product_ids))  # not the OOV rows
    return set(zip(tables.user_ids[users[known]].tolist(), tables.product_ids[items[known]].tolist()))


def _served_pairs(tables: ServedTables, user_ids: np.ndarray,
                  product_ids: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """The distinct (user, product) pairs the served model trained on, as this window's indices
    (`user_ids`, `product_ids`: its vocabularies in index order; -1 where the window has no such
    user or product); None when the served model does not hold its purchases or user vocabulary."""
    if tables.purchases is None or tables.user_ids is None:
        return None
    splits, items = (np.asarray(a, np.int64) for a in tables.purchases)
    if len(splits) != len(tables.user_ids) + 2:  # a row per user, the OOV user's, and the end
        return None
    users = np.repeat(np.arange(len(splits) - 1), np.diff(splits))
    known = (users < len(tables.user_ids)) & (items < len(tables.product_ids))  # not the OOV rows
    pairs = np.unique(users[known] * (len(tables.product_ids) + 1) + items[known])
    users, items = np.divmod(pairs, len(tables.product_ids) + 1)
    return (index_in(np.asarray(user_ids, bytes), tables.user_ids)[users],
            index_in(np.asarray(product_ids, np.int64), tables.product_ids)[items])


def compare_pairs(tables: ServedTables, user_idx: np.ndarray, item_idx: np.ndarray, user_ids: np.ndarray,
                  product_ids: np.ndarray) -> Optional[Tuple[np.ndarray, int]]:
    """This window's (user, product) index pairs against those the served model trained on, by
    raw ids (`user_ids`, `product_ids`: this window's vocabularies in index order): (`unseen_pairs`,
    `left_out`), from one pass; None when the served model does not hold its purchases or user
    vocabulary."""
    served = _served_pairs(tables, user_ids, product_ids)
    if served is None:
        return None
    users, items = served
    both = (users >= 0) & (items >= 0)
    width = len(product_ids) + 1
    window = np.asarray(user_idx, np.int64) * width + np.asarray(item_idx, np.int64)
    held = users[both] * width + items[both]
    return ~np.isin(window, held), int((~both).sum() + (~np.isin(held, window)).sum())


def unseen_pairs(tables: ServedTables, user_idx: np.ndarray, item_idx: np.ndarray,
                 user_ids: np.ndarray, product_ids: np.ndarray) -> Optional[np.ndarray]:
    """bool [pairs]: which of this window's (user, product) index pairs the served model has not
    trained on, compared by raw ids (`user_ids`, `product_ids`: this window's vocabularies in
    index order); None when the served model does not hold its purchases or user vocabulary. A
    product bought again by the same user counts as seen: the pair is what the model learns."""
    compared = compare_pairs(tables, user_idx, item_idx, user_ids, product_ids)
    return None if compared is None else compared[0]


def left_out(tables: ServedTables, user_idx: np.ndarray, item_idx: np.ndarray,
             user_ids: np.ndarray, product_ids: np.ndarray) -> Optional[int]:
    """How many of the distinct (user, product) pairs the served model trained on this window's
    pairs do not hold (a span the window slid past, a file replaced); None when the served model
    does not hold its purchases or user vocabulary. The arguments are `unseen_pairs`'."""
    compared = compare_pairs(tables, user_idx, item_idx, user_ids, product_ids)
    return None if compared is None else compared[1]


def rehearsal(config: model_lib.ModelConfig, served_facts: Optional[Dict[str, Any]]) -> float:
    """Already-seen purchases a warm start trains on per new one: `config.warm_start_rehearsal`
    when the served model was itself warm-started, none when it was trained cold.

    A cold training gives every purchase `config.epochs` passes; a warm start gives the new ones
    `warm_start_epochs`, so a model warm-started from a warm-started one holds purchases it has
    seen once beside the older spans', and a chain of warm starts leans towards its newest spans
    (docs/model.md#warm-start; rehearsal narrows that lag, by a quarter on validation). A
    cold-trained served model has no such purchases: rehearsing its fully trained ones costs
    steps and buys nothing.
    `served_facts`: the served model's training.json; without it (a model from before it
    existed) the served model may have been warm-started, so the rehearsal is kept."""
    kind = ((served_facts or {}).get("start") or {}).get("kind")
    return 0.0 if kind == "cold" else float(config.warm_start_rehearsal)


def chain_length(served_facts: Optional[Dict[str, Any]]) -> int:
    """Warm starts in a row that made the served model: 0 when it was trained cold, else its
    training.json's `start.chain` (models/trainer.py `start_from`: the model it started from's
    chain, plus one when the warm start took a training step). A warm-started model from before
    `chain` was recorded, or a model without training.json, counts as 1: at least one."""
    start = (served_facts or {}).get("start") or {}
    if start.get("kind") == "cold":
        return 0
    return int(start.get("chain", 1))


def chain_ended(config: model_lib.ModelConfig, served_facts: Optional[Dict[str, Any]],
                name: str = "the served model", outside: Optional[int] = None) -> Optional[str]:
    """Why a training with purchases new to the served model (`name`) starts cold rather than
    warm from it, or None when it may warm-start. `outside`: how many of the purchases the served
    model trained on this window does not hold (`left_out`; None: unknown).

    When the served model was warm-started itself and this window holds every purchase it
    trained on (`outside` 0: the window has not slid past any, e.g. one file that grows, or the
    first spans of a window wider than them), a cold training sees all that the chain learned
    from, with a full training's passes, and a chain of warm starts on the same data falls
    behind it: on the replay's spans, at span 3 (window 1-3, the chain's models trained on spans
    1 and 1-2), 4-5% of recall@10 (docs/model.md, "How long a chain"). Once the window has slid
    past purchases the chain learned from, the chain knows more than a cold training of the
    window can, and scores above it: it goes on. `config.warm_start_max_chain` (0: no bound)
    caps a chain's length whatever the window."""
    start = (served_facts or {}).get("start") or {}
    chain, most = chain_length(served_facts), config.warm_start_max_chain
    if most and chain >= most:
        return (f"{name} ends {'' if 'chain' in start else 'at least '}{chain} warm start{'s' if chain > 1 else ''} "
                f"in a row (warm_start_max_chain {most})")
    if chain and outside == 0:  # without training.json: perhaps warm-started
        return f"this window holds all that {name} ({'' if start.get('kind') else 'perhaps '}warm-started) trained on"
    return None


SHAPE_FIELDS = ("embedding_dim", "use_item_bias", "use_history")
WARM_START_PREFIX = "warm_start_"  # the settings of a warm start itself: the only ones that may differ


def incompatibility(tables: ServedTables, config: model_lib.ModelConfig, preset: str,
                    served_facts: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """Why `config` (of `preset`) cannot start from the served model, or None when it can (a
    clause about "it", the model: the caller names the version, which may not be the served one).

    `served_facts`: the served model's training facts (models/trainer.py's training.json), when
    it has them: a model of another preset, or whose configuration differs in a field that gives
    the tables their shapes, is refused by name; the tables' shapes are checked either way. So is
    a model trained with any other setting but the warm start's own (`warm_start_*`): a warm start
    trains one pass at its own learning rate, so a changed `epochs`, `learning_rate`, `sampling`,
    `seed`, ... would not take effect, and the run would push the served model's training as if
    it were the one asked for."""
    model = (served_facts or {}).get("model") or {}
    if model.get("preset") not in (None, preset):
        return f"it is the {model['preset']!r} preset, this run trains {preset!r}"
    served_config = model.get("config") or {}
    for name in SHAPE_FIELDS:
        if name in served_config and served_config[name] != getattr(config, name):
            return (f"it has {name}={served_config[name]!r}, this one "
                    f"{getattr(config, name)!r}")
    if tables.embedding_dim != config.embedding_dim:
        return (f"its embeddings have {tables.embedding_dim} dimensions, this "
                f"one's {config.embedding_dim}")
    if config.use_item_bias and tables.item_bias is None:
        return "it has no item biases"
    if config.use_history and tables.history_embeddings is None:
        return "it has no history embeddings"
    changed = [(name, served_config[name], value) for name, value in config.to_dict().items()
               if name in served_config and not name.startswith(WARM_START_PREFIX)
               and served_config[name] != value]
    if changed:
        return ("it was trained with other settings, which a warm start would not apply: "
                + ", ".join(f"{name}={served!r} (this run {value!r})" for name, served, value in changed))
    return None


def carry_over(recommender: model_lib.Recommender, product_ids: np.ndarray,
               tables: ServedTables) -> CarriedOver:
    """Copies the served rows of every product in `product_ids` (the new model's vocabulary,
    raw ids in index order) into `recommender`'s item embeddings, item biases and history
    embeddings; other rows (new products, the OOV row) are left as they are."""
    product_ids = np.asarray(product_ids, np.int64)
    if len(product_ids) != recommender.num_items:
        raise ValueError(f"{len(product_ids)} product ids for a model of {recommender.num_items} products")
    row = index_in(tables.product_ids, product_ids)  # each product's row in the served tables
    found = row >= 0
    new_rows = np.flatnonzero(found)
    served_rows = row[found]
    for name in TABLES:
        variable, served = getattr(recommender, name, None), getattr(tables, name)
        if variable is None or served is None:
            continue
        values = variable.numpy()
        values[new_rows] = served[served_rows]
        variable.assign(values)
    carried = int(found.sum())
    return CarriedOver(carried=carried, new=len(product_ids) - carried,
                       dropped=len(np.unique(tables.product_ids)) - carried)

