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

# An SQS message holds 256 KiB; the raw item travels inline below this size, otherwise
# its digest and its place in the stream (retention: 24 h) identify it.
INLINE_DATA_BYTES = 160 * 1024


class SqsQuarantine:
    def __init__(self, sqs_client: Any, queue_url: str):
        self._sqs = sqs_client
        self._queue_url = queue_url

    def send(self, *, reason: str, problems: list[dict[str, str]], source: dict[str, Any], data: bytes) -> None:
        message: dict[str, Any] = {"reason": reason, "problems": problems, "source": source, "data_bytes": len(data)}
        if len(data) <= INLINE_DATA_BYTES:
            message["data_base64"] = base64.b64encode(data).decode("ascii")
        else:
            message["data_sha256"] = hashlib.sha256(data).hexdigest()
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(message, ensure_ascii=False))
        except (ClientError, BotoCoreError) as exc:
            error = translate(exc, f"SendMessage to the quarantine queue {self._queue_url}")
            # a refusal the queue gives for this one message must not lose it: retry it
            raise (error if isinstance(error, ShopstreamError) else TransientError(str(error))) from exc
