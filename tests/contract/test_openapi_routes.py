"""The OpenAPI document served at /openapi.json describes exactly the routes Terraform
deploys, and each route's function handles it (query_api/openapi.py ↔ infra/terraform/api.tf)."""
from __future__ import annotations

import re

import hcl2

from query_api.openapi import DOCUMENT
from tests.conftest import ROOT

_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def terraform_routes() -> dict[str, str]:
    with open(ROOT / "infra" / "terraform" / "api.tf") as f:
        document = hcl2.load(f, serialization_options=_OPTIONS)
    return next(block["routes"] for block in document["locals"] if "routes" in block)


def openapi_routes() -> set[str]:
    return {f"{method.upper()} {path}" for path, operations in DOCUMENT["paths"].items() for method in operations}


def test_every_deployed_route_is_documented_and_nothing_else():
    assert set(terraform_routes()) == openapi_routes()


def test_each_route_is_handled_by_the_function_terraform_sends_it_to():
    # GIVEN each function's resolver (Powertools keeps its routes as "GET/invoices/<invoice_no>")
    from ingest import handler as ingest_handler
    from query_api import handler as query_handler

    handled = {"ingest": set(ingest_handler.app._route_keys), "query-api": set(query_handler.app._route_keys)}
    # THEN every Terraform route reaches a function that has that route, and no function
    # has a route Terraform does not deploy
    deployed: dict[str, set[str]] = {"ingest": set(), "query-api": set()}
    for route, function in terraform_routes().items():
        method, path = route.split(" ", 1)
        deployed[function].add(method + re.sub(r"\{(\w+)\}", r"<\1>", path))
    assert deployed == handled


def test_path_parameters_are_declared_for_every_templated_path():
    for path, operations in DOCUMENT["paths"].items():
        wanted = set(re.findall(r"\{(\w+)\}", path))
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, path
