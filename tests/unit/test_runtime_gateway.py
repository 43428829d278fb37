"""The HTTP gateway's routing, event building and response mapping (no network)."""
from __future__ import annotations

import asyncio
import base64
import json

import pytest

from devstack.runtime.gateway import BODY_LIMIT, GatewayApp, RouteTable, build_event, map_response
from devstack.runtime.model import HttpApiSpec, RouteSpec
from devstack.runtime.workers import InvokeResult, function_error, service_error

FN = "arn:aws:lambda:eu-west-1:123456789012:function:"


def api(*route_keys: str, stages=("$default",), api_id="abc123", name="shop") -> HttpApiSpec:
    routes = tuple(RouteSpec(key, f"fn{i}", f"{FN}fn{i}") for i, key in enumerate(route_keys))
    return HttpApiSpec(api_id=api_id, name=name, routes=routes, stages=tuple(stages))


def matched(table: RouteTable, method: str, path: str, host: str = ""):
    match = table.match(method, path, host)
    return None if match is None else (match.route.route_key, match.path_parameters)


# -- routing -----------------------------------------------------------------------------------
SHOP = RouteTable([api("POST /events", "GET /invoices/{invoice_no}", "GET /customers/{customer_id}/invoices",
                       "GET /invoices/latest", "ANY /files/{proxy+}", "GET /files/{name}/meta", "ANY /health")])


@pytest.mark.parametrize("method,path,expected", [
    ("POST", "/events", ("POST /events", {})),
    ("GET", "/invoices/536365", ("GET /invoices/{invoice_no}", {"invoice_no": "536365"})),
    ("GET", "/invoices/latest", ("GET /invoices/latest", {})),                 # literal beats {param}
    ("GET", "/customers/17850/invoices", ("GET /customers/{customer_id}/invoices", {"customer_id": "17850"})),
    ("GET", "/files/a/b/c.txt", ("ANY /files/{proxy+}", {"proxy": "a/b/c.txt"})),
    ("GET", "/files/a/meta", ("GET /files/{name}/meta", {"name": "a"})),      # {param} beats {proxy+}
    ("DELETE", "/files/a/meta", ("ANY /files/{proxy+}", {"proxy": "a/meta"})),  # method must match
    ("PUT", "/health", ("ANY /health", {})),
    ("GET", "/invoices/C536379%2F1", ("GET /invoices/{invoice_no}", {"invoice_no": "C536379/1"})),
    ("GET", "/invoices/536365/", ("GET /invoices/{invoice_no}", {"invoice_no": "536365"})),
])
def test_requests_match_the_most_specific_route(method, path, expected):
    assert matched(SHOP, method, path) == expected


@pytest.mark.parametrize("method,path", [
    ("GET", "/events"),           # wrong method
    ("GET", "/invoices"),         # missing parameter
    ("GET", "/invoices/1/x"),     # extra segment
    ("GET", "/files"),            # greedy needs one segment at least
    ("GET", "/"),
])
def test_requests_without_a_route_do_not_match(method, path):
    assert SHOP.match(method, path) is None


def test_the_default_route_catches_what_nothing_else_matches():
    table = RouteTable([api("GET /a", "$default")])
    assert matched(table, "GET", "/a") == ("GET /a", {})
    assert matched(table, "POST", "/anything/else") == ("$default", {})


def test_a_named_stage_is_served_under_its_prefix():
    table = RouteTable([api("GET /invoices/{no}", stages=("prod",))])
    match = table.match("GET", "/prod/invoices/7")
    assert (match.stage, match.path_parameters) == ("prod", {"no": "7"})
    assert table.match("GET", "/invoices/7") is None


def test_the_host_selects_an_api_when_there_are_several():
    first = api("GET /x", api_id="aaa111", name="a")
    second = api("GET /x", api_id="bbb222", name="b")
    table = RouteTable([first, second])
    assert table.match("GET", "/x").api.api_id == "aaa111"
    assert table.match("GET", "/x", host="bbb222.execute-api.localhost:8080").api.api_id == "bbb222"


# -- the v2 event ------------------------------------------------------------------------------
def make_event(**overrides):
    table = RouteTable([api("GET /invoices/{invoice_no}", "POST /events")])
    method = overrides.pop("method", "GET")
    path = overrides.pop("raw_path", "/invoices/536365")
    match = table.match(method, path)
    options = dict(method=method, raw_path=path, raw_query="", headers=[("host", "127.0.0.1:8080")], body=b"",
                   match=match, source_ip="127.0.0.1", request_id="req-1", now=1_700_000_000.5, port=8080)
    options.update(overrides)
    return build_event(**options)


def test_the_event_has_the_payload_2_0_shape():
    event = make_event(raw_query="a=1&a=2&b=x%20y&empty=",
                       headers=[("host", "127.0.0.1:8080"), ("X-Multi", "1"), ("x-multi", "2"),
                                ("User-Agent", "pytest"), ("Cookie", "s=1; theme=dark")])
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /invoices/{invoice_no}"
    assert event["rawPath"] == "/invoices/536365"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y&empty="
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y", "empty": ""}
    assert event["pathParameters"] == {"invoice_no": "536365"}
    assert event["cookies"] == ["s=1", "theme=dark"]
    assert event["headers"]["x-multi"] == "1,2"
    assert "cookie" not in event["headers"] and "X-Multi" not in event["headers"]
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["isBase64Encoded"] is False and "body" not in event
    assert event["requestContext"] == {
        "accountId": "123456789012", "apiId": "abc123", "domainName": "127.0.0.1", "domainPrefix": "127",
        "http": {"method": "GET", "path": "/invoices/536365", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                 "userAgent": "pytest"},
        "requestId": "req-1", "routeKey": "GET /invoices/{invoice_no}", "stage": "$default",
        "time": "14/Nov/2023:22:13:20 +0000", "timeEpoch": 1_700_000_000_500,
    }


def test_optional_keys_are_absent_when_empty():
    event = make_event()
    assert "queryStringParameters" not in event and "cookies" not in event and "body" not in event


def test_a_json_body_is_passed_as_text():
    event = make_event(method="POST", raw_path="/events", body=b'{"a": "\xc2\xa3"}',
                       headers=[("content-type", "application/json")])
    assert event["body"] == '{"a": "£"}' and event["isBase64Encoded"] is False
    assert "pathParameters" not in event


def test_a_binary_body_is_base64_encoded():
    body = bytes(range(256))
    event = make_event(method="POST", raw_path="/events", body=body,
                       headers=[("content-type", "application/octet-stream")])
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


# -- response mapping --------------------------------------------------------------------------
def ok(value) -> InvokeResult:
    return InvokeResult(request_id="r", payload=json.dumps(value).encode())


def test_a_structured_response_maps_status_headers_cookies_and_body():
    response = map_response(ok({"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-N": 3},
                                "multiValueHeaders": {"X-Many": ["a", "b"]}, "cookies": ["a=1", "b=2"],
                                "body": "made"}))
    assert response.status == 201 and response.body == b"made"
    assert ("content-type", "text/plain") in response.headers and ("x-n", "3") in response.headers
    assert [v for k, v in response.headers if k == "x-many"] == ["a", "b"]
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1", "b=2"]


def test_a_base64_body_is_decoded():
    data = bytes(range(256))
    response = map_response(ok({"statusCode": 200, "body": base64.b64encode(data).decode(), "isBase64Encoded": True}))
    assert response.body == data


@pytest.mark.parametrize("value", [{"hello": "world"}, ["a", 1], "text", 7, None])
def test_anything_without_a_status_code_is_inferred_as_200_json(value):
    response = map_response(ok(value))
    assert response.status == 200
    assert ("content-type", "application/json") in response.headers
    assert json.loads(response.body) == value


@pytest.mark.parametrize("result,status,message", [
    (function_error("ValueError", "boom", "r"), 500, "Internal Server Error"),
    (function_error("Sandbox.Timedout", "Task timed out after 3.00 seconds", "r", timed_out=True), 503,
     "Service Unavailable"),
    (service_error("TooManyRequestsException", "Rate Exceeded."), 503, "Service Unavailable"),
    (service_error("RequestEntityTooLargeException", "too big"), 413, "Request Entity Too Large"),
    (ok({"statusCode": "abc"}), 500, "Internal Server Error"),
    (ok({"statusCode": 200, "body": {"not": "a string"}}), 500, "Internal Server Error"),
])
def test_errors_map_to_api_gateway_messages(result, status, message):
    response = map_response(result)
    assert (response.status, json.loads(response.body)) == (status, {"message": message})


# -- the ASGI app ------------------------------------------------------------------------------
class RecordingInvoker:
    def __init__(self, result=None) -> None:
        self.calls = []
        self.result = result

    def invoke(self, function, payload, **kw):
        self.calls.append((function, json.loads(payload)))
        return self.result or ok({"statusCode": 200, "body": "fine"})


def call(app, method, path, body=b"", headers=()):
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8080), "http_version": "1.1"}
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], dict((k.decode(), v.decode()) for k, v in sent[0]["headers"]), sent[1]["body"]


def test_an_unknown_path_is_404_not_found_without_an_invocation():
    invoker = RecordingInvoker()
    status, _, body = call(GatewayApp(invoker, RouteTable([api("GET /a")])), "GET", "/b")
    assert (status, json.loads(body), invoker.calls) == (404, {"message": "Not Found"}, [])


def test_a_body_over_10_mb_is_refused_with_413_without_an_invocation():
    invoker = RecordingInvoker()
    app = GatewayApp(invoker, RouteTable([api("POST /events")]))
    status, _, body = call(app, "POST", "/events", body=b"x" * (BODY_LIMIT + 1))
    assert (status, json.loads(body), invoker.calls) == (413, {"message": "Request Entity Too Large"}, [])
    status, _, _ = call(app, "POST", "/events", headers=[("content-length", str(BODY_LIMIT + 1))])
    assert status == 413 and invoker.calls == []


def test_a_matched_request_invokes_the_routes_function_with_the_event():
    invoker = RecordingInvoker()
    status, headers, body = call(GatewayApp(invoker, RouteTable([api("GET /a/{id}")])), "GET", "/a/9")
    assert (status, body) == (200, b"fine")
    [(function, event)] = invoker.calls
    assert function == f"{FN}fn0" and event["pathParameters"] == {"id": "9"}
    assert headers["apigw-requestid"] == event["requestContext"]["requestId"]


def test_before_the_first_discovery_every_request_is_503_with_retry_after_never_404():
    # a client takes 404 as final: after a restart the replay dropped 1,500 invoices that way
    invoker = RecordingInvoker()
    app = GatewayApp(invoker)  # as the runtime builds it, before it has read the emulator
    status, headers, body = call(app, "POST", "/events", body=b"{}")
    assert status == 503 and headers["retry-after"] == "1" and invoker.calls == []
    assert "has not read the deployment" in json.loads(body)["message"]
    app.set_routes(RouteTable([api("POST /events")]))
    assert call(app, "POST", "/events", body=b"{}")[0] == 200
    assert call(app, "GET", "/elsewhere")[0] == 404  # once routes are known, a missing one is a 404 again


def test_a_gateway_told_the_emulator_is_gone_says_so_on_every_request():
    invoker = RecordingInvoker()
    app = GatewayApp(invoker, RouteTable([api("POST /events")]))
    app.set_unavailable("the AWS emulator at http://127.0.0.1:4566 is not answering")
    status, headers, body = call(app, "POST", "/events", body=b"{}")
    assert status == 503 and "emulator" in json.loads(body)["message"] and invoker.calls == []
    assert app.status()["unavailable"] and app.status()["answered_unavailable"] == 1
    app.set_unavailable(None)
    assert call(app, "POST", "/events", body=b"{}")[0] == 200
