"""The model artifact: ``model.tar.gz`` = ``model.onnx`` + ``model.json``. Safe to load, no torch.

Loading never unpacks to disk and never unpickles: the tarball must hold exactly two regular files
(``model.onnx`` and ``model.json``, optionally under ``./``), each read into memory within a size limit;
the ONNX graph runs on onnxruntime. ``model.json`` describes the input (shape, layout, normalization),
the preprocessing of images of other sizes, the classes in output order, metrics and training parameters.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import math
import os
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sconeflow.config import Settings, load_settings
from sconeflow.model.errors import InvalidImage, InvalidModelArtifact, ModelNotFound

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = "sconeflow-image-classifier"
FORMAT_VERSION = 1
ONNX_NAME = "model.onnx"
META_NAME = "model.json"
MAX_ONNX_BYTES = 512 * 1024 * 1024
MAX_META_BYTES = 4 * 1024 * 1024
MAX_ARTIFACT_BYTES = MAX_ONNX_BYTES + MAX_META_BYTES
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
DEFAULT_THREADS = 2
RESIZE_METHODS = ("bilinear", "bicubic", "nearest", "lanczos", "box")


def artifact_key(job_name: str) -> str:
    """Where a training job's artifact lives in the bucket (like SageMaker's output path)."""
    return f"models/{job_name}/output/model.tar.gz"


# -- writing ------------------------------------------------------------------------------------


def build_artifact(onnx_bytes: bytes, metadata: dict[str, Any]) -> bytes:
    """A deterministic ``model.tar.gz`` (fixed mtimes, no owner names) from the graph and metadata."""
    validate_metadata(metadata)
    meta_bytes = (json.dumps(metadata, indent=2, sort_keys=False) + "\n").encode("utf-8")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((ONNX_NAME, onnx_bytes), (META_NAME, meta_bytes)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def validate_metadata(meta: dict[str, Any]) -> None:
    """Refuse a model.json that does not describe a usable classifier."""
    if not isinstance(meta, dict):
        raise InvalidModelArtifact("model.json must hold a JSON object")
    if meta.get("format") != ARTIFACT_FORMAT:
        raise InvalidModelArtifact(
            f"model.json format must be {ARTIFACT_FORMAT!r}, got {meta.get('format')!r}"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise InvalidModelArtifact(
            f"model.json format_version {version!r} is not supported (max {FORMAT_VERSION})"
        )
    classes = meta.get("classes")
    if (
        not isinstance(classes, list)
        or len(classes) < 2
        or not all(isinstance(c, str) and c for c in classes)
    ):
        raise InvalidModelArtifact("model.json classes must be a list of at least two class names")
    if len(set(classes)) != len(classes):
        raise InvalidModelArtifact("model.json classes must be unique")
    inp = meta.get("input")
    if not isinstance(inp, dict):
        raise InvalidModelArtifact("model.json has no input section")
    shape = inp.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)):
        raise InvalidModelArtifact("model.json input.shape must be [channels, height, width]")
    if shape[0] != 3:
        raise InvalidModelArtifact("model.json input.shape must have 3 (RGB) channels")
    norm = inp.get("normalization", {})
    for key in ("mean", "std"):
        values = norm.get(key) if isinstance(norm, dict) else None
        if not (
            isinstance(values, list)
            and len(values) == 3
            and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
            )
        ):
            raise InvalidModelArtifact(f"model.json input.normalization.{key} must be three finite numbers")
    if any(v <= 0 for v in norm["std"]):
        raise InvalidModelArtifact("model.json input.normalization.std must be positive")
    if inp.get("layout") != "NCHW":
        raise InvalidModelArtifact("model.json input.layout must be NCHW")
    for section in ("preprocessing", "output"):
        if not isinstance(meta.get(section, {}), dict):
            raise InvalidModelArtifact(f"model.json {section} must be a JSON object")
    resize = meta.get("preprocessing", {}).get("resize", "bilinear")
    if resize not in RESIZE_METHODS:
        raise InvalidModelArtifact(
            f"model.json preprocessing.resize must be one of {', '.join(RESIZE_METHODS)}"
        )
    if meta.get("output", {}).get("kind") != "probabilities":
        raise InvalidModelArtifact("model.json output.kind must be 'probabilities'")


# -- reading ------------------------------------------------------------------------------------


def read_artifact(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """The ONNX bytes and the parsed metadata of a ``model.tar.gz``, read safely in memory."""
    if len(data) > MAX_ARTIFACT_BYTES:
        raise InvalidModelArtifact(f"artifact is {len(data)} bytes; the limit is {MAX_ARTIFACT_BYTES}")
    members: dict[str, bytes] = {}
    limits = {ONNX_NAME: MAX_ONNX_BYTES, META_NAME: MAX_META_BYTES}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if member.isdir() and name in ("", ".", "./"):
                    continue
                if name not in limits:
                    raise InvalidModelArtifact(
                        f"unexpected member {member.name!r}: a model.tar.gz holds only "
                        f"{ONNX_NAME} and {META_NAME}"
                    )
                if not member.isreg():
                    raise InvalidModelArtifact(f"member {member.name!r} is not a regular file")
                if name in members:
                    raise InvalidModelArtifact(f"member {name!r} appears twice")
                if member.size > limits[name]:
                    raise InvalidModelArtifact(
                        f"member {name!r} is {member.size} bytes; the limit is {limits[name]}"
                    )
                handle = tar.extractfile(member)
                if handle is None:
                    raise InvalidModelArtifact(f"member {member.name!r} cannot be read")
                members[name] = handle.read(limits[name] + 1)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise InvalidModelArtifact(f"not a readable model.tar.gz: {exc}") from exc
    for name in (ONNX_NAME, META_NAME):
        if name not in members:
            raise InvalidModelArtifact(f"model.tar.gz has no {name}")
    try:
        meta = json.loads(members[META_NAME].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidModelArtifact(f"model.json is not valid JSON: {exc}") from exc
    validate_metadata(meta)
    return members[ONNX_NAME], meta


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference resolved to its artifact bytes (and where they came from)."""

    ref: str
    uri: str
    data: bytes
    job_name: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def resolve_model(settings: Settings, ref: str) -> ResolvedModel:
    """A training-job name, a local path to a model.tar.gz, or a store URI (``s3://bucket/key``)."""
    from sconeflow.store import NoSuchBucket, NoSuchKey, open_store, parse_object_uri

    ref = str(ref).strip()
    if not ref:
        raise ModelNotFound("empty model reference")
    if ref.startswith("s3://"):
        bucket, key = parse_object_uri(ref)
        if not bucket or not key:
            raise ModelNotFound(f"{ref!r} is not an s3://bucket/key URI")
        store = open_store(settings.resolved_store_uri)
        try:
            return ResolvedModel(ref, ref, store.get_object(bucket, key))
        except (NoSuchKey, NoSuchBucket) as exc:
            raise ModelNotFound(f"no model artifact at {ref}") from exc
    if ref.startswith("file://"):
        from urllib.parse import unquote, urlparse

        ref_path = Path(unquote(urlparse(ref).path))
    else:
        ref_path = Path(ref).expanduser()
    if ref_path.is_file():
        return ResolvedModel(ref, ref_path.resolve().as_uri(), _read_limited(ref_path))
    if ref_path.is_dir() and (ref_path / "model.tar.gz").is_file():
        path = ref_path / "model.tar.gz"
        return ResolvedModel(ref, path.resolve().as_uri(), _read_limited(path))
    if settings.db_path.exists() and "/" not in ref and os.sep not in ref:
        from sconeflow.model.jobs import TrainingJobs

        job = TrainingJobs(settings).find(ref)
        if job is not None:
            if job.status != "Completed" or not job.model_artifacts:
                raise ModelNotFound(f"training job {ref!r} is {job.status} and has no model artifact")
            resolved = resolve_model(settings, job.model_artifacts)
            return ResolvedModel(ref, resolved.uri, resolved.data, job_name=job.name)
    raise ModelNotFound(
        f"{ref!r} is neither a training job, a model.tar.gz path, nor an s3://bucket/key in the store"
    )


def _read_limited(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_ARTIFACT_BYTES:
        raise InvalidModelArtifact(f"{path} is {size} bytes; the limit is {MAX_ARTIFACT_BYTES}")
    return path.read_bytes()


# -- inference ----------------------------------------------------------------------------------


def cpu_session(onnx_bytes: bytes, intra_op_threads: int, *, spinning: bool | None = None) -> Any:
    """An ONNX Runtime CPU session: ``intra_op_threads`` threads, one inter-op thread, every graph
    optimization, quiet logs; ``spinning`` sets whether idle intra-op threads spin (None: ORT's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    """An image classifier on onnxruntime: ``predict_proba(uint8 NHWC) -> float32 [N, C]``."""

    def __init__(
        self, onnx_bytes: bytes, metadata: dict[str, Any], *, intra_op_threads: int = DEFAULT_THREADS
    ):
        validate_metadata(metadata)
        self.metadata = metadata
        self.artifact_bytes: bytes | None = None  # the model.tar.gz it came from, when loaded from one
        self.classes: list[str] = list(metadata["classes"])
        c, h, w = metadata["input"]["shape"]
        self.input_shape: tuple[int, int, int] = (c, h, w)
        norm = metadata["input"]["normalization"]
        self._mean = np.asarray(norm["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(norm["std"], dtype=np.float32).reshape(1, 3, 1, 1)
        self.resize_method: str = metadata.get("preprocessing", {}).get("resize", "bilinear")
        try:
            self._session = cpu_session(onnx_bytes, intra_op_threads)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
            raise InvalidModelArtifact(f"model.onnx cannot be loaded by onnxruntime: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise InvalidModelArtifact(f"model.onnx must have one input, has {len(inputs)}")
        self._input_name = inputs[0].name
        # The graph's fixed input dims must be model.json's input.shape, or every prediction would fail
        # inside onnxruntime with an untyped error (or, worse, run on a misdescribed input).
        in_shape = inputs[0].shape
        if inputs[0].type != "tensor(float)" or len(in_shape) != 4:
            raise InvalidModelArtifact(
                f"model.onnx input must be a float32 [batch, {c}, {h}, {w}] tensor, "
                f"is {inputs[0].type} {in_shape}"
            )
        if any(isinstance(d, int) and d != want for d, want in zip(in_shape[1:], (c, h, w), strict=True)):
            raise InvalidModelArtifact(
                f"model.onnx takes input {in_shape[1:]} but model.json input.shape is {[c, h, w]}"
            )
        out_shape = self._session.get_outputs()[0].shape
        if isinstance(out_shape[-1], int) and out_shape[-1] != len(self.classes):
            raise InvalidModelArtifact(
                f"model.onnx outputs {out_shape[-1]} classes but model.json lists {len(self.classes)}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC (N x H x W x 3) -> normalized float32 NCHW, the graph's input."""
        arr = np.asarray(images)
        if arr.ndim == 3:
            arr = arr[None]
        c, h, w = self.input_shape
        if arr.ndim != 4 or arr.shape[1:] != (h, w, c):
            raise InvalidImage(f"expected images of shape N x {h} x {w} x {c}, got {tuple(arr.shape)}")
        x = arr.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
        return np.ascontiguousarray((x - self._mean) / self._std, dtype=np.float32)

    def predict_proba(self, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (rows sum to 1) for uint8 NHWC images already at the input size."""
        x = self.normalize(images)
        if len(x) == 0:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        outs = [
            self._session.run(None, {self._input_name: x[i : i + batch_size]})[0]
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(outs).astype(np.float32, copy=False)

    def preprocess(self, images: Sequence[Any]) -> np.ndarray:
        """PIL images or encoded image bytes (any size, any mode) -> uint8 NHWC at the input size."""
        c, h, w = self.input_shape
        out = np.empty((len(images), h, w, c), dtype=np.uint8)
        for i, image in enumerate(images):
            out[i] = decode_image(image, (w, h), self.resize_method)
        return out

    def predict_images(self, images: Sequence[Any]) -> np.ndarray:
        """Probabilities for PIL images or encoded bytes (PNG, JPEG, ...) of any size."""
        return self.predict_proba(self.preprocess(images))

    def latency_ms(self, repeats: int = 200) -> float:
        """Median single-image latency of the graph (ms), measured on a zero image."""
        x = np.zeros((1, *self.input_shape), dtype=np.float32)
        for _ in range(10):
            self._session.run(None, {self._input_name: x})
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            self._session.run(None, {self._input_name: x})
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1000)


def decode_image(image: Any, size: tuple[int, int], resize: str = "bilinear") -> np.ndarray:
    """One image (PIL image or encoded bytes) -> uint8 H x W x 3 RGB at ``size`` (width, height)."""
    from PIL import Image, UnidentifiedImageError

    from sconeflow.pixels import to_rgb

    if isinstance(image, bytes | bytearray | memoryview):
        try:
            with Image.open(io.BytesIO(bytes(image))) as im:
                if im.width * im.height > MAX_IMAGE_PIXELS:
                    raise InvalidImage(f"image of {im.width}x{im.height} pixels is too large")
                im.load()
                pil = to_rgb(im)
        except UnidentifiedImageError as exc:  # its message names only an in-memory buffer
            raise InvalidImage(
                "cannot decode image: not an image format Pillow reads (PNG, JPEG, ...)"
            ) from exc
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise InvalidImage(f"cannot decode image: {exc}") from exc
    elif isinstance(image, Image.Image):
        pil = to_rgb(image)
    else:
        raise InvalidImage(f"expected a PIL image or encoded image bytes, got {type(image).__name__}")
    if pil.size != size:
        pil = pil.resize(size, getattr(Image.Resampling, resize.upper()))
    return np.asarray(pil, dtype=np.uint8)


def load_classifier(
    source: str | os.PathLike[str] | bytes | ResolvedModel,
    *,
    settings: Settings | None = None,
    intra_op_threads: int = DEFAULT_THREADS,
) -> OnnxClassifier:
    """An :class:`OnnxClassifier` from artifact bytes, a path, a store URI or a training-job name."""
    if isinstance(source, ResolvedModel):
        data = source.data
    elif isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        data = resolve_model(settings or load_settings(), str(source)).data
    onnx_bytes, meta = read_artifact(data)
    classifier = OnnxClassifier(onnx_bytes, meta, intra_op_threads=intra_op_threads)
    classifier.artifact_bytes = data
    return classifier
