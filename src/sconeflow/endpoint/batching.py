"""Dynamic micro-batching: concurrent requests share one model call, off the event loop.

Requests (already decoded to uint8 H x W x 3) are appended to a bounded queue. One inference thread takes
whatever is waiting, up to ``max_batch`` items, optionally waits up to ``max_wait`` for more, runs the
model once, and resolves every request's future with one wake-up of the event loop. While a batch runs,
new requests queue up and form the next batch, so batches grow with the load and a lone request never
waits (with ``max_wait`` 0, the default).

The queue is bounded by ``max_queue`` requests (queued + running): beyond it ``submit`` raises
:class:`~sconeflow.endpoint.errors.ThrottlingException` immediately, so an overloaded endpoint answers
fast errors instead of letting latency grow without limit.

Items carry the model they were prepared for; a batch never mixes models, so a model swap
(``endpoint update``) lets queued requests finish on the model they were decoded for.

**Refill** (``refill_wait`` > 0): the clients of a batch that just finished usually come straight back
(closed-loop callers: the SDK, a Lambda, a load generator). Taking only the first of them at once makes
batch sizes oscillate (31, 1, 31, 1, ...: every other model call is nearly wasted and every other
request waits a whole extra batch). So after a batch of N, while fewer than the N + (already queued)
expected requests are queued, the thread waits, but only while they keep arriving (at most
``refill_gap``, 5 ms, between two arrivals) and never longer than ``refill_wait`` in all. A lone caller
(N = 1, one queued) never waits, and neither does a request after an idle spell.

**Workers** (``workers`` > 1): that many inference threads take batches from the one queue, each running
its batch on a single-threaded model session (see ``endpoint/runtime.py``). On a small CPU this beats one
thread with intra-op parallelism: measured on the 2-core VM with the default net, two single-threaded
calls at once ran 25-27% more images per second than one two-threaded call, and a third thread taking a
share of the CPU (the event loop decoding the next requests) no longer stalls the other core at a
parallel-for barrier. A worker takes at most its share of the requests in flight
(``ceil((queued, or its last batch's returning callers, + running) / (workers x BATCHES_PER_WORKER))``),
so a closed loop of 32 callers settles into batches of ~8: two computing while the callers of the other
two come back, rather than one batch of 32 and an idle worker. Waiting workers are woken last-in
first-out (a lone caller keeps one warm thread), and a worker that leaves requests queued wakes another.

Results go back to the event loop with one ``call_soon_threadsafe`` per batch; each request is answered
by a plain callback (``enqueue``) or an asyncio future (``submit``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sconeflow.endpoint.errors import ModelError, ThrottlingException

log = logging.getLogger(__name__)

# With several workers, the requests in flight are cut into this many batches per worker: while a worker
# computes one, the callers of its last batch come back through the event loop and form the next, so no
# worker waits for them (a single-threaded session costs the same per image from batch 1 to 64).
BATCHES_PER_WORKER = 2


class Predictor(Protocol):
    def predict_proba(self, images: np.ndarray) -> np.ndarray: ...


Done = Callable[[Any, bool], None]  # (Prediction or ModelError, ok), called on the event-loop thread


@dataclass(slots=True)
class _Item:
    model: Predictor
    image: np.ndarray
    done: Done


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # float32 [C]
    model_seconds: float  # the model call's duration for the whole batch
    batch_size: int


class MicroBatcher:
    """``workers`` inference threads serving one bounded queue of single-image requests."""

    def __init__(
        self,
        *,
        max_batch: int = 64,
        max_wait: float = 0.0,
        max_queue: int = 256,
        refill_wait: float = 0.0,
        refill_gap: float = 0.005,
        workers: int = 1,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if (
            max_batch < 1
            or max_queue < 1
            or max_wait < 0
            or refill_wait < 0
            or refill_gap <= 0
            or workers < 1
        ):
            raise ValueError("max_batch, max_queue and workers must be >= 1, max_wait and refill_wait >= 0")
        self.max_batch = max_batch
        self.workers = workers
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.refill_wait = refill_wait
        self.refill_gap = refill_gap
        self._expected = 0  # requests likely to be queued soon: the last batch's callers + those queued
        self._last_arrival = 0.0
        self._on_batch = on_batch
        self._items: deque[_Item] = deque()
        self._lock = threading.Lock()  # the queue's; each worker waits on a condition of its own over it
        # Waiting workers, the most recent last: a new request wakes the one that idled last (its thread
        # and the model's memory are warm; with FIFO wake-ups a lone caller alternated between workers).
        self._waiters: list[threading.Condition] = []
        self._running = 0  # items in the batches being computed (all workers)
        self._idle_workers = 0  # workers waiting for the queue to have anything at all
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads = [
            threading.Thread(target=self._run, name=f"inference-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def depth(self) -> int:
        """Requests queued or being computed."""
        return len(self._items) + self._running

    def submit(self, model: Predictor, image: np.ndarray) -> asyncio.Future[Any]:
        """Queue one image; await the returned future for a :class:`Prediction`. Event-loop thread only."""
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.enqueue(model, image, lambda value, ok: _settle(future, value, ok))
        return future

    def enqueue(self, model: Predictor, image: np.ndarray, done: Done) -> None:
        """Queue one image; ``done(Prediction, True)`` or ``done(ModelError, False)`` is called later on
        the event-loop thread. Raises ThrottlingException at once when the queue is full. Loop thread only.
        """
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._closed:
            raise ThrottlingException("The endpoint is shutting down; retry on another endpoint")
        items = self._items
        if len(items) + self._running >= self.max_queue:
            raise ThrottlingException(
                f"Rate exceeded: {self.max_queue} requests are already queued for this endpoint; retry later"
            )
        with self._lock:
            items.append(_Item(model, image, done))
            self._last_arrival = time.perf_counter()
            # Wake the thread only when it can act: the first item of an idle queue, or a full batch
            # (while refilling it wakes by itself after at most ``refill_gap``).
            # An idle worker (another may be busy) takes the queue as it forms.
            if (
                len(items) == 1
                or len(items) >= self.max_batch
                or len(items) >= self._expected
                or self._idle_workers
            ):
                self._wake_one()

    # -- inference thread -------------------------------------------------------------------
    def _wait(self, wake: threading.Condition, timeout: float | None = None) -> None:
        """Wait (lock held) until notified or ``timeout``, as the most recent of the waiting workers."""
        self._waiters.append(wake)
        try:
            wake.wait(timeout)
        finally:
            if wake in self._waiters:  # (a notified worker was already taken off the stack)
                self._waiters.remove(wake)

    def _wake_one(self) -> None:
        """Notify the worker that started waiting last (lock held); it leaves the stack at once, so the
        next notification goes to another worker."""
        if self._waiters:
            self._waiters.pop().notify()

    def _take_batch(self, expected: int, wake: threading.Condition) -> list[_Item] | None:
        """The next batch for one worker; ``expected``: its last batch's size + those queued then."""
        with self._lock:
            while True:
                while not self._items:
                    if self._closed:
                        return None
                    self._idle_workers += 1
                    try:
                        self._wait(wake)
                    finally:
                        self._idle_workers -= 1
                limit = self._share(expected)
                if self.max_wait > 0 and len(self._items) < limit:
                    deadline = time.perf_counter() + self.max_wait
                    while len(self._items) < limit and not self._closed:
                        left = deadline - time.perf_counter()
                        if left <= 0:
                            break
                        self._wait(wake, left)
                target = min(limit, expected)
                if self.refill_wait > 0 and len(self._items) < target:
                    self._refill(target, wake)
                if self._items:  # (another worker may have taken them while this one waited)
                    break
            first = self._items[0].model
            batch: list[_Item] = []
            while self._items and len(batch) < limit and self._items[0].model is first:
                batch.append(self._items.popleft())
            self._running += len(batch)
            if self._items and self._idle_workers:
                self._wake_one()  # what this worker left is another's share
            return batch

    def _share(self, expected: int) -> int:
        """The most one worker takes now (lock held): all of ``max_batch`` alone, else its fair share."""
        if self.workers == 1:
            return self.max_batch
        in_flight = max(len(self._items), expected) + self._running
        return max(1, min(self.max_batch, -(-in_flight // (self.workers * BATCHES_PER_WORKER))))

    def _refill(self, target: int, wake: threading.Condition) -> None:
        """Wait (lock held by the caller) while the last batch's callers keep coming back."""
        now = time.perf_counter()
        deadline = now + self.refill_wait
        while len(self._items) < target and not self._closed:
            # the gap counts from the later of the last arrival and the start of this wait: requests that
            # queued while the model ran arrived long ago, and the answered callers need a moment to return
            gap_end = max(self._last_arrival, deadline - self.refill_wait) + self.refill_gap
            if now >= gap_end or now >= deadline:
                return
            self._wait(wake, min(gap_end, deadline) - now)
            now = time.perf_counter()

    def _run(self) -> None:
        expected = 0
        wake = threading.Condition(self._lock)
        while True:
            batch = self._take_batch(expected, wake)
            if batch is None:
                return
            try:
                results = self._compute(batch)
            finally:
                with self._lock:  # counted before any caller is answered (and can come back)
                    self._running -= len(batch)
                    expected = self._expected = len(batch) + len(self._items)
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(_resolve_all, results)

    def _compute(self, batch: list[_Item]) -> list[tuple[Done, Any, bool]]:
        model = batch[0].model
        results: list[tuple[Done, Any, bool]] = []
        started = time.perf_counter()
        try:
            images = np.stack([item.image for item in batch])
            probs = np.asarray(model.predict_proba(images), dtype=np.float32)
            if probs.ndim != 2 or probs.shape[0] != len(batch):
                raise RuntimeError(f"model returned shape {probs.shape} for a batch of {len(batch)}")
            elapsed = time.perf_counter() - started
            for i, item in enumerate(batch):
                results.append((item.done, Prediction(probs[i], elapsed, len(batch)), True))
        except Exception as exc:
            elapsed = time.perf_counter() - started
            log.exception("inference failed for a batch of %d", len(batch))
            error = ModelError(
                f'Received server error (500) from primary with message "{type(exc).__name__}: {exc}"',
                original_status=500,
                original_message=f"{type(exc).__name__}: {exc}",
            )
            results = [(item.done, error, False) for item in batch]
        if self._on_batch is not None:
            try:
                self._on_batch(len(batch), elapsed)
            except Exception:
                log.exception("batch observer failed")
        return results

    def close(self, timeout: float = 30.0) -> None:
        """Finish the queued requests, then stop the inference thread."""
        with self._lock:
            self._closed = True
            while self._waiters:
                self._wake_one()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _resolve_all(results: list[tuple[Done, Any, bool]]) -> None:
    for done, value, ok in results:
        try:
            done(value, ok)
        except Exception:  # one caller's failure must not leave the others of the batch unanswered
            log.exception("a batch result callback failed")


def _settle(future: asyncio.Future[Any], value: Any, ok: bool) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
