"""One JSON log format for every line a function writes.

Handlers log through Powertools' ``Logger`` (one JSON object a line, with the Lambda
context once ``inject_lambda_context`` runs), but the modules they call log through the
standard library (``logging.getLogger(__name__)``: the producer's retries, the
repository's unprocessed items), and those records would reach the Lambda runtime's
root handler as plain text. :func:`function_logger` gives the repository's own packages
the Powertools logger's handler and level, so their lines come out as the same JSON
objects, with a ``name`` key saying which module wrote them. Third-party libraries'
loggers are left as they are."""
from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

# the top-level packages of this repository's Lambda code (infra/build_lambdas.py zips them)
PACKAGES = frozenset({"consumers", "dynamo_models", "firehose", "identity", "ingest", "pipeline", "query_api", "warehouse"})


def function_logger(**options: Any) -> Logger:
    """The function's Powertools logger (``options`` go to ``Logger``), with every
    package of this repository logging through it."""
    logger = Logger(**options)
    for name in PACKAGES:
        logging.getLogger(name)  # registered now, so the copy reaches it whatever was imported first
    copy_config_to_registered_loggers(source_logger=logger, include=set(PACKAGES))
    return logger
