"""Lambda entry point of the file loader (S3 object-created notifications on the drop bucket)."""
from __future__ import annotations

from pipeline.logs import function_logger

logger = function_logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    raise NotImplementedError("the file loader lands in the next commit")
