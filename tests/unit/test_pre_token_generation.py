"""The user pool's pre token generation trigger (identity/): a customer's access token
carries their customer number as the claim customer_id, and what the query API does with
a token that has none or a malformed one."""
from __future__ import annotations

import copy
import io
import json
import logging

import pytest

from identity import handler
from identity.core import CUSTOMER_ATTRIBUTE, answer, customer_claim
from pipeline.auth import SCOPE_INVOICES_READ_OWN, principal_from_event
from pipeline.errors import ConfigurationError
from pipeline.logs import function_logger
from query_api.core import QueryService
from tests.factories import FakeLambdaContext, http_event
from tests.unit.test_api_authorization import OneInvoice
from tests.unit.test_function_logs import json_lines, packages_logging_restored  # noqa: F401  (autouse fixture)
from tests.unit.test_query_core import FakeReader

SUB = "7c5a1f0e-2b3d-4e8f-9a61-0c2d4b6e8f10"
SOURCES = ["TokenGeneration_HostedAuth", "TokenGeneration_Authentication", "TokenGeneration_NewPasswordChallenge",
           "TokenGeneration_AuthenticateDevice", "TokenGeneration_RefreshTokens"]


def v2_event(customer_id: str | None = "17850", *, source: str = "TokenGeneration_HostedAuth",
             version: str = "2") -> dict:
    """A pre token generation event as Cognito sends it for a customer's hosted sign-in
    (the documented V2_0 request: user attributes as strings, the requested scopes, the
    groups; the response's claimsAndScopeOverrideDetails null)."""
    attributes = {"sub": SUB, "cognito:user_status": "CONFIRMED", "email_verified": "true",
                  "email": "customer17850@example.com"}
    if customer_id is not None:
        attributes[CUSTOMER_ATTRIBUTE] = customer_id
    return {
        "version": version,
        "triggerSource": source,
        "region": "eu-west-1",
        "userPoolId": "eu-west-1_Ab12Cd34E",
        "userName": SUB,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "3n4b5urk1ft4fl3mg5e62d9ado"},
        "request": {
            "userAttributes": attributes,
            "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": None},
            "scopes": ["openid", "shopstream/invoices.read.own"],
        },
        "response": {"claimsAndScopeOverrideDetails": None},
    }


def added_claims(event: dict) -> dict | None:
    details = event["response"]["claimsAndScopeOverrideDetails"]
    return None if details is None else details["accessTokenGeneration"]["claimsToAddOrOverride"]


_LOG = io.StringIO()
_LOGGERS: list = []  # one Powertools logger per service name and process: made once, reused


@pytest.fixture
def logged(monkeypatch) -> io.StringIO:
    """What the handler logs, as the JSON lines Lambda would store."""
    if not _LOGGERS:
        _LOGGERS.append(function_logger(service="pre-token-generation", logger_handler=logging.StreamHandler(_LOG)))
    _LOG.seek(0)
    _LOG.truncate()
    monkeypatch.setattr(handler, "logger", _LOGGERS[0])
    return _LOG


@pytest.mark.parametrize("source", SOURCES)
def test_a_customers_access_token_gets_their_number_at_every_sign_in_and_refresh(source, logged):
    # GIVEN a customer enrolled with customer number 17850, signing in (or refreshing)
    event = v2_event("17850", source=source)
    before = copy.deepcopy(event)
    # WHEN Cognito calls the trigger
    answered = handler.lambda_handler(event, FakeLambdaContext())
    # THEN the access token is given the claim customer_id, and nothing else of the event changes
    assert answered["response"] == {"claimsAndScopeOverrideDetails": {
        "accessTokenGeneration": {"claimsToAddOrOverride": {"customer_id": "17850"}}}}
    assert {k: v for k, v in answered.items() if k != "response"} == {k: v for k, v in before.items() if k != "response"}
    assert json.loads(json.dumps(answered)) == answered  # what Lambda sends back to Cognito
    assert logged.getvalue() == ""


def test_no_scope_or_group_is_touched():
    answered, _ = answer(v2_event("17850"))
    details = answered["response"]["claimsAndScopeOverrideDetails"]
    assert set(details) == {"accessTokenGeneration"}  # no idTokenGeneration, no groupOverrideDetails
    assert set(details["accessTokenGeneration"]) == {"claimsToAddOrOverride"}  # no scopesToAdd / scopesToSuppress


@pytest.mark.parametrize("spelling", ["17850", "017850", " 17850 ", "17850.0"])
def test_the_claim_is_the_number_in_the_spelling_the_query_api_compares(spelling):
    answered, decision = answer(v2_event(spelling))
    assert added_claims(answered) == {"customer_id": "17850"} and decision.problem is None


def test_a_version_3_event_is_answered_the_same_and_a_client_credentials_one_gets_nothing():
    answered, _ = answer(v2_event("12583", version="3", source="TokenGeneration_Authentication"))
    assert added_claims(answered) == {"customer_id": "12583"}
    machine = v2_event(None, version="3", source="TokenGeneration_ClientCredentials")
    del machine["request"]["userAttributes"]
    answered, decision = answer(machine)
    assert answered["response"] == {"claimsAndScopeOverrideDetails": None} and decision.customer_id is None


def test_claims_cognito_already_has_in_the_answer_are_kept():
    event = v2_event("17850")
    event["response"]["claimsAndScopeOverrideDetails"] = {
        "accessTokenGeneration": {"claimsToAddOrOverride": {"tier": "gold"}, "scopesToSuppress": []}}
    answered, _ = answer(event)
    assert answered["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"] == {
        "claimsToAddOrOverride": {"tier": "gold", "customer_id": "17850"}, "scopesToSuppress": []}


def test_a_user_without_a_customer_number_gets_no_claim(logged):
    # GIVEN a user the shop enrolled without custom:customer_id
    event = v2_event(None)
    # WHEN they sign in
    answered = handler.lambda_handler(event, FakeLambdaContext())
    # THEN the token is issued unchanged, and the log says why it has no claim
    assert answered["response"] == {"claimsAndScopeOverrideDetails": None}
    [line] = json_lines(logged.getvalue())
    assert line["level"] == "INFO" and line["message"] == "no customer_id claim: the user has no customer number"
    assert customer_claim({CUSTOMER_ATTRIBUTE: "  "}).customer_id is None


@pytest.mark.parametrize("malformed, reason", [
    ("abc", "must be digits"),
    ("17850-1", "must be digits"),
    ("-17850", "must be digits"),
    ("17850.5", "must be digits"),
    ("１７８５０", "must be digits"),  # full-width digits: isdigit() alone would take them
    ("1" * 21, "at most 20 digits"),
    ("17850; customer_id=12583", "must be digits"),
])
def test_a_malformed_customer_number_is_refused_and_logged(malformed, reason, logged):
    # GIVEN a user whose custom:customer_id is not a customer number
    event = v2_event(malformed)
    # WHEN they sign in
    answered = handler.lambda_handler(event, FakeLambdaContext())
    # THEN no claim is added, and a warning names the user (by sub, not email) and the reason
    assert answered["response"] == {"claimsAndScopeOverrideDetails": None}
    [line] = json_lines(logged.getvalue())
    assert line["level"] == "WARNING" and line["message"].startswith("no customer_id claim")
    assert line["sub"] == SUB and line["trigger_source"] == "TokenGeneration_HostedAuth"
    assert line["reason"].startswith(CUSTOMER_ATTRIBUTE) and reason in line["reason"]
    assert "customer17850@example.com" not in logged.getvalue()


def test_an_attribute_that_is_not_a_string_is_refused():
    decision = customer_claim({CUSTOMER_ATTRIBUTE: 17850})
    assert decision.customer_id is None and "got int" in decision.problem


@pytest.mark.parametrize("event, message", [
    ({**v2_event(), "version": "1"}, "version '1'"),  # the trigger wired as V1_0: only the ID token could change
    ({**v2_event(), "triggerSource": "PreSignUp_SignUp"}, "not a pre token generation event"),
])
def test_a_trigger_wired_wrongly_fails_the_sign_in_loudly(event, message):
    with pytest.raises(ConfigurationError, match=message):
        handler.lambda_handler(event, FakeLambdaContext())


# ── what the claim (or its absence) means to the query API ───────────────────────────────


def customer_caller(claims_added: dict | None):
    """The caller the query API sees for a token the hosted sign-in issued with the trigger's claims."""
    claims = {"sub": SUB, "client_id": "3n4b5urk1ft4fl3mg5e62d9ado", "token_use": "access",
              "scope": f"openid {SCOPE_INVOICES_READ_OWN}", **(claims_added or {})}
    return principal_from_event(http_event("GET", "/x", claims=claims), {})


def test_the_claim_the_trigger_adds_is_the_customer_the_query_api_reads():
    answered, _ = answer(v2_event("017850"))
    caller = customer_caller(added_claims(answered))
    assert caller.customer_id == "17850"
    assert QueryService(OneInvoice("17850")).invoice("536365", caller)["customer_id"] == "17850"


@pytest.mark.parametrize("attribute", [None, "abc"])
def test_a_token_without_the_claim_is_answered_403_on_both_reads_not_500(attribute, monkeypatch):
    # GIVEN a customer token issued without customer_id (no attribute, or a malformed one)
    from query_api import handler as query_handler

    answered, _ = answer(v2_event(attribute))
    claims = {"sub": SUB, "scope": SCOPE_INVOICES_READ_OWN, **(added_claims(answered) or {})}
    assert "customer_id" not in claims
    monkeypatch.setattr(query_handler, "service", lambda: QueryService(OneInvoice("17850")))
    # WHEN it reads an invoice and a history
    invoice = query_handler.lambda_handler(http_event(
        "GET", "/invoices/536365", route_key="GET /invoices/{invoice_no}", path_parameters={"invoice_no": "536365"},
        claims=claims), FakeLambdaContext())
    monkeypatch.setattr(query_handler, "service", lambda: QueryService(FakeReader()))
    history = query_handler.lambda_handler(http_event(
        "GET", "/customers/17850/invoices", route_key="GET /customers/{customer_id}/invoices",
        path_parameters={"customer_id": "17850"}, claims=claims), FakeLambdaContext())
    # THEN both are refused with 403 and the problem, not a server error
    assert (invoice["statusCode"], json.loads(invoice["body"])["problems"][0]["field"]) == (403, "invoice_no")
    assert (history["statusCode"], json.loads(history["body"])["problems"][0]["field"]) == (403, "customer_id")
