"""The customer number in a customer's access token (pure: no Lambda, no AWS).

Cognito puts a user's attributes in ID tokens only; API Gateway's JWT authorizer is given
the access token, and the query API reads the customer a token speaks for from its claim
``customer_id`` (:data:`pipeline.auth.CUSTOMER_CLAIM`). The user pool's pre token
generation trigger, event version 2 (``lambda_version = "V2_0"``, a user pool on the
Essentials or Plus feature plan), may add claims to the access token: this copies the
user's attribute ``custom:customer_id`` (set by the shop when it enrols the customer;
immutable, and writable by no app client) into that claim.

The event (Cognito sends it for every user sign-in and token refresh, ``triggerSource``
``TokenGeneration_HostedAuth``, ``_Authentication``, ``_NewPasswordChallenge``,
``_AuthenticateDevice`` or ``_RefreshTokens``) and what is answered::

    {"version": "2", "triggerSource": "TokenGeneration_HostedAuth", "userPoolId": ..., "userName": ...,
     "callerContext": {"awsSdkVersion": ..., "clientId": ...},
     "request": {"userAttributes": {"sub": ..., "custom:customer_id": "17850", ...},
                 "groupConfiguration": {...}, "scopes": [...]},
     "response": {"claimsAndScopeOverrideDetails": null}}
    → the same event, with
     "response": {"claimsAndScopeOverrideDetails":
                  {"accessTokenGeneration": {"claimsToAddOrOverride": {"customer_id": "17850"}}}}

Version 3 events (``V3_0``, which also fire for the client-credentials grant) have the same
shape and are answered the same way; a client-credentials request has no user, so no claim.

The number is written in its one spelling (:func:`pipeline.events.normalize_customer_id`:
``"017850"`` and ``"17850.0"`` are ``"17850"``), the one the query API compares invoices'
customers with. A user without the attribute, or with one that is not a customer number,
gets no claim: their token then reads nothing under ``invoices.read.own`` (403), and
the refusal says why (:attr:`Decision.problem`, which the handler logs).

No scope is added: the customers' app client already grants ``invoices.read.own`` to the
tokens it asks for, and a trigger adding it would grant it to every client of the pool.
Groups are left as Cognito has them (``groupOverrideDetails`` is not answered).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.auth import CUSTOMER_CLAIM
from pipeline.errors import ConfigurationError
from pipeline.events import normalize_customer_id

CUSTOMER_ATTRIBUTE = "custom:customer_id"  # infra/terraform/auth.tf: the user pool's schema attribute customer_id
# "2" and "3" have the same request and response; "1" (V1_0) can change only the ID token.
EVENT_VERSIONS = frozenset({"2", "3"})
TRIGGER_PREFIX = "TokenGeneration_"


@dataclass(frozen=True)
class Decision:
    """What the trigger adds to one token: the customer number, or why none."""

    customer_id: str | None
    problem: str | None = None  # set when the user has the attribute but it is not a customer number


def customer_claim(user_attributes: Mapping[str, Any] | None) -> Decision:
    """The customer number a user's attributes give their token, if any."""
    raw = (user_attributes or {}).get(CUSTOMER_ATTRIBUTE)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Decision(None)
    if not isinstance(raw, str):  # Cognito sends every attribute as a string
        return Decision(None, f"{CUSTOMER_ATTRIBUTE} must be a string of digits, got {type(raw).__name__}")
    customer = normalize_customer_id(raw)
    if not isinstance(customer, str):  # a Problem (None was ruled out above)
        return Decision(None, f"{CUSTOMER_ATTRIBUTE} {customer.reason}")
    return Decision(customer)


def answer(event: dict[str, Any]) -> tuple[dict[str, Any], Decision]:
    """The event as Cognito expects it back, with the customer claim when the user has a
    valid customer number; :class:`ConfigurationError` when the event is not a version 2
    or 3 pre token generation event (the trigger wired with the wrong version, or to
    another trigger)."""
    version = str(event.get("version"))
    source = str(event.get("triggerSource") or "")
    if not source.startswith(TRIGGER_PREFIX):
        raise ConfigurationError(f"not a pre token generation event (triggerSource {source!r})")
    if version not in EVENT_VERSIONS:
        raise ConfigurationError(f"pre token generation event version {version!r}: the user pool must send "
                                 "version 2 (lambda_config.pre_token_generation_config.lambda_version = V2_0), "
                                 "the first that can change access tokens")
    decision = customer_claim((event.get("request") or {}).get("userAttributes"))
    if decision.customer_id is not None:
        response = event.get("response")
        if not isinstance(response, dict):
            response = event["response"] = {}
        details = response.get("claimsAndScopeOverrideDetails")
        if not isinstance(details, dict):
            details = response["claimsAndScopeOverrideDetails"] = {}
        access = details.get("accessTokenGeneration")
        if not isinstance(access, dict):
            access = details["accessTokenGeneration"] = {}
        claims = access.get("claimsToAddOrOverride")
        if not isinstance(claims, dict):
            claims = access["claimsToAddOrOverride"] = {}
        claims[CUSTOMER_CLAIM] = decision.customer_id
    return event, decision
