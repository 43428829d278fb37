"""The HTTP gateway: API Gateway HTTP APIs (Lambda proxy, payload format 2.0) on localhost.

Routing
    Route keys come from the emulator (``GET /invoices/{invoice_no}``, ``ANY /{proxy+}``,
    ``$default``). A request matches a route when the method is equal (or the route is
    ``ANY``) and each path segment matches: a literal exactly, ``{name}`` any one
    segment, ``{name+}`` one or more trailing segments. The most specific route wins,
    segment by segment (literal before ``{param}`` before ``{proxy+}``), then a specific
    method before ``ANY``; ``$default`` catches the rest; otherwise 404
    ``{"message":"Not Found"}``. An API's ``$default`` stage is served at the root, a
    named stage under ``/<stage>`` (``rawPath`` keeps the prefix, as on AWS). With
    several APIs the ``Host`` ``<api-id>.execute-api.…`` selects one; otherwise the
    first API (by name) that has a matching route serves the request.

Event (payload format 2.0)
    ``version``, ``routeKey``, ``rawPath``, ``rawQueryString``, ``cookies`` (from the
    Cookie header, which is then left out of ``headers``), ``headers`` (lower-cased,
    repeated ones comma-joined, plus API Gateway's x-forwarded-*/x-amzn-trace-id),
    ``queryStringParameters`` (decoded, repeated ones comma-joined), ``pathParameters``,
    ``requestContext`` (accountId, apiId, domainName, domainPrefix, http{method, path,
    protocol, sourceIp, userAgent}, requestId, routeKey, stage, time, timeEpoch),
    ``body`` and ``isBase64Encoded`` (true unless the content type is textual and the
    body valid UTF-8). Optional keys are absent when empty, as on AWS.

Response
    A JSON object with ``statusCode`` is a structured response: ``headers``,
    ``multiValueHeaders``, ``cookies`` (one ``set-cookie`` each) and ``body`` (base64-
    decoded when ``isBase64Encoded``). Anything else is inferred: 200,
    ``content-type: application/json``, the JSON result as body. A function error → 500
    ``{"message":"Internal Server Error"}`` (as is a malformed structured response); a
    function or integration timeout, or throttling → 503 ``{"message":"Service
    Unavailable"}``; a request body over 10 MB → 413 ``{"message":"Request Entity Too
    Large"}`` without invoking (and an event over Lambda's 6 MB also gets 413).

Authorization
    A route with a JWT authorizer is checked before invoking, as API Gateway does
    (:mod:`devstack.runtime.authorizer`): 401 ``{"message":"Unauthorized"}`` for a
    missing or invalid token, 403 ``{"message":"Forbidden"}`` for one without the
    route's scopes, and the verified claims and scopes in ``requestContext.authorizer.jwt``.
    The local issuer's discovery document and keys are served at
    ``/.well-known/openid-configuration`` and ``/.well-known/jwks.json``.

Availability
    Until the runtime has read the deployment (and while the emulator does not answer,
    or no longer holds the deployment), every request gets 503 with ``Retry-After`` and
    a message saying why, never a 404 a client would take as final.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as _dt
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from devstack.auth import LocalIssuer
from devstack.runtime.authorizer import Decision, JwksCache, JwtAuthorizer
from devstack.runtime.model import HttpApiSpec, RouteSpec
from devstack.runtime.workers import InvokeResult

log = logging.getLogger("devstack.runtime.gateway")

BODY_LIMIT = 10 * 1024 * 1024  # API Gateway HTTP API payload quota
MAX_INTEGRATION_TIMEOUT_MS = 30000
TEXT_TYPES = re.compile(r"^(text/.*|application/(json|xml|javascript|x-www-form-urlencoded|graphql|"
                        r"x-ndjson|ld\+json|[\w.+-]*\+(json|xml)))$", re.I)

_LITERAL, _PARAM, _GREEDY = 0, 1, 2


@dataclass(frozen=True)
class CompiledRoute:
    route: RouteSpec
    api: HttpApiSpec
    method: str | None                  # None: ANY
    segments: tuple[tuple[int, str], ...]
    is_default: bool = False

    @property
    def specificity(self) -> tuple:
        return (tuple(kind for kind, _ in self.segments), self.method is None)

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        if self.is_default:
            return {}
        if self.method is not None and self.method != method:
            return None
        params: dict[str, str] = {}
        for i, (kind, value) in enumerate(self.segments):
            if kind == _GREEDY:
                rest = parts[i:]
                if not rest or rest == [""]:
                    return None
                params[value] = unquote("/".join(rest))
                return params
            if i >= len(parts):
                return None
            if kind == _LITERAL:
                if parts[i] != value and unquote(parts[i]) != value:
                    return None
            else:
                if parts[i] == "":
                    return None
                params[value] = unquote(parts[i])
        return params if len(parts) == len(self.segments) else None


def split_path(path: str) -> list[str]:
    stripped = path.strip("/") if path not in ("", "/") else ""
    return stripped.split("/") if stripped else []


def compile_route(route: RouteSpec, api: HttpApiSpec) -> CompiledRoute:
    if route.route_key.strip() == "$default":
        return CompiledRoute(route, api, None, (), is_default=True)
    method, _, path = route.route_key.strip().partition(" ")
    segments = []
    for part in split_path(path.strip()):
        if part.startswith("{") and part.endswith("+}"):
            segments.append((_GREEDY, part[1:-2]))
        elif part.startswith("{") and part.endswith("}"):
            segments.append((_PARAM, part[1:-1]))
        else:
            segments.append((_LITERAL, part))
    method = method.upper()
    return CompiledRoute(route, api, None if method == "ANY" else method, tuple(segments))


@dataclass
class Match:
    route: RouteSpec
    api: HttpApiSpec
    stage: str
    path_parameters: dict[str, str]


class RouteTable:
    """Immutable routing table built from discovered HTTP APIs."""

    def __init__(self, apis: Iterable[HttpApiSpec] = ()) -> None:
        self.apis = sorted(apis, key=lambda a: (a.name, a.api_id))
        self._routes: dict[str, list[CompiledRoute]] = {}
        for api in self.apis:
            compiled = [compile_route(r, api) for r in api.routes]
            compiled.sort(key=lambda c: (c.is_default, c.specificity))
            self._routes[api.api_id] = compiled

    def __len__(self) -> int:
        return sum(len(v) for v in self._routes.values())

    def match(self, method: str, path: str, host: str = "") -> Match | None:
        apis = self.apis
        label = host.split(".", 1)[0] if ".execute-api." in host else None
        if label is not None:
            apis = [a for a in self.apis if a.api_id == label] or self.apis
        for api in apis:
            for stage, stage_path in self._stage_paths(api, path):
                parts = split_path(stage_path)
                for compiled in self._routes[api.api_id]:
                    params = compiled.match(method.upper(), parts)
                    if params is not None:
                        return Match(compiled.route, api, stage, params)
        return None

    @staticmethod
    def _stage_paths(api: HttpApiSpec, path: str) -> list[tuple[str, str]]:
        stages = list(api.stages) or ["$default"]
        out = []
        for stage in stages:
            if stage == "$default":
                continue
            prefix = "/" + stage
            if path == prefix or path.startswith(prefix + "/"):
                out.append((stage, path[len(prefix):] or "/"))
        if "$default" in stages:
            out.append(("$default", path))
        return out


def _gateway_request_id() -> str:
    return base64.b64encode(os.urandom(10)).decode()


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    return bool(TEXT_TYPES.match(content_type.split(";", 1)[0].strip()))


def build_event(*, method: str, raw_path: str, raw_query: str, headers: Iterable[tuple[str, str]], body: bytes,
                match: Match, source_ip: str = "127.0.0.1", protocol: str = "HTTP/1.1",
                request_id: str | None = None, now: float | None = None, port: int | None = None,
                authorizer: Decision | None = None) -> dict[str, Any]:
    """The API Gateway payload format 2.0 event for one request."""
    now = time.time() if now is None else now
    request_id = request_id or _gateway_request_id()
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    host = joined.get("host", f"127.0.0.1:{port}" if port else "localhost")
    domain = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    joined.setdefault("x-forwarded-for", source_ip)
    joined.setdefault("x-forwarded-port", str(port) if port else host.rsplit(":", 1)[-1] if ":" in host else "80")
    joined.setdefault("x-forwarded-proto", "http")
    joined.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{os.urandom(12).hex()}")
    if body and "content-length" not in joined:
        joined["content-length"] = str(len(body))

    moment = _dt.datetime.fromtimestamp(now, _dt.UTC)
    route_key = match.route.route_key
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = joined
    if raw_query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": match.api.account_id,
        "apiId": match.api.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": match.stage,
        "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now * 1000),
    }
    if authorizer is not None and authorizer.claims is not None:
        event["requestContext"]["authorizer"] = authorizer.context()
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    if body:
        text = None
        if _is_text(joined.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        event["body"] = text if text is not None else base64.b64encode(body).decode()
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    return event


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def message_response(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/json")],
                        json.dumps({"message": message}, separators=(",", ":")).encode())


NOT_FOUND = (404, "Not Found")
UNAUTHORIZED = (401, "Unauthorized")
FORBIDDEN = (403, "Forbidden")
WELL_KNOWN = ("/.well-known/openid-configuration", "/.well-known/jwks.json")
INTERNAL = (500, "Internal Server Error")
UNAVAILABLE = (503, "Service Unavailable")
TOO_LARGE = (413, "Request Entity Too Large")
NOT_DISCOVERED = "the local runtime has not read the deployment from the emulator yet; retry"


class MalformedResponse(ValueError):
    pass


def map_response(result: InvokeResult) -> HttpResponse:
    """Lambda's result → the HTTP response API Gateway (payload 2.0) would send."""
    if result.service_error is not None:
        if result.service_error == "RequestEntityTooLargeException":
            return message_response(*TOO_LARGE)
        if result.service_error == "TooManyRequestsException":
            return message_response(*UNAVAILABLE)
        return message_response(*INTERNAL)
    if result.function_error is not None:
        return message_response(*(UNAVAILABLE if result.timed_out else INTERNAL))
    try:
        return structured_response(result.payload)
    except MalformedResponse as exc:
        log.warning("malformed Lambda proxy response (%s): 500 as API Gateway does", exc)
        return message_response(*INTERNAL)


def structured_response(payload: bytes) -> HttpResponse:
    try:
        value = json.loads(payload) if payload else None
    except ValueError as exc:
        raise MalformedResponse("the result is not JSON") from exc
    if not isinstance(value, dict) or "statusCode" not in value:
        return HttpResponse(200, [("content-type", "application/json")], payload)
    try:
        status = int(value["statusCode"])
    except (TypeError, ValueError) as exc:
        raise MalformedResponse(f"statusCode {value['statusCode']!r} is not a number") from exc
    if not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status} is out of range")
    headers: list[tuple[str, str]] = []
    for name, header_value in (value.get("headers") or {}).items():
        headers.append((str(name).lower(), _header_text(header_value)))
    for name, values in (value.get("multiValueHeaders") or {}).items():
        for item in values if isinstance(values, list) else [values]:
            headers.append((str(name).lower(), _header_text(item)))
    for cookie in value.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))
    body = value.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if value.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=False)
            except (binascii.Error, ValueError) as exc:
                raise MalformedResponse("body is not valid base64") from exc
        else:
            data = body.encode("utf-8")
    else:
        raise MalformedResponse(f"body must be a string, got {type(body).__name__}")
    return HttpResponse(status, headers, data)


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class GatewayStats:
    requests: int = 0
    not_found: int = 0
    errors_5xx: int = 0
    too_large: int = 0
    unavailable: int = 0
    unauthorized: int = 0
    forbidden: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


class GatewayApp:
    """The ASGI application (served by uvicorn with httptools)."""

    def __init__(self, invoker, routes: RouteTable | None = None, *, executor_workers: int = 32,
                 issuer: LocalIssuer | None = None) -> None:
        self.invoker = invoker
        self.issuer = issuer
        self.authorizer = JwtAuthorizer(JwksCache(issuer))
        self.routes = routes or RouteTable()
        self.stats = GatewayStats()
        self.executor = ThreadPoolExecutor(max_workers=executor_workers, thread_name_prefix="gateway-invoke")
        # Until the runtime has read the deployment, no route is known: answering 404 then
        # would tell a client its request can never succeed. While this is set, every
        # request gets 503 with Retry-After and this reason instead.
        self.unavailable: str | None = None if routes is not None else NOT_DISCOVERED

    def set_issuer(self, issuer: LocalIssuer | None) -> None:
        """The local issuer whose keys check its tokens and whose JWKS is served."""
        self.issuer = issuer
        self.authorizer = JwtAuthorizer(JwksCache(issuer))

    def set_routes(self, routes: RouteTable) -> None:
        self.routes = routes
        self.unavailable = None

    def set_unavailable(self, reason: str | None) -> None:
        """Answer every request 503 with this reason (None: serve the routes again)."""
        self.unavailable = reason

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # uvicorn runs with lifespan="off"
            return
        response = await self.handle(scope, receive)
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in response.headers]})
        await send({"type": "http.response.body", "body": response.body})

    async def handle(self, scope, receive) -> HttpResponse:
        self.stats.bump("requests")
        request_id = _gateway_request_id()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        declared = next((v for k, v in headers if k == "content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > BODY_LIMIT:
            self.stats.bump("too_large")
            return self._finish(message_response(*TOO_LARGE), request_id)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return self._finish(message_response(400, "Bad Request"), request_id)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > BODY_LIMIT:
                self.stats.bump("too_large")
                return self._finish(message_response(*TOO_LARGE), request_id, close=True)
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        method = scope["method"]
        if self.issuer is not None and method == "GET" and scope["path"] in WELL_KNOWN:
            document = self.issuer.jwks() if scope["path"] == WELL_KNOWN[1] else self.issuer.openid_configuration()
            return self._finish(HttpResponse(200, [("content-type", "application/json")],
                                             json.dumps(document).encode()), request_id)
        unavailable = self.unavailable
        if unavailable is not None:
            self.stats.bump("unavailable")
            response = message_response(503, unavailable)
            response.headers.append(("retry-after", "1"))
            return self._finish(response, request_id)
        raw_path = scope.get("raw_path")
        raw_path = raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope["path"]
        host = next((v for k, v in headers if k == "host"), "")
        match = self.routes.match(method, raw_path, host)
        if match is None:
            self.stats.bump("not_found")
            return self._finish(message_response(*NOT_FOUND), request_id)
        if self.authorizer.needs_fetch(match.route):  # the issuer's keys come over the network: off the event loop
            decision = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.authorizer.authorize, match.route, headers)
        else:
            decision = self.authorizer.authorize(match.route, headers)
        if not decision.ok:
            self.stats.bump("unauthorized" if decision.status == 401 else "forbidden")
            log.info("%s %s → %d (%s)", method, raw_path, decision.status, decision.reason)
            if decision.status == 401:
                response = message_response(*UNAUTHORIZED)
                response.headers.append(("www-authenticate", 'Bearer error="invalid_token" '
                                                             f'error_description="{decision.reason}"'))
            else:
                response = message_response(*FORBIDDEN)
            return self._finish(response, request_id)
        client = scope.get("client") or ("127.0.0.1", 0)
        server = scope.get("server") or ("127.0.0.1", None)
        event = build_event(method=method, raw_path=raw_path, raw_query=scope.get("query_string", b"").decode("latin-1"),
                            headers=headers, body=body, match=match, source_ip=client[0],
                            protocol=f"HTTP/{scope.get('http_version', '1.1')}", request_id=request_id,
                            port=server[1], authorizer=decision)
        payload = json.dumps(event, separators=(",", ":")).encode()
        timeout = min(match.route.timeout_ms or MAX_INTEGRATION_TIMEOUT_MS, MAX_INTEGRATION_TIMEOUT_MS) / 1000
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, lambda: self.invoker.invoke(
            match.route.function_arn or match.route.function_name, payload, acquire_timeout=timeout))
        try:
            result = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            log.warning("integration timeout after %.1fs route=%r function=%s", timeout, match.route.route_key,
                        match.route.function_name)
            return self._finish(message_response(*UNAVAILABLE), request_id)
        response = map_response(result)
        if not result.ok:
            log.warning("%s %s → %d (%s: %s) function=%s", method, raw_path, response.status,
                        result.error_type or result.service_error, result.error_message, match.route.function_name)
        else:
            log.debug("%s %s → %d function=%s %.1fms", method, raw_path, response.status, match.route.function_name,
                      result.duration_ms)
        return self._finish(response, request_id)

    def _finish(self, response: HttpResponse, request_id: str, close: bool = False) -> HttpResponse:
        if response.status >= 500:
            self.stats.bump("errors_5xx")
        response.headers.append(("apigw-requestid", request_id))
        if close:
            response.headers.append(("connection", "close"))
        return response

    def status(self) -> dict:
        return {
            "apis": [api.to_status() for api in self.routes.apis],
            "unavailable": self.unavailable, "answered_unavailable": self.stats.unavailable,
            "requests": self.stats.requests, "not_found": self.stats.not_found,
            "errors_5xx": self.stats.errors_5xx, "too_large": self.stats.too_large,
            "unauthorized": self.stats.unauthorized, "forbidden": self.stats.forbidden,
            "issuer": self.issuer.issuer if self.issuer else None,
        }

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
