"""Micro-batching: concurrent requests share model calls; a full queue sheds load at once."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from sconeflow.endpoint.batching import MicroBatcher
from sconeflow.endpoint.errors import ModelError, ThrottlingException


class GatedModel:
    """A stand-in model whose calls block until released (to control timing), recording batch sizes."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.sizes: list[int] = []

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.gate.wait(5)
        self.sizes.append(len(images))
        p = images.reshape(len(images), -1)[:, 0].astype(np.float32) / 255
        return np.stack([1 - p, p], axis=1)


def image(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, dtype=np.uint8)


def test_concurrent_requests_form_batches_and_get_their_own_answer() -> None:
    async def scenario() -> tuple[list, list[int]]:
        model = GatedModel()
        batcher = MicroBatcher(max_batch=8, max_queue=100)
        first = batcher.submit(model, image(0))  # occupies the model ...
        assert await asyncio.to_thread(model.entered.wait, 5)
        rest = [batcher.submit(model, image(v)) for v in range(1, 11)]  # ... while these queue up
        model.gate.set()
        results = await asyncio.gather(first, *rest)
        batcher.close()
        return results, model.sizes

    results, sizes = asyncio.run(scenario())
    assert sizes == [1, 8, 2]
    for value, prediction in enumerate(results):
        assert prediction.probabilities[1] == pytest.approx(value / 255)
    assert results[5].batch_size == 8


def test_full_queue_throttles_immediately() -> None:
    async def scenario() -> float:
        model = GatedModel()
        batcher = MicroBatcher(max_batch=4, max_queue=3)
        pending = [batcher.submit(model, image(1)) for _ in range(3)]
        started = time.perf_counter()
        with pytest.raises(ThrottlingException, match="Rate exceeded"):
            batcher.submit(model, image(1))
        elapsed = time.perf_counter() - started
        model.gate.set()
        await asyncio.gather(*pending)
        batcher.submit(model, image(1))  # room again
        batcher.close()
        return elapsed

    assert asyncio.run(scenario()) < 1.0  # refused at once, not after the 5 s the model is held


def test_model_failure_becomes_model_error_for_each_request() -> None:
    class Broken:
        def predict_proba(self, images: np.ndarray) -> np.ndarray:
            raise RuntimeError("graph exploded")

    async def scenario() -> None:
        batcher = MicroBatcher()
        with pytest.raises(ModelError, match="graph exploded") as info:
            await batcher.submit(Broken(), image(1))
        assert info.value.original_status == 500
        batcher.close()

    asyncio.run(scenario())


def test_batches_never_mix_models() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        a, b = GatedModel(), GatedModel()
        batcher = MicroBatcher(max_batch=16)
        futures = [batcher.submit(a, image(1)) for _ in range(3)] + [
            batcher.submit(b, image(2)) for _ in range(2)
        ]
        a.gate.set()
        b.gate.set()
        await asyncio.gather(*futures)
        batcher.close()
        return a.sizes, b.sizes

    sizes_a, sizes_b = asyncio.run(scenario())
    assert sum(sizes_a) == 3 and sum(sizes_b) == 2


def test_max_wait_lets_a_batch_fill() -> None:
    async def scenario() -> list[int]:
        model = GatedModel()
        model.gate.set()
        batcher = MicroBatcher(max_batch=4, max_wait=2.0)  # returns as soon as the batch is full
        first = batcher.submit(model, image(1))
        await asyncio.sleep(0.02)
        others = [batcher.submit(model, image(1)) for _ in range(3)]
        await asyncio.gather(first, *others)
        batcher.close()
        return model.sizes

    assert asyncio.run(scenario()) == [4]


def test_refill_waits_for_the_callers_of_the_last_batch() -> None:
    """After a batch, the next one waits (while they keep arriving) for as many requests as were in
    flight, instead of taking the first returning caller alone (sizes 1, 3, 1 without refill)."""

    async def scenario() -> list[int]:
        model = GatedModel()
        batcher = MicroBatcher(max_batch=8, refill_wait=5.0, refill_gap=1.0)
        first = batcher.submit(model, image(1))
        assert await asyncio.to_thread(model.entered.wait, 5)
        queued = [batcher.submit(model, image(2)) for _ in range(3)]  # arrive while the model runs
        model.gate.set()
        await first  # 1 answered, 3 queued: the next batch expects 4 ...
        await asyncio.sleep(0.05)
        late = batcher.submit(model, image(3))  # ... and takes the returning caller with the others
        await asyncio.gather(*queued, late)
        batcher.close()
        return model.sizes

    assert asyncio.run(scenario()) == [1, 4]


def test_refill_never_delays_a_lone_caller() -> None:
    async def scenario() -> tuple[float, list[int]]:
        model = GatedModel()
        model.gate.set()
        batcher = MicroBatcher(max_batch=8, refill_wait=5.0, refill_gap=2.0)
        started = time.perf_counter()
        for value in range(5):  # one caller, one request at a time
            await batcher.submit(model, image(value))
        elapsed = time.perf_counter() - started
        batcher.close()
        return elapsed, model.sizes

    elapsed, sizes = asyncio.run(scenario())
    assert sizes == [1] * 5
    assert elapsed < 2.0  # no request waited for the 2 s arrival gap


def test_refill_gives_up_when_callers_stop_coming() -> None:
    async def scenario() -> list[int]:
        model = GatedModel()
        batcher = MicroBatcher(max_batch=8, refill_wait=5.0, refill_gap=0.05)
        first = batcher.submit(model, image(1))
        assert await asyncio.to_thread(model.entered.wait, 5)
        queued = [batcher.submit(model, image(2)) for _ in range(5)]
        model.gate.set()
        await first  # the next batch expects 6, but only the 5 queued ever come
        await asyncio.gather(*queued)
        batcher.close()
        return model.sizes

    assert asyncio.run(scenario()) == [1, 5]


class OverlapModel:
    """A stand-in model that takes a while per call and records how many calls ran at once, and where."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.sizes: list[int] = []
        self.threads: list[str] = []

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.sizes.append(len(images))
            self.threads.append(threading.current_thread().name)
        time.sleep(self.seconds)  # releases the GIL, as ONNX Runtime does
        with self.lock:
            self.running -= 1
        p = images.reshape(len(images), -1)[:, 0].astype(np.float32) / 255
        return np.stack([1 - p, p], axis=1)


def test_workers_run_batches_side_by_side_each_taking_its_share() -> None:
    async def scenario() -> tuple[list, OverlapModel, MicroBatcher]:
        model = OverlapModel()
        batcher = MicroBatcher(max_batch=64, max_queue=100, workers=2)
        results = await asyncio.gather(*[batcher.submit(model, image(v)) for v in range(32)])
        batcher.close()
        return results, model, batcher

    results, model, batcher = asyncio.run(scenario())
    for value, prediction in enumerate(results):
        assert prediction.probabilities[1] == pytest.approx(value / 255)
    assert sum(model.sizes) == 32
    assert model.most_at_once == 2  # both workers computed at once ...
    assert max(model.sizes) <= 8  # ... each at most its share: 32 in flight / (2 workers x 2 batches)
    assert set(model.threads) == {"inference-0", "inference-1"}
    assert not any(thread.is_alive() for thread in batcher._threads)


def test_a_lone_caller_stays_on_the_worker_that_idled_last() -> None:
    """Wake-ups are last-in first-out: one caller at a time keeps one warm worker (FIFO alternated)."""

    async def scenario() -> list[str]:
        model = OverlapModel(seconds=0.001)
        batcher = MicroBatcher(max_batch=8, refill_wait=0.004, workers=2)
        for value in range(10):
            await batcher.submit(model, image(value))
            await asyncio.sleep(0.005)  # the caller's round trip: the worker is back waiting by then
        batcher.close()
        return model.threads

    threads = asyncio.run(scenario())
    assert len(threads) == 10 and len(set(threads)) == 1


def test_workers_share_the_queue_under_closed_loop_load_without_losing_a_request() -> None:
    """Workers waiting (max_wait, refill) while another takes the queue: every request is answered and no
    worker thread dies (one did: it woke to an empty queue and indexed it)."""

    async def scenario() -> tuple[int, int, MicroBatcher]:
        model = OverlapModel(seconds=0.002)
        batcher = MicroBatcher(max_batch=16, max_wait=0.002, refill_wait=0.004, refill_gap=0.001, workers=2)
        answered = 0
        deadline = time.perf_counter() + 0.6

        async def caller(value: int) -> None:
            nonlocal answered
            while time.perf_counter() < deadline:
                prediction = await batcher.submit(model, image(value))
                assert prediction.probabilities[1] == pytest.approx(value / 255)
                answered += 1

        await asyncio.gather(*[caller(v) for v in range(40)])
        alive = sum(thread.is_alive() for thread in batcher._threads)
        batcher.close()
        return answered, alive, batcher

    answered, alive, batcher = asyncio.run(scenario())
    assert answered > 40
    assert alive == 2
    assert not any(thread.is_alive() for thread in batcher._threads)


def test_workers_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="workers"):
        MicroBatcher(workers=0)
