"""Quarantine messages (consumers/quarantine.py) stay within SQS's 256 KiB whatever they describe."""
from __future__ import annotations

import base64
import hashlib
import json

from consumers.quarantine import INLINE_DATA_BYTES, MAX_PROBLEMS, MESSAGE_LIMIT_BYTES, message_body


def test_a_small_item_travels_inline_with_every_problem():
    body = json.loads(message_body(reason="invalid event", problems=[{"field": "lines[0].quantity", "reason": "x"}],
                                   source={"shard_id": "s"}, data=b"raw"))
    assert base64.b64decode(body["data_base64"]) == b"raw"
    assert body["problems_total"] == 1 and body["problems"] == [{"field": "lines[0].quantity", "reason": "x"}]


def test_an_event_with_many_bad_lines_fits_the_queue_with_its_first_problems_and_the_count():
    data = b"x" * (150 * 1024)  # under the inline size, but with its problems over the limit
    problems = [{"field": f"lines[{i}].unit_price", "reason": "not a decimal: " + "y" * 200} for i in range(1150)]
    body = message_body(reason="invalid event", problems=problems, source={"shard_id": "s"}, data=data)
    message = json.loads(body)
    assert len(body.encode()) <= MESSAGE_LIMIT_BYTES
    assert message["problems_total"] == 1150 and len(message["problems"]) == MAX_PROBLEMS
    assert message["problems"][0]["field"] == "lines[0].unit_price"
    assert "data_base64" in message  # the first problems leave room for the data itself


def test_when_the_data_and_its_problems_do_not_fit_together_the_digest_replaces_the_data():
    data = b"q" * INLINE_DATA_BYTES  # inline on its own (~213 KiB once base64-encoded)
    problems = [{"field": "f" * 900, "reason": "z" * 900} for _ in range(200)]  # capped: still ~50 KB
    body = message_body(reason="r" * 10_000, problems=problems, source={}, data=data)
    message = json.loads(body)
    assert len(body.encode()) <= MESSAGE_LIMIT_BYTES and "data_base64" not in message
    assert message["data_sha256"] == hashlib.sha256(data).hexdigest() and message["data_bytes"] == len(data)
    assert len(message["reason"]) == 501 and all(len(p["reason"]) == 501 for p in message["problems"])


def test_a_large_item_is_identified_by_its_digest():
    data = b"q" * (INLINE_DATA_BYTES + 1)
    message = json.loads(message_body(reason="r", problems=[], source={}, data=data))
    assert message["data_sha256"] == hashlib.sha256(data).hexdigest() and "data_base64" not in message
