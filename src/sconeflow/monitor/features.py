"""Turn capture records (or dataset images plus model outputs) into a columnar feature table.

Features (the names used in ``statistics.json`` / ``constraints.json``):

- ``image_width``, ``image_height`` (Integral, pixels);
- ``brightness_r``, ``brightness_g``, ``brightness_b``: mean channel value, 0-255;
- ``contrast``: RMS contrast, the standard deviation of the grey level (0-255);
- ``sharpness``: variance of the 4-neighbour Laplacian of the grey level (higher = sharper or noisier);
- ``confidence``: the highest output probability; ``prob_<class>``: each class's probability;
- ``predicted_class`` (String): the class with the highest probability.

A value that cannot be computed (an input that is not an image, an output that is not a probability
list) is missing (NaN / None); an output value of the wrong type is marked in ``wrong_type``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from sconeflow.config import Settings
from sconeflow.monitor.captures import CaptureRecord, CaptureSet, CaptureSource, iter_capture_sets

log = logging.getLogger(__name__)

IMAGE_FEATURES = (
    "image_width",
    "image_height",
    "brightness_r",
    "brightness_g",
    "brightness_b",
    "contrast",
    "sharpness",
)
INTEGRAL_FEATURES = frozenset({"image_width", "image_height"})
CONFIDENCE = "confidence"
PREDICTED_CLASS = "predicted_class"
PROB_PREFIX = "prob_"
DEFAULT_BINARY_CLASSES = ("bicycle", "motorcycle")
_GREY = np.array([0.299, 0.587, 0.114], dtype=np.float64)
DECODE_CHUNK = 2048
MAX_PIXELS = 16 * 1024 * 1024  # larger inputs are not analysed (their image features are missing)


def default_classes(count: int) -> list[str]:
    """Names for ``count`` output columns when nothing better is known (the Scones pair for 2)."""
    if count == len(DEFAULT_BINARY_CLASSES):
        return list(DEFAULT_BINARY_CLASSES)
    return [f"class_{i}" for i in range(count)]


def prob_feature(cls: str) -> str:
    return f"{PROB_PREFIX}{cls}"


def classes_from_feature_names(names: Sequence[str]) -> list[str]:
    """The class list encoded by ``prob_<class>`` feature names (their order is the output order)."""
    return [name[len(PROB_PREFIX) :] for name in names if name.startswith(PROB_PREFIX)]


@dataclass
class FeatureTable:
    """Columns of per-record features; missing values are NaN (numbers) or None (strings)."""

    classes: list[str]
    times: np.ndarray  # datetime64[s], UTC
    event_ids: list[str]
    content_types: list[str | None]
    input_sizes: np.ndarray  # int64 bytes, -1 when unknown
    numeric: dict[str, np.ndarray]
    predicted: list[str | None]
    wrong_type: dict[str, np.ndarray] = field(default_factory=dict)  # per feature: bool per row
    output_columns: np.ndarray | None = None  # how many probabilities each record returned (0 = none)

    def __len__(self) -> int:
        return len(self.event_ids)

    @property
    def type_errors(self) -> dict[str, int]:
        """How many values of each feature were present but of the wrong type."""
        return {name: int(rows.sum()) for name, rows in self.wrong_type.items()}

    @property
    def numeric_names(self) -> list[str]:
        return [*IMAGE_FEATURES, CONFIDENCE, *(prob_feature(c) for c in self.classes)]

    def subset(self, mask: np.ndarray) -> FeatureTable:
        return self.take(np.flatnonzero(mask))

    def take(self, index: np.ndarray) -> FeatureTable:
        """The rows at ``index`` (in that order)."""
        return FeatureTable(
            classes=list(self.classes),
            times=self.times[index],
            event_ids=[self.event_ids[i] for i in index],
            content_types=[self.content_types[i] for i in index],
            input_sizes=self.input_sizes[index],
            numeric={k: v[index] for k, v in self.numeric.items()},
            predicted=[self.predicted[i] for i in index],
            wrong_type={k: v[index] for k, v in self.wrong_type.items()},
            output_columns=None if self.output_columns is None else self.output_columns[index],
        )


def image_statistics(batch: np.ndarray, chunk: int = 1024) -> dict[str, np.ndarray]:
    """Vectorised statistics of a uint8 batch N x H x W x 3 (one shape), in cache-sized chunks."""
    n, height, width = batch.shape[:3]
    out = {name: np.empty(n) for name in IMAGE_FEATURES}
    out["image_width"][:] = width
    out["image_height"][:] = height
    grey_weights = _GREY.astype(np.float32)
    for start in range(0, n, chunk):
        part = batch[start : start + chunk]
        m = len(part)
        flat = part.reshape(m, -1, 3)
        means = flat.mean(axis=1, dtype=np.float64)
        grey = part.astype(np.float32) @ grey_weights
        out["brightness_r"][start : start + m] = means[:, 0]
        out["brightness_g"][start : start + m] = means[:, 1]
        out["brightness_b"][start : start + m] = means[:, 2]
        out["contrast"][start : start + m] = grey.reshape(m, -1).std(axis=1, dtype=np.float64)
        if height >= 3 and width >= 3:
            lap = grey[:, :-2, 1:-1] + grey[:, 2:, 1:-1] + grey[:, 1:-1, :-2] + grey[:, 1:-1, 2:]
            lap -= 4.0 * grey[:, 1:-1, 1:-1]
            out["sharpness"][start : start + m] = lap.reshape(m, -1).var(axis=1, dtype=np.float64)
        else:
            out["sharpness"][start : start + m] = 0.0
    return out


def decode_image(data: bytes) -> np.ndarray | None:
    """Image bytes (PNG, JPEG, ...) -> uint8 H x W x 3, or None when they are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                log.debug("image of %dx%d pixels is too large; skipped", image.width, image.height)
                return None
            if image.mode == "RGB":
                return np.asarray(image, dtype=np.uint8)
            if image.mode == "RGBA":  # what convert("RGB") does: drop alpha
                return np.asarray(image, dtype=np.uint8)[..., :3]
            from sconeflow.pixels import to_rgb  # other modes only: RGB, the common case, skips it

            return np.asarray(to_rgb(image), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _fill_image_features(
    images: list[np.ndarray | None], numeric: dict[str, np.ndarray], offset: int = 0
) -> None:
    """Statistics of ``images`` (rows ``offset``.. of the table), one vectorised call per shape."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        if image is not None:
            groups.setdefault(image.shape, []).append(index)
    for indices in groups.values():
        stats = image_statistics(np.stack([images[i] for i in indices]))  # type: ignore[misc]
        where = np.asarray(indices) + offset
        for name, values in stats.items():
            numeric[name][where] = values


def _input_bytes(record: CaptureRecord) -> bytes | None:
    if record.input_data is None:
        return None
    if record.input_encoding == "BASE64":
        try:
            return base64.b64decode(record.input_data)
        except (binascii.Error, ValueError):
            return b""
    return record.input_data.encode("utf-8")


def _csv_row(text: str) -> list[float | str] | None:
    """The first row of a CSV body (``0.2,0.8``): numbers as floats, any other cell kept as text."""
    rows = text.strip().splitlines()
    if not rows:
        return None
    cells: list[float | str] = []
    for cell in rows[0].split(","):
        try:
            cells.append(float(cell))
        except ValueError:
            cells.append(cell.strip())
    return cells


def _media_type(content_type: str | None) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``."""
    if not isinstance(content_type, str):  # a capture line can hold anything there
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _is_csv(content_type: str | None) -> bool:
    media = _media_type(content_type)
    return media == "text/csv" or media.endswith(("/csv", "+csv"))


def parse_probabilities(
    text: str | None, encoding: str | None, content_type: str | None = None
) -> tuple[list[float] | None, bool]:
    """The output probability list and whether it held values of the wrong type.

    ``encoding`` is the capture's (``JSON``, ``CSV`` or ``BASE64``); a ``BASE64`` body is decoded and then
    read as CSV when its ``content_type`` (the record's ``observedContentType``) is CSV, else as JSON:
    an endpoint config without ``CaptureContentTypeHeader`` base64-encodes every payload.
    """
    if text is None:
        return None, False
    if encoding == "BASE64":
        try:
            text = base64.b64decode(text, validate=False).decode("utf-8-sig")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None, False
        if _is_csv(content_type):
            encoding = "CSV"
    if encoding == "CSV":
        value: object = _csv_row(text)
    else:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return None, False
    if isinstance(value, dict):
        value = value.get("probabilities", value.get("predictions"))
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not isinstance(value, list) or not value:
        return None, False
    probs: list[float] = []
    wrong = False
    for item in value:
        # NaN / Infinity (JSON accepts them, CSV too) are no probability: a wrong type, not a number that
        # would turn every mean, distance and statistics.json value into NaN or Infinity.
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            wrong = True
            probs.append(float("nan"))
        else:
            probs.append(float(item))
    return probs, wrong


def _output_features(
    outputs: list[list[float] | None], wrong: list[bool], classes: list[str], numeric: dict[str, np.ndarray]
) -> tuple[list[str | None], dict[str, int], np.ndarray]:
    predicted: list[str | None] = []
    n = len(outputs)
    wrong_type = {name: np.zeros(n, dtype=bool) for name in (CONFIDENCE, *(prob_feature(c) for c in classes))}
    columns = np.zeros(len(outputs), dtype=np.int64)
    confidence = numeric[CONFIDENCE]
    prob_columns = [numeric[prob_feature(c)] for c in classes]
    for row, probs in enumerate(outputs):
        if probs is None:
            predicted.append(None)
            continue
        columns[row] = len(probs)
        for col, value in enumerate(probs[: len(classes)]):
            prob_columns[col][row] = value
            if value != value:  # NaN: a value of the wrong type
                wrong_type[prob_feature(classes[col])][row] = True
        if wrong[row]:
            wrong_type[CONFIDENCE][row] = True
            predicted.append(None)
            continue
        best = max(range(len(probs)), key=probs.__getitem__)
        confidence[row] = probs[best]
        predicted.append(classes[best] if best < len(classes) else f"class_{best}")
    return predicted, wrong_type, columns


def _empty_numeric(n: int, classes: list[str]) -> dict[str, np.ndarray]:
    names = [*IMAGE_FEATURES, CONFIDENCE, *(prob_feature(c) for c in classes)]
    return {name: np.full(n, np.nan) for name in names}


def table_from_records(
    records: Sequence[CaptureRecord], classes: Sequence[str] | None = None
) -> FeatureTable:
    """Decode every record's input image and output probabilities into a feature table."""
    outputs: list[list[float] | None] = []
    wrong: list[bool] = []
    for record in records:
        probs, bad = parse_probabilities(
            record.output_data, record.output_encoding, record.output_content_type
        )
        outputs.append(probs)
        wrong.append(bad)
    if classes is None:
        width = max((len(p) for p in outputs if p), default=2)
        classes = default_classes(width)
    class_list = list(classes)
    numeric = _empty_numeric(len(records), class_list)
    sizes = np.full(len(records), -1, dtype=np.int64)
    # Decode in chunks so memory stays bounded for any number of records.
    for start in range(0, len(records), DECODE_CHUNK):
        images: list[np.ndarray | None] = []
        for row in range(start, min(start + DECODE_CHUNK, len(records))):
            raw = _input_bytes(records[row])
            if raw is not None:
                sizes[row] = len(raw)
            images.append(decode_image(raw) if raw else None)
        _fill_image_features(images, numeric, start)
    predicted, wrong_type, columns = _output_features(outputs, wrong, class_list, numeric)
    times = np.array([r.inference_time.replace(tzinfo=None) for r in records], dtype="datetime64[s]")
    return FeatureTable(
        classes=class_list,
        times=times,
        event_ids=[r.event_id for r in records],
        content_types=[r.input_content_type for r in records],
        input_sizes=sizes,
        numeric=numeric,
        predicted=predicted,
        wrong_type=wrong_type,
        output_columns=columns,
    )


def table_from_arrays(
    images: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    *,
    input_sizes: Sequence[int] | None = None,
) -> FeatureTable:
    """A feature table for dataset images (uint8 N x H x W x 3) and the model's probabilities (N x C)."""
    class_list = list(classes)
    n = len(images)
    numeric = _empty_numeric(n, class_list)
    if n:
        for name, values in image_statistics(np.asarray(images, dtype=np.uint8)).items():
            numeric[name][:] = values
    probs = np.asarray(probabilities, dtype=np.float64).reshape(n, -1)
    outputs = [list(map(float, row)) for row in probs]
    predicted, wrong_type, columns = _output_features(outputs, [False] * n, class_list, numeric)
    return FeatureTable(
        classes=class_list,
        times=np.zeros(n, dtype="datetime64[s]"),
        event_ids=[str(i) for i in range(n)],
        content_types=["image/png"] * n,
        input_sizes=np.asarray(input_sizes if input_sizes is not None else [-1] * n, dtype=np.int64),
        numeric=numeric,
        predicted=predicted,
        wrong_type=wrong_type,
        output_columns=columns,
    )


def empty_table(classes: Sequence[str]) -> FeatureTable:
    return table_from_records([], classes)


def concat_tables(parts: Sequence[FeatureTable], classes: Sequence[str]) -> FeatureTable:
    """Rows of several tables with the same classes, in order."""
    if not parts:
        return empty_table(classes)
    if len(parts) == 1:
        return parts[0]
    return FeatureTable(
        classes=list(classes),
        times=np.concatenate([p.times for p in parts]),
        event_ids=[e for p in parts for e in p.event_ids],
        content_types=[c for p in parts for c in p.content_types],
        input_sizes=np.concatenate([p.input_sizes for p in parts]),
        numeric={name: np.concatenate([p.numeric[name] for p in parts]) for name in parts[0].numeric},
        predicted=[v for p in parts for v in p.predicted],
        wrong_type={
            name: np.concatenate([p.wrong_type[name] for p in parts]) for name in parts[0].wrong_type
        },
        output_columns=np.concatenate([p.output_columns for p in parts]),  # type: ignore[misc]
    )


def _output_width(records: Sequence[CaptureRecord]) -> int | None:
    widths = [
        len(p)
        for r in records
        if (p := parse_probabilities(r.output_data, r.output_encoding, r.output_content_type)[0])
    ]
    return max(set(widths), key=widths.count) if widths else None


def load_feature_table(
    settings: Settings,
    source: CaptureSource,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[FeatureTable, CaptureSet]:
    """``read_captures`` + ``table_from_records`` file by file, in bounded memory.

    Returns the table (rows in inference-time order) and a :class:`CaptureSet` with the counts and the
    malformed lines but no records (their payloads are dropped once reduced to features). Without
    ``classes``, the first file with outputs fixes the number of columns.
    """
    summary = CaptureSet()
    parts: list[FeatureTable] = []
    class_list = list(classes) if classes is not None else None
    for part in iter_capture_sets(settings, source, since=since, until=until):
        summary.files += part.files
        summary.lines += part.lines
        summary.malformed.extend(part.malformed)
        if not part.records:
            continue
        if class_list is None:
            width = _output_width(part.records)
            if width is None:
                parts.append(table_from_records(part.records, default_classes(2)))
                continue
            class_list = default_classes(width)
        parts.append(table_from_records(part.records, class_list))
    if class_list is None:
        class_list = default_classes(2)
    parts = [p if p.classes == class_list else _with_classes(p, class_list) for p in parts]
    table = concat_tables(parts, class_list)
    if len(table):
        table = table.take(np.argsort(table.times, kind="stable"))
    if summary.malformed:
        log.warning(
            "skipped %d malformed capture line(s); first: %s", len(summary.malformed), summary.malformed[0]
        )
    return table, summary


def _with_classes(table: FeatureTable, classes: list[str]) -> FeatureTable:
    """A table of records without outputs, re-labelled to ``classes`` (its prob columns are all missing)."""
    numeric = {k: v for k, v in table.numeric.items() if not k.startswith(PROB_PREFIX)}
    for cls in classes:
        numeric[prob_feature(cls)] = np.full(len(table), np.nan)
    return FeatureTable(
        classes=list(classes),
        times=table.times,
        event_ids=table.event_ids,
        content_types=table.content_types,
        input_sizes=table.input_sizes,
        numeric=numeric,
        predicted=table.predicted,
        wrong_type={
            CONFIDENCE: table.wrong_type[CONFIDENCE],
            **{prob_feature(c): np.zeros(len(table), dtype=bool) for c in classes},
        },
        output_columns=table.output_columns,
    )
