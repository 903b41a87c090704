"""The traffic generator against a real HTTP endpoint that answers badly: a malformed 200 answer is a
counted, named outcome (``MalformedResponse``), never a traceback; failed requests' latencies are kept
apart from the successful ones."""

from __future__ import annotations

import logging

import pytest

from sconeflow.config import Settings
from sconeflow.store import LocalStore
from sconeflow.traffic.generator import (
    MALFORMED_RESPONSE,
    EndpointTarget,
    InputPool,
    TrafficPlan,
    predicted_class,
    run_traffic,
)

from .conftest import CLASSES_HEADER, Answer, ScriptedEndpoint, client_error, ok


def _run(settings: Settings, endpoint: ScriptedEndpoint, burst: int) -> dict:
    pool = InputPool(LocalStore(settings.buckets_dir), settings.bucket, seed=0)
    target = EndpointTarget(settings, endpoint.name, concurrency=1, url=endpoint.url)
    stats = run_traffic(TrafficPlan(burst=burst, concurrency=1), pool, target).as_dict()
    assert endpoint.requests == burst
    return stats


@pytest.mark.timeout(60)
def test_malformed_answers_are_a_named_outcome_not_a_traceback(
    pool_settings: Settings, endpoint: ScriptedEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.answers = [
        Answer(b"<html>502 Bad Gateway</html>"),  # not JSON
        Answer(b'{"probabilities": "high"}'),  # JSON, not a list
        Answer(b"[]"),  # no probabilities
        Answer(b'[0.2, "x"]'),  # not numbers
        Answer(b"[0.2, NaN]"),  # not finite
        Answer(b"\xff\xfe garbage"),  # not UTF-8
        Answer(b"[0.1, 0.9]", headers={"X-Sconeflow-Classes": '["bicycle"]'}),  # 2 probabilities, 1 name
        Answer(b"[0.1, 0.9]", headers={"X-Sconeflow-Classes": "bicycle,motorcycle"}),  # header not JSON
        ok("[0.8, 0.2]"),
        ok("[[0.3, 0.7]]"),  # a one-row batch of probabilities
    ]
    caplog.set_level(logging.DEBUG, logger="sconeflow")
    stats = _run(pool_settings, endpoint, burst=len(endpoint.answers))
    assert stats["sent"] == 10 and stats["unfinished"] == 0
    assert stats["failed"] == 8 and stats["errors"] == {MALFORMED_RESPONSE: 8}
    assert stats["succeeded"] == 2
    assert stats["outcomes"] == {MALFORMED_RESPONSE: 8, "bicycle": 1, "motorcycle": 1}
    assert not [r for r in caplog.records if r.exc_info], "a malformed answer logged a traceback"


def test_predicted_class_says_what_is_wrong() -> None:
    assert predicted_class(b"[0.1, 0.9]", CLASSES_HEADER) == "motorcycle"
    assert predicted_class(b"[0.1, 0.5, 0.4]", None) == "class_1"
    for body, header, words in (
        (b"nope", None, "not JSON"),
        (b'{"a": 1}', None, "not a list of probabilities"),
        (b"[true, false]", None, "not a list of probabilities"),
        (b"[0.1, 0.9]", '["a", "b", "c"]', "does not name the 2 classes"),
    ):
        with pytest.raises(ValueError, match=words):
            predicted_class(body, header)


@pytest.mark.timeout(60)
def test_latency_of_failed_requests_is_reported_apart(
    pool_settings: Settings, endpoint: ScriptedEndpoint
) -> None:
    # Successes take at least 0.4 s; failures are answered at once: mixed, the mean would be about half.
    endpoint.answers = [ok(delay=0.4), client_error(), ok(delay=0.4), client_error()]
    stats = _run(pool_settings, endpoint, burst=4)
    assert stats["succeeded"] == 2 and stats["errors"] == {"ValidationError": 2}
    assert stats["mean_latency_ms"] >= 400 and stats["max_latency_ms"] >= 400
    assert stats["failed_mean_latency_ms"] is not None
    assert stats["failed_max_latency_ms"] >= stats["failed_mean_latency_ms"]


@pytest.mark.timeout(60)
def test_no_success_means_no_success_latency(pool_settings: Settings, endpoint: ScriptedEndpoint) -> None:
    endpoint.answers = [client_error("ModelError")]
    stats = _run(pool_settings, endpoint, burst=3)
    assert stats["succeeded"] == 0 and stats["errors"] == {"ModelError": 3}
    assert stats["mean_latency_ms"] is None and stats["max_latency_ms"] is None  # not a max of 0 ms
    assert stats["failed_mean_latency_ms"] is not None and stats["failed_max_latency_ms"] is not None
