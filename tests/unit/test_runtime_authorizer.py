"""The local gateway checks tokens as API Gateway's JWT authorizer does (devstack/runtime/authorizer.py)."""
from __future__ import annotations

import json
import time

import jwt
import pytest

from devstack.auth import LocalIssuer
from devstack.runtime.gateway import GatewayApp, RouteTable
from devstack.runtime.model import AuthorizerSpec, HttpApiSpec, RouteSpec
from tests.unit.test_runtime_gateway import FN, RecordingInvoker, call

ISSUER = "http://127.0.0.1:18080"
READ = ("shopstream/invoices.read", "shopstream/invoices.read.own")


@pytest.fixture(scope="module")
def issuer(tmp_path_factory) -> LocalIssuer:
    return LocalIssuer.ensure(tmp_path_factory.mktemp("state"), ISSUER)


def shop(issuer: LocalIssuer, audience=("shopstream",)) -> RouteTable:
    authorizer = AuthorizerSpec("auth1", "JWT", "jwt", ("$request.header.Authorization",), issuer.issuer, audience)
    routes = (
        RouteSpec("POST /events", "ingest", f"{FN}ingest", authorization_type="JWT", authorizer=authorizer,
                  authorization_scopes=("shopstream/events.write",)),
        RouteSpec("GET /invoices/{invoice_no}", "query", f"{FN}query", authorization_type="JWT", authorizer=authorizer,
                  authorization_scopes=READ),
        RouteSpec("GET /openapi.json", "query", f"{FN}query"),
    )
    return RouteTable([HttpApiSpec(api_id="abc123", name="shop", routes=routes)])


def get(issuer, token, path="/invoices/536365", method="GET", table=None):
    invoker = RecordingInvoker()
    app = GatewayApp(invoker, table or shop(issuer), issuer=issuer)
    headers = [("authorization", f"Bearer {token}")] if token else []
    status, response_headers, body = call(app, method, path, headers=headers)
    parsed = json.loads(body) if body.startswith((b"{", b"[")) else body
    return status, response_headers, parsed, invoker.calls


def test_no_token_is_401_unauthorized_without_an_invocation(issuer):
    status, headers, body, calls = get(issuer, None)
    assert (status, body, calls) == (401, {"message": "Unauthorized"}, [])
    assert headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("tamper", ["expired", "not yet valid", "other issuer", "other audience", "unknown kid",
                                    "other key", "hs256", "garbage"])
def test_an_invalid_token_is_401(issuer, tamper):
    now = time.time()
    claims = {"sub": "staff", "client_id": "staff", "scope": "shopstream/invoices.read"}
    if tamper == "expired":
        token = issuer.sign(claims, ttl=-10)
    elif tamper == "not yet valid":
        token = issuer.sign({**claims, "nbf": int(now) + 600})
    elif tamper == "other issuer":
        token = issuer.sign({**claims, "iss": "http://elsewhere"})
    elif tamper == "other audience":
        token = issuer.sign({**claims, "aud": "someone-else"})
    elif tamper == "unknown kid":
        token = issuer.sign(claims, kid="nope")
    elif tamper == "other key":
        from cryptography.hazmat.primitives.asymmetric import rsa
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode({"iss": issuer.issuer, "aud": "shopstream", "exp": int(now) + 60, **claims}, other,
                           algorithm="RS256", headers={"kid": issuer.kid})
    elif tamper == "hs256":
        token = jwt.encode({"iss": issuer.issuer, "aud": "shopstream", "exp": int(now) + 60, **claims},
                           "secret-of-32-bytes-at-the-least!", algorithm="HS256", headers={"kid": issuer.kid})
    else:
        token = "not.a.jwt"
    status, _, body, calls = get(issuer, token)
    assert (status, body, calls) == (401, {"message": "Unauthorized"}, [])


def test_a_token_without_the_routes_scope_is_403_forbidden(issuer):
    status, _, body, calls = get(issuer, issuer.token(producer="shop-a"))
    assert (status, body, calls) == (403, {"message": "Forbidden"}, [])
    status, _, body, calls = get(issuer, issuer.token(staff=True), path="/events", method="POST")
    assert (status, body, calls) == (403, {"message": "Forbidden"}, [])


def test_claims_and_scopes_reach_the_function_as_api_gateway_passes_them(issuer):
    status, _, _, [(function, event)] = get(issuer, issuer.token(customer="17850"))
    assert status == 200 and function == f"{FN}query"
    jwt_context = event["requestContext"]["authorizer"]["jwt"]
    assert jwt_context["scopes"] == ["shopstream/invoices.read.own"]
    claims = jwt_context["claims"]
    assert claims["customer_id"] == "17850" and claims["iss"] == ISSUER and claims["aud"] == "shopstream"
    assert all(isinstance(v, str) for v in claims.values()) and claims["exp"].isdigit()


def test_a_token_without_aud_is_checked_by_its_client_id_as_cognito_access_tokens_are(issuer):
    table = shop(issuer, audience=("app-client-1",))
    token = issuer.sign({"aud": None, "sub": "app-client-1", "client_id": "app-client-1",
                         "scope": "shopstream/events.write"})
    # PyJWT writes aud: null; Cognito's access tokens have no aud at all
    unsigned = jwt.decode(token, options={"verify_signature": False})
    del unsigned["aud"]
    token = jwt.encode(unsigned, issuer.private_key, algorithm="RS256", headers={"kid": issuer.kid})
    assert get(issuer, token, path="/events", method="POST", table=table)[0] == 200
    other = issuer.sign({"sub": "x", "client_id": "app-client-2", "scope": "shopstream/events.write"})
    assert get(issuer, other, path="/events", method="POST", table=table)[0] == 401  # aud shopstream ≠ app-client-1


def test_the_document_is_public_and_the_issuers_keys_are_served(issuer):
    status, _, _, calls = get(issuer, None, path="/openapi.json")
    assert status == 200 and len(calls) == 1 and "authorizer" not in calls[0][1]["requestContext"]
    status, _, jwks, _ = get(issuer, None, path="/.well-known/jwks.json")
    assert status == 200 and [k["kid"] for k in jwks["keys"]] == [issuer.kid]
    status, _, config, _ = get(issuer, None, path="/.well-known/openid-configuration")
    assert config["issuer"] == ISSUER and config["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    key = jwt.PyJWK(jwks["keys"][0]).key
    assert jwt.decode(issuer.token(staff=True), key, algorithms=["RS256"], audience="shopstream")["sub"] == "staff"


def test_the_issuer_keeps_its_key_and_its_file_is_private(tmp_path):
    first = LocalIssuer.ensure(tmp_path, "http://127.0.0.1:1")
    again = LocalIssuer.ensure(tmp_path, "http://127.0.0.1:2")
    assert again.kid == first.kid and again.issuer == "http://127.0.0.1:2"
    assert LocalIssuer.load(tmp_path).issuer == "http://127.0.0.1:2"
    assert ((tmp_path / "auth" / "signing-key.pem").stat().st_mode & 0o777) == 0o600
    with pytest.raises(ValueError):
        first.token(staff=True, producer="x")
