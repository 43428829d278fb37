"""The HTTP API against its own OpenAPI document, through the real local stack.

schemathesis generates requests for every operation of the document (valid ones and
invalid ones) and sends them to the local gateway of a Terraform-applied stack with the
bundled sample loaded (the e2e package's stack, after test_stack.py), so the GET routes answer real invoices and customers. Every
answer must be no server error, a status code the document lists for the operation,
the content type it lists, and a body its schema accepts.

The run is bounded (a fixed number of examples per operation, derandomized, so every
run sends the same requests) and asserts nothing about time.
"""
from __future__ import annotations

import json
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.runtime.client import wait_until_drained
from pipeline.kaggle import read_invoices
from query_api.openapi import DOCUMENT
from scripts.replay_kaggle import replay
from tests.conftest import SAMPLE
from tests.fixtures.tokens import authorized_session, customer_token, producer_token, trusted_token

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 100  # per operation

schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def running(local_stack):
    """The package's stack (tests/e2e/conftest.py) with the sample loaded (a replay changes
    nothing if test_stack.py already sent it)."""
    config, info = local_stack
    stats = replay(str(SAMPLE), endpoint=config.api_url, progress=False, token=producer_token(config.state_dir))
    assert stats.ok, stats.first_problems
    wait_until_drained(config.admin_url, since=time.time(), timeout=120)
    return config, info


@pytest.fixture(scope="module")
def session(running):
    """A client that sends (as the producer of the sample) and reads everything (staff)."""
    config, _ = running
    with authorized_session(trusted_token(config.state_dir)) as s:
        yield s


@pytest.fixture(scope="module")
def sample():
    return list(read_invoices(str(SAMPLE)))


def test_the_served_document_is_the_document(running):
    config, _ = running
    served = requests.get(f"{config.api_url}/openapi.json", timeout=10)  # public: no token
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, running, session):
    config, _ = running
    case.call_and_validate(base_url=config.api_url, session=session, checks=CHECKS, timeout=30)


def test_without_a_token_or_with_another_customers_the_answers_are_documented(running, sample):
    config, _ = running
    customer = next(e for e in sample if e.customer_id)
    other = next(e for e in sample if e.customer_id and e.customer_id != customer.customer_id)
    with requests.Session() as anonymous:
        response = _validated("GET", "/invoices/{invoice_no}", anonymous, config.api_url,
                              path_parameters={"invoice_no": customer.invoice_no})
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})
    with authorized_session(customer_token(config.state_dir, customer.customer_id)) as own:
        assert _validated("GET", "/invoices/{invoice_no}", own, config.api_url,
                          path_parameters={"invoice_no": customer.invoice_no}).status_code == 200
        response = _validated("GET", "/invoices/{invoice_no}", own, config.api_url,
                              path_parameters={"invoice_no": other.invoice_no})
        assert response.status_code == 403 and response.json()["problems"][0]["field"] == "invoice_no"
        response = _validated("GET", "/customers/{customer_id}/invoices", own, config.api_url,
                              path_parameters={"customer_id": other.customer_id})
        assert response.status_code == 403


# ---- the stored data, through the document's response schemas ----------------------------------


def _validated(operation: str, path: str, session, base_url: str, **parameters):
    case = schema[path][operation].Case(**parameters)
    return case.call_and_validate(base_url=base_url, session=session, checks=CHECKS, timeout=30)


def test_every_stored_invoice_matches_the_invoice_schema(running, session, sample):
    config, _ = running
    # GIVEN the sample loaded; WHEN each of its invoices is fetched
    for event in sample:
        response = _validated("GET", "/invoices/{invoice_no}", session, config.api_url,
                              path_parameters={"invoice_no": event.invoice_no})
        # THEN it is there, and its body is what the document describes
        assert response.status_code == 200, (event.invoice_no, response.text[:200])


def test_customer_pages_match_the_page_schema(running, session, sample):
    config, _ = running
    customers = sorted({e.customer_id for e in sample if e.customer_id})[:40]
    for customer in customers:
        for query in ({}, {"limit": "1"}, {"from": "2010-12-02", "to": "2010-12-02T23:00:00", "limit": "100"}):
            response = _validated("GET", "/customers/{customer_id}/invoices", session, config.api_url,
                                  path_parameters={"customer_id": customer}, query=query)
            assert response.status_code == 200, (customer, query, response.text[:200])
        # AND following a cursor gives a page of the same shape
        page = session.get(f"{config.api_url}/customers/{customer}/invoices", params={"limit": "1"}, timeout=30).json()
        if page["next_cursor"]:
            _validated("GET", "/customers/{customer_id}/invoices", session, config.api_url,
                       path_parameters={"customer_id": customer}, query={"limit": "1", "cursor": page["next_cursor"]})


# ---- POST /events whatever the Content-Type says ----------------------------------------------


def _event_body(sample) -> bytes:
    return sample[0].to_json()


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
    "application/octet-stream", None,
])
def test_a_json_body_is_read_as_json_whatever_its_content_type(running, session, sample, content_type):
    config, _ = running
    headers = {"Content-Type": content_type} if content_type else {}
    headers["Authorization"] = session.headers["Authorization"]  # a prepared request skips the session's headers
    request = requests.Request("POST", f"{config.api_url}/events", data=_event_body(sample), headers=headers).prepare()
    if content_type is None:
        request.headers.pop("Content-Type", None)
    response = session.send(request, timeout=30)
    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["accepted"]["events"] == 1


def test_a_multipart_form_is_refused_as_not_json(running, session, sample):
    config, _ = running
    response = session.post(f"{config.api_url}/events", files={"events": ("events.json", _event_body(sample))}, timeout=30)
    assert response.status_code == 400, response.text
    problems = response.json()["problems"]
    assert problems[0]["field"] == "body" and "not valid JSON" in problems[0]["reason"]
