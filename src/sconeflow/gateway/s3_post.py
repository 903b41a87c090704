"""S3 browser-based uploads (POST Object): the multipart/form-data body and the POST policy.

What ``generate_presigned_post`` hands a browser form. Parsing uses the standard library only; the
policy's expiration and conditions are checked, its signature is not (the gateway verifies none).
:meth:`sconeflow.gateway.s3_responses.S3Handler.post_object` stores the upload.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message

from sconeflow.gateway.s3_errors import S3Error

MAX_POST_BYTES = 5 * 1024**3  # S3's largest POST upload, as for PutObject
# Form fields a POST policy need not name (AWS: x-amz-signature, file, policy and x-ignore-* fields; the
# SigV2 signature fields likewise).
_UNPOLICED_FIELDS = frozenset({"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid"})


@dataclass(frozen=True)
class FormFile:
    filename: str
    data: bytes


def _malformed_post() -> S3Error:
    return S3Error(
        "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.", 400
    )


def _header_param(header: str, value: str, param: str) -> str | None:
    message = Message()
    message[header] = value
    found = message.get_param(param, header=header)
    if isinstance(found, tuple):  # an RFC 2231 value: (charset, language, text)
        found = found[2]
    return None if found is None else str(found)


def parse_form_data(content_type: str, body: bytes) -> tuple[dict[str, str], FormFile | None]:
    """The fields of a multipart/form-data ``body`` (names lower-cased, the first of a repeated name) up to
    the ``file`` field, and that file. As on S3, fields after the file are ignored."""
    boundary = _header_param("content-type", content_type, "boundary")
    if not boundary:
        raise _malformed_post()
    delimiter = b"--" + boundary.encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0:
        raise _malformed_post()
    fields: dict[str, str] = {}
    while True:
        pos += len(delimiter)
        if body.startswith(b"--", pos):  # the closing delimiter
            return fields, None
        if not body.startswith(b"\r\n", pos):
            raise _malformed_post()
        head_end = body.find(b"\r\n\r\n", pos + 2)
        end = body.find(b"\r\n" + delimiter, head_end + 4) if head_end >= 0 else -1
        if end < 0:
            raise _malformed_post()
        headers = {}
        for line in body[pos + 2 : head_end].decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = (_header_param("content-disposition", disposition, "name") or "").lower()
        content = body[head_end + 4 : end]
        if name == "file":
            filename = _header_param("content-disposition", disposition, "filename") or ""
            return fields, FormFile(filename, content)
        if name and name not in fields:
            fields[name] = content.decode("utf-8", "replace")
        pos = end + 2


def _policy_failed(detail: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {detail}", 403)


def _invalid_policy(detail: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {detail}", 400)


def check_post_policy(encoded: str, bucket: str, fields: dict[str, str], size: int) -> None:
    """A POST policy (base64 JSON) against the form: its ``expiration``, then its conditions (exact
    matches, ``eq``, ``starts-with``, ``content-length-range``) and that every form field is named by one.
    Its signature is not checked: this gateway verifies no signatures."""
    try:
        policy = json.loads(base64.b64decode(encoded, validate=True))
    except ValueError:
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(policy, dict) or "expiration" not in policy:
        raise _invalid_policy("Policy missing expiration.")
    expiration = policy["expiration"]
    try:
        expires = datetime.fromisoformat(str(expiration).replace("Z", "+00:00"))
    except ValueError:
        raise _invalid_policy(f"Invalid 'expiration' value: '{expiration}'") from None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if datetime.now(UTC) > expires:
        raise _policy_failed("Policy expired.")
    conditions = policy.get("conditions")
    if not isinstance(conditions, list):
        raise _invalid_policy("Policy missing conditions.")
    values = {**fields, "bucket": bucket}
    named = set()
    for condition in conditions:
        if isinstance(condition, dict) and len(condition) == 1:
            ((name, expected),) = condition.items()
            operation, name = "eq", str(name).lower()
        elif isinstance(condition, list) and len(condition) == 3:
            operation = str(condition[0]).lower()
            if operation == "content-length-range":
                _check_length_range(condition, size)
                continue
            name, expected = str(condition[1]).lower().removeprefix("$"), condition[2]
        else:
            raise _invalid_policy(f"Invalid Simple-Condition: {json.dumps(condition)}")
        if operation not in ("eq", "starts-with") or not isinstance(expected, str):
            raise _invalid_policy(f"Invalid Condition: {json.dumps(condition)}")
        named.add(name)
        value = values.get(name, "")
        if operation == "eq":
            ok = value == expected
        elif name == "content-type":  # S3: each of a comma-separated list of types
            ok = all(part.strip().startswith(expected) for part in value.split(","))
        else:
            ok = value.startswith(expected)
        if not ok:
            shown = [operation, f"${name}", expected]
            raise _policy_failed(f"Policy Condition failed: {json.dumps(shown)}")
    extra = [
        name
        for name in fields
        if name not in named and name not in _UNPOLICED_FIELDS and not name.startswith("x-ignore-")
    ]
    if extra:
        raise _policy_failed(f"Extra input fields: {', '.join(extra)}")


def _check_length_range(condition: list, size: int) -> None:
    try:
        low, high = int(condition[1]), int(condition[2])
    except (TypeError, ValueError):
        raise _invalid_policy(f"Invalid Condition: {json.dumps(condition)}") from None
    if size < low:
        raise S3Error(
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
            400,
            ProposedSize=str(size),
            MinSizeAllowed=str(low),
        )
    if size > high:
        raise S3Error(
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            400,
            ProposedSize=str(size),
            MaxSizeAllowed=str(high),
        )
