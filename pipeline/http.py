"""JSON responses and error bodies shared by the API functions (ingest, query API), so
every 4xx/5xx has the same shape: ``{"message": ..., "problems": [{"field", "reason"}]}``."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.event_handler import Response

from pipeline.errors import Forbidden, Problem, Unauthenticated

JSON = "application/json"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(body: Any) -> str:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_default)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate echoed from the input: escape everything
            text = json.dumps(body, ensure_ascii=True, separators=(",", ":"), default=_default)
    return text


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON, body=dumps(body), headers=headers)


def error_response(status: int, message: str, problems: list[Problem] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"message": message}
    if problems:
        body["problems"] = [p.to_dict() for p in problems]
    body.update(extra)
    return json_response(status, body)


def handle_authorization_errors(app: Any, logger: Any) -> None:
    """The two answers every API function gives the same way: 401 as API Gateway words it
    (a request without verified claims), 403 with the problem (a caller not allowed)."""

    @app.exception_handler(Unauthenticated)
    def unauthenticated(exc: Unauthenticated) -> Response:
        logger.warning("request without verified claims", extra={"reason": str(exc)})
        return json_response(401, {"message": "Unauthorized"})

    @app.exception_handler(Forbidden)
    def forbidden(exc: Forbidden) -> Response:
        return error_response(403, str(exc), [exc.problem])
