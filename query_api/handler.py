"""Lambda entry point of the query API (API Gateway HTTP API)."""
from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from dynamo_models.invoice import bind_models
from dynamo_models.repository import InvoiceRepository
from pipeline.auth import principal_from_event
from pipeline.errors import BadRequest, ConfigurationError, NotFound, TransientError
from pipeline.http import error_response, handle_authorization_errors, json_response
from pipeline.logs import function_logger
from pipeline.settings import Settings
from query_api.core import QueryService
from query_api.openapi import DOCUMENT

logger = function_logger()
app = APIGatewayHttpResolver()


@lru_cache(maxsize=1)
def service() -> QueryService:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    bind_models(settings.require("invoices_table"), settings.region, settings.endpoint_url)
    return QueryService(InvoiceRepository())


def caller():
    """The verified caller of the current request (:mod:`pipeline.auth`)."""
    return principal_from_event(app.current_event.raw_event)


@app.get("/invoices/<invoice_no>")
def get_invoice(invoice_no: str) -> Response:
    return json_response(200, service().invoice(invoice_no, caller()))


@app.get("/customers/<customer_id>/invoices")
def list_customer_invoices(customer_id: str) -> Response:
    return json_response(200, service().customer_invoices(customer_id, app.current_event.query_string_parameters,
                                                          caller()))


@app.get("/openapi.json")
def openapi() -> Response:
    return json_response(200, DOCUMENT)


@app.exception_handler(BadRequest)
def bad_request(exc: BadRequest) -> Response:
    return error_response(400, str(exc), [exc.problem])


handle_authorization_errors(app, logger)


@app.exception_handler(NotFound)
def not_found(exc: NotFound) -> Response:
    return error_response(404, str(exc))


@app.exception_handler(TransientError)
def unavailable(exc: TransientError) -> Response:
    logger.warning("query unavailable", extra={"reason": str(exc)})
    return json_response(503, {"message": "temporarily unavailable; retry", "reason": str(exc)}, headers={"Retry-After": "1"})


@app.exception_handler(ConfigurationError)
def misconfigured(exc: ConfigurationError) -> Response:
    logger.error("misconfigured", extra={"reason": str(exc)})
    return error_response(500, "the query API is misconfigured", reason=str(exc))


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
