"""The endpoint stage's domain values: Model, EndpointConfig (with DataCaptureConfig) and Endpoint.

They mirror SageMaker's CreateModel / CreateEndpointConfig / CreateEndpoint shapes; ``to_api`` gives the
Describe* dictionaries with SageMaker's field names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sconeflow.endpoint.errors import InvalidCaptureConfig, InvalidEndpointName

VARIANT_NAME = "AllTraffic"
NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_NAME_LENGTH = 63
# What the SageMaker Python SDK's DataCaptureConfig always sends (see aws-contracts.md 1.2).
SDK_CSV_CONTENT_TYPES = ("text/csv",)
SDK_JSON_CONTENT_TYPES = ("application/json",)

CREATING = "Creating"
IN_SERVICE = "InService"
UPDATING = "Updating"
FAILED = "Failed"
DELETING = "Deleting"


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_endpoint_name(prefix: str = "image-classification", now: datetime | None = None) -> str:
    """SageMaker's generated name form: ``<prefix>-YYYY-MM-DD-HH-MM-SS-mmm``."""
    now = now or utc_now()
    return f"{prefix}-{now:%Y-%m-%d-%H-%M-%S}-{now.microsecond // 1000:03d}"


def validate_name(name: str, what: str = "endpoint") -> None:
    if not name or len(name) > MAX_NAME_LENGTH or not NAME_RE.match(name):
        raise InvalidEndpointName(
            f"invalid {what} name {name!r}: use 1-{MAX_NAME_LENGTH} letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )


@dataclass(frozen=True)
class DataCaptureConfig:
    """SageMaker's DataCaptureConfig, with the Python SDK's defaults for the content-type header."""

    enable_capture: bool = False
    initial_sampling_percentage: int = 100
    destination_s3_uri: str = ""
    capture_input: bool = True
    capture_output: bool = True
    csv_content_types: tuple[str, ...] = SDK_CSV_CONTENT_TYPES
    json_content_types: tuple[str, ...] = SDK_JSON_CONTENT_TYPES

    def __post_init__(self) -> None:
        if not 0 <= self.initial_sampling_percentage <= 100:
            raise InvalidCaptureConfig(
                f"InitialSamplingPercentage must be 0 to 100, got {self.initial_sampling_percentage}"
            )
        if self.enable_capture and not self.destination_s3_uri:
            raise InvalidCaptureConfig("DestinationS3Uri is required when capture is enabled")
        if len(self.destination_s3_uri) > 512:
            raise InvalidCaptureConfig("DestinationS3Uri is longer than 512 characters")
        if self.enable_capture and not (self.capture_input or self.capture_output):
            raise InvalidCaptureConfig("CaptureOptions must capture Input, Output or both")

    def to_api(self) -> dict[str, Any]:
        options = []
        if self.capture_input:
            options.append({"CaptureMode": "Input"})
        if self.capture_output:
            options.append({"CaptureMode": "Output"})
        return {
            "EnableCapture": self.enable_capture,
            "InitialSamplingPercentage": self.initial_sampling_percentage,
            "DestinationS3Uri": self.destination_s3_uri,
            "CaptureOptions": options,
            "CaptureContentTypeHeader": {
                "CsvContentTypes": list(self.csv_content_types),
                "JsonContentTypes": list(self.json_content_types),
            },
        }

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> DataCaptureConfig:
        if not data:
            return cls()
        modes = {opt.get("CaptureMode") for opt in data.get("CaptureOptions") or []}
        if "InputAndOutput" in modes or not modes:
            modes |= {"Input", "Output"}
        header = data.get("CaptureContentTypeHeader") or {}
        return cls(
            enable_capture=bool(data.get("EnableCapture", True)),
            initial_sampling_percentage=int(data.get("InitialSamplingPercentage", 100)),
            destination_s3_uri=str(data.get("DestinationS3Uri", "")),
            capture_input="Input" in modes,
            capture_output="Output" in modes,
            csv_content_types=tuple(header.get("CsvContentTypes") or ()),
            json_content_types=tuple(header.get("JsonContentTypes") or ()),
        )


@dataclass(frozen=True)
class ModelRecord:
    name: str
    model_data_url: str  # where the model.tar.gz is (store URI, s3:// or a path)
    source_ref: str  # what the user gave (training-job name or path)
    created_at: str

    def to_api(self) -> dict[str, Any]:
        return {
            "ModelName": self.name,
            "PrimaryContainer": {
                "Image": "sconeflow/image-classification:onnx",
                "ModelDataUrl": self.model_data_url,
            },
            "CreationTime": self.created_at,
        }


@dataclass(frozen=True)
class EndpointConfigRecord:
    name: str
    model_name: str
    data_capture: DataCaptureConfig
    created_at: str
    variant_name: str = VARIANT_NAME
    serving: dict[str, Any] = field(default_factory=dict)  # batching knobs etc. (sconeflow extension)

    def to_api(self) -> dict[str, Any]:
        return {
            "EndpointConfigName": self.name,
            "ProductionVariants": [
                {
                    "VariantName": self.variant_name,
                    "ModelName": self.model_name,
                    "InitialInstanceCount": 1,
                    "InstanceType": "local",
                    "InitialVariantWeight": 1.0,
                }
            ],
            "DataCaptureConfig": self.data_capture.to_api(),
            "CreationTime": self.created_at,
        }

    def serving_json(self) -> str:
        return json.dumps(self.serving, sort_keys=True)


@dataclass(frozen=True)
class EndpointRecord:
    name: str
    config_name: str
    status: str
    failure_reason: str | None
    created_at: str
    last_modified: str
    crashed: bool = False
