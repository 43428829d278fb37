"""The local stack's token issuer: an RS256 key of its own, JWKS, and tokens for the CLI.

On AWS the tokens come from the Cognito user pool Terraform creates (or any OIDC issuer);
locally ``shopstream up`` deploys the same JWT authorizer with this issuer instead
(``jwt_issuer`` / ``jwt_audience``), and the local gateway checks tokens the way API
Gateway does (:mod:`devstack.runtime.authorizer`), with this issuer's keys. The key and
the issuer's identity live in ``<state dir>/auth/`` (the key readable by its owner only),
so every command of one stack signs and checks with the same key.

Tokens carry what a Cognito access token would: ``iss``, ``sub``, ``client_id``,
``token_use = access``, ``scope`` (space-separated), ``iat``/``nbf``/``exp``, ``jti``, and
``aud`` (Cognito access tokens have none; the local authorizer accepts either), plus
``customer_id`` for a customer.
"""
from __future__ import annotations

import json
import os
import pathlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.auth import CUSTOMER_CLAIM, SCOPE_EVENTS_WRITE, SCOPE_INVOICES_READ, SCOPE_INVOICES_READ_OWN

AUDIENCE = "shopstream"
DEFAULT_TTL_SECONDS = 12 * 3600
ENV_TOKEN = "SHOPSTREAM_TOKEN"  # the replay's (and any client's) token, when --token is not given
KEY_FILE = "signing-key.pem"
ISSUER_FILE = "issuer.json"


def auth_dir(state_dir: str | os.PathLike) -> pathlib.Path:
    """``<stack state dir>/auth`` (the runtime's own state dir is ``<stack state dir>/runtime``)."""
    base = pathlib.Path(state_dir).resolve()
    return (base.parent if base.name == "runtime" else base) / "auth"


@dataclass(frozen=True)
class LocalIssuer:
    issuer: str
    audience: str
    kid: str
    private_key: Any

    @classmethod
    def load(cls, state_dir: str | os.PathLike) -> LocalIssuer | None:
        directory = auth_dir(state_dir)
        try:
            meta = json.loads((directory / ISSUER_FILE).read_text(encoding="utf-8"))
            key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), password=None)
        except FileNotFoundError:
            return None
        return cls(issuer=meta["issuer"], audience=meta["audience"], kid=meta["kid"], private_key=key)

    @classmethod
    def ensure(cls, state_dir: str | os.PathLike, issuer: str) -> LocalIssuer:
        """The stack's issuer, created on first use; ``issuer`` (its ``iss``) is updated if it changed
        (another gateway port), the key kept."""
        directory = auth_dir(state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        existing = cls.load(state_dir)
        if existing is not None and existing.issuer == issuer:
            return existing
        if existing is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            path = directory / KEY_FILE
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            kid = uuid.uuid4().hex[:16]
        else:
            key, kid = existing.private_key, existing.kid
        meta = {"issuer": issuer, "audience": AUDIENCE, "kid": kid}
        (directory / ISSUER_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return cls(issuer=issuer, audience=AUDIENCE, kid=kid, private_key=key)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def openid_configuration(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer.rstrip('/')}/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256"], "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
                "scopes_supported": [SCOPE_EVENTS_WRITE, SCOPE_INVOICES_READ, SCOPE_INVOICES_READ_OWN]}

    def sign(self, claims: dict[str, Any], *, ttl: int = DEFAULT_TTL_SECONDS, now: float | None = None,
             kid: str | None = None) -> str:
        moment = int(time.time() if now is None else now)
        body = {"iss": self.issuer, "aud": self.audience, "token_use": "access", "iat": moment, "nbf": moment,
                "exp": moment + ttl, "jti": uuid.uuid4().hex, **claims}
        return jwt.encode(body, self.private_key, algorithm="RS256", headers={"kid": kid or self.kid})

    def token(self, *, customer: str | None = None, staff: bool = False, producer: str | None = None,
              ttl: int = DEFAULT_TTL_SECONDS) -> str:
        """Exactly one of a customer's, staff's or a producer's token."""
        if sum((customer is not None, staff, producer is not None)) != 1:
            raise ValueError("give exactly one of customer, staff or producer")
        if customer is not None:
            return self.sign({"sub": f"customer-{customer}", "client_id": "customers", CUSTOMER_CLAIM: str(customer),
                              "scope": SCOPE_INVOICES_READ_OWN}, ttl=ttl)
        if staff:
            return self.sign({"sub": "staff", "client_id": "staff", "scope": SCOPE_INVOICES_READ}, ttl=ttl)
        return self.sign({"sub": producer, "client_id": producer, "scope": SCOPE_EVENTS_WRITE}, ttl=ttl)


def bearer(token: str | None) -> dict[str, str]:
    """The header that carries ``token`` (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}
