"""Where a consumer puts what it can never process: an SQS queue, one message per
poison item, with the reason and enough to find (or replay) the original record."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws_errors import translate
from pipeline.errors import ShopstreamError, TransientError

# An SQS message holds 256 KiB. The raw item travels inline when the whole message stays
# under that, otherwise its digest and its place in the stream (retention: 24 h) identify
# it; an event with many bad lines lists its first problems and counts them all.
MESSAGE_LIMIT_BYTES = 256 * 1024
INLINE_DATA_BYTES = 160 * 1024
MAX_PROBLEMS = 50
MAX_TEXT = 500  # characters of one problem's field kept


def _short(value: Any) -> Any:
    return value[:MAX_TEXT] + "…" if isinstance(value, str) and len(value) > MAX_TEXT else value


def message_body(*, reason: str, problems: list[dict[str, str]], source: dict[str, Any], data: bytes) -> str:
    """The quarantine message, always within SQS's size limit."""
    shown = [{k: _short(v) for k, v in p.items()} for p in problems[:MAX_PROBLEMS]]
    message: dict[str, Any] = {"reason": _short(reason), "problems": shown, "problems_total": len(problems),
                               "source": source, "data_bytes": len(data)}
    if len(data) <= INLINE_DATA_BYTES:
        message["data_base64"] = base64.b64encode(data).decode("ascii")
        body = json.dumps(message, ensure_ascii=False)
        if len(body.encode()) <= MESSAGE_LIMIT_BYTES:
            return body
        del message["data_base64"]
    message["data_sha256"] = hashlib.sha256(data).hexdigest()
    return json.dumps(message, ensure_ascii=False)


class SqsQuarantine:
    def __init__(self, sqs_client: Any, queue_url: str):
        self._sqs = sqs_client
        self._queue_url = queue_url

    def send(self, *, reason: str, problems: list[dict[str, str]], source: dict[str, Any], data: bytes) -> None:
        body = message_body(reason=reason, problems=problems, source=source, data=data)
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            error = translate(exc, f"SendMessage to the quarantine queue {self._queue_url}")
            # a refusal the queue gives for this one message must not lose it: retry it
            raise (error if isinstance(error, ShopstreamError) else TransientError(str(error))) from exc
