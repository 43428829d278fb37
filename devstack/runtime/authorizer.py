"""API Gateway's JWT authorizer, locally: checks a route's bearer token before invoking.

What API Gateway (HTTP APIs) does, and so what this does, for a route whose
``AuthorizationType`` is ``JWT``:

1. the token is the route's identity source (``$request.header.Authorization``), with
   or without a ``Bearer`` prefix; none → 401;
2. its header names a ``kid`` found in the issuer's JWKS (the local issuer's own keys, or
   ``jwks_uri`` of ``<issuer>/.well-known/openid-configuration`` for any other issuer,
   cached for five minutes) and an RSA algorithm; the signature verifies;
3. ``iss`` equals the authorizer's issuer; ``aud`` holds one of its audiences, or, when the
   token has no ``aud``, ``client_id`` is one of them; ``exp`` is in the future, ``nbf`` and
   ``iat`` (when present) not after now;
4. any of these failing → 401 ``{"message":"Unauthorized"}`` with a ``www-authenticate``
   header; then, if the route has ``AuthorizationScopes``, the token's ``scope`` (or
   ``scp``) must hold at least one of them, else 403 ``{"message":"Forbidden"}``;
5. the function gets ``requestContext.authorizer.jwt``: ``claims`` (every claim as a
   string, lists as ``[a b]``) and ``scopes`` (the token's scopes, or null).

Only JWT authorizers are served locally; a route with another authorization type
(a Lambda authorizer, IAM) is refused with 401 rather than served open.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from devstack.auth import LocalIssuer
from devstack.runtime.model import RouteSpec

log = logging.getLogger("devstack.runtime.authorizer")

ALGORITHMS = ["RS256", "RS384", "RS512"]
JWKS_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class Decision:
    status: int                      # 200: authorized; 401 or 403 otherwise
    reason: str = ""
    claims: Mapping[str, str] | None = None
    scopes: list[str] | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def context(self) -> dict[str, Any]:
        return {"jwt": {"claims": dict(self.claims or {}), "scopes": self.scopes}}


def claim_text(value: Any) -> str:
    """A claim as API Gateway passes it to the function: text, a list as ``[a b]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(claim_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class JwksCache:
    """Signing keys per issuer: the local issuer's own, others' fetched through OIDC discovery."""

    def __init__(self, local: LocalIssuer | None = None, *, fetch_timeout: float = 5.0) -> None:
        self.local = local
        self.fetch_timeout = fetch_timeout
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _fetch(self, url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=self.fetch_timeout) as response:  # noqa: S310 (issuer URLs only)
            return json.loads(response.read())

    def keys(self, issuer: str) -> dict[str, Any]:
        if self.local is not None and issuer == self.local.issuer:
            return self.local.jwks()
        with self._lock:
            cached = self._cache.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < JWKS_TTL_SECONDS:
            return cached[1]
        config = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
        keys = self._fetch(config["jwks_uri"])
        with self._lock:
            self._cache[issuer] = (time.monotonic(), keys)
        return keys

    def key_for(self, issuer: str, kid: str | None) -> Any | None:
        if self.local is not None and issuer == self.local.issuer:  # its own key: no JWK round trip per request
            return self.local.private_key.public_key() if kid == self.local.kid else None
        for entry in self.keys(issuer).get("keys", []):
            if entry.get("kid") == kid and entry.get("kty") == "RSA":
                return jwt.PyJWK(entry).key
        return None


def _identity(route: RouteSpec, headers: Iterable[tuple[str, str]]) -> str | None:
    sources = route.authorizer.identity_sources if route.authorizer else ()
    names = [s.split("$request.header.", 1)[1].lower() for s in sources if s.startswith("$request.header.")]
    names = names or ["authorization"]
    for name, value in headers:
        if name.lower() in names and value.strip():
            return value.strip()
    return None


class JwtAuthorizer:
    def __init__(self, jwks: JwksCache, *, leeway: float = 0.0) -> None:
        self.jwks = jwks
        self.leeway = leeway

    def authorize(self, route: RouteSpec, headers: Iterable[tuple[str, str]], *, now: float | None = None) -> Decision:
        if route.authorization_type == "NONE":
            return Decision(200)
        spec = route.authorizer
        if route.authorization_type != "JWT" or spec is None or spec.authorizer_type != "JWT" or not spec.issuer:
            log.warning("route %r: authorization %s is not served locally (only JWT authorizers): refused",
                        route.route_key, route.authorization_type)
            return Decision(401, "this authorization type is not served locally")
        token = _identity(route, headers)
        if token is None:
            return Decision(401, "no token in the identity source")
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                return Decision(401, f"the token's algorithm {header.get('alg')!r} is not an RSA one")
            key = self.jwks.key_for(spec.issuer, header.get("kid"))
            if key is None:
                return Decision(401, "no key of the issuer has the token's kid")
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, issuer=spec.issuer, leeway=self.leeway,
                                options={"require": ["exp", "iss"], "verify_aud": False})
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            return Decision(401, f"the token is invalid: {exc}")
        except OSError as exc:  # the issuer's JWKS could not be read
            log.warning("JWKS of %s unreadable: %s", spec.issuer, exc)
            return Decision(401, "the issuer's keys could not be read")
        audiences = set(spec.audience)
        aud = claims.get("aud")
        if aud is not None:
            held = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
            if not held & audiences:
                return Decision(401, "the token's aud is not an audience of the authorizer")
        elif claims.get("client_id") not in audiences:
            return Decision(401, "the token has no aud and its client_id is not an audience of the authorizer")
        moment = time.time() if now is None else now
        if "iat" in claims and isinstance(claims["iat"], (int, float)) and claims["iat"] > moment + self.leeway:
            return Decision(401, "the token was issued in the future")
        raw_scopes = claims.get("scope", claims.get("scp"))
        scopes = (raw_scopes.split() if isinstance(raw_scopes, str) else
                  [str(s) for s in raw_scopes] if isinstance(raw_scopes, list) else None)
        if route.authorization_scopes and not set(scopes or ()) & set(route.authorization_scopes):
            return Decision(403, "the token has none of the route's scopes")
        return Decision(200, claims={str(k): claim_text(v) for k, v in claims.items()}, scopes=scopes or None)
