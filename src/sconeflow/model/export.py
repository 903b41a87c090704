"""Export a trained :class:`~sconeflow.model.net.ProbabilityModel` to ONNX bytes (needs torch)."""

from __future__ import annotations

import io
import logging
import warnings

import torch

log = logging.getLogger(__name__)

ONNX_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


def export_onnx(model: torch.nn.Module, input_shape: tuple[int, int, int] = (3, 32, 32)) -> bytes:
    """The model as an ONNX graph: float32 ``input`` [N, C, H, W] -> ``probabilities`` [N, classes].

    Uses the TorchScript-based exporter (``dynamo=False``): torch 2.13's default exporter needs onnxscript.
    """
    model = model.to("cpu").eval()
    for param in model.parameters():
        param.data = param.data.contiguous()
    dummy = torch.zeros(2, *input_shape, dtype=torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            buffer,
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
    return buffer.getvalue()
