"""What was published to the emulator's SNS topics, readable over HTTP.

SNS on AWS keeps nothing: a message goes to the topic's subscriptions and is gone. The
emulator (moto) also keeps every message a topic was sent, in order; this exposes that
record on the emulator's port, so the local stack can show what the pipeline announced
(``shopstream notifications``) and tests can count it:

* ``GET /_shopstream/sns/published?topic_arn=ARN`` → ``{"topic_arn", "messages": [{"message_id",
  "subject", "message", "attributes"}]}``, oldest first (``attributes`` as name → value);
* ``DELETE`` on the same path forgets a topic's record (the topic and its subscriptions stay).

A topic that does not exist is a 404 with its ARN named.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

CONTROL_PATH = "/_shopstream/sns/published"


def _topic(arn: str) -> Any:
    from moto.sns.models import sns_backends

    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sns":
        raise LookupError(f"not an SNS topic ARN: {arn!r}")
    region, account = parts[3], parts[4]
    topic = sns_backends[account][region].topics.get(arn)
    if topic is None:
        raise LookupError(f"no topic {arn} on the emulator")
    return topic


def _attributes(raw: dict[str, Any] | None) -> dict[str, str]:
    shown: dict[str, str] = {}
    for name, value in (raw or {}).items():
        if isinstance(value, dict):
            shown[name] = value.get("Value") or value.get("StringValue") or value.get("BinaryValue") or ""
        else:
            shown[name] = str(value)
    return shown


def published(arn: str) -> list[dict[str, Any]]:
    return [{"message_id": message_id, "subject": subject, "message": message, "attributes": _attributes(attributes)}
            for message_id, message, subject, attributes, _group in list(_topic(arn).sent_notifications)]


class PublishedMessages:
    """WSGI middleware answering :data:`CONTROL_PATH`; every other request goes to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != CONTROL_PATH:
            return self.app(environ, start_response)
        status, payload = self._answer(environ)
        body = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    def _answer(environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        method = environ.get("REQUEST_METHOD", "GET")
        arn = (parse_qs(environ.get("QUERY_STRING", "")).get("topic_arn") or [""])[0]
        if not arn:
            return "400 Bad Request", {"error": "topic_arn is required"}
        try:
            if method == "GET":
                return "200 OK", {"topic_arn": arn, "messages": published(arn)}
            if method == "DELETE":
                topic = _topic(arn)
                forgotten = len(topic.sent_notifications)
                topic.sent_notifications.clear()
                return "200 OK", {"topic_arn": arn, "forgotten": forgotten}
        except LookupError as exc:
            return "404 Not Found", {"error": str(exc.args[0])}
        return "405 Method Not Allowed", {"error": f"{method} is not supported here: GET or DELETE"}
