"""The runtime against the emulator: HTTP APIs served on localhost, workers' environment."""
from __future__ import annotations

import base64
import http.client
import json
import os
import urllib.parse

import pytest
import requests

from devstack.runtime import client
from tests.fixtures.aws import read_jsonl, wait_for

pytestmark = pytest.mark.emulator


@pytest.fixture
def shop_api(aws, start_runtime, tmp_path):
    """An HTTP API whose routes all go to the http_echo fixture handler (timeout 1 s)."""
    received = tmp_path / "received.jsonl"
    fn = aws.function("tests.fixtures.handlers.http_echo", timeout=1,
                      env={"RECORD_FILE": str(received), "SLEEP_SECONDS": "5"})
    aws.http_api({
        "POST /events": fn["FunctionArn"],
        "GET /invoices/{invoice_no}": fn["FunctionArn"],
        "GET /customers/{customer_id}/invoices": fn["FunctionArn"],
        "ANY /files/{proxy+}": fn["FunctionArn"],
    }, invoke_arn_form=True)
    runtime = start_runtime()
    return runtime, received


def request(runtime, method, path, body=None, headers=()):
    """http.client, so repeated headers can be sent as they are."""
    url = urllib.parse.urlsplit(runtime.gateway_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.getheaders(), data


def test_path_parameters_query_strings_and_headers_reach_the_handler(shop_api):
    runtime, _ = shop_api
    status, headers, body = request(runtime, "GET", "/customers/17850/invoices?year=2011&tag=a&tag=b",
                                    headers=[("X-Trace", "1"), ("X-Trace", "2"), ("Cookie", "s=1; t=2"),
                                             ("User-Agent", "runtime-test")])
    assert status == 200
    event = json.loads(body)
    assert event["routeKey"] == "GET /customers/{customer_id}/invoices"
    assert event["pathParameters"] == {"customer_id": "17850"}
    assert event["rawQueryString"] == "year=2011&tag=a&tag=b"
    assert event["queryStringParameters"] == {"year": "2011", "tag": "a,b"}
    assert event["headers"]["x-trace"] == "1,2" and event["cookies"] == ["s=1", "t=2"]
    assert event["requestContext"]["http"] == {"method": "GET", "path": "/customers/17850/invoices",
                                               "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                                               "userAgent": "runtime-test"}
    assert event["requestContext"]["stage"] == "$default"
    assert dict((k.lower(), v) for k, v in headers)["apigw-requestid"] == event["requestContext"]["requestId"]


def test_binary_bodies_cross_both_ways(shop_api):
    runtime, received = shop_api
    data = bytes(range(256)) * 4
    status, _, _ = request(runtime, "POST", "/events", body=data, headers=[("Content-Type", "application/octet-stream")])
    assert status == 200
    event = read_jsonl(received)[-1]["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == data
    status, headers, body = request(runtime, "GET", "/files/x/binary")
    assert status == 200 and body == bytes(range(256))
    assert dict((k.lower(), v) for k, v in headers)["content-type"] == "application/octet-stream"


def test_inferred_and_structured_responses(shop_api):
    runtime, _ = shop_api
    plain = requests.get(f"{runtime.gateway_url}/files/plain", timeout=30)
    assert (plain.status_code, plain.json(), plain.headers["content-type"]) == (200, {"hello": "world"},
                                                                                 "application/json")
    made = requests.post(f"{runtime.gateway_url}/files/cookies", timeout=30)
    assert made.status_code == 201 and made.text == "made"
    assert made.raw.headers.getlist("set-cookie") == ["a=1; Path=/", "b=2"]
    assert made.raw.headers.getlist("x-many") == ["p", "q"]


def test_errors_look_like_api_gateways(shop_api):
    runtime, received = shop_api
    base = runtime.gateway_url
    not_found = requests.get(f"{base}/nowhere", timeout=30)
    assert (not_found.status_code, not_found.json()) == (404, {"message": "Not Found"})
    failed = requests.get(f"{base}/files/fail", timeout=30)
    assert (failed.status_code, failed.json()) == (500, {"message": "Internal Server Error"})
    slow = requests.get(f"{base}/files/slow", timeout=30)  # the function times out after 1 s
    assert (slow.status_code, slow.json()) == (503, {"message": "Service Unavailable"})
    before = len(read_jsonl(received))
    too_big = requests.post(f"{base}/events", data=b"x" * (10 * 1024 * 1024 + 1), timeout=60)
    assert (too_big.status_code, too_big.json()) == (413, {"message": "Request Entity Too Large"})
    assert len(read_jsonl(received)) == before  # never invoked
    assert client.status(runtime.admin_url)["gateway"]["not_found"] == 1


def test_workers_see_their_functions_environment_and_the_emulator_endpoint(aws, start_runtime, emulator):
    os.environ["RUNTIME_TEST_LEAK"] = "must-not-reach-the-handler"
    try:
        fn = aws.function("tests.fixtures.handlers.echo", env={"SHOPSTREAM_INVOICES_TABLE": "invoices"}, memory=512)
        runtime = start_runtime()
        result = runtime.invoker.invoke(fn["FunctionName"], {"ping": True})
    finally:
        del os.environ["RUNTIME_TEST_LEAK"]
    assert result.ok, result.payload
    env = result.json()["env"]
    assert env["SHOPSTREAM_INVOICES_TABLE"] == "invoices"
    assert env["AWS_ENDPOINT_URL"] == emulator.endpoint_url
    assert env["AWS_REGION"] == "eu-north-1" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == fn["FunctionName"]
    assert "RUNTIME_TEST_LEAK" not in env
    functions = {f["name"]: f for f in client.status(runtime.admin_url)["functions"]}
    assert functions[fn["FunctionName"]]["handler"] == "tests.fixtures.handlers.echo"
    assert functions[fn["FunctionName"]]["invocations"] == 1


def test_admin_health_and_status_shape(start_runtime):
    runtime = start_runtime()
    assert client.health(runtime.admin_url)
    status = client.status(runtime.admin_url)
    assert set(status) >= {"runtime", "discovery", "functions", "consumers", "gateway"}
    assert status["discovery"]["count"] >= 1 and status["discovery"]["last_error"] is None
    assert status["runtime"]["gateway_url"] == runtime.gateway_url


def test_an_emulator_that_lost_its_state_or_died_is_said_plainly(start_runtime, tmp_path):
    """Its state lives in memory: after a restart every route was a 404 while status said
    "up"; after its death the API answered "retry" forever. Now the gateway and the
    runtime's status say what happened and what to do."""
    from devstack.emulator import Emulator, free_port
    from tests.fixtures.aws import Aws

    private = Emulator.start(free_port())
    try:
        aws = Aws(private.endpoint_url)
        fn = aws.function("tests.fixtures.handlers.http_echo", env={"RECORD_FILE": str(tmp_path / "r.jsonl")})
        aws.http_api({"POST /events": fn["FunctionArn"]}, invoke_arn_form=True)
        runtime = start_runtime(emulator_url=private.endpoint_url, state_dir=tmp_path / "private-state")
        assert request(runtime, "POST", "/events", body=b"{}")[0] == 200
        assert runtime.status()["emulator"]["answering"] is True

        requests.post(f"{private.endpoint_url}/moto-api/reset", timeout=10)  # what a restarted emulator holds
        wait_for(lambda: runtime.status()["emulator"]["lost_deployment"])
        status, headers, body = request(runtime, "POST", "/events", body=b"{}")
        assert status == 503 and "no longer holds the deployment" in json.loads(body)["message"]
        assert dict((k.lower(), v) for k, v in headers)["retry-after"] == "1"
    finally:
        private.stop()
    # one failed read shows in the status; two in a row (not a blip) and the gateway says so too
    wait_for(lambda: "is not answering" in (runtime.status()["gateway"]["unavailable"] or ""))
    assert runtime.status()["emulator"]["answering"] is False
    status, _, body = request(runtime, "POST", "/events", body=b"{}")
    assert status == 503 and "is not answering" in json.loads(body)["message"]
    assert "state lives in memory" in json.loads(body)["message"]
    assert runtime.status()["emulator"]["last_error"]
