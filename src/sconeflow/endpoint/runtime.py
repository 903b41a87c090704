"""The serving session: the artifact's ONNX graph on ONNX Runtime, tuned for a server process.

The training stage's :class:`~sconeflow.model.artifact.OnnxClassifier` gives the metadata and the input
normalization; here the graph gets sessions of its own, chosen per batch by its size:

- large batches (busy endpoint) run on a session with intra-op thread *spinning disabled*. Spinning worker
  threads busy-wait after every call and, in a server, compete with the event loop for the same cores:
  measured on the 2-core VM with the default ~2M-parameter net, spinning cost 1.5-2.3x the CPU per image at
  batch 1 and ~1.25x at batch 32, and under 10x overload it starved the clients (docs/endpoint.md);
- small batches (up to ``spin_max_batch`` images: a lightly loaded endpoint, where latency is all that
  matters and the cores are idle anyway) run on a second session whose threads spin. Without it each call
  first wakes a sleeping worker thread, which on a virtual machine can cost more than the model itself
  (c=1 on a Firecracker VM: 2.8-4.4 ms per request without spinning, 2.1-2.3 ms with; raw batch-1 1.6 ms).

With several inference workers (``workers`` > 1, see ``endpoint/batching.py``) the large-batch session
gets ``intra_op_threads // workers`` threads (one each on a 2-core machine) and the workers run it at the
same time (ONNX Runtime sessions are safe to run concurrently); the spinning small-batch session is used
only at light load (no other call running, nor overlapping one in the last ``OVERLAP_QUIET_SECONDS``), so
its spinning threads never compete with another worker's batch: without that rule, concurrency 8 (batches
of 2 under load) ran ~20% slower than one worker.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from sconeflow.model.artifact import OnnxClassifier, cpu_session, read_artifact

log = logging.getLogger(__name__)

OVERLAP_QUIET_SECONDS = 0.05  # the spinning session waits this long after two calls last overlapped


class ServingClassifier:
    """``predict_proba(uint8 NHWC) -> float32 [N, C]`` on server-tuned sessions (same graph, same math)."""

    def __init__(
        self,
        classifier: Any,
        onnx_bytes: bytes,
        *,
        intra_op_threads: int,
        allow_spinning: bool,
        spin_max_batch: int = 0,
        workers: int = 1,
    ) -> None:
        self.classifier = classifier
        self.classes: list[str] = list(classifier.classes)
        self.input_shape: tuple[int, int, int] = tuple(classifier.input_shape)  # type: ignore[assignment]
        self.resize_method: str = getattr(classifier, "resize_method", "bilinear")
        self.workers = max(1, workers)
        self.bulk_threads = max(1, intra_op_threads // self.workers)
        self._session = cpu_session(onnx_bytes, self.bulk_threads, spinning=allow_spinning)
        self._input_name = self._session.get_inputs()[0].name
        # One thread has no worker to wake; with spinning on everywhere, one session serves all sizes.
        self.spin_max_batch = spin_max_batch if intra_op_threads > 1 and not allow_spinning else 0
        self._small = self._session
        if self.spin_max_batch > 0:
            self._small = cpu_session(onnx_bytes, intra_op_threads, spinning=True)
        self._active = 0  # predict_proba calls running (one per busy worker)
        self._last_overlap = -OVERLAP_QUIET_SECONDS  # when two calls last ran at once (perf_counter)
        self._lock = threading.Lock()

    def session_for(self, batch: int, *, alone: bool = True) -> Any:
        """The session a batch of this many images runs on (``alone``: no other call is running)."""
        return self._small if alone and batch <= self.spin_max_batch else self._session

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        x = self.classifier.normalize(images)
        with self._lock:
            self._active += 1
            now = time.perf_counter()
            if self._active > 1:
                self._last_overlap = now
            # "Alone" means light load: no other call now, nor within the last moment (under load the
            # workers' small batches overlap all the time, and a spinning run would compete with them).
            alone = now - self._last_overlap >= OVERLAP_QUIET_SECONDS
        try:
            session = self.session_for(len(x), alone=alone)
            return np.asarray(session.run(None, {self._input_name: x})[0], dtype=np.float32)
        finally:
            with self._lock:
                self._active -= 1


def load_serving_classifier(
    data: bytes,
    *,
    intra_op_threads: int,
    allow_spinning: bool = False,
    spin_max_batch: int = 0,
    workers: int = 1,
) -> ServingClassifier:
    """Artifact bytes -> a :class:`ServingClassifier` (validated by the training stage's loader)."""
    onnx_bytes, metadata = read_artifact(data)
    classifier = OnnxClassifier(onnx_bytes, metadata, intra_op_threads=1)
    return ServingClassifier(
        classifier,
        onnx_bytes,
        intra_op_threads=intra_op_threads,
        allow_spinning=allow_spinning,
        spin_max_batch=spin_max_batch,
        workers=workers,
    )
