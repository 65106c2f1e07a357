"""The version store: what is complete and served, and publishing that never shows half a version
(a local rename; an ordered copy on an object store, checked on an in-memory one)."""

import errno
import json
import os
import shutil
import time

import pytest
import tensorflow as tf
from tfx.dsl.io import fileio

from components import model_versions as mv
from components import testing


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return testing.save_tiny_model(str(tmp_path_factory.mktemp("model") / "saved"))


def _card(number, path):
    return {"assets.extra/card.json": json.dumps({"version": number, "path": path}).encode()}


def test_complete_served_and_broken_versions(saved_model, tmp_path):
    base = str(tmp_path / "models")
    assert mv.versions(base) == [] and mv.served(base) is None
    assert mv.publish(saved_model, base, now=100).number == 100
    assert mv.publish(saved_model, base, now=100).number == 101  # same second: the next number
    # the poisoned directory: a push cut short before saved_model.pb
    shutil.copytree(saved_model, os.path.join(base, "300"), ignore=shutil.ignore_patterns("saved_model.pb"))
    os.makedirs(os.path.join(base, "200"))
    with open(os.path.join(base, "200", mv.SAVED_MODEL), "wb") as f:
        f.write(b"\x0bnot a SavedModel")
    shutil.copytree(saved_model, os.path.join(base, "150"))
    for name in os.listdir(os.path.join(base, "150", "variables")):
        if ".data-" in name:
            os.remove(os.path.join(base, "150", "variables", name))
    os.makedirs(os.path.join(base, ".tmp-abc"))
    found = {v.number: v.problem for v in mv.versions(base)}
    assert list(found) == [300, 200, 150, 101, 100]  # newest first; the temporary copy is no version
    assert found[300] == "no saved_model.pb"
    assert found[200] == "saved_model.pb is not a SavedModel (cut short?)"
    assert found[150] == "variables/ is missing data shards"
    assert found[101] is None and found[100] is None
    assert mv.served(base).number == 101  # the newest complete one (D1)
    assert mv.next_version(base, now=100) == 301  # never a number taken, even by a broken one
    assert mv.next_version(base, now=10**10) == 10**10
    # names that are no version as TF Serving reads them (serving/version_names.py) are left out,
    # and a zero-padded one keeps its directory name
    for name in (str(2**63), "²"):
        shutil.copytree(saved_model, os.path.join(base, name))
    shutil.copytree(saved_model, os.path.join(base, "0050"))
    assert [v.number for v in mv.versions(base)] == [300, 200, 150, 101, 100, 50]
    assert mv.find(base, 50).path == os.path.join(base, "0050") and mv.find(base, 50).complete
    assert mv.next_version(base, now=100) == 301


def test_a_local_version_appears_whole_by_a_rename(saved_model, tmp_path, monkeypatch):
    base = str(tmp_path / "models")
    mv.publish(saved_model, base, now=100)
    seen = []
    copy = fileio.copy

    def watching_copy(src, dst, overwrite=False):
        seen.append(sorted(os.listdir(base)))  # what a server polling the base sees meanwhile
        copy(src, dst, overwrite=overwrite)

    monkeypatch.setattr(fileio, "copy", watching_copy)
    version = mv.publish(saved_model, base, _card, now=200)
    assert version.number == 200 and mv.problem(version.path) is None
    assert len(seen) > 3
    assert all([n for n in names if not n.startswith(mv.TEMP_PREFIX)] == ["100"] for names in seen)
    assert sorted(os.listdir(base)) == ["100", "200"]
    with open(os.path.join(base, "200", "assets.extra", "card.json")) as f:
        assert json.load(f) == {"version": 200, "path": os.path.join(base, "200")}


def test_a_failed_local_publish_leaves_nothing(saved_model, tmp_path, monkeypatch):
    base = str(tmp_path / "models")
    mv.publish(saved_model, base, now=100)
    copy = fileio.copy

    def full_disk(src, dst, overwrite=False):
        if ".data-" in src:
            raise tf.errors.ResourceExhaustedError(None, None, f"{dst}; No space left on device")
        copy(src, dst, overwrite=overwrite)

    monkeypatch.setattr(fileio, "copy", full_disk)
    with pytest.raises(tf.errors.ResourceExhaustedError):
        mv.publish(saved_model, base, _card, now=200)
    assert os.listdir(base) == ["100"]  # no version, no temporary copy
    assert mv.served(base).number == 100


def test_a_taken_number_moves_the_version_and_its_card_to_the_next(saved_model, tmp_path, monkeypatch):
    base = str(tmp_path / "models")
    numbers = iter([100, 101])
    monkeypatch.setattr(mv, "next_version", lambda base, now=None: next(numbers))
    real_copy = mv._copy_into

    def another_publish_meanwhile(source, target, extras):
        real_copy(source, target, extras)
        shutil.copytree(saved_model, os.path.join(base, "100"))  # took 100 while this one copied

    monkeypatch.setattr(mv, "_copy_into", another_publish_meanwhile)
    assert mv.publish(saved_model, base, _card).number == 101
    with open(os.path.join(base, "101", "assets.extra", "card.json")) as f:
        assert json.load(f)["version"] == 101
    assert sorted(os.listdir(base)) == ["100", "101"]


def test_stale_temporary_copies_are_removed(saved_model, tmp_path):
    base = str(tmp_path / "models")
    old, recent = os.path.join(base, ".tmp-old-1"), os.path.join(base, ".tmp-new-2")
    for path in (old, recent):
        os.makedirs(path)
    an_hour_ago = time.time() - mv.STALE_TEMP_SECONDS - 60
    os.utime(old, (an_hour_ago, an_hour_ago))
    mv.publish(saved_model, base, now=100)
    assert sorted(os.listdir(base)) == [".tmp-new-2", "100"]  # a recent one may be a publish under way


def test_copy_order_puts_saved_model_pb_last(saved_model):
    order = mv.copy_order(saved_model)
    assert order[-1] == mv.SAVED_MODEL and order.count(mv.SAVED_MODEL) == 1
    assert "variables/variables.index" in order and mv.FINGERPRINT in order


def test_on_an_object_store_saved_model_pb_is_written_last(saved_model):
    with testing.memory_object_store() as store:
        base = "memfs://bucket/serving_model/recommender"
        version = mv.publish(saved_model, base, _card, now=100)
        assert version.path == base + "/100"
        written = [p[len(version.path) + 1:] for p in store.writes]
        assert written[-1] == mv.SAVED_MODEL  # the file that makes it a version, last
        assert written.index("assets.extra/card.json") < len(written) - 1  # the card is in before
        assert sorted(written) == sorted(mv.copy_order(saved_model) + ["assets.extra/card.json"])
        assert [(v.number, v.problem) for v in mv.versions(base)] == [(100, None)]
        assert mv.next_version(base, now=50) == 101


def test_on_an_object_store_a_failed_copy_is_removed(saved_model):
    with testing.memory_object_store() as store:
        base = "memfs://bucket/models"
        mv.publish(saved_model, base, now=100)
        store.fail_on = lambda path: path.endswith(mv.SAVED_MODEL)
        with pytest.raises(OSError) as e:
            mv.publish(saved_model, base, _card, now=200)
        assert e.value.errno == errno.ENOSPC
        assert store.under(base + "/200") == []
        assert [v.number for v in mv.versions(base)] == [100]
