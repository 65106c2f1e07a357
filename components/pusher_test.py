"""DedupPusher's version logic: which version is the newest, when a model is the one served, and
the push it records instead of copying."""

import os

from tfx.types import standard_artifacts

from components import pusher


def _version(base, name, fingerprint=None):
    path = os.path.join(base, name)
    os.makedirs(path)
    if fingerprint is not None:
        with open(os.path.join(path, pusher.FINGERPRINT), "wb") as f:
            f.write(fingerprint)
    return path


def test_newest_version_is_the_largest_number(tmp_path):
    base = str(tmp_path)
    assert pusher.newest_version(os.path.join(base, "missing")) is None
    assert pusher.newest_version(base) is None
    for name in ("9", "1700000000", "200", "tmp-1800000000", "latest"):
        _version(base, name)
    assert pusher.newest_version(base) == "1700000000"  # numbers compare as numbers, others ignored


def test_same_model_compares_the_savedmodel_fingerprints(tmp_path):
    base = str(tmp_path)
    served = _version(base, "1", b"abc")
    assert pusher.same_model(_version(base, "candidate-a", b"abc"), served)
    assert not pusher.same_model(_version(base, "candidate-b", b"abd"), served)
    assert not pusher.same_model(_version(base, "candidate-c"), served)  # no fingerprint: push


def test_a_model_exported_again_to_the_same_bits_is_the_same_model(tmp_path):
    """Each export draws a new uuid in fingerprint.pb; the hashes are what tell models apart."""
    from tensorflow.core.protobuf import fingerprint_pb2

    def fingerprint(checkpoint_hash, uuid):
        return fingerprint_pb2.FingerprintDef(saved_model_checksum=1, graph_def_program_hash=2,
                                              checkpoint_hash=checkpoint_hash, uuid=uuid).SerializeToString()

    base = str(tmp_path)
    served = _version(base, "1", fingerprint(3, "1111"))
    assert pusher.same_model(_version(base, "again", fingerprint(3, "2222")), served)
    assert not pusher.same_model(_version(base, "retrained", fingerprint(4, "2222")), served)


def test_mark_pushed_records_what_tfx_pusher_records(tmp_path):
    model_push = standard_artifacts.PushedModel()
    pusher.mark_pushed(model_push, str(tmp_path / "123"), "123")
    assert model_push.get_int_custom_property("pushed") == 1
    assert model_push.get_string_custom_property("pushed_destination") == str(tmp_path / "123")
    assert model_push.get_string_custom_property("pushed_version") == "123"
