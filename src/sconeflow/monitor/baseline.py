"""``statistics.json`` and ``constraints.json`` in SageMaker Model Monitor's data-quality schema.

``compute_statistics`` summarises a feature table (item count; per feature: inferred type, completeness
counts, mean / sum / std_dev / min / max and a KLL-like distribution with 10 equal-width buckets plus a
sketch, or the categorical distribution of a string feature). ``suggest_constraints`` derives the
constraints a baseline job suggests. ``create_baseline`` runs a model over a prepared dataset and writes
both files (``docs/aws-contracts.md`` sections 2.1-2.3).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sconeflow.config import Settings
from sconeflow.errors import SconeflowError
from sconeflow.monitor.features import (
    INTEGRAL_FEATURES,
    PREDICTED_CLASS,
    FeatureTable,
    classes_from_feature_names,
    table_from_arrays,
)
from sconeflow.monitor.jsonfmt import jackson_dumps
from sconeflow.store import StoreError, open_store, parse_object_uri

log = logging.getLogger(__name__)

KLL_C = 0.64
KLL_K = 2048
BUCKETS = 10
MAX_DOMAIN = 100  # string features with at most this many distinct values get a domain constraint
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
DEFAULT_MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
    },
}


class BaselineError(SconeflowError):
    """A baseline cannot be created or read."""


class BaselineNotFound(BaselineError):
    """There is no statistics.json / constraints.json at the baseline location."""


# -- statistics ---------------------------------------------------------------------------------


def kll_sketch(sorted_values: np.ndarray, k: int = KLL_K) -> list[list[float]]:
    """A KLL-like sketch: level ``h`` holds items of weight ``2**h``; at most ``k`` items in all."""
    n = len(sorted_values)
    if n <= k:
        return [[float(v) for v in sorted_values]]
    level = math.ceil(math.log2(n / k))
    stride = 2**level
    kept = sorted_values[stride // 2 :: stride]
    return [[] for _ in range(level)] + [[float(v) for v in kept]]


def sketch_points(sketch: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The sketch's items (sorted) and their weights."""
    values: list[float] = []
    weights: list[float] = []
    for level, items in enumerate(sketch):
        values.extend(items)
        weights.extend([float(2**level)] * len(items))
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    return v[order], w[order]


def kll_buckets(sorted_values: np.ndarray, buckets: int = BUCKETS) -> list[dict[str, float]]:
    """``buckets`` equal-width buckets from min to max (the last one closed), with counts."""
    lo, hi = float(sorted_values[0]), float(sorted_values[-1])
    if hi <= lo:
        return [
            {
                "lower_bound": lo,
                "upper_bound": hi,
                "count": float(len(sorted_values) if i == buckets - 1 else 0),
            }
            for i in range(buckets)
        ]
    edges = np.linspace(lo, hi, buckets + 1)
    counts, _ = np.histogram(sorted_values, bins=edges)
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(buckets)
    ]


def numeric_statistics(name: str, values: np.ndarray, integral: bool) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    entry: dict[str, Any] = {
        "name": name,
        "inferred_type": "Integral" if integral else "Fractional",
    }
    stats: dict[str, Any] = {
        "common": {"num_present": int(present.size), "num_missing": int(values.size - present.size)}
    }
    if present.size:
        ordered = np.sort(present)
        stats.update(
            {
                "mean": float(ordered.mean()),
                "sum": float(ordered.sum()),
                "std_dev": float(ordered.std()),
                "min": float(ordered[0]),
                "max": float(ordered[-1]),
                "distribution": {
                    "kll": {
                        "buckets": kll_buckets(ordered),
                        "sketch": {
                            "parameters": {"c": KLL_C, "k": float(KLL_K)},
                            "data": kll_sketch(ordered),
                        },
                    }
                },
            }
        )
    entry["numerical_statistics"] = stats
    return entry


def string_statistics(name: str, values: list[str | None]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    counts = Counter(present)
    return {
        "name": name,
        "inferred_type": "String",
        "string_statistics": {
            "common": {"num_present": len(present), "num_missing": len(values) - len(present)},
            "distinct_count": float(len(counts)),
            "distribution": {
                "categorical": {"buckets": [{"value": v, "count": c} for v, c in sorted(counts.items())]}
            },
        },
    }


def compute_statistics(table: FeatureTable) -> dict[str, Any]:
    """``statistics.json`` for a feature table."""
    features = [
        numeric_statistics(name, table.numeric[name], name in INTEGRAL_FEATURES)
        for name in table.numeric_names
    ]
    features.append(string_statistics(PREDICTED_CLASS, table.predicted))
    return {"version": 0.0, "dataset": {"item_count": len(table)}, "features": features}


def suggest_constraints(statistics: dict[str, Any]) -> dict[str, Any]:
    """``constraints.json`` suggested from ``statistics.json``, as a baseline job does."""
    features = []
    for feature in statistics["features"]:
        kind = feature["inferred_type"]
        block = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
        common = block.get("common", {})
        total = common.get("num_present", 0) + common.get("num_missing", 0)
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": kind,
            "completeness": (common.get("num_present", 0) / total) if total else 0.0,
        }
        if kind in ("Integral", "Fractional"):
            entry["num_constraints"] = {"is_non_negative": bool(block.get("min", 0.0) >= 0)}
        elif kind == "String":
            buckets = block.get("distribution", {}).get("categorical", {}).get("buckets", [])
            if 0 < len(buckets) <= MAX_DOMAIN:
                entry["string_constraints"] = {"domains": [b["value"] for b in buckets]}
        features.append(entry)
    return {
        "version": 0.0,
        "features": features,
        "monitoring_config": json.loads(json.dumps(DEFAULT_MONITORING_CONFIG)),
    }


def feature_map(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in document.get("features", [])}


def baseline_classes(statistics: dict[str, Any]) -> list[str]:
    """The model's classes, in output order, from the ``prob_<class>`` features of a baseline."""
    return classes_from_feature_names([f["name"] for f in statistics.get("features", [])])


# -- reading and writing ------------------------------------------------------------------------


def dumps(document: dict[str, Any]) -> str:
    """JSON the way Model Monitor's Spark container writes it (Jackson's pretty printer)."""
    return jackson_dumps(document)


def default_baseline_uri(settings: Settings) -> str:
    return f"s3://{settings.bucket}/monitoring/baseline/"


def write_documents(settings: Settings, uri: str, documents: dict[str, dict[str, Any]]) -> list[str]:
    """Write ``{file name: document}`` under an ``s3://`` prefix (the store) or a local folder."""
    written = []
    if uri.startswith("s3://"):
        bucket, prefix = parse_object_uri(uri)
        store = open_store(settings.resolved_store_uri)
        try:
            store.create_bucket(bucket, exist_ok=True)
            for name, doc in documents.items():
                key = f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name
                store.put_object(bucket, key, dumps(doc).encode("utf-8"), content_type="application/json")
                written.append(f"s3://{bucket}/{key}")
        except StoreError as exc:
            raise BaselineError(f"cannot write to {uri}: {exc}") from exc
    else:
        folder = Path(uri.removeprefix("file://")).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        for name, doc in documents.items():
            (folder / name).write_text(dumps(doc))
            written.append(str(folder / name))
    return written


def read_document(settings: Settings, uri: str, name: str) -> dict[str, Any]:
    if uri.startswith("s3://"):
        bucket, prefix = parse_object_uri(uri)
        key = f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name
        try:
            raw = open_store(settings.resolved_store_uri).get_object(bucket, key)
        except StoreError as exc:
            raise BaselineNotFound(
                f"no {name} at s3://{bucket}/{key}; run `sconeflow monitor baseline` first"
            ) from exc
    else:
        path = Path(uri.removeprefix("file://")).expanduser() / name
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise BaselineNotFound(f"no {name} at {path}; run `sconeflow monitor baseline` first") from exc
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise BaselineError(f"{name} at {uri} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        raise BaselineError(f"{name} at {uri} has no 'features' list; it is not a Model Monitor file")
    return document


@dataclass(frozen=True)
class Baseline:
    uri: str
    statistics: dict[str, Any]
    constraints: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return baseline_classes(self.statistics)

    @property
    def item_count(self) -> int:
        return int(self.statistics.get("dataset", {}).get("item_count", 0))


def load_baseline(settings: Settings, uri: str | None = None) -> Baseline:
    uri = uri or default_baseline_uri(settings)
    statistics = read_document(settings, uri, STATISTICS_FILE)
    constraints = read_document(settings, uri, CONSTRAINTS_FILE)
    try:
        _check_statistics(statistics)
        _check_constraints(constraints)
    except _Unusable as exc:
        raise BaselineError(f"the baseline at {uri} is not one Model Monitor can use: {exc}") from None
    return Baseline(uri, statistics, constraints)


# -- checking a baseline read back (hand-edited, or from elsewhere) -----------------------------------
# Every value that monitoring and the report read is checked here, so a bad one is a BaselineError that
# names it, never a KeyError or TypeError in the middle of a run.


class _Unusable(Exception):
    """A value of a baseline document has the wrong shape (the message says which)."""


def _is_number(value: Any) -> bool:  # NaN included: Model Monitor writes "NaN" for some statistics
    return isinstance(value, int | float) and not isinstance(value, bool)


def _object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``parent[key]`` when it is an object, ``{}`` when absent."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Unusable(f"{where}.{key} is not an object")
    return value


def _numbers(parent: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if parent.get(key) is not None and not _is_number(parent[key]):
            raise _Unusable(f"{where}.{key} is not a number: {parent[key]!r}")


def _features(document: dict[str, Any], file: str) -> list[tuple[str, dict[str, Any]]]:
    features = []
    for index, feature in enumerate(document["features"]):
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str) or not feature["name"]:
            raise _Unusable(f'{file} features[{index}] is not an object with a "name" string')
        features.append((f"{file} feature {feature['name']!r}", feature))
    return features


def _check_statistics(statistics: dict[str, Any]) -> None:
    _numbers(_object(statistics, "dataset", STATISTICS_FILE), ("item_count",), f"{STATISTICS_FILE} dataset")
    for where, feature in _features(statistics, STATISTICS_FILE):
        numerical = _object(feature, "numerical_statistics", where)
        _numbers(_object(numerical, "common", where), ("num_present", "num_missing"), f"{where} common")
        _numbers(numerical, ("mean", "sum", "std_dev", "min", "max"), where)
        distribution = _object(numerical, "distribution", where)
        sketch = _object(_object(distribution, "kll", where), "sketch", where)
        data = sketch.get("data")
        if data is not None and not (
            isinstance(data, list)
            and all(isinstance(level, list) and all(_is_number(v) for v in level) for level in data)
        ):
            raise _Unusable(f"{where} distribution.kll.sketch.data is not a list of lists of numbers")
        strings = _object(_object(feature, "string_statistics", where), "distribution", where)
        buckets = _object(strings, "categorical", where).get("buckets", [])
        if not isinstance(buckets, list) or not all(
            isinstance(b, dict) and "value" in b and _is_number(b.get("count")) for b in buckets
        ):
            raise _Unusable(f"{where} distribution.categorical.buckets is not a list of {{value, count}}")


def _check_constraints(constraints: dict[str, Any]) -> None:
    where = f"{CONSTRAINTS_FILE} monitoring_config"
    config = _object(constraints, "monitoring_config", CONSTRAINTS_FILE)
    _numbers(config, ("datatype_check_threshold", "domain_content_threshold"), where)
    thresholds = ("comparison_threshold", "categorical_comparison_threshold")
    _numbers(
        _object(config, "distribution_constraints", where), thresholds, f"{where}.distribution_constraints"
    )
    for where, feature in _features(constraints, CONSTRAINTS_FILE):
        _numbers(feature, ("completeness",), where)
        overrides = _object(feature, "monitoringConfigOverrides", where)
        dist = _object(overrides, "distribution_constraints", f"{where} monitoringConfigOverrides")
        _numbers(dist, thresholds, f"{where} monitoringConfigOverrides.distribution_constraints")
        domains = _object(feature, "string_constraints", where).get("domains")
        if domains is not None and not isinstance(domains, list):
            raise _Unusable(f"{where} string_constraints.domains is not a list")


# -- baseline job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetImages:
    images: np.ndarray
    keys: list[str]
    description: str
    model_ref: str | None = None


def _training_job(settings: Settings, ref: str) -> Any:
    if "/" in ref or not settings.db_path.exists():
        return None
    try:
        from sconeflow.model.jobs import TrainingJobs
    except ImportError:
        return None
    return TrainingJobs(settings).find(ref)


def _latest_completed_job(settings: Settings) -> str | None:
    if not settings.db_path.exists():
        return None
    try:
        from sconeflow.model.jobs import TrainingJobs
    except ImportError:
        return None
    jobs = TrainingJobs(settings).list(status="Completed", limit=1)
    if jobs:
        log.info("no --model given: using the latest completed training job %s", jobs[0].name)
        return jobs[0].name
    return None


def load_dataset_images(settings: Settings, dataset: str, split: str = "train") -> DatasetImages:
    """Images of ``<bucket>[/<split>]``, ``s3://bucket/prefix`` or a training job's training data."""
    from sconeflow.model.dataload import load_split_data

    store = open_store(settings.resolved_store_uri)
    job = _training_job(settings, dataset)
    if job is not None:
        data = load_split_data(store, job.bucket, split)
        return DatasetImages(
            data.images, data.keys, f"training job {job.name}: s3://{job.bucket}/{split}", job.name
        )
    bucket, prefix = parse_object_uri(dataset, settings.bucket)
    prefix = prefix.strip("/")
    if not store.bucket_exists(bucket):
        raise BaselineError(
            f"dataset {dataset!r}: bucket {bucket!r} does not exist and no training job has that name"
        )
    if prefix in ("", "train", "test", "validation"):
        data = load_split_data(store, bucket, prefix or split)
        return DatasetImages(data.images, data.keys, f"s3://{bucket}/{prefix or split}")
    return _images_under_prefix(store, bucket, prefix)


def _images_under_prefix(store: Any, bucket: str, prefix: str) -> DatasetImages:
    from sconeflow.monitor.features import decode_image

    images: list[np.ndarray] = []
    keys: list[str] = []
    for info in store.iter_objects(bucket, prefix + "/"):
        if not info.key.lower().endswith((".png", ".jpg", ".jpeg")):
            continue
        image = decode_image(store.get_object(bucket, info.key))
        if image is None:
            log.warning("skipping s3://%s/%s: not a decodable image", bucket, info.key)
            continue
        images.append(image)
        keys.append(info.key)
    if not images:
        raise BaselineError(f"no images under s3://{bucket}/{prefix}/")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise BaselineError(f"images under s3://{bucket}/{prefix}/ have different shapes: {sorted(shapes)}")
    return DatasetImages(np.stack(images), keys, f"s3://{bucket}/{prefix}/")


@dataclass(frozen=True)
class BaselineResult:
    uri: str
    files: list[str]
    item_count: int
    dataset: str
    model: str
    classes: list[str]
    statistics: dict[str, Any]
    constraints: dict[str, Any]


def create_baseline(
    settings: Settings,
    *,
    dataset: str,
    model: str | None = None,
    split: str = "train",
    output: str | None = None,
) -> BaselineResult:
    """Run the model over the dataset's images and write statistics.json + constraints.json."""
    from sconeflow.model.artifact import load_classifier, resolve_model

    images = load_dataset_images(settings, dataset, split)
    model_ref = model or images.model_ref or _latest_completed_job(settings)
    if not model_ref:
        raise BaselineError(
            "which model? give --model (a training job, a model.tar.gz path or s3:// URI); "
            "there is no completed training job to default to"
        )
    resolved = resolve_model(settings, model_ref)
    classifier = load_classifier(resolved)
    c, h, w = classifier.input_shape
    if images.images.shape[1:] != (h, w, c):
        from PIL import Image

        batch = classifier.preprocess([Image.fromarray(im) for im in images.images])
    else:
        batch = images.images
    probabilities = classifier.predict_proba(batch)
    table = table_from_arrays(images.images, probabilities, classifier.classes)
    statistics = compute_statistics(table)
    constraints = suggest_constraints(statistics)
    uri = output or default_baseline_uri(settings)
    files = write_documents(settings, uri, {STATISTICS_FILE: statistics, CONSTRAINTS_FILE: constraints})
    log.info("Write to file statistics.json at path %s.", uri)
    return BaselineResult(
        uri=uri,
        files=files,
        item_count=len(table),
        dataset=images.description,
        model=resolved.uri,
        classes=list(classifier.classes),
        statistics=statistics,
        constraints=constraints,
    )
