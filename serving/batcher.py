"""Server-side batching: concurrent requests to one signature merged into one TensorFlow call, as
TF Serving's `--enable_batching` does (its BatchingSession with a shared batch scheduler).

Each request is a dict of input arrays sharing dimension 0 (its rows). Worker threads take the
first waiting request, then every request already queued behind it (up to `max_batch_size` rows
in all, waiting at most `batch_timeout_micros` for more: 0 means take what is there and go),
concatenate their inputs on dimension 0, call the signature once and hand each request its own
rows of every output. With one client nothing waits; with many, the requests that arrive while a
call runs form the next batch. Without merging (`merge=False`) the same threads run each request
on its own: concurrency without batching.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import threading
import time
from typing import Callable, Deque, Dict, List, Optional

import numpy as np

from serving.status import from_exception

log = logging.getLogger(__name__)

Arrays = Dict[str, np.ndarray]
_STOP = object()
# Requests that reach a batcher already closed (its version was replaced while they were on their
# way) run here, one by one: rare, and never lost.
_LATE = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="late-request")


class _Task:
    __slots__ = ("inputs", "rows", "key", "future", "alone")

    def __init__(self, inputs: Arrays, alone: bool):
        self.inputs = inputs
        self.alone = alone  # inputs without a common dimension 0: never merged
        self.rows = 0 if alone else next(iter(inputs.values())).shape[0]
        # only requests whose inputs agree on everything but dimension 0 can be concatenated
        self.key = tuple((n, a.shape[1:], a.dtype.str) for n, a in sorted(inputs.items()))
        self.future: concurrent.futures.Future = concurrent.futures.Future()


class Batcher:
    def __init__(self, run: Callable[[Arrays], Arrays], name: str, max_batch_size: int,
                 batch_timeout_micros: int = 0, num_threads: int = 1, merge: bool = True):
        self._run = run
        self.name = name
        self.max_batch_size = max_batch_size
        self.timeout = batch_timeout_micros / 1e6
        self.merge = merge
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self.calls = 0  # TensorFlow calls made, and the requests they served: the batching figure
        self.requests = 0
        self._threads = [threading.Thread(target=self._work, name=f"batch-{name}-{i}", daemon=True)
                         for i in range(num_threads)]
        for t in self._threads:
            t.start()

    def submit(self, inputs: Arrays, alone: bool = False) -> concurrent.futures.Future:
        """The outputs of `inputs` (rows on dimension 0), computed alone or with others."""
        task = _Task(inputs, alone)
        with self._lock:
            if not self._closed:
                self._queue.put(task)
                return task.future
        return _LATE.submit(self._call_one, task)

    def close(self) -> None:
        """Finishes every request already submitted, then stops the threads."""
        with self._lock:
            self._closed = True
            self._queue.put(_STOP)

    def join(self, timeout: Optional[float] = None) -> None:
        for t in self._threads:
            t.join(timeout)

    def _call_one(self, task: _Task) -> Arrays:
        try:
            return self._run(task.inputs)
        except Exception as e:  # noqa: BLE001 - handed to the request, with its status code
            raise from_exception(e) from e

    def _work(self) -> None:
        pending: Deque[_Task] = collections.deque()  # taken from the queue but not batchable yet
        stopping = False
        while True:
            if pending:
                first = pending.popleft()
            elif stopping:
                self._queue.put(_STOP)  # let the other threads see it too
                return
            else:
                first = self._queue.get()
                if first is _STOP:
                    stopping = True
                    continue
            batch, rows = [first], first.rows
            if self.merge and not first.alone:
                # called within this iteration only, so first and rows are this batch's (B023)
                def fits(task):
                    return (not task.alone and task.key == first.key  # noqa: B023
                            and rows + task.rows <= self.max_batch_size)  # noqa: B023

                for _ in range(len(pending)):  # what earlier batches could not take, once each
                    task = pending.popleft()
                    if fits(task):
                        batch.append(task)
                        rows += task.rows
                    else:
                        pending.append(task)
                deadline = time.monotonic() + self.timeout
                while rows < self.max_batch_size:
                    try:
                        wait = deadline - time.monotonic()
                        task = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if task is _STOP:
                        stopping = True
                        break
                    if fits(task):
                        batch.append(task)
                        rows += task.rows
                    else:
                        pending.append(task)
                        if rows + task.rows > self.max_batch_size:
                            break
            try:
                self._execute(batch)
            except Exception:  # noqa: BLE001 - a worker never dies: its signature would stop answering
                log.exception("batch of %d requests to %s failed", len(batch), self.name)
                for task in batch:
                    if not task.future.done():
                        task.future.set_exception(RuntimeError(f"the batch of {self.name} failed"))

    def _execute(self, batch: List[_Task]) -> None:
        # a request its client gave up on (a gRPC deadline, a closed connection) was cancelled:
        # it is left out; the others can no longer be cancelled, so setting their result is safe
        batch = [task for task in batch if task.future.set_running_or_notify_cancel()]
        if not batch:
            return
        rows = sum(task.rows for task in batch)
        self.calls += 1
        self.requests += len(batch)
        if len(batch) == 1:
            task = batch[0]
            try:
                task.future.set_result(self._run(task.inputs))
            except Exception as e:  # noqa: BLE001
                task.future.set_exception(from_exception(e))
            return
        try:
            merged = {name: np.concatenate([t.inputs[name] for t in batch]) for name in batch[0].inputs}
            outputs = self._run(merged)
            bad = [n for n, a in outputs.items() if a.ndim == 0 or a.shape[0] != rows]
            if bad:
                raise RuntimeError(f"outputs {bad} are not batched on dimension 0: run alone")
        except Exception as e:  # noqa: BLE001
            log.debug("batch of %d failed (%s): each request runs alone", len(batch), e)
            for task in batch:  # one bad request must not fail the others
                try:
                    task.future.set_result(self._run(task.inputs))
                except Exception as e2:  # noqa: BLE001
                    task.future.set_exception(from_exception(e2))
            return
        start = 0
        for task in batch:
            end = start + task.rows
            task.future.set_result({n: a[start:end] for n, a in outputs.items()})
            start = end

