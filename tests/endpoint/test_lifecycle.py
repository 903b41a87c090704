"""Endpoint lifecycle: update without failed requests, failures with reasons, crashes, overload, up/down."""

from __future__ import annotations

import io
import json
import os
import signal
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from sconeflow import services
from sconeflow.config import Settings
from sconeflow.endpoint.errors import (
    EndpointAlreadyExists,
    EndpointCreationFailed,
    EndpointNotFound,
    EndpointNotInService,
    EndpointUpdateFailed,
    InvalidEndpointName,
)
from sconeflow.endpoint.models import default_endpoint_name
from sconeflow.endpoint.registry import (
    EndpointRegistry,
    delete,
    deploy,
    list_views,
    resolve_endpoint_url,
    start_all,
    stop_all,
    update,
)
from sconeflow.model.artifact import load_classifier
from sconeflow.store import LocalStore

from .conftest import TrainedModel


def post(url: str, body: bytes, content_type: str = "image/png") -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def info(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/-/info", timeout=5) as response:
        return json.loads(response.read())


def broken_artifact(path: Path) -> Path:
    """A model.tar.gz with a valid layout whose ONNX graph is garbage (the server cannot load it)."""
    meta = {
        "format": "sconeflow-image-classifier",
        "format_version": 1,
        "classes": ["bicycle", "motorcycle"],
        "input": {
            "shape": [3, 32, 32],
            "layout": "NCHW",
            "normalization": {"mean": [0, 0, 0], "std": [1, 1, 1]},
        },
        "preprocessing": {"resize": "bilinear"},
        "output": {"kind": "probabilities"},
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("model.onnx", b"not an onnx graph"), ("model.json", json.dumps(meta).encode())):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return path


def test_default_name_and_name_rules(settings: Settings, trained_model: TrainedModel) -> None:
    name = default_endpoint_name()
    assert name.startswith("image-classification-") and len(name.split("-")) == 9
    with pytest.raises(InvalidEndpointName):
        deploy(settings, str(trained_model.artifact), name="bad_name!")
    with pytest.raises(EndpointNotFound):
        resolve_endpoint_url(settings, "missing")
    # records only (no server): names that share a prefix stay independent
    deploy(settings, str(trained_model.artifact), name="ep", start=False)
    deploy(settings, str(trained_model.artifact), name="ep-u1", start=False)
    delete(settings, "ep")
    assert [v.endpoint.name for v in list_views(settings)] == ["ep-u1"]
    deploy(settings, str(trained_model.artifact), name="ep", start=False)  # the name is free again
    delete(settings, "ep")
    delete(settings, "ep-u1")
    assert list_views(settings) == []


@pytest.mark.parametrize("capture", [0, 100], ids=["no-capture", "capture-moved"])
def test_update_swaps_the_model_with_no_failed_request(
    settings: Settings, trained_model: TrainedModel, second_model: Path, capture: int
) -> None:
    view = deploy(settings, str(trained_model.artifact), name="swap-ep", capture_percent=capture)
    url = f"{view.url}/endpoints/swap-ep/invocations"
    pngs = [png for _, png in trained_model.test_pngs]
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        i = 0
        while not stop.is_set():
            status, _, _ = post(url, pngs[i % len(pngs)])
            statuses.append(status)
            i += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    before = len(statuses)
    moved = f"s3://{settings.bucket}/moved" if capture else None  # a new capture writer takes over
    updated = update(settings, "swap-ep", str(second_model), capture_dest=moved)
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join()
    assert before > 0 and len(statuses) > before
    assert set(statuses) == {200}, statuses
    assert updated.status == "InService" and updated.config.name != "swap-ep"
    assert info(view.url)["EndpointConfigName"] == updated.config.name
    new_model = load_classifier(second_model.read_bytes())
    _, body, _ = post(url, pngs[0])
    assert json.loads(body) == pytest.approx(new_model.predict_images([pngs[0]])[0].tolist(), abs=1e-6)
    delete(settings, "swap-ep")
    store = LocalStore(settings.buckets_dir)
    if not capture:
        assert not store.bucket_exists(settings.bucket) or not list(store.iter_objects(settings.bucket, ""))
        return
    old_lines = sum(
        store.get_object(settings.bucket, o.key).count(b"\n")
        for o in store.iter_objects(settings.bucket, "data_capture/swap-ep/")
    )
    new_lines = sum(
        store.get_object(settings.bucket, o.key).count(b"\n")
        for o in store.iter_objects(settings.bucket, "moved/swap-ep/")
    )
    assert old_lines > 0 and new_lines > 0
    assert old_lines + new_lines == len(statuses) + 1  # every accepted request, across the swap


def test_sampling_percentage(settings: Settings, trained_model: TrainedModel) -> None:
    import http.client

    view = deploy(settings, str(trained_model.artifact), name="sample-ep", capture_percent=30)
    host, port = view.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    png = trained_model.test_pngs[0][1]
    for _ in range(200):
        conn.request("POST", "/invocations", body=png, headers={"Content-Type": "image/png"})
        assert conn.getresponse().read()
    conn.close()
    delete(settings, "sample-ep")
    store = LocalStore(settings.buckets_dir)
    records = sum(
        store.get_object(settings.bucket, o.key).count(b"\n")
        for o in store.iter_objects(settings.bucket, "data_capture/sample-ep/")
    )
    assert 25 <= records <= 100  # 30% of 200, binomial sd ~6.5


def test_update_to_a_broken_model_keeps_the_old_one(
    settings: Settings, trained_model: TrainedModel, tmp_path: Path
) -> None:
    view = deploy(settings, str(trained_model.artifact), name="keep-ep", capture_percent=0)
    with pytest.raises(EndpointUpdateFailed, match="previous model"):
        update(settings, "keep-ep", str(broken_artifact(tmp_path / "broken.tar.gz")))
    registry = EndpointRegistry(settings)
    assert registry.view("keep-ep").status == "InService"
    assert info(view.url)["EndpointConfigName"] == "keep-ep"
    status, _, _ = post(f"{view.url}/invocations", trained_model.test_pngs[0][1])
    assert status == 200
    with pytest.raises(EndpointAlreadyExists):
        deploy(settings, str(trained_model.artifact), name="keep-ep")
    delete(settings, "keep-ep")


def test_a_model_that_cannot_load_fails_with_the_reason(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(EndpointCreationFailed, match="cannot be loaded"):
        deploy(settings, str(broken_artifact(tmp_path / "broken.tar.gz")), name="bad-ep")
    (view,) = list_views(settings)
    assert view.status == "Failed" and "cannot be loaded" in (view.endpoint.failure_reason or "")
    with pytest.raises(EndpointNotInService):
        resolve_endpoint_url(settings, "bad-ep")
    delete(settings, "bad-ep")
    assert list_views(settings) == []


def test_crash_is_detected_and_up_down_restart(settings: Settings, trained_model: TrainedModel) -> None:
    view = deploy(settings, str(trained_model.artifact), name="crash-ep", capture_percent=0)
    assert view.pid is not None
    os.kill(view.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while services.pid_alive(view.pid) and time.monotonic() < deadline:
        with __import__("contextlib").suppress(ChildProcessError):
            os.waitpid(view.pid, os.WNOHANG)
        time.sleep(0.05)
    (crashed,) = list_views(settings)
    assert crashed.server == "crashed" and crashed.status == "Failed"
    assert "exited unexpectedly" in (crashed.endpoint.failure_reason or "")
    assert start_all(settings) == ["crash-ep"]  # `sconeflow up` brings crashed endpoints back
    url = resolve_endpoint_url(settings, "crash-ep")
    assert post(f"{url}/invocations", trained_model.test_pngs[0][1])[0] == 200
    assert stop_all(settings) == ["crash-ep"]  # `sconeflow down`
    (stopped,) = list_views(settings)
    assert stopped.server == "stopped" and stopped.status == "InService"
    with pytest.raises(EndpointNotInService, match="sconeflow up"):
        resolve_endpoint_url(settings, "crash-ep")
    assert start_all(settings) == ["crash-ep"]
    assert list_views(settings)[0].server == "running"
    delete(settings, "crash-ep")


def test_overload_is_throttled_fast_and_no_accepted_capture_is_lost(
    settings: Settings, trained_model: TrainedModel
) -> None:
    view = deploy(
        settings,
        str(trained_model.artifact),
        name="load-ep",
        capture_percent=100,
        serving={"max_queue": 1, "max_batch": 1},
    )
    url = f"{view.url}/invocations"
    png = trained_model.test_pngs[0][1]
    results: list[tuple[int, float, str | None]] = []

    def client() -> None:
        for _ in range(15):
            started = time.perf_counter()
            status, _, headers = post(url, png)
            lowered = {k.lower(): v for k, v in headers.items()}
            results.append((status, time.perf_counter() - started, lowered.get("x-amzn-errortype")))

    threads = [threading.Thread(target=client) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = {status for status, _, _ in results}
    assert statuses <= {200, 429}
    assert all(kind == "ThrottlingException" for status, _, kind in results if status == 429)
    ok = sum(1 for status, _, _ in results if status == 200)
    assert ok > 0
    throttled = [seconds for status, seconds, _ in results if status == 429]
    assert throttled  # 24 clients against a queue of 1: load was shed
    with urllib.request.urlopen(f"{view.url}/ping", timeout=5) as response:  # still up
        assert response.status == 200
    delete(settings, "load-ep")
    store = LocalStore(settings.buckets_dir)
    lines = sum(
        store.get_object(settings.bucket, o.key).count(b"\n")
        for o in store.iter_objects(settings.bucket, "data_capture/load-ep/")
    )
    assert lines == ok
