"""The local SNS topic log: what ``arn:aws:states:::sns:publish`` tasks publish, kept in the object store.

Each message is one object, ``s3://<bucket>/sns-topics/<topic>/<timestamp>-<message id>.json``, holding
the notification exactly as SNS delivers it to an HTTP subscriber (``Type``, ``MessageId``,
``TopicArn``, ``Subject``, ``Message``, ``Timestamp``, ``MessageAttributes``). One object per message
makes concurrent publishers safe, and the time-ordered keys let ``sconeflow notifications tail``
follow the log by listing with ``start_after``.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sconeflow.config import Settings
from sconeflow.errors import SconeflowError
from sconeflow.store import ObjectStore, open_store

log = logging.getLogger(__name__)

PREFIX = "sns-topics/"
MAX_MESSAGE_BYTES = 262_144
_TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]*:\d*:([A-Za-z0-9_-]{1,256})(\.fifo)?$")


class InvalidTopicArn(SconeflowError):
    """The TopicArn is not an SNS topic ARN."""


class MessageTooLong(SconeflowError):
    """An SNS message is larger than 256 KiB."""


class WebhookFailed(SconeflowError):
    """A webhook did not accept a notification after all retries."""


@dataclass(frozen=True)
class Notification:
    key: str
    body: dict[str, Any]

    @property
    def topic(self) -> str:
        return self.key[len(PREFIX) :].split("/", 1)[0]

    @property
    def message(self) -> Any:
        """The message, JSON-decoded when it is JSON text."""
        text = self.body.get("Message", "")
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            return text


def topic_name(topic_arn: str) -> str:
    match = _TOPIC_ARN_RE.match(topic_arn or "")
    if not match:
        raise InvalidTopicArn(f"Invalid parameter: TopicArn {topic_arn!r} is not an SNS topic ARN")
    return match.group(1) + (match.group(2) or "")


class TopicLog:
    """Append and read SNS messages in the local object store."""

    def __init__(self, settings: Settings, store: ObjectStore | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.store = store or open_store(settings.resolved_store_uri)

    def publish(
        self,
        topic_arn: str,
        message: str,
        *,
        subject: str | None = None,
        message_attributes: dict | None = None,
    ) -> str:
        name = topic_name(topic_arn)
        if not isinstance(message, str):
            message = json.dumps(message, separators=(",", ":"))
        if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise MessageTooLong(
                f"Invalid parameter: Message too long ({len(message.encode())} bytes > 256 KiB)"
            )
        message_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        body: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic_arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        }
        if subject is None:
            del body["Subject"]
        if message_attributes:
            body["MessageAttributes"] = message_attributes
        key = f"{PREFIX}{name}/{now.strftime('%Y%m%dT%H%M%S.%f')}Z-{message_id}.json"
        self.store.create_bucket(self.bucket, exist_ok=True)
        self.store.put_object(
            self.bucket, key, json.dumps(body, indent=None).encode(), content_type="application/json"
        )
        log.info("published message %s to topic %s", message_id, name)
        return message_id

    def read(
        self, topic: str | None = None, *, after: str | None = None, last: int | None = None
    ) -> list[Notification]:
        """Messages in publish order (all topics, or one), after key ``after``, at most the ``last`` N."""
        if not self.store.bucket_exists(self.bucket):
            return []
        prefix = f"{PREFIX}{topic}/" if topic else PREFIX
        keys = [
            info.key for info in self.store.iter_objects(self.bucket, prefix) if info.key.endswith(".json")
        ]
        keys.sort(key=_sort_key)
        if after is not None:
            keys = [k for k in keys if _sort_key(k) > _sort_key(after)]
        if last is not None:
            keys = keys[-last:] if last > 0 else []
        out = []
        for key in keys:
            try:
                out.append(Notification(key, json.loads(self.store.get_object(self.bucket, key))))
            except (ValueError, SconeflowError) as exc:
                log.warning("skipping unreadable message %s: %s", key, exc)
        return out

    def follow(
        self,
        topic: str | None = None,
        *,
        after: str | None = None,
        poll_s: float = 0.5,
        stop: Any = None,
    ) -> Iterator[Notification]:
        """Yield messages as they arrive (after ``after``), until ``stop`` (an Event) is set."""
        last = after
        while stop is None or not stop.is_set():
            batch = self.read(topic, after=last)
            for item in batch:
                last = item.key
                yield item
            if not batch:
                if stop is not None:
                    stop.wait(poll_s)
                else:
                    time.sleep(poll_s)


def _sort_key(key: str) -> tuple[str, str]:
    rest = key[len(PREFIX) :]
    topic, _, leaf = rest.partition("/")
    return (leaf, topic)


def post_webhook(
    url: str, note: Notification, *, retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 5.0
) -> int:
    """POST a notification like an SNS HTTP subscription does; retry on errors. Returns the attempts used."""
    data = json.dumps(note.body).encode()
    headers = {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": str(note.body.get("MessageId", "")),
        "x-amz-sns-topic-arn": str(note.body.get("TopicArn", "")),
        "User-Agent": "sconeflow-sns-webhook",
    }
    last_error = ""
    for attempt in range(1, retries + 2):
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                if 200 <= response.status < 300:
                    return attempt
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        if attempt <= retries:
            log.info("webhook %s attempt %d failed (%s); retrying", url, attempt, last_error)
            time.sleep(backoff_s * (2 ** (attempt - 1)))
    raise WebhookFailed(
        f"webhook {url} did not accept message {note.body.get('MessageId')} after "
        f"{retries + 1} attempts: {last_error}"
    )
