"""One reader for capture files, used on the AWS-recorded fixtures and on ours alike."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from sconeflow.endpoint.capture import read_capture_lines

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FILE_RE = re.compile(r"(^|_)(\d{2})-(\d{2})-(\d{3})-([0-9a-f-]{36})\.jsonl$")


def describe_record(raw_line: bytes) -> dict[str, Any]:
    """Every byte-level fact aws-contracts.md 1.1 lists, as a comparable summary of one record."""
    assert raw_line.endswith(b"\n") and not raw_line.startswith(b"\xef\xbb\xbf")
    (record,) = list(read_capture_lines([raw_line]))
    compact = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    capture = record["captureData"]
    meta = record["eventMetadata"]
    summary: dict[str, Any] = {
        "compact": compact == raw_line,
        "top_keys": list(record),
        "capture_keys": list(capture),
        "payload_keys": {name: list(block) for name, block in capture.items()},
        "metadata_keys": [k for k in meta if k != "inferenceId"],
        "eventVersion": record["eventVersion"],
        "eventId_uuid4": bool(UUID4_RE.match(meta["eventId"])),
        "inferenceTime_whole_seconds": bool(TIME_RE.match(meta["inferenceTime"])),
        "input_mode": capture["endpointInput"]["mode"],
        "output_mode": capture["endpointOutput"]["mode"],
        "input_encoding": capture["endpointInput"]["encoding"],
        "output_encoding": capture["endpointOutput"]["encoding"],
        "output_type": capture["endpointOutput"]["observedContentType"],
    }
    data = base64.b64decode(capture["endpointInput"]["data"], validate=True)
    summary["input_is_png"] = data.startswith(b"\x89PNG\r\n\x1a\n")
    out = capture["endpointOutput"]["data"]
    probs = json.loads(out)
    summary["output_is_json_dumps_of_floats"] = json.dumps(probs) == out and all(
        isinstance(p, float) for p in probs
    )
    summary["probabilities_sum_to_1"] = abs(sum(probs) - 1) < 1e-4
    return summary
