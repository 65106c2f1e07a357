"""Version discovery and load failures (no TensorFlow model needed: the real loading is covered
end to end in tests/test_serving.py)."""

import logging
import os
import shutil
import threading
import time

import pytest

from serving import model_manager
from serving.status import ServingError


def _version(base, name, complete=True, content=b"not a SavedModel"):
    path = os.path.join(base, name)
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    if complete:
        with open(os.path.join(path, model_manager.SAVED_MODEL_FILE), "wb") as f:
            f.write(content)
    return path


def test_only_numbered_directories_with_a_saved_model_are_versions(tmp_path):
    base = str(tmp_path)
    _version(base, "1")
    _version(base, "2", complete=False)  # the Pusher is still copying: saved_model.pb comes last
    _version(base, "10")
    _version(base, "tmp-3")
    # names TF Serving does not read as an int64 (found by exploratory testing: one above int64's
    # largest broke the status endpoint, `²` stopped polling): not versions
    _version(base, str(2**63))
    _version(base, "²")
    _version(base, "012")  # version 12, as TF Serving reads it
    assert model_manager.find_versions(base) == {1: os.path.join(base, "1"), 10: os.path.join(base, "10"),
                                                 12: os.path.join(base, "012")}
    assert model_manager.find_versions(os.path.join(base, "missing")) == {}


def test_a_base_path_that_is_a_saved_model_is_version_1(tmp_path):
    path = _version(str(tmp_path), "model")
    assert model_manager.find_versions(path) == {1: path}


def test_a_version_that_fails_to_load_is_reported_and_not_retried(tmp_path, caplog):
    base = str(tmp_path)
    _version(base, "7")
    manager = model_manager.ModelManager("recommender", base, poll_seconds=60, max_num_load_retries=0)
    with caplog.at_level(logging.ERROR, logger="serving.model_manager"):
        manager.poll_once()
    assert manager.current is None
    assert "Loading servable version {name: recommender version: 7} failed" in caplog.text
    status = manager.status("recommender").model_version_status
    assert len(status) == 1 and status[0].version == 7
    assert status[0].state == model_manager.State.END
    assert status[0].status.error_code == 15  # DATA_LOSS, as TensorFlow's loader reports it
    assert status[0].status.error_message == f"Can't parse {os.path.join(base, '7', 'saved_model.pb')} as binary proto"
    with pytest.raises(ServingError) as e:
        manager.servable("recommender")
    assert e.value.code == "NOT_FOUND" and e.value.message == "Servable not found for request: Latest(recommender)"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="serving.model_manager"):
        manager.poll_once()  # same saved_model.pb: not loaded again
    assert "Loading" not in caplog.text


def test_status_errors_are_tf_servings(tmp_path):
    manager = model_manager.ModelManager("recommender", str(tmp_path), poll_seconds=60)
    with pytest.raises(ServingError, match="Could not find any versions of model recommender") as e:
        manager.status("recommender")
    assert e.value.http_status == 404
    with pytest.raises(ServingError, match="Could not find any versions of model other"):
        manager.status("other")
    with pytest.raises(ServingError, match="Could not find version 3 of model recommender"):
        manager.status("recommender", 3)
    with pytest.raises(ServingError, match="Could not find any versions of model $") as e:
        manager.status("")  # gRPC with an empty name (REST refuses it before: "Missing model name")
    assert e.value.code == "NOT_FOUND"
    with pytest.raises(ServingError, match="Unrecognized servable version label: stable"):
        manager.servable("recommender", label="stable")
    with pytest.raises(ServingError, match=r"Servable not found for request: Specific\(recommender, 3\)"):
        manager.servable("recommender", 3)


def test_status_lists_versions_newest_first(tmp_path):
    """GetModelStatusImpl walks ServableStateMonitor's VersionMap, a std::map ordered by
    std::greater<int64>: the newest version comes first."""
    base = str(tmp_path)
    for v in ("3", "12", "5"):
        _version(base, v)
    manager = model_manager.ModelManager("recommender", base, poll_seconds=60, max_num_load_retries=0)
    for v in (3, 12, 5):  # every one fails to load (not a SavedModel): each has a state
        manager._load(v, os.path.join(base, str(v)))
    assert [s.version for s in manager.status("recommender").model_version_status] == [12, 5, 3]


# --- load retries, as TF Serving's (util/retrier.cc) ------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from components import testing

    return testing.save_tiny_model(str(tmp_path_factory.mktemp("tiny") / "model"))


def _states(manager):
    return {s.version: (model_manager.State.Name(s.state), s.status.error_code)
            for s in manager.status("recommender").model_version_status}


def test_a_version_whose_files_arrive_late_is_served_once_complete(tmp_path, tiny, caplog):
    """The issue's case: saved_model.pb first, variables/ seconds later. The first load fails, the
    retries go on (LOADING, status OK), and the version is served once its files are there."""
    base = str(tmp_path)
    shutil.copytree(tiny, os.path.join(base, "1"))
    manager = model_manager.ModelManager("recommender", base, poll_seconds=0.05, max_num_load_retries=50,
                                         load_retry_interval_micros=100_000)
    manager.poll_once()
    assert manager.current.version == 1
    os.makedirs(os.path.join(base, "2"))
    shutil.copy(os.path.join(tiny, "saved_model.pb"), os.path.join(base, "2"))
    loader = threading.Thread(target=manager.poll_once)
    with caplog.at_level(logging.INFO, logger="serving.model_manager"):
        loader.start()
        deadline = time.time() + 30
        while "retry: 2" not in caplog.text and time.time() < deadline:
            time.sleep(0.05)
        assert _states(manager)[2] == ("LOADING", 0)  # TF Serving publishes nothing during retries
        assert manager.current.version == 1  # the old version serves meanwhile
        shutil.copytree(tiny, os.path.join(base, "2"), dirs_exist_ok=True)  # the rest arrives
        loader.join(30)
    assert manager.current.version == 2
    assert _states(manager) == {2: ("AVAILABLE", 0), 1: ("END", 0)}
    assert "version 1 keeps serving; retry 1 of 50 in 0.1 s" in caplog.text


def test_after_the_last_retry_the_version_ends_with_its_error_and_is_not_tried_again(tmp_path, caplog):
    base = str(tmp_path)
    _version(base, "3")
    manager = model_manager.ModelManager("recommender", base, poll_seconds=60, max_num_load_retries=2,
                                         load_retry_interval_micros=-1)
    with caplog.at_level(logging.INFO, logger="serving.model_manager"):
        manager.poll_once()
        assert caplog.text.count("Retrying of Loading servable version {name: recommender version: 3}") == 2
        assert "no version is serving; exhausted max_num_retries: 2" in caplog.text
        assert _states(manager) == {3: ("END", 15)}  # DATA_LOSS
        caplog.clear()
        manager.poll_once()
        assert "Loading" not in caplog.text
        _version(base, "3", content=b"another broken saved_model.pb")  # replaced: tried again
        manager.poll_once()
        assert "Loading servable version {name: recommender version: 3} from" in caplog.text


def test_retries_stop_when_a_newer_version_appears(tmp_path, tiny, caplog):
    """A rollback or a new push while a broken version is retried (every minute, by default) is
    loaded at once, not after the wait."""
    base = str(tmp_path)
    _version(base, "4")
    manager = model_manager.ModelManager("recommender", base, poll_seconds=0.05, max_num_load_retries=5,
                                         load_retry_interval_micros=60_000_000)
    loader = threading.Thread(target=manager.poll_once)
    with caplog.at_level(logging.INFO, logger="serving.model_manager"):
        loader.start()
        time.sleep(0.3)
        shutil.copytree(tiny, os.path.join(base, "5"))
        loader.join(10)
        assert not loader.is_alive()
        assert "retries stopped: it is no longer the newest version" in caplog.text
    manager.poll_once()
    assert manager.current.version == 5
    assert _states(manager)[4] == ("END", 15)


def _signature(**inputs):
    """A Signature over a SignatureDef whose inputs are alias=(tensor name, dtype), shape [-1]."""
    from tensorflow.core.protobuf import meta_graph_pb2
    definition = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for alias, (tensor, dtype) in inputs.items():
        definition.inputs[alias].name = tensor
        definition.inputs[alias].dtype = dtype
        definition.inputs[alias].tensor_shape.dim.add(size=-1)
    return model_manager.Signature("sig", definition, function=None)


def test_input_checks_are_tensorflows_and_tf_servings():
    import numpy as np
    from tensorflow.core.framework import types_pb2

    # the feeds are numbered by their sorted tensor names: "sig_a:0" (alias b) is arg 0
    signature = _signature(a=("sig_z:0", types_pb2.DT_INT64), b=("sig_a:0", types_pb2.DT_FLOAT))
    good = {"a": np.array([1], np.int64), "b": np.array([1.0], np.float32)}
    signature.check_inputs(good)
    cases = [
        ({**good, "b": np.array([1], np.int64)}, "Expects arg[0] to be float but int64 is provided"),
        ({**good, "a": np.array([b"x"], object)}, "Expects arg[1] to be int64 but string is provided"),
        ({"a": good["a"]}, "input size does not match signature: 1!=2 len({a}) != len({a,b}). Sent extra: {}. "
                           "Missing but required: {b}."),
        ({"a": good["a"], "c": good["b"]}, "Signature input alias: b(feed name: sig_a:0) not found in request and "
                                           "no default value provided. Inputs expected to be in the request {a,c}, "
                                           "or default input alias set: "),
        ({**good, "a": np.array([[1]], np.int64)}, "Input 'a' of signature 'sig' has shape [1,1] but the signature "
                                                   "expects [-1] (-1: any size)"),
    ]
    for inputs, message in cases:
        with pytest.raises(ServingError) as e:
            signature.check_inputs(inputs)
        assert (e.value.code, e.value.message) == ("INVALID_ARGUMENT", message)


def test_a_poll_wait_of_0_looks_once_at_start_up(tmp_path):
    """TF Serving's meaning of --file_system_poll_wait_seconds 0 (found by exploratory testing: it
    polled in a busy loop, most of a CPU on an idle server)."""
    manager = model_manager.ModelManager("recommender", str(tmp_path), poll_seconds=0)
    manager.start()
    try:
        assert manager._thread is None  # no poller: nothing runs between requests
    finally:
        manager.stop()
