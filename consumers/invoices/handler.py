"""Lambda entry point of the invoice writer (Kinesis event source mapping,
ReportBatchItemFailures)."""
from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from consumers.invoices.core import InvoiceWriter
from consumers.quarantine import SqsQuarantine
from consumers.records import KinesisRecord
from dynamo_models.invoice import bind_models
from dynamo_models.repository import InvoiceRepository
from pipeline.clients import make_client
from pipeline.logs import function_logger
from pipeline.settings import Settings

logger = function_logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@lru_cache(maxsize=1)
def writer() -> InvoiceWriter:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    bind_models(settings.require("invoices_table"), settings.region, settings.endpoint_url)
    quarantine = SqsQuarantine(make_client("sqs", settings), settings.require("quarantine_queue_url"))
    return InvoiceWriter(InvoiceRepository(), quarantine)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    totals = {"InvoicesWritten": 0, "LinesWritten": 0, "EventsQuarantined": 0}

    def record_handler(record: KinesisStreamRecord) -> None:
        result = writer().handle(KinesisRecord.from_lambda(record.raw_event))
        totals["InvoicesWritten"] += result.invoices
        totals["LinesWritten"] += result.lines
        if result.quarantined:
            totals["EventsQuarantined"] += result.quarantined
            logger.warning("quarantined events", extra={"sequence_number": record.kinesis.sequence_number, "count": result.quarantined})
        if result.older_skipped:  # newer versions already stored: expected, not a failure
            logger.info("older versions skipped", extra={"sequence_number": record.kinesis.sequence_number, "count": result.older_skipped})

    response = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    for name, value in totals.items():  # one data point per invocation, not per record
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return response
