"""The serving session: the artifact's ONNX graph on ONNX Runtime, tuned for a server process.

The training stage's :class:`~sconeflow.model.artifact.OnnxClassifier` gives the metadata and the input
normalization; here the graph gets its own session with intra-op thread *spinning disabled*. ONNX Runtime's
worker threads otherwise busy-wait after every call, and in a server they compete with the event loop for the
same cores: measured on the 2-core VM with the default ~2M-parameter net, spinning costs 1.5-2.3x the CPU per
image at batch 1 and ~1.25x at batch 32 (see docs/endpoint.md).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class ServingClassifier:
    """``predict_proba(uint8 NHWC) -> float32 [N, C]`` on a server-tuned session (same graph, same math)."""

    def __init__(
        self, classifier: Any, onnx_bytes: bytes, *, intra_op_threads: int, allow_spinning: bool
    ) -> None:
        import onnxruntime as ort

        self.classifier = classifier
        self.classes: list[str] = list(classifier.classes)
        self.input_shape: tuple[int, int, int] = tuple(classifier.input_shape)  # type: ignore[assignment]
        self.resize_method: str = getattr(classifier, "resize_method", "bilinear")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        x = self.classifier.normalize(images)
        return np.asarray(self._session.run(None, {self._input_name: x})[0], dtype=np.float32)


def load_serving_classifier(
    data: bytes, *, intra_op_threads: int, allow_spinning: bool = False
) -> ServingClassifier:
    """Artifact bytes -> a :class:`ServingClassifier` (validated by the training stage's loader)."""
    from sconeflow.model.artifact import OnnxClassifier, read_artifact

    onnx_bytes, metadata = read_artifact(data)
    classifier = OnnxClassifier(onnx_bytes, metadata, intra_op_threads=1)
    return ServingClassifier(
        classifier, onnx_bytes, intra_op_threads=intra_op_threads, allow_spinning=allow_spinning
    )
