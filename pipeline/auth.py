"""Who is calling: the identity API Gateway's JWT authorizer verified, as the API functions see it.

API Gateway checks the token (issuer, audience, expiry, signature, the route's scopes)
before the function runs, and passes its claims in ``requestContext.authorizer.jwt``
(``claims``: every claim as a string; ``scopes``: the token's scopes). The functions
only read them; they never see or check a token themselves.

Scopes (the resource server ``shopstream`` of the Cognito user pool, or any issuer's):

* ``shopstream/events.write``: a trusted producer may ``POST /events``; its id is the
  token's ``client_id`` claim (a Cognito app client using the client-credentials grant),
  else its ``sub``.
* ``shopstream/invoices.read``: staff read any invoice and any customer's history.
* ``shopstream/invoices.read.own``: a customer reads their own invoices and history only;
  the customer number is the token's ``customer_id`` claim.

``SHOPSTREAM_API_AUTH=none`` (set by Terraform only with ``api_auth = false``, which only
the local emulator accepts) turns the checks off: every caller is then anonymous staff.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import Unauthenticated
from pipeline.events import normalize_customer_id
from pipeline.settings import ENV_API_AUTH

SCOPE_EVENTS_WRITE = "shopstream/events.write"
SCOPE_INVOICES_READ = "shopstream/invoices.read"
SCOPE_INVOICES_READ_OWN = "shopstream/invoices.read.own"
CUSTOMER_CLAIM = "customer_id"


def auth_required(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return (env.get(ENV_API_AUTH) or "jwt").strip().lower() != "none"


@dataclass(frozen=True)
class Principal:
    """The verified caller. ``anonymous`` only when the API runs without authorization."""

    subject: str | None
    claims: Mapping[str, str] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()
    anonymous: bool = False

    @property
    def is_staff(self) -> bool:
        return self.anonymous or SCOPE_INVOICES_READ in self.scopes

    @property
    def may_write_events(self) -> bool:
        return self.anonymous or SCOPE_EVENTS_WRITE in self.scopes

    @property
    def producer_id(self) -> str | None:
        """The producer an event comes from: its app client, else the token's subject."""
        if self.anonymous:
            return None
        return self.claims.get("client_id") or self.subject

    @property
    def customer_id(self) -> str | None:
        """The customer a customer token speaks for (None for staff and producers)."""
        if SCOPE_INVOICES_READ_OWN not in self.scopes:
            return None
        value = normalize_customer_id(self.claims.get(CUSTOMER_CLAIM))
        return value if isinstance(value, str) else None


ANONYMOUS = Principal(subject=None, anonymous=True)


def principal_from_event(event: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Principal:
    """The caller of one API Gateway (payload 2.0) event; :class:`Unauthenticated` when the
    API requires a token and the event carries no verified claims (a route deployed
    without its authorizer, or the function invoked directly)."""
    if not auth_required(environ):
        return ANONYMOUS
    context = event.get("requestContext") or {}
    jwt = ((context.get("authorizer") or {}).get("jwt")) or {}
    claims = jwt.get("claims")
    if not isinstance(claims, Mapping) or not claims:
        raise Unauthenticated("no verified token came with the request")
    scopes = jwt.get("scopes")
    if not scopes:  # API Gateway passes the token's scopes; fall back on the claim itself
        scopes = str(claims.get("scope") or "").split()
    return Principal(subject=str(claims.get("sub")) if claims.get("sub") else None,
                     claims={str(k): str(v) for k, v in claims.items()},
                     scopes=frozenset(str(s) for s in scopes))
