"""The ingest function's body limit (pipeline/settings.py DEFAULT_MAX_BODY_BYTES) is one
it can always take: a body of that size, however it escapes into the API Gateway event,
keeps the event under Lambda's 6 MB synchronous payload, even with the HTTP API's 10 KB
of headers (tests/contract/test_settings_terraform.py: Terraform gives the function that
limit)."""
from __future__ import annotations

import base64
import json

import pytest

from pipeline.settings import DEFAULT_MAX_BODY_BYTES, LAMBDA_SYNC_PAYLOAD_BYTES
from tests.unit.test_runtime_gateway import make_event

LIMIT = DEFAULT_MAX_BODY_BYTES
HEADERS = [("host", "abc123.execute-api.eu-west-1.amazonaws.com"), ("content-type", "application/json"),
           ("x-padding", '"' * 10_000)]  # an HTTP API's request line and headers: 10 KB at most


def _within_limit(unit: str, wrap=lambda s: f'["{s}"]') -> bytes:
    """Valid JSON of exactly LIMIT bytes made of ``unit`` (the worst escaping cases)."""
    overhead = len(wrap("").encode())
    count = (LIMIT - overhead) // len(unit.encode())
    body = wrap(unit * count).encode()
    return body + b" " * (LIMIT - len(body))


@pytest.mark.parametrize("body, encoded", [
    (_within_limit("\\\""), False),       # quotes and backslashes: each doubles
    (_within_limit("\u00e9"), False),     # 2 bytes of UTF-8, 6 as \u00e9 (JSON encoders escaping non-ASCII)
    (_within_limit("\u20ac"), False),     # 3 bytes, 6 escaped
    (_within_limit("\U0001f600"), False),  # 4 bytes, 12 as a surrogate pair
    (b"[" + b"\n" * (LIMIT - 3) + b"1]", False),  # whitespace: each doubles
    (bytes(range(256)) * (LIMIT // 256), True),  # binary: passed base64-encoded
], ids=["quotes", "latin", "euro", "emoji", "newlines", "binary"])
def test_a_body_at_the_limit_fits_in_the_lambda_event(body, encoded):
    assert len(body) <= LIMIT
    if not encoded:
        json.loads(body)  # valid JSON, as the function would be sent it
    sent = base64.b64encode(body) if encoded else body
    event = make_event(method="POST", raw_path="/events", headers=HEADERS, body=sent)
    payload = json.dumps(event, separators=(",", ":"))  # ASCII-escaped: the larger of the two spellings
    assert len(payload.encode()) < LAMBDA_SYNC_PAYLOAD_BYTES, len(payload.encode())

