"""The local gateway's JWT authorizer with an issuer other than the local one: its keys
come from OIDC discovery (``<issuer>/.well-known/openid-configuration`` → ``jwks_uri``)
over real HTTP, from a throwaway issuer on 127.0.0.1 with RSA keys made here
(devstack/runtime/authorizer.py ``JwksCache``)."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.runtime.authorizer import JWKS_RETRY_SECONDS, JWKS_TTL_SECONDS, JwksCache, JwtAuthorizer
from devstack.runtime.gateway import GatewayApp, RouteTable
from devstack.runtime.model import AuthorizerSpec, HttpApiSpec, RouteSpec
from tests.unit.test_runtime_gateway import FN, RecordingInvoker, call

AUDIENCE = "shopstream-api"
READ = ("shopstream/invoices.read", "shopstream/invoices.read.own")
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/keys.json"


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    """Three RSA keys, made once: the issuer's, the one it rotates to, and a stranger's."""
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("k1", "k2", "other")}


class Issuer:
    """An OIDC issuer on 127.0.0.1: its discovery document and JWKS, and what it was asked."""

    def __init__(self) -> None:
        self.signing: dict[str, rsa.RSAPrivateKey] = {}  # kid -> key published in the JWKS
        self.hits: Counter[str] = Counter()
        self.answers: dict[str, tuple[int, bytes]] = {}  # path -> (status, body) instead of the real document
        self.delay = 0.0  # seconds each answer takes
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                issuer.hits[self.path] += 1
                time.sleep(issuer.delay)
                status, body = issuer.answer(self.path)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, path: str) -> tuple[int, bytes]:
        if path in self.answers:
            return self.answers[path]
        if path == DISCOVERY:
            return 200, json.dumps({"issuer": self.url, "jwks_uri": self.url + JWKS,
                                    "id_token_signing_alg_values_supported": ["RS256"]}).encode()
        if path == JWKS:
            published = [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())),
                          "kid": kid, "use": "sig", "alg": "RS256"} for kid, key in self.signing.items()]
            return 200, json.dumps({"keys": published}).encode()
        return 404, b'{"message":"Not Found"}'

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def issuer(keys):
    server = Issuer()
    server.signing["k1"] = keys["k1"]
    yield server
    server.close()


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def route(issuer_url: str, scopes=READ) -> RouteSpec:
    spec = AuthorizerSpec("auth1", "JWT", "jwt", ("$request.header.Authorization",), issuer_url, (AUDIENCE,))
    return RouteSpec("GET /invoices/{invoice_no}", "query", f"{FN}query", authorization_type="JWT", authorizer=spec,
                     authorization_scopes=scopes)


def token(key, kid: str, iss: str, **claims) -> str:
    """A token signed with ``key`` under ``kid``; a claim given as None is left out."""
    now = int(time.time())
    body = {"iss": iss, "aud": AUDIENCE, "sub": "staff", "scope": "shopstream/invoices.read", "iat": now,
            "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256", headers={"kid": kid})


def authorize(authorizer: JwtAuthorizer, issuer_url: str, bearer: str):
    return authorizer.authorize(route(issuer_url), [("authorization", f"Bearer {bearer}")])


def gateway(issuer_url: str, bearer: str):
    """The request through the gateway app (which reads remote keys off its event loop)."""
    invoker = RecordingInvoker()
    table = RouteTable([HttpApiSpec(api_id="abc123", name="shop", routes=(route(issuer_url),))])
    status, headers, body = call(GatewayApp(invoker, table), "GET", "/invoices/536365",
                                 headers=[("authorization", f"Bearer {bearer}")])
    return status, headers, json.loads(body) if body.startswith(b"{") else body, invoker.calls


def test_a_token_signed_by_the_issuers_published_key_is_accepted(issuer, keys):
    # GIVEN an issuer publishing k1, and a staff token it signed with k1
    bearer = token(keys["k1"], "k1", issuer.url, customer_id="17850")
    # WHEN the gateway checks it
    status, _, _, calls = gateway(issuer.url, bearer)
    # THEN the function is invoked with the claims, after one discovery and one JWKS read
    assert status == 200 and len(calls) == 1
    jwt_context = calls[0][1]["requestContext"]["authorizer"]["jwt"]
    assert jwt_context["claims"]["iss"] == issuer.url and jwt_context["scopes"] == ["shopstream/invoices.read"]
    assert issuer.hits == {DISCOVERY: 1, JWKS: 1}


def test_a_token_without_aud_is_accepted_by_its_client_id_as_a_cognito_access_token(issuer, keys):
    authorizer = JwtAuthorizer(JwksCache())
    assert authorize(authorizer, issuer.url, token(keys["k1"], "k1", issuer.url, aud=None, client_id=AUDIENCE)).ok
    assert authorize(authorizer, issuer.url, token(keys["k1"], "k1", issuer.url, aud=None, client_id="x")).status == 401


@pytest.mark.parametrize("case, status, message", [
    ("unknown kid", 401, "Unauthorized"),
    ("published kid, other key", 401, "Unauthorized"),
    ("other issuer", 401, "Unauthorized"),
    ("expired", 401, "Unauthorized"),
    ("other audience", 401, "Unauthorized"),
    ("none of the route's scopes", 403, "Forbidden"),
])
def test_tokens_are_refused_as_api_gateway_refuses_them(issuer, keys, case, status, message):
    # GIVEN a token the authorizer must not accept
    now = int(time.time())
    bearer = {
        "unknown kid": lambda: token(keys["k1"], "k9", issuer.url),
        "published kid, other key": lambda: token(keys["other"], "k1", issuer.url),
        "other issuer": lambda: token(keys["k1"], "k1", "http://127.0.0.1:1/elsewhere"),
        "expired": lambda: token(keys["k1"], "k1", issuer.url, iat=now - 600, exp=now - 60),
        "other audience": lambda: token(keys["k1"], "k1", issuer.url, aud="someone-else"),
        "none of the route's scopes": lambda: token(keys["k1"], "k1", issuer.url, scope="shopstream/events.write"),
    }[case]()
    # WHEN the gateway checks it
    answered, headers, body, calls = gateway(issuer.url, bearer)
    # THEN it answers as API Gateway does (401 with www-authenticate, or 403), invoking nothing
    assert (answered, body, calls) == (status, {"message": message}, [])
    assert ("www-authenticate" in headers) == (status == 401)
    if case == "other issuer":  # the keys read are the authorizer's issuer's, never the token's
        assert issuer.hits[DISCOVERY] == 1


def test_the_keys_are_read_once_within_the_ttl_and_again_after_it(issuer, keys):
    # GIVEN an authorizer with a clock of its own
    clock = Clock()
    authorizer = JwtAuthorizer(JwksCache(clock=clock))
    bearer = token(keys["k1"], "k1", issuer.url)
    # WHEN tokens come in during the first TTL
    for moment in (0, 1, JWKS_TTL_SECONDS - 1):
        clock.now = 1000.0 + moment
        assert authorize(authorizer, issuer.url, bearer).status == 200
    # THEN the issuer was asked once
    assert issuer.hits == {DISCOVERY: 1, JWKS: 1}
    # AND once the TTL is over, asked again (discovery too: jwks_uri may move)
    clock.now = 1000.0 + JWKS_TTL_SECONDS + 1
    assert authorize(authorizer, issuer.url, bearer).status == 200
    assert issuer.hits == {DISCOVERY: 2, JWKS: 2}
    assert authorizer.needs_fetch(route(issuer.url)) is False


def test_a_rotated_key_is_used_once_the_cache_expires_and_a_withdrawn_one_refused(issuer, keys):
    clock = Clock()
    authorizer = JwtAuthorizer(JwksCache(clock=clock))
    old, new = token(keys["k1"], "k1", issuer.url), token(keys["k2"], "k2", issuer.url)
    assert authorize(authorizer, issuer.url, old).status == 200
    # GIVEN the issuer rotates: it publishes k2 and withdraws k1
    issuer.signing = {"k2": keys["k2"]}
    # WHEN a k2 token comes within the TTL, it is refused: the cached JWKS has no k2 yet
    clock.now += 10
    assert authorize(authorizer, issuer.url, new).status == 401
    assert authorize(authorizer, issuer.url, old).status == 200
    # THEN after the TTL the new key is read: k2 accepted, k1 refused
    clock.now += JWKS_TTL_SECONDS
    assert authorize(authorizer, issuer.url, new).status == 200
    decision = authorize(authorizer, issuer.url, old)
    assert (decision.status, decision.reason) == (401, "no key of the issuer has the token's kid")
    assert issuer.hits == {DISCOVERY: 2, JWKS: 2}


def test_an_unreachable_issuer_is_a_logged_refusal_not_a_crash(keys, caplog):
    # GIVEN an issuer nobody listens for (a port just closed)
    server = Issuer()
    url = server.url
    server.close()
    bearer = token(keys["k1"], "k1", url)
    # WHEN a request comes through the gateway
    with caplog.at_level(logging.WARNING, logger="devstack.runtime.authorizer"):
        status, headers, body, calls = gateway(url, bearer)
    # THEN 401 as for any token that cannot be verified, and the log says why
    assert (status, body, calls) == (401, {"message": "Unauthorized"}, [])
    assert "keys could not be read" in headers["www-authenticate"]
    assert [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()][0].startswith(
        f"signing keys of {url} unreadable: {url}/.well-known/openid-configuration")


def test_a_failing_jwks_is_refused_logged_once_and_asked_again_only_after_a_pause(issuer, keys, caplog):
    # GIVEN an issuer whose JWKS answers 500
    clock = Clock()
    authorizer = JwtAuthorizer(JwksCache(clock=clock))
    issuer.answers[JWKS] = (500, b'{"message":"Internal Server Error"}')
    bearer = token(keys["k1"], "k1", issuer.url)
    # WHEN requests keep coming
    with caplog.at_level(logging.WARNING, logger="devstack.runtime.authorizer"):
        first = authorize(authorizer, issuer.url, bearer)
        clock.now += 1
        second = authorize(authorizer, issuer.url, bearer)
    # THEN each is refused with 401, the issuer was asked once, and the failure logged once
    assert (first.status, first.reason) == (second.status, second.reason) == (401, "the issuer's keys could not be read")
    assert issuer.hits == {DISCOVERY: 1, JWKS: 1}
    [warning] = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert "HTTP Error 500" in warning
    assert authorizer.needs_fetch(route(issuer.url)) is False  # a refusal that waits on nobody
    # AND after the pause, once the JWKS is back, the same token is accepted
    del issuer.answers[JWKS]
    clock.now += JWKS_RETRY_SECONDS
    assert authorizer.needs_fetch(route(issuer.url)) is True
    assert authorize(authorizer, issuer.url, bearer).status == 200
    assert issuer.hits == {DISCOVERY: 2, JWKS: 2}


@pytest.mark.parametrize("path, status, body, logged", [
    (DISCOVERY, 200, b"[]", "not a JSON object"),
    (DISCOVERY, 200, b'{"issuer": "x"}', "names no jwks_uri"),
    (DISCOVERY, 200, b'{"jwks_uri": "file:///etc/passwd"}', "is not an http(s) URL"),
    (DISCOVERY, 404, b"{}", "HTTP Error 404"),
    (JWKS, 200, b"<html>keys</html>", "not JSON"),
    (JWKS, 200, b'{"keys": {"kid": "k1"}}', "not a JWKS"),
    (JWKS, 200, b"[1, 2]", "not a JSON object"),
])
def test_documents_that_are_not_what_discovery_describes_are_logged_refusals(issuer, keys, caplog, path, status,
                                                                             body, logged):
    issuer.answers[path] = (status, body)
    with caplog.at_level(logging.WARNING, logger="devstack.runtime.authorizer"):
        decision = authorize(JwtAuthorizer(JwksCache()), issuer.url, token(keys["k1"], "k1", issuer.url))
    assert (decision.status, decision.reason) == (401, "the issuer's keys could not be read")
    assert any(logged in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_keys_that_are_not_rsa_objects_are_skipped(issuer, keys):
    published = json.loads(issuer.answer(JWKS)[1])["keys"]
    issuer.answers[JWKS] = (200, json.dumps({"keys": ["k1", {"kid": "k1", "kty": "EC"}, *published]}).encode())
    assert authorize(JwtAuthorizer(JwksCache()), issuer.url, token(keys["k1"], "k1", issuer.url)).status == 200


def test_a_slow_issuer_holds_up_only_the_requests_that_wait_for_its_keys(issuer, keys):
    # GIVEN an issuer that takes 0.4 s per document, and a gateway that has not read its keys yet
    issuer.delay = 0.4
    invoker = RecordingInvoker()
    public = RouteSpec("GET /openapi.json", "query", f"{FN}query")
    table = RouteTable([HttpApiSpec(api_id="abc123", name="shop", routes=(route(issuer.url), public))])
    app = GatewayApp(invoker, table)
    finished: list[str] = []

    async def request(path: str, headers: list[tuple[bytes, bytes]]) -> int:
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080),
                 "http_version": "1.1"}
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        finished.append(path)
        return sent[0]["status"]

    async def both():
        bearer = token(keys["k1"], "k1", issuer.url).encode()
        slow = asyncio.ensure_future(request("/invoices/536365", [(b"authorization", b"Bearer " + bearer)]))
        await asyncio.sleep(0.05)  # the token's request is waiting on the issuer
        started = time.monotonic()
        fast = await request("/openapi.json", [])
        took = time.monotonic() - started
        return await slow, fast, took

    # WHEN a request needing the keys and one for a public route come together
    slow, fast, took = asyncio.run(both())
    # THEN the public one is answered at once, without waiting for the issuer (0.8 s for its two documents)
    assert (slow, fast) == (200, 200)
    assert finished == ["/openapi.json", "/invoices/536365"] and took < 0.6
