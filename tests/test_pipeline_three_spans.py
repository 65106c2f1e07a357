"""End to end on generated spans: three spans arriving one after another in a data directory of
span folders, a training window of two spans. The first run trains cold on span 1; the second
warm-starts from the first run's model on spans 1-2; the third slides the window to spans 2-3 and
warm-starts from the second run's model; a fourth, on a window of all three spans, which holds
everything the third run's model trained on, trains cold. Every span brings products never sold before and
retires a few (tests/fake_asos.py `write_fake_spans`): the warm start carries the products the
window still sells by product id, starts the new ones fresh and drops the gone ones. The drift
gate compares each new span with the one before and lets these through."""

import dataclasses
import json
import os
import shutil

import pytest

from components import model_card
from models import model as model_lib
from models import trainer
from pipeline import configs
from tests import fake_asos, pipeline_helpers as helpers

pytestmark = pytest.mark.e2e
SMALL = {"embedding_dim": 8, "epochs": 3, "batch_size": 64, "learning_rate": 0.05}
# what is tested is the window and the start: every model passes
GATE = configs.GateConfig(lower_bounds={"recall_at_10": 0.0, "sampled_accuracy": 0.0}, max_relative_drop=1.0,
                          popularity_margin=None)


class _Runs(list):
    """(training facts, versions) of each run; `cards`: the served version's card after each."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("three_spans")
    data = root / "data"
    fake_asos.write_fake_spans(str(data), num_spans=3, tastes=4)
    for k in (2, 3):  # not there yet
        shutil.move(str(data / f"span-{k}"), str(root / f"span-{k}"))
    config = helpers.test_config(
        str(data), str(root / "out"), gate=GATE, span_window=2,
        training=configs.TrainingConfig(overrides=SMALL, serving_top_k=20),
        drift=configs.DriftConfig(thresholds=fake_asos.SPAN_DRIFT_THRESHOLDS))
    seen, cards = _Runs(), []
    seen.cards = cards  # the served version's model card after each run
    for k in (1, 2, 3, 4, 5):
        if k in (2, 3):
            shutil.move(str(root / f"span-{k}"), str(data / f"span-{k}"))
        if k == 4:  # the same files, read through a wider window: new training data
            config = dataclasses.replace(config, span_window=3)
        if k == 5:  # an older span turns up: other files, the same window, nothing new to learn
            shutil.copytree(str(data / "span-1"), str(data / "span-0"))
        helpers.run(config)
        [model] = helpers.output_uris(config, "Trainer", "model", -1)
        with open(os.path.join(model, "Format-Serving", trainer.TRAINING_FACTS)) as f:
            facts = json.load(f)
        versions = sorted(os.listdir(config.serving_model_dir), key=int)
        seen.append((facts, versions))
        cards.append(model_card.read(os.path.join(config.serving_model_dir, versions[-1])))
    return seen


def test_each_span_trained_models_card_holds_the_drift_gates_comparison(runs):
    """The served version's card after each run: none for the first span (nothing to compare),
    then the newest span against the one before it."""
    first, second, third = (card["quantitative_analysis"].get("drift_gate") for card in runs.cards[:3])
    assert first is None
    assert (second["newest"], second["previous"], second["verdict"]) == ("span-2", "span-1", "within the thresholds")
    assert (third["newest"], third["previous"]) == ("span-3", "span-2") and len(third["measures"]) >= 6


def test_each_run_trains_on_the_window_of_the_newest_spans(runs):
    assert [facts["data"]["span"] for facts, _ in runs] == [1, 2, 3, 3, 3]
    assert [facts["data"]["window_spans"] for facts, _ in runs] == [[1], [1, 2], [2, 3], [1, 2, 3], [1, 2, 3]]


def test_the_first_span_starts_cold_and_each_later_one_warm_from_the_model_before(runs):
    (first, v1), (second, v2), (third, v3), *_ = runs
    assert first["start"]["kind"] == "cold" and first["start"]["reason"] == "no model is served yet"
    assert len(v1) == 1 and len(v2) == 2 and len(v3) == 3  # every run pushed its model
    assert second["start"]["kind"] == "warm" and second["start"]["from_version"] == v1[-1]
    assert third["start"]["kind"] == "warm" and third["start"]["from_version"] == v2[-1]
    for facts in (second, third):
        start = facts["start"]
        # span 2 and 3 each bring products never sold before; the sliding window drops some
        assert start["carried_products"] > 0 and start["new_products"] > 0, start
    assert third["start"]["dropped_products"] > 0  # span 1's retired products left the window
    # already-seen purchases are rehearsed only from a model that was warm-started itself
    # (models/warm_start.py `rehearsal`): the second run's window holds span 1's, trained cold;
    # the third's holds span 2's, which the second run's model saw once
    assert second["start"]["rehearsal"] == 0 and second["start"]["rehearsed_purchases"] == 0
    third_start, rows = third["start"], third["data"]["rows"]
    assert third_start["rehearsal"] == model_lib.DEFAULT.warm_start_rehearsal > 0
    assert third_start["rehearsed_purchases"] == min(
        rows - third_start["new_purchases"], round(third_start["rehearsal"] * third_start["new_purchases"])) > 0



def test_another_window_on_the_same_files_is_new_data_judged_against_the_served_model(runs):
    """The input fingerprint covers every span's files whatever the window: the window is what
    tells this training from the one that made the served model (found by exploratory testing:
    it used to take the served model's own baseline and skip the comparison with it)."""
    (_, v3), (fourth, v4) = runs[2], runs[3]
    assert fourth["baseline"]["version"] == v3[-1] and fourth["baseline"]["served_version"] == v3[-1]
    assert len(v4) == 4  # judged against the served model, and pushed


def test_a_chain_of_warm_starts_goes_on_while_the_window_slides_and_ends_when_it_holds_all(runs):
    """models/warm_start.py `chain_ended`: the third run's window (spans 2-3) slid past span 1,
    which the second run's model learned from: it warm-starts from it, a chain of two. The
    fourth's window (spans 1-3) holds every purchase the third run's model trained on, and span
    1's are new to it: a cold training sees all the chain learned from, with full passes, and
    a chain of warm starts on the same data falls behind it: it trains cold."""
    (second, _), (third, v3), (fourth, _) = runs[1], runs[2], runs[3]
    assert (second["start"]["chain"], third["start"]["chain"]) == (1, 2)
    assert fourth["start"]["kind"] == "cold" and fourth["start"]["carried_products"] == 0
    assert fourth["start"]["reason"] == f"this window holds all that version {v3[-1]} (warm-started) trained on"
    assert fourth["training"]["epochs"] == SMALL["epochs"]


def test_a_model_with_nothing_new_to_learn_is_the_served_one_and_is_not_pushed_again(runs):
    """An older span turning up changes the input fingerprint (a new baseline decision, Transform
    runs again and moves its vocabulary files) but not the window: the warm start has nothing new
    to learn, takes no step, and its model is the served one (found by exploratory testing: it
    was pushed again as a new version)."""
    (_, v4), (fifth, v5) = runs[3], runs[4]
    assert fifth["start"]["kind"] == "warm" and fifth["start"]["from_version"] == v4[-1]
    assert fifth["start"]["new_purchases"] == 0 and fifth["training"]["epochs"] == 0
    assert fifth["start"]["chain"] == 0  # no step: the cold-trained served model again
    assert v5 == v4  # already served: no new version
