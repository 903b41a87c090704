"""Browser-based uploads (POST Object) through the gateway: the form ``generate_presigned_post`` builds,
sent as a browser (or ``requests.post(url, data=fields, files=...)``) sends it, multipart/form-data."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import urllib3

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import InProcessGateway

BODY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def s3(settings: Settings, gateway: InProcessGateway) -> Any:
    client = boto3_client(settings, "s3", url=gateway.url)
    client.create_bucket(Bucket="scones")
    return client


@pytest.fixture
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager()


def _post(
    http: urllib3.PoolManager,
    post: dict[str, Any],
    *,
    filename: str = "bike.png",
    data: bytes = BODY,
    extra: dict[str, str] | None = None,
    after_file: dict[str, str] | None = None,
    with_file: bool = True,
) -> urllib3.BaseHTTPResponse:
    """POST the form as a browser does: the policy's fields, then the file, last."""
    fields: dict[str, Any] = {**post["fields"], **(extra or {})}
    if with_file:
        fields["file"] = (filename, data, "application/octet-stream")
    fields.update(after_file or {})
    return http.request("POST", post["url"], fields=fields, redirect=False)


def _xml(response: urllib3.BaseHTTPResponse) -> dict[str, str]:
    root = ElementTree.fromstring(response.data)
    return {child.tag.split("}")[-1]: (child.text or "") for child in root}


def test_a_presigned_post_form_uploads_the_file_with_its_fields(s3: Any, http: urllib3.PoolManager) -> None:
    post = s3.generate_presigned_post(
        "scones",
        "uploads/${filename}",
        Fields={
            "Content-Type": "image/png",
            "x-amz-meta-label": "bicycle",
            "Cache-Control": "max-age=60",
            "success_action_status": "201",
        },
        Conditions=[
            {"Content-Type": "image/png"},
            {"x-amz-meta-label": "bicycle"},
            {"Cache-Control": "max-age=60"},
            {"success_action_status": "201"},
            ["content-length-range", 1, 10_000],
        ],
        ExpiresIn=600,
    )
    response = _post(http, post)
    assert response.status == 201, response.data
    etag = f'"{hashlib.md5(BODY).hexdigest()}"'
    document = _xml(response)
    assert ElementTree.fromstring(response.data).tag == "PostResponse"
    assert (document["Bucket"], document["Key"], document["ETag"]) == ("scones", "uploads/bike.png", etag)
    assert document["Location"].endswith("/scones/uploads/bike.png")
    assert response.headers["ETag"] == etag and response.headers["Location"] == document["Location"]
    head = s3.head_object(Bucket="scones", Key="uploads/bike.png")
    assert (head["ContentType"], head["Metadata"], head["CacheControl"], head["ETag"]) == (
        "image/png",
        {"label": "bicycle"},
        "max-age=60",
        etag,
    )
    assert s3.get_object(Bucket="scones", Key="uploads/bike.png")["Body"].read() == BODY


def test_the_answer_is_204_by_default_200_when_asked_and_a_303_to_the_redirect(
    s3: Any, http: urllib3.PoolManager
) -> None:
    plain = s3.generate_presigned_post("scones", "a.bin")
    response = _post(http, plain)
    assert (response.status, response.data) == (204, b"")
    assert s3.head_object(Bucket="scones", Key="a.bin")["ContentType"] == "binary/octet-stream"

    ok = s3.generate_presigned_post(
        "scones",
        "b.bin",
        Fields={"success_action_status": "200"},
        Conditions=[{"success_action_status": "200"}],
    )
    response = _post(http, ok)
    assert (response.status, response.data) == (200, b"")

    target = "https://example.com/done?from=form"
    redirect = s3.generate_presigned_post(
        "scones",
        "c.bin",
        Fields={"success_action_redirect": target},
        Conditions=[{"success_action_redirect": target}],
    )
    response = _post(http, redirect)
    assert response.status == 303
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://example.com/done"
    assert parse_qs(location.query) == {
        "from": ["form"],
        "bucket": ["scones"],
        "key": ["c.bin"],
        "etag": [f'"{hashlib.md5(BODY).hexdigest()}"'],
    }
    assert s3.get_object(Bucket="scones", Key="c.bin")["Body"].read() == BODY


def _error(response: urllib3.BaseHTTPResponse) -> tuple[int, str, dict[str, str]]:
    document = _xml(response)
    return response.status, document["Code"], document


def test_the_policy_expiration_and_conditions_are_enforced(s3: Any, http: urllib3.PoolManager) -> None:
    expired = s3.generate_presigned_post("scones", "late.bin", ExpiresIn=-60)
    status, code, document = _error(_post(http, expired))
    assert (status, code, document["Message"]) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )

    sized = s3.generate_presigned_post("scones", "sized.bin", Conditions=[["content-length-range", 10, 100]])
    status, code, document = _error(_post(http, sized, data=b"x" * 101))
    assert (status, code, document["ProposedSize"], document["MaxSizeAllowed"]) == (
        400,
        "EntityTooLarge",
        "101",
        "100",
    )
    status, code, document = _error(_post(http, sized, data=b"x" * 9))
    assert (status, code, document["ProposedSize"], document["MinSizeAllowed"]) == (
        400,
        "EntityTooSmall",
        "9",
        "10",
    )
    assert _post(http, sized, data=b"x" * 10).status == 204

    prefixed = s3.generate_presigned_post("scones", "user/eric/${filename}")
    assert _post(http, prefixed, filename="ok.txt").status == 204
    status, code, document = _error(_post(http, prefixed, extra={"key": "user/bob/x.txt"}))
    assert (status, code) == (403, "AccessDenied")
    assert document["Message"] == (
        'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "user/eric/"]'
    )
    typed = s3.generate_presigned_post(
        "scones",
        "typed.png",
        Fields={"Content-Type": "image/png"},
        Conditions=[["starts-with", "$Content-Type", "image/"]],
    )
    status, code, document = _error(_post(http, typed, extra={"Content-Type": "text/html"}))
    assert (status, code) == (403, "AccessDenied")
    # Every field must be named by a condition (a field the policy never allowed is refused).
    plain = s3.generate_presigned_post("scones", "p.bin")
    status, code, document = _error(_post(http, plain, extra={"x-amz-meta-evil": "1"}))
    assert (status, code, document["Message"]) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Extra input fields: x-amz-meta-evil",
    )
    assert _post(http, plain, extra={"x-ignore-note": "fine"}).status == 204
    names = [o["Key"] for o in s3.list_objects_v2(Bucket="scones")["Contents"]]
    assert names == ["p.bin", "sized.bin", "user/eric/ok.txt"]  # nothing refused was written


def test_form_errors_are_s3s(s3: Any, http: urllib3.PoolManager, gateway: InProcessGateway) -> None:
    missing = s3.generate_presigned_post("no-such-bucket", "a.bin")
    status, code, document = _error(_post(http, missing))
    assert (status, code, document["BucketName"]) == (404, "NoSuchBucket", "no-such-bucket")

    post = s3.generate_presigned_post("scones", "a.bin")
    status, code, document = _error(_post(http, post, with_file=False))
    assert (status, code, document["ArgumentName"]) == (400, "InvalidArgument", "file")
    no_key = {**post, "fields": {k: v for k, v in post["fields"].items() if k != "key"}}
    status, code, document = _error(_post(http, no_key))
    assert (status, code, document["ArgumentName"]) == (400, "InvalidArgument", "key")
    # Fields after the file are not part of the form: a key there is no key.
    status, code, _ = _error(_post(http, no_key, after_file={"key": "late.bin"}))
    assert (status, code) == (400, "InvalidArgument")

    md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    checked = s3.generate_presigned_post(
        "scones", "md5.bin", Fields={"Content-MD5": md5}, Conditions=[{"Content-MD5": md5}]
    )
    status, code, _ = _error(_post(http, checked))
    assert (status, code) == (400, "BadDigest")

    response = http.request(
        "POST",
        f"{gateway.url}/scones",
        body=b"key=a.bin",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    status, code, document = _error(response)
    assert (status, code, document["Condition"]) == (
        412,
        "PreconditionFailed",
        "Bucket POST must be of the enclosure-type multipart/form-data",
    )
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))  # what the form carried
    assert {"bucket": "scones"} in policy["conditions"]
    assert "Contents" not in s3.list_objects_v2(Bucket="scones")


def test_requests_post_with_files_works_as_boto3s_docs_show(s3: Any) -> None:
    requests = pytest.importorskip("requests")
    post = s3.generate_presigned_post("scones", "docs/${filename}")
    response = requests.post(post["url"], data=post["fields"], files={"file": ("notes.txt", b"hello")})
    assert response.status_code == 204, response.text
    assert s3.get_object(Bucket="scones", Key="docs/notes.txt")["Body"].read() == b"hello"
