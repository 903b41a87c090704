"""Many clients at once: the gateway and the runtime neither deadlock nor mix up answers."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from sconeflow.config import Settings
from sconeflow.gateway.client import boto3_client
from sconeflow.gateway.server import InProcessGateway


def test_parallel_lambda_and_s3_clients(settings: Settings, gateway: InProcessGateway) -> None:
    boto3_client(settings, "s3", url=gateway.url).create_bucket(Bucket="scones")

    def work(i: int) -> tuple[int, object, bytes]:
        lam = boto3_client(settings, "lambda", url=gateway.url)
        s3 = boto3_client(settings, "s3", url=gateway.url)
        event = {"inferences": [0.95, 0.05], "n": i}
        payload = json.loads(
            lam.invoke(FunctionName="filter_inference", Payload=json.dumps(event))["Payload"].read()
        )
        s3.put_object(Bucket="scones", Key=f"k/{i}", Body=str(i).encode())
        return i, payload, s3.get_object(Bucket="scones", Key=f"k/{i}")["Body"].read()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(24)))
    for i, payload, body in results:
        assert payload == {"statusCode": 200, "body": {"inferences": [0.95, 0.05], "n": i}}
        assert body == str(i).encode()
