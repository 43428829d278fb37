"""API Gateway's JWT authorizer, locally: checks a route's bearer token before invoking.

What API Gateway (HTTP APIs) does, and so what this does, for a route whose
``AuthorizationType`` is ``JWT``:

1. the token is the route's identity source (``$request.header.Authorization``), with
   or without a ``Bearer`` prefix; none → 401;
2. its header names a ``kid`` found in the issuer's JWKS (the local issuer's own keys, or
   ``jwks_uri`` of ``<issuer>/.well-known/openid-configuration`` for any other issuer,
   cached for five minutes: a key the issuer adds is used once the cache has expired) and
   an RSA algorithm; the signature verifies. Keys that cannot be read (the issuer
   unreachable, an HTTP error, documents that are not what OIDC discovery describes) refuse
   the token with 401, are logged once per attempt, and are not asked for again for ten
   seconds, so an issuer that is down does not hold up every request; the gateway reads
   them off its event loop;
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from devstack.auth import LocalIssuer
from devstack.runtime.model import RouteSpec

log = logging.getLogger("devstack.runtime.authorizer")

ALGORITHMS = ["RS256", "RS384", "RS512"]
JWKS_TTL_SECONDS = 300.0
JWKS_RETRY_SECONDS = 10.0        # after a failed read, refuse without asking the issuer again for this long
MAX_DOCUMENT_BYTES = 1 << 20     # a discovery document or a JWKS is a few KB


class JwksUnavailable(Exception):
    """An issuer's signing keys could not be read."""


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
    """Signing keys per issuer: the local issuer's own, others' fetched through OIDC discovery.

    ``clock`` (monotonic seconds) times the cache and the pause after a failed read."""

    def __init__(self, local: LocalIssuer | None = None, *, fetch_timeout: float = 5.0,
                 ttl: float = JWKS_TTL_SECONDS, retry_after: float = JWKS_RETRY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.local = local
        self.fetch_timeout = fetch_timeout
        self.ttl = ttl
        self.retry_after = retry_after
        self.clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._failed: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def _fetch(self, url: str) -> dict[str, Any]:
        """One JSON object from ``url`` (http or https only: the URL may come from a document)."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise JwksUnavailable(f"{url!r} is not an http(s) URL")
        try:
            with urllib.request.urlopen(url, timeout=self.fetch_timeout) as response:  # noqa: S310 (http(s) only)
                body = response.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:  # refused, unreachable, timed out, or an HTTP error status (HTTPError)
            raise JwksUnavailable(f"{url}: {exc}") from exc
        if len(body) > MAX_DOCUMENT_BYTES:
            raise JwksUnavailable(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise JwksUnavailable(f"{url}: not JSON ({exc})") from exc
        if not isinstance(document, dict):
            raise JwksUnavailable(f"{url}: not a JSON object")
        return document

    def _is_local(self, issuer: str) -> bool:
        return self.local is not None and issuer == self.local.issuer

    def ready(self, issuer: str) -> bool:
        """Whether :meth:`keys` answers without a network call (its own keys, cached ones,
        or a refusal while a failed read is not retried)."""
        if self._is_local(issuer):
            return True
        now = self.clock()
        with self._lock:
            cached, failed = self._cache.get(issuer), self._failed.get(issuer)
        return ((cached is not None and now - cached[0] < self.ttl)
                or (failed is not None and now - failed[0] < self.retry_after))

    def keys(self, issuer: str) -> dict[str, Any]:
        """The issuer's JWKS; :class:`JwksUnavailable` when it cannot be read."""
        if self._is_local(issuer):
            return self.local.jwks()  # type: ignore[union-attr]
        now = self.clock()
        with self._lock:
            cached, failed = self._cache.get(issuer), self._failed.get(issuer)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        if failed is not None and now - failed[0] < self.retry_after:
            raise JwksUnavailable(f"{failed[1]} (not asked again for {self.retry_after:g} s)")
        try:
            config = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
            uri = config.get("jwks_uri")
            if not isinstance(uri, str) or not uri:
                raise JwksUnavailable(f"the discovery document of {issuer} names no jwks_uri")
            keys = self._fetch(uri)
            if not isinstance(keys.get("keys"), list):
                raise JwksUnavailable(f"{uri}: not a JWKS (no list of keys)")
        except JwksUnavailable as exc:
            log.warning("signing keys of %s unreadable: %s", issuer, exc)
            with self._lock:
                self._failed[issuer] = (now, str(exc))
            raise
        with self._lock:
            self._cache[issuer] = (now, keys)
            self._failed.pop(issuer, None)
        return keys

    def key_for(self, issuer: str, kid: str | None) -> Any | None:
        if self._is_local(issuer):  # its own key: no JWK round trip per request
            return self.local.private_key.public_key() if kid == self.local.kid else None  # type: ignore[union-attr]
        for entry in self.keys(issuer)["keys"]:
            if isinstance(entry, dict) and entry.get("kid") == kid and entry.get("kty") == "RSA":
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

    def needs_fetch(self, route: RouteSpec) -> bool:
        """Whether authorizing a request of ``route`` may wait on the issuer (reading its keys)."""
        spec = route.authorizer
        return (route.authorization_type == "JWT" and spec is not None and bool(spec.issuer)
                and not self.jwks.ready(spec.issuer))

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
        except JwksUnavailable:  # logged where it was read
            return Decision(401, "the issuer's keys could not be read")
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            return Decision(401, f"the token is invalid: {exc}")
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
