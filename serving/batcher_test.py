"""Server-side batching: concurrent requests merged into one call, each request gets its own rows,
a failing request fails alone, nothing is lost when a batcher closes."""

import threading

import numpy as np
import pytest

from serving.batcher import Batcher
from serving.status import ServingError


class Recorder:
    """A 'model' doubling its input; the first call waits until `gate` opens, so requests queue up."""

    def __init__(self):
        self.batches = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def __call__(self, inputs):
        self.started.set()
        self.gate.wait(10)
        x = inputs["x"]
        self.batches.append(len(x))
        if (x < 0).any():
            raise ServingError("INVALID_ARGUMENT", "negative input")
        return {"y": x * 2, "n": np.full(len(x), len(x))}


def test_concurrent_requests_are_merged_and_answered_with_their_own_rows():
    model = Recorder()
    batcher = Batcher(model, "t", max_batch_size=100, num_threads=1)
    first = batcher.submit({"x": np.array([0])})
    assert model.started.wait(10)
    futures = [batcher.submit({"x": np.array([i, i + 1000])}) for i in range(1, 11)]
    model.gate.set()
    assert first.result(10)["y"].tolist() == [0]
    for i, future in enumerate(futures, start=1):
        assert future.result(10)["y"].tolist() == [2 * i, 2 * (i + 1000)]
    assert model.batches == [1, 20]  # the first alone (it was running), the ten others together
    assert batcher.calls == 2 and batcher.requests == 11
    batcher.close()


def test_max_batch_size_bounds_a_merged_call():
    model = Recorder()
    batcher = Batcher(model, "t", max_batch_size=5, num_threads=1)
    futures = [batcher.submit({"x": np.array([i, i])}) for i in range(6)]
    model.gate.set()
    assert [f.result(10)["y"].tolist() for f in futures] == [[2 * i, 2 * i] for i in range(6)]
    assert max(model.batches) <= 5


def test_a_failing_request_fails_alone():
    model = Recorder()
    batcher = Batcher(model, "t", max_batch_size=100, num_threads=1)
    blocker = batcher.submit({"x": np.array([0])})
    assert model.started.wait(10)
    good = batcher.submit({"x": np.array([1])})
    bad = batcher.submit({"x": np.array([-1])})
    model.gate.set()
    assert blocker.result(10)["y"].tolist() == [0] and good.result(10)["y"].tolist() == [2]
    with pytest.raises(ServingError, match="negative input"):
        bad.result(10)


def test_requests_of_other_shapes_or_without_a_common_batch_are_not_merged():
    model = Recorder()
    batcher = Batcher(model, "t", max_batch_size=100, num_threads=1)
    blocker = batcher.submit({"x": np.array([0])})
    assert model.started.wait(10)
    a = batcher.submit({"x": np.array([[1, 2]])})
    b = batcher.submit({"x": np.array([3])})
    c = batcher.submit({"x": np.array([4])}, alone=True)
    model.gate.set()
    assert a.result(10)["y"].tolist() == [[2, 4]] and b.result(10)["y"].tolist() == [6]
    assert c.result(10)["y"].tolist() == [8] and blocker.result(10)
    assert sorted(model.batches) == [1, 1, 1, 1]


def test_without_merging_each_request_is_its_own_call():
    model = Recorder()
    model.gate.set()
    batcher = Batcher(model, "t", max_batch_size=100, num_threads=2, merge=False)
    futures = [batcher.submit({"x": np.array([i])}) for i in range(20)]
    assert [f.result(10)["y"].tolist() for f in futures] == [[2 * i] for i in range(20)]
    assert model.batches == [1] * 20


def test_close_finishes_queued_requests_and_answers_late_ones():
    model = Recorder()
    batcher = Batcher(model, "t", max_batch_size=100, num_threads=2)
    queued = [batcher.submit({"x": np.array([i])}) for i in range(5)]
    batcher.close()
    late = batcher.submit({"x": np.array([7])})  # its version was replaced while it was on its way
    model.gate.set()
    assert [f.result(10)["y"].tolist() for f in queued] == [[2 * i] for i in range(5)]
    assert late.result(10)["y"].tolist() == [14]
    batcher.join(10)


def test_a_request_its_client_gave_up_on_does_not_stop_the_signature():
    """Found by exploratory testing: gRPC calls past their deadline cancel their futures; setting
    the result of a cancelled future raised in the worker thread, which died, and the signature
    never answered again (while the model still said AVAILABLE)."""
    model = Recorder()
    batcher = Batcher(model, "t", max_batch_size=100, num_threads=1)
    running = batcher.submit({"x": np.array([1])})
    assert model.started.wait(10)
    queued = [batcher.submit({"x": np.array([i])}) for i in (2, 3)]
    assert not running.cancel()  # running: its client's cancel comes too late, it is answered
    assert queued[0].cancel()  # still waiting: left out of the next batch, never computed
    model.gate.set()
    assert running.result(10)["y"].tolist() == [2] and queued[1].result(10)["y"].tolist() == [6]
    assert model.batches == [1, 1]  # the cancelled request took no part
    assert batcher.submit({"x": np.array([4])}).result(10)["y"].tolist() == [8]  # still answering
    batcher.close()


def test_a_worker_survives_a_failure_outside_the_model():
    model = Recorder()
    model.gate.set()
    batcher = Batcher(model, "t", max_batch_size=100, num_threads=1)
    original, failures = batcher._execute, []

    def broken_once(batch):
        if not failures:
            failures.append(batch)
            raise RuntimeError("a bug in the batcher itself")
        original(batch)

    batcher._execute = broken_once
    with pytest.raises(RuntimeError, match="the batch of t failed"):
        batcher.submit({"x": np.array([1])}).result(10)
    assert batcher.submit({"x": np.array([2])}).result(10)["y"].tolist() == [4]
    batcher.close()
