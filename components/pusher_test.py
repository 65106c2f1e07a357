"""The Pusher's executor on a real (tiny) SavedModel: a version with its card, never half a version,
never a second copy of the served model, and a broken directory that never counts."""

import json
import os
import shutil

import pytest
import tensorflow as tf
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components import model_card, model_versions, pusher, testing


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory):
    uri = tmp_path_factory.mktemp("trainer") / "model"
    testing.save_tiny_model(str(uri / "Format-Serving"))
    return str(uri)


def _push(model_uri, base, tmp_path, blessed=True):
    """Runs the executor as TFX would; returns the PushedModel artifact."""
    model = standard_artifacts.Model()
    model.uri = model_uri
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed-{len(os.listdir(tmp_path))}")
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    pusher.Executor().Do(
        {"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination), "model_name": "recommender",
         "data_files": json.dumps([os.path.join(model_uri, "Format-Serving", "*.pb")]), "git_commit": "abc123"})
    return pushed


def _props(pushed):
    return (pushed.get_int_custom_property("pushed"), pushed.get_string_custom_property("pushed_destination"),
            pushed.get_string_custom_property("pushed_version"))


def test_a_push_is_a_complete_version_with_its_model_card(model_uri, tmp_path):
    base = str(tmp_path / "models")
    pushed = _push(model_uri, base, tmp_path)
    [version] = model_versions.versions(base)
    assert version.complete and _props(pushed) == (1, version.path, str(version.number))
    card = model_card.read(version.path)
    assert card["model_details"]["version"]["name"] == str(version.number)
    assert card["model_details"]["path"] == version.path
    assert card["model_details"]["code"]["git_commit"] == "abc123"
    sources = {os.path.basename(f["path"]): f["sha256"] for f in card["model_parameters"]["source_files"]}
    assert sources["saved_model.pb"] == model_card.sha256_of(os.path.join(version.path, "saved_model.pb"))
    assert os.path.isfile(os.path.join(version.path, "assets.extra", "model_card.md"))
    assert tf.saved_model.load(version.path).signatures["serving_default"](x=tf.constant([1.0]))["y"].numpy() == [2.0]
    assert os.path.isfile(os.path.join(pushed.uri, "saved_model.pb"))  # TFX's archive copy
    assert sorted(os.listdir(base)) == [str(version.number)]  # no temporary copy left


def test_the_served_model_is_not_pushed_twice(model_uri, tmp_path):
    base = str(tmp_path / "models")
    pushed = _push(model_uri, base, tmp_path)
    first = _props(pushed)
    assert not pushed.has_custom_property(pusher.ALREADY_SERVED_KEY)
    again = _push(model_uri, base, tmp_path)
    assert _props(again) == first and again.get_int_custom_property(pusher.ALREADY_SERVED_KEY) == 1
    assert len(model_versions.versions(base)) == 1


def test_the_push_lines_fit_the_console_with_the_path_last(model_uri, tmp_path, caplog):
    """Found by exploratory testing: `[push] pushed version N to <path> (model card: ...)` was 131
    to 138 columns; the path goes last, so that the console puts it on a line of its own
    (runner/console.py fit_text) and the rest stays whole."""
    from runner import console

    base = str(tmp_path / "outputs" / "serving_model" / "recommender")
    with caplog.at_level("INFO", logger="recsys.push"):
        _push(model_uri, base, tmp_path)
        _push(model_uri, base, tmp_path)
    [version] = model_versions.versions(base)
    pushed, served = [r.getMessage() for r in caplog.records if r.name == "recsys.push"]
    assert pushed == (f"[push] pushed version {version.number} (model card: assets.extra/model_card.md) "
                      f"to {version.path}")
    assert served == f"[push] this model is already served as version {version.number}: no new version ({version.path})"
    assert console.fit_text(pushed) == [f"[push] pushed version {version.number} (model card: "
                                        "assets.extra/model_card.md) to", f"       {version.path}"]
    assert console.fit_text(served)[0] == (f"[push] this model is already served as version {version.number}: "
                                           "no new version")
    assert " ".join(line.strip() for line in console.fit_text(served)) == served  # every word, in order


def test_a_broken_version_of_the_same_model_does_not_count(model_uri, tmp_path, caplog):
    """The issue's poisoned run: a push cut short left fingerprint.pb but no saved_model.pb; the
    next run said `already served` and nothing ever repaired it."""
    base = str(tmp_path / "models")
    source = os.path.join(model_uri, "Format-Serving")
    shutil.copytree(source, os.path.join(base, "1700000000"), ignore=shutil.ignore_patterns("saved_model.pb"))
    with caplog.at_level("INFO", logger="recsys.push"):
        pushed = _push(model_uri, base, tmp_path)
    assert "1700000000 is not a complete version (no saved_model.pb): ignored" in caplog.text
    served = model_versions.served(base)
    assert served.number > 1700000000 and _props(pushed) == (1, served.path, str(served.number))
    assert os.path.isdir(os.path.join(base, "1700000000"))  # left for a person: it may be a copy by hand


def test_a_full_disk_leaves_no_version_and_says_so_in_one_line(model_uri, tmp_path, monkeypatch):
    base = str(tmp_path / "models")
    before = _props(_push(model_uri, base, tmp_path))
    copy = fileio.copy

    def full(src, dst, overwrite=False):
        if ".tmp-" in dst and ".data-" in dst:
            raise tf.errors.ResourceExhaustedError(None, None, f"{dst}; No space left on device")
        copy(src, dst, overwrite=overwrite)

    monkeypatch.setattr(fileio, "copy", full)
    monkeypatch.setattr(model_versions, "next_version", lambda base, now=None: 1800000000)  # a new number
    monkeypatch.setattr(pusher, "same_model", lambda a, b: False)  # as if retrained
    with pytest.raises(pusher.PushError) as e:
        _push(model_uri, base, tmp_path)
    message = str(e.value)
    assert "\n" not in message and "No space left on device" in message
    assert message.startswith(f"the model could not be pushed to {base}: ")
    assert isinstance(e.value.__cause__, tf.errors.ResourceExhaustedError)
    assert sorted(os.listdir(base)) == [before[2]]  # the served version, nothing else


def test_a_model_a_rollback_took_out_of_service_is_not_pushed_again(model_uri, tmp_path):
    """Found by exploratory testing: after `make rollback`, the next run on the same data rebuilt
    the withdrawn model bit for bit (the Trainer is deterministic) and pushed it again, undoing
    the rollback without a word."""
    from runner import versions

    def model(weight):
        uri = tmp_path / f"trainer-{weight:g}" / "model"
        testing.save_tiny_model(str(uri / "Format-Serving"), weight=weight)
        return str(uri)

    base = str(tmp_path / "models")
    good = int(_props(_push(model(5.0), base, tmp_path))[2])
    bad = int(_props(_push(model_uri, base, tmp_path))[2])
    copy = versions.rollback(base, good, reason="sales fell").number
    pushed = _push(model_uri, base, tmp_path)
    assert pushed.get_int_custom_property("pushed") == 0
    assert pushed.get_string_custom_property(pusher.WITHDRAWN_KEY) == str(bad)
    assert pushed.get_string_custom_property(pusher.NOT_PUSHED_KEY) == (
        f'this model is version {bad} again, which a rollback (version {copy}, a copy of {good}) took out '
        f'of service: "sales fell"; the served model is unchanged (`make rollback VERSION={bad} REASON="..."` '
        'serves it again)')
    assert model_versions.served(base).number == copy and len(model_versions.versions(base)) == 3
    assert _props(_push(model(7.0), base, tmp_path))[0] == 1  # another model is pushed as usual

    versions.rollback(base, bad, reason="the fall was the season")  # served again on purpose
    _push(model(9.0), base, tmp_path)  # and replaced by a newer model: no rollback withdrew it
    assert _props(_push(model_uri, base, tmp_path))[0] == 1


def test_a_model_that_is_not_blessed_is_not_pushed(model_uri, tmp_path):
    base = str(tmp_path / "models")
    pushed = _push(model_uri, base, tmp_path, blessed=False)
    assert pushed.get_int_custom_property("pushed") == 0 and not os.path.exists(base)


def test_a_model_exported_again_to_the_same_bits_is_the_same_model(model_uri, tmp_path):
    """Each export draws a new uuid in fingerprint.pb; the hashes are what tell models apart."""
    from tensorflow.core.protobuf import fingerprint_pb2

    def fingerprint(checkpoint_hash, uuid):
        return fingerprint_pb2.FingerprintDef(saved_model_checksum=1, graph_def_program_hash=2,
                                              checkpoint_hash=checkpoint_hash, uuid=uuid).SerializeToString()

    def version(name, data):
        path = tmp_path / name
        shutil.copytree(os.path.join(model_uri, "Format-Serving"), path)  # a complete version
        (path / pusher.FINGERPRINT).write_bytes(data)
        return str(path)

    served = version("1", fingerprint(3, "1111"))
    assert pusher.same_model(version("again", fingerprint(3, "2222")), served)
    assert not pusher.same_model(version("retrained", fingerprint(4, "2222")), served)


def _vocab_model(root, vocab_dir, words=("a", "b", "c"), weight=1.0, key="k1"):
    """A SavedModel whose lookup table reads a vocabulary file from `vocab_dir` (as Transform's
    do: TensorFlow names the table after the file's path), with its training.json."""
    os.makedirs(vocab_dir, exist_ok=True)
    vocab = os.path.join(vocab_dir, "user_vocab")
    with open(vocab, "w") as f:
        f.write("\n".join(words) + "\n")

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER), -1)
            self.weight = tf.Variable(weight)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, words):
            return tf.cast(self.table.lookup(words), tf.float32) * self.weight

    path = str(root)
    tf.saved_model.save(Module(), path)
    os.makedirs(os.path.join(path, "assets.extra"))
    with open(os.path.join(path, "assets.extra", "training.json"), "w") as f:
        json.dump({"training_key": key, "code_fingerprint": "c0de", "trained_at": str(root)}, f)
    return path


def test_the_same_model_exported_after_another_transform_run_is_the_same_model(tmp_path):
    """Found by exploratory testing: a rerun of Transform (--no-cache, or data the window does not
    read) moves the vocabulary files, and TensorFlow names the tables after their paths, so
    saved_model.pb differs; the model is the same and is not pushed again."""
    from tensorflow.core.protobuf import fingerprint_pb2

    served = _vocab_model(tmp_path / "served", tmp_path / "transform" / "6")
    again = _vocab_model(tmp_path / "again", tmp_path / "transform" / "38")
    fingerprints = [fingerprint_pb2.FingerprintDef.FromString(open(os.path.join(p, pusher.FINGERPRINT), "rb").read())
                    for p in (served, again)]
    assert fingerprints[0].saved_model_checksum != fingerprints[1].saved_model_checksum  # the paths
    assert fingerprints[0].checkpoint_hash == fingerprints[1].checkpoint_hash
    assert pusher.same_model(again, served)
    assert not pusher.same_model(_vocab_model(tmp_path / "weight", tmp_path / "t" / "1", weight=2.0), served)
    assert not pusher.same_model(_vocab_model(tmp_path / "words", tmp_path / "t" / "2", words=("a", "b", "d")),
                                 served)  # another vocabulary, the same variables
    assert not pusher.same_model(_vocab_model(tmp_path / "key", tmp_path / "t" / "3", key="k2"), served)
