"""Lambda entry point of the ingest API: ``POST /events`` (API Gateway HTTP API)."""
from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from ingest.core import IngestService, InvalidRequest, PayloadTooLarge
from ingest.ownership import DynamoOwnership
from ingest.producer import KinesisProducer
from pipeline.auth import principal_from_event
from pipeline.clients import make_client
from pipeline.errors import ConfigurationError, Forbidden, Problem, TransientError
from pipeline.http import error_response, handle_authorization_errors, json_response
from pipeline.logs import function_logger
from pipeline.settings import Settings

logger = function_logger()
metrics = Metrics()
app = APIGatewayHttpResolver()


@lru_cache(maxsize=1)
def service() -> IngestService:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    producer = KinesisProducer(make_client("kinesis", settings), settings.require("stream_name"))
    ownership = DynamoOwnership(make_client("dynamodb", settings), settings.owners_table) if settings.owners_table else None
    return IngestService(producer, max_body_bytes=settings.max_body_bytes, ownership=ownership)


def request_body() -> str | bytes:
    """The body as sent: text, or the bytes of a body API Gateway passed as base64 (one
    that is not UTF-8, for one; decoding it is the contract's job, which says where)."""
    event = app.current_event
    body = event.body or ""
    if not event.is_base64_encoded:
        return body
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(Problem("body", "is flagged base64-encoded but is not valid base64")) from None


@app.post("/events")
def post_events() -> Response:
    caller = principal_from_event(app.current_event.raw_event)
    if not caller.may_write_events:
        raise Forbidden("scope", "sending events needs the scope shopstream/events.write (a producer's token)")
    if not caller.anonymous and caller.producer_id is None:
        raise Forbidden("client_id", "the token names no producer (neither client_id nor sub)")
    outcome = service().ingest(request_body(), caller.producer_id)
    accepted = outcome.body["accepted"]
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=accepted["events"])
    metrics.add_metric(name="LinesAccepted", unit=MetricUnit.Count, value=accepted["lines"])
    if outcome.status != 202:
        metrics.add_metric(name="ItemsRejected", unit=MetricUnit.Count, value=outcome.body["rejected_total"])
    return json_response(outcome.status, outcome.body)


@app.exception_handler(PayloadTooLarge)
def too_large(exc: PayloadTooLarge) -> Response:
    metrics.add_metric(name="BodiesTooLarge", unit=MetricUnit.Count, value=1)
    return error_response(413, str(exc))


handle_authorization_errors(app, logger)


@app.exception_handler(InvalidRequest)
def invalid_request(exc: InvalidRequest) -> Response:
    metrics.add_metric(name="BodiesUnusable", unit=MetricUnit.Count, value=1)
    return error_response(400, "the request body is not usable", [exc.problem])


@app.exception_handler(TransientError)
def unavailable(exc: TransientError) -> Response:
    logger.warning("ingest unavailable", extra={"reason": str(exc)})
    return json_response(
        503,
        {"message": "the stream is not accepting records right now; retry the request", "reason": str(exc)},
        headers={"Retry-After": "1"},
    )


@app.exception_handler(ConfigurationError)
def misconfigured(exc: ConfigurationError) -> Response:
    logger.error("misconfigured", extra={"reason": str(exc)})
    return error_response(500, "the ingest API is misconfigured", reason=str(exc))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
