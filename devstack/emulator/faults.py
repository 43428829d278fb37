"""Faults injected into the emulator's answers, the way AWS misbehaves: throttles, partial
batch failures, a failing PutObject, a statement that fails.

A WSGI middleware in front of moto. Rules are installed over HTTP on the emulator's own
port (``POST /_shopstream/faults`` with a JSON list of rules; ``GET`` lists them with how
often each fired; ``DELETE`` removes them all), so a test or ``make faults`` can make the
real AWS calls of the real handlers fail without patching any of them.

A rule::

    {"action": "Kinesis.PutRecords",       # service.operation (see ``action_of``)
     "mode": "partial",                    # "error": the whole request fails;
                                           # "partial": some entries of a batch fail
     "every": 3,                           # partial: every 3rd entry seen by the rule fails
     "times": 20,                          # requests the rule affects, then it is spent
                                           # (absent: every matching request, forever)
     "match": "F900001",                   # optional: only requests whose body (or S3 key) holds it
     "code": "ProvisionedThroughputExceededException",   # error mode: the error code
     "status": 400}                        # error mode: the HTTP status

Partial mode knows two batch calls: Kinesis ``PutRecords`` (failed entries carry
``ErrorCode`` ``ProvisionedThroughputExceededException``, the others are written by
moto) and DynamoDB ``BatchWriteItem`` (the failed requests come back as
``UnprocessedItems``). Error mode answers in the service's protocol: a JSON ``__type``
for the JSON services, an S3 XML ``<Error>`` for S3, an ``<ErrorResponse>`` for the
query-protocol services (SNS, named by the ``Action`` of its form body: ``SNS.Publish``).
"""
from __future__ import annotations

import io
import json
import logging
import re
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

CONTROL_PATH = "/_shopstream/faults"

log = logging.getLogger("devstack.emulator.faults")

# X-Amz-Target prefixes of the JSON services, and the content type each answers with
_JSON_SERVICES = {
    "Kinesis_20131202": ("Kinesis", "application/x-amz-json-1.1"),
    "DynamoDB_20120810": ("DynamoDB", "application/x-amz-json-1.0"),
    "RedshiftData": ("RedshiftData", "application/x-amz-json-1.1"),
    "Firehose_20150804": ("Firehose", "application/x-amz-json-1.1"),
    "AmazonSQS": ("SQS", "application/x-amz-json-1.0"),
}
# SigV4 service names of the query-protocol services (a form body with Action=…), and their names here
_QUERY_SERVICES = {"sns": "SNS"}
QUERY_ACTION = "<query>"  # placeholder until the body is read
_PARTIAL_ACTIONS = ("Kinesis.PutRecords", "DynamoDB.BatchWriteItem")
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


class FaultError(ValueError):
    """A rule that cannot be installed."""


@dataclass
class Rule:
    action: str
    mode: str = "error"
    every: int = 1
    times: int | None = None
    match: str | None = None
    code: str = "InternalFailure"
    status: int = 500
    message: str = "injected fault"
    fired: int = 0          # requests the rule affected
    entries_failed: int = 0  # partial mode: entries it failed
    _seen: int = field(default=0, repr=False)  # partial mode: entries it has counted

    @classmethod
    def from_dict(cls, data: Any) -> Rule:
        if not isinstance(data, dict):
            raise FaultError(f"a rule is a JSON object, not {type(data).__name__}")
        unknown = set(data) - {"action", "mode", "every", "times", "match", "code", "status", "message"}
        if unknown:
            raise FaultError(f"unknown rule fields: {', '.join(sorted(unknown))}")
        action = data.get("action")
        if not isinstance(action, str) or "." not in action:
            raise FaultError("action must be 'Service.Operation', e.g. 'Kinesis.PutRecords'")
        mode = data.get("mode", "error")
        if mode not in ("error", "partial"):
            raise FaultError(f"mode must be 'error' or 'partial', not {mode!r}")
        if mode == "partial" and action not in _PARTIAL_ACTIONS:
            raise FaultError(f"partial mode knows {', '.join(_PARTIAL_ACTIONS)}, not {action}")
        every, times, status = data.get("every", 1), data.get("times"), data.get("status", 500)
        if not isinstance(every, int) or every < 1:
            raise FaultError("every must be a positive integer")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise FaultError("times must be a positive integer (or absent: forever)")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultError("status must be an HTTP error status (400-599)")
        match = data.get("match")
        if match is not None and (not isinstance(match, str) or not match):
            raise FaultError("match must be a non-empty string")
        return cls(action=action, mode=mode, every=every, times=times, match=match,
                   code=str(data.get("code", "InternalFailure")), status=status,
                   message=str(data.get("message", "injected fault")))

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "mode": self.mode, "every": self.every, "times": self.times,
                "match": self.match, "code": self.code, "status": self.status, "fired": self.fired,
                "entries_failed": self.entries_failed, "spent": self.spent}

    def failing(self, count: int) -> list[int]:
        """Partial mode: which of ``count`` entries fail (every ``every``-th the rule sees)."""
        out = []
        for index in range(count):
            self._seen += 1
            if self._seen % self.every == 0:
                out.append(index)
        return out


def action_of(environ: dict[str, Any]) -> tuple[str | None, str]:
    """(``Service.Operation`` or None, what ``match`` is tested against) of a request.

    JSON services are named by ``X-Amz-Target``; S3 by the SigV4 scope, and only its
    object writes are named (``S3.PutObject``; matched against the bucket and key)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target and "." in target:
        prefix, operation = target.split(".", 1)
        known = _JSON_SERVICES.get(prefix)
        return (f"{known[0]}.{operation}" if known else None), ""
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope and scope.group(1) in _QUERY_SERVICES and environ.get("REQUEST_METHOD") == "POST":
        return f"{_QUERY_SERVICES[scope.group(1)]}.{QUERY_ACTION}", ""  # the operation is in the body
    if scope and scope.group(1) == "s3" and environ.get("REQUEST_METHOD") == "PUT":
        path = environ.get("PATH_INFO", "")
        if path.strip("/").count("/") >= 1 and "uploadId" not in environ.get("QUERY_STRING", ""):
            return "S3.PutObject", path
    return None, ""


def _content_type(action: str) -> str:
    service = action.split(".", 1)[0]
    for name, content_type in _JSON_SERVICES.values():
        if name == service:
            return content_type
    return "application/xml"


def error_response(rule: Rule) -> tuple[str, list[tuple[str, str]], bytes]:
    if rule.action.startswith("S3."):
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{rule.code}</Code>"
                f"<Message>{rule.message}</Message><RequestId>injected</RequestId></Error>").encode()
    elif rule.action.split(".", 1)[0] in _QUERY_SERVICES.values():
        kind = "Sender" if rule.status < 500 else "Receiver"
        body = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{rule.code}</Code><Message>{rule.message}</Message>"
                f"</Error><RequestId>injected</RequestId></ErrorResponse>").encode()
    else:
        body = json.dumps({"__type": rule.code, "message": rule.message}).encode()
    return _status_line(rule.status), _headers(_content_type(rule.action), body), body


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def _headers(content_type: str, body: bytes) -> list[tuple[str, str]]:
    # DynamoDB's clients check the body against x-amz-crc32: a rewritten body needs its own
    return [("Content-Type", content_type), ("Content-Length", str(len(body))),
            ("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))]


class FaultInjector:
    """The middleware: the control endpoint, and each request checked against the rules."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.rules: list[Rule] = []
        self.lock = threading.Lock()

    # -- the control endpoint ------------------------------------------------------------
    def control(self, environ: dict[str, Any]) -> tuple[int, Any]:
        method = environ.get("REQUEST_METHOD")
        if method == "GET":
            with self.lock:
                return 200, {"rules": [rule.to_dict() for rule in self.rules]}
        if method == "DELETE":
            with self.lock:
                removed = [rule.to_dict() for rule in self.rules]
                self.rules = []
            return 200, {"removed": removed}
        if method == "POST":
            try:
                data = json.loads(_read_body(environ) or b"null")
                items = data if isinstance(data, list) else [data]
                rules = [Rule.from_dict(item) for item in items]
            except (ValueError, FaultError) as exc:
                return 400, {"error": str(exc)}
            with self.lock:
                self.rules.extend(rules)
            log.warning("fault rules installed: %s", ", ".join(f"{r.action} ({r.mode})" for r in rules))
            return 200, {"installed": [rule.to_dict() for rule in rules]}
        return 405, {"error": f"{method} is not supported here: GET, POST or DELETE"}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            status, payload = self.control(environ)
            body = json.dumps(payload).encode()
            start_response(_status_line(status), [("Content-Type", "application/json"),
                                                  ("Content-Length", str(len(body)))])
            return [body]
        if not self.rules:
            return self.app(environ, start_response)
        action, subject = action_of(environ)
        if action is not None and action.endswith(QUERY_ACTION):
            service = action.split(".", 1)[0]
            if not any(rule.action.startswith(service + ".") for rule in self.rules):
                return self.app(environ, start_response)
            body = _read_body(environ)
            _replace_body(environ, body)
            operation = (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
            action = f"{service}.{operation}"
        if action is None or not any(rule.action == action for rule in self.rules):
            return self.app(environ, start_response)
        body = b""
        if not action.startswith("S3."):  # S3 is matched on its path; its body is left unread
            body = _read_body(environ)
            _replace_body(environ, body)
            subject = body.decode("utf-8", "replace")
        rule = self._rule_for(action, subject)
        if rule is None:
            return self.app(environ, start_response)
        if rule.mode == "error":
            status, headers, payload = error_response(rule)
            log.warning("injected %s %s on %s", rule.status, rule.code, action)
            start_response(status, headers)
            return [payload]
        return self._partial(rule, environ, body, start_response)

    def _rule_for(self, action: str, subject: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.action == action and not rule.spent and (rule.match is None or rule.match in subject):
                    rule.fired += 1
                    return rule
        return None

    # -- partial batch failures ----------------------------------------------------------
    def _partial(self, rule: Rule, environ: dict[str, Any], body: bytes,
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = json.loads(body)
        if rule.action == "Kinesis.PutRecords":
            records = request.get("Records") or []
            with self.lock:
                failing = set(rule.failing(len(records)))
                rule.entries_failed += len(failing)
            kept = [r for n, r in enumerate(records) if n not in failing]
            written: list[dict[str, Any]] = []
            if kept:
                status, headers, answer = self._forward(environ, {**request, "Records": kept})
                if not status.startswith("200"):
                    start_response(status, headers)
                    return [answer]
                parsed = json.loads(answer)
                written = parsed.get("Records") or []
                failed_by_moto = int(parsed.get("FailedRecordCount") or 0)
            else:
                failed_by_moto = 0
            entries, it = [], iter(written)
            for n in range(len(records)):
                if n in failing:
                    entries.append({"ErrorCode": "ProvisionedThroughputExceededException",
                                    "ErrorMessage": "Rate exceeded for shard (injected)"})
                else:
                    entries.append(next(it))
            response = {"FailedRecordCount": len(failing) + failed_by_moto, "Records": entries}
        else:  # DynamoDB.BatchWriteItem
            items = request.get("RequestItems") or {}
            kept_items: dict[str, list] = {}
            unprocessed: dict[str, list] = {}
            with self.lock:
                for table, requests in items.items():
                    failing = set(rule.failing(len(requests)))
                    rule.entries_failed += len(failing)
                    if failing:
                        unprocessed[table] = [r for n, r in enumerate(requests) if n in failing]
                    rest = [r for n, r in enumerate(requests) if n not in failing]
                    if rest:
                        kept_items[table] = rest
            response = {"UnprocessedItems": {}}
            if kept_items:
                status, headers, answer = self._forward(environ, {**request, "RequestItems": kept_items})
                if not status.startswith("200"):
                    start_response(status, headers)
                    return [answer]
                response = json.loads(answer)
            merged = response.setdefault("UnprocessedItems", {})
            for table, requests in unprocessed.items():
                merged.setdefault(table, []).extend(requests)
        payload = json.dumps(response).encode()
        log.warning("injected a partial failure on %s", rule.action)
        start_response("200 OK", _headers(_content_type(rule.action), payload))
        return [payload]

    def _forward(self, environ: dict[str, Any], request: dict[str, Any]) -> tuple[str, list, bytes]:
        inner = dict(environ)
        _replace_body(inner, json.dumps(request).encode())
        captured: dict[str, Any] = {}

        def start(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.app(inner, start)
        try:
            answer = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return captured["status"], captured["headers"], answer


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _replace_body(environ: dict[str, Any], body: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
