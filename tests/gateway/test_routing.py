"""How the gateway tells the services apart, and what it does with what it does not serve."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.router import detect_service
from sconeflow.gateway.server import InProcessGateway
from sconeflow.gateway.wire import WireRequest


def _signed(service: str) -> dict[str, str]:
    return {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/"
        f"{service}/aws4_request, SignedHeaders=host, Signature=abc"
    }


def test_detect_service_from_the_signature_scope_target_and_path() -> None:
    # a bucket named "endpoints" is still S3 when the request is signed for S3
    assert detect_service(WireRequest("POST", "/endpoints/x/invocations", headers=_signed("s3"))) == "s3"
    assert detect_service(WireRequest("POST", "/endpoints/x/invocations", headers=_signed("sagemaker"))) == (
        "sagemaker"
    )
    assert detect_service(WireRequest("POST", "/endpoints/x/invocations")) == "sagemaker"
    assert detect_service(WireRequest("GET", "/2015-03-31/functions/")) == "lambda"
    target = {"x-amz-target": "AWSStepFunctions.ListStateMachines"}
    assert detect_service(WireRequest("POST", "/", headers=target)) == "states"
    assert detect_service(WireRequest("GET", "/bucket/key")) == "s3"
    presigned = {"X-Amz-Credential": ["AKID/20250101/us-east-1/s3/aws4_request"]}
    assert detect_service(WireRequest("GET", "/b/k", query=presigned)) == "s3"


def test_health_and_unknown_services(gateway: InProcessGateway) -> None:
    with urllib.request.urlopen(gateway.url + "/_sconeflow/health") as response:
        assert json.loads(response.read()) == {"status": "ok", "url": gateway.url}
    request = urllib.request.Request(
        gateway.url + "/", headers=_signed("dynamodb"), method="POST", data=b"{}"
    )
    try:
        urllib.request.urlopen(request)
        raise AssertionError("expected an error")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
        assert json.loads(exc.read())["__type"] == "UnknownServiceException"


def test_step_functions_requests_reach_the_step_functions_service(
    settings: Settings, gateway: InProcessGateway
) -> None:
    sfn: Any = boto3_client(settings, "stepfunctions", url=gateway.url)
    assert sfn.list_state_machines()["stateMachines"] == []
