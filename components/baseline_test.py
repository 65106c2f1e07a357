"""ServedBaseline: which served version is the run's baseline, and what its artifact holds."""

import json
import os
import shutil

import pytest
from tfx.types import standard_artifacts

from components import baseline, testing
from models import trainer

KEY = "training-key"
DATA = "split:train,num_files:1,total_bytes:10"


TINY = {}  # the SavedModel every pushed version here holds (tiny_model)


@pytest.fixture(scope="module", autouse=True)
def tiny_model(tmp_path_factory):
    TINY["path"] = testing.save_tiny_model(str(tmp_path_factory.mktemp("tiny") / "model"))


def _push(serving_dir, version, data=DATA, key=KEY, base=None, complete=True, facts=True, window=None):
    """A pushed version directory: a whole SavedModel (or, not complete, one without its
    saved_model.pb: a push in progress) and its training.json."""
    path = os.path.join(serving_dir, str(version))
    shutil.copytree(TINY["path"], path, dirs_exist_ok=True,
                    ignore=None if complete else shutil.ignore_patterns("saved_model.pb"))
    if facts:
        os.makedirs(os.path.dirname(os.path.join(path, trainer.TRAINING_FACTS)), exist_ok=True)
        with open(os.path.join(path, trainer.TRAINING_FACTS), "w") as f:
            json.dump({"data": {"input_fingerprint": data, **({"window_spans": window} if window else {})},
                       "training_key": key,
                       "baseline": {"version": base}}, f)
    return path


def test_nothing_served_is_no_baseline(tmp_path):
    decision = baseline.decide(str(tmp_path / "serving"), DATA, KEY)
    assert (decision.version, decision.served) == (None, None)
    assert decision.reason == "no model is served yet"


def test_the_newest_complete_version_is_the_baseline(tmp_path):
    serving = str(tmp_path)
    _push(serving, 100, data="older data")
    _push(serving, 200, data="older data")
    _push(serving, 300, complete=False)  # a push in progress is not served
    decision = baseline.decide(serving, DATA, KEY)
    assert (decision.version, decision.served, decision.reason) == ("200", "200", "served")


def test_a_served_model_of_this_very_training_hands_back_its_own_baseline(tmp_path):
    """A rerun with nothing changed: the served model is the first run's candidate."""
    serving = str(tmp_path)
    _push(serving, 100, data="older data")
    _push(serving, 200, base="100")
    decision = baseline.decide(serving, DATA, KEY)
    assert (decision.version, decision.served) == ("100", "200")
    assert decision.reason == ("version 200, the served one, was trained on this data with this "
                               "configuration: its own baseline again")
    _push(serving, 300, base=None)  # its first run had nothing served
    assert baseline.decide(serving, DATA, KEY).version is None


def test_new_data_another_training_or_no_facts_make_the_served_model_the_baseline(tmp_path):
    serving = str(tmp_path)
    _push(serving, 100, base="50")
    assert baseline.decide(serving, "other data", KEY).version == "100"  # new data
    assert baseline.decide(serving, DATA, "other key").version == "100"  # e.g. --model-param
    assert baseline.decide(serving, None, KEY).version == "100"  # no fingerprint: nothing to match
    _push(serving, 200, facts=False)  # a model from before training.json
    assert baseline.decide(serving, DATA, KEY).version == "200"


def test_the_same_files_read_through_another_window_make_the_served_model_the_baseline(tmp_path):
    """The fingerprint covers every span's files: `--span-window` changes the data, not it."""
    serving = str(tmp_path)
    _push(serving, 100, data="older data")
    _push(serving, 200, base="100", window=[3])  # trained with --span-window 1
    assert baseline.decide(serving, DATA, KEY, [3]).version == "100"  # the very training again
    assert baseline.decide(serving, DATA, KEY, "3").version == "100"  # as the Examples hold it
    decision = baseline.decide(serving, DATA, KEY, [1, 2, 3])  # the same files, a window of 3
    assert (decision.version, decision.served, decision.reason) == ("200", "200", "served")
    assert baseline.decide(serving, DATA, KEY).version == "200"  # a window unknown: not the same


def test_a_rollback_is_a_new_baseline(tmp_path):
    """DECISIONS D2: a rollback publishes a copy of an earlier version as a new version."""
    serving = str(tmp_path)
    _push(serving, 100, data="older data")
    _push(serving, 200, base="100")
    assert baseline.decide(serving, DATA, KEY).version == "100"
    _push(serving, 201, data="older data")  # the copy of 100, its training.json with it
    assert baseline.decide(serving, DATA, KEY).version == "201"


def _run(tmp_path, serving, pinned=None, examples_props=None):
    examples = standard_artifacts.Examples()
    for name, value in (examples_props or {"input_fingerprint": DATA, "span": 3,
                                           "window_spans": "1,2,3"}).items():
        (examples.set_int_custom_property if isinstance(value, int)
         else examples.set_string_custom_property)(name, value)
    out = standard_artifacts.Model()
    out.uri = str(tmp_path / "out")
    baseline.Executor().Do({"examples": [examples]}, {"model": [out]}, {
        "serving_model_dir": serving, "training_key": KEY, "pinned_version": pinned,
        "input_base": str(tmp_path / "data"), "input_config": json.dumps({"splits": [
            {"name": "train", "pattern": "train/*"}]})})
    return out


def test_the_executor_copies_the_baseline_and_records_what_it_decided(tmp_path):
    serving = str(tmp_path / "serving")
    _push(serving, 100, data="older data")
    out = _run(tmp_path, serving)
    with open(os.path.join(out.uri, "Format-Serving", "saved_model.pb"), "rb") as copied, \
            open(os.path.join(serving, "100", "saved_model.pb"), "rb") as pushed:
        assert copied.read() == pushed.read()
    facts = baseline.artifact_facts(out)
    assert facts["baseline"] == {"found": True, "version": "100", "served_version": "100",
                                 "reason": "served"}
    assert facts["data"] == {"input_fingerprint": DATA, "span": 3, "window_spans": [1, 2, 3]}


def test_nothing_served_is_an_empty_artifact(tmp_path):
    out = _run(tmp_path, str(tmp_path / "serving"))
    assert not os.path.exists(os.path.join(out.uri, "Format-Serving"))
    assert not baseline.found(out)
    assert baseline.artifact_facts(out)["baseline"]["reason"] == "no model is served yet"


def test_a_pinned_answer_stands_and_a_vanished_one_falls_back_to_the_served_model(tmp_path):
    serving = str(tmp_path / "serving")
    _push(serving, 100, data="older data")
    _push(serving, 200, data="older data")
    out = _run(tmp_path / "a", serving, pinned="100")  # decided before the run: it stands
    assert baseline.artifact_facts(out)["baseline"]["version"] == "100"
    assert baseline.artifact_facts(out)["baseline"]["reason"] == "decided when the run started"
    out = _run(tmp_path / "b", serving, pinned=baseline.PIN_NONE)
    assert not baseline.found(out)
    out = _run(tmp_path / "c", serving, pinned="150")  # deleted since: the served one instead
    facts = baseline.artifact_facts(out)["baseline"]
    assert (facts["found"], facts["version"]) == (True, "200")
    assert facts["reason"] == "version 150 is no longer there: the served one instead"


def test_without_the_examples_fingerprint_the_data_is_fingerprinted_as_examplegens_driver_does(tmp_path):
    """A compiled ExampleGen's Examples carry no input_fingerprint: the component computes TFX's."""
    os.makedirs(tmp_path / "data" / "train")
    (tmp_path / "data" / "train" / "part.parquet").write_bytes(b"12345")
    expected = baseline.data_fingerprint(str(tmp_path / "data"), json.dumps({"splits": [
        {"name": "train", "pattern": "train/*"}]}))
    assert expected.startswith("split:train,num_files:1,total_bytes:5,")
    serving = str(tmp_path / "serving")
    _push(serving, 100, data=expected)
    _push(serving, 200, data=expected, base="100")
    out = _run(tmp_path, serving, examples_props={"span": 0})
    facts = baseline.artifact_facts(out)
    assert facts["data"]["input_fingerprint"] == expected
    assert facts["baseline"]["version"] == "100"  # 200 is this training on this data: its baseline


def test_a_model_from_elsewhere_counts_as_found_when_it_holds_one(tmp_path):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path)
    assert not baseline.found(model) and not baseline.found(None)
    os.makedirs(tmp_path / "Format-Serving")
    assert baseline.found(model)
