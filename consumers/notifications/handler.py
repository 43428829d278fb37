"""Lambda entry point of the order notifier (Kinesis event source mapping,
ReportBatchItemFailures): large invoices → one message each on the large-orders topic."""
from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from consumers.notifications.core import OrderNotifier
from consumers.notifications.store import DynamoLedger, SnsPublisher
from consumers.quarantine import SqsQuarantine
from consumers.records import KinesisRecord
from pipeline.clients import make_client
from pipeline.logs import function_logger
from pipeline.settings import Settings

logger = function_logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@lru_cache(maxsize=1)
def notifier() -> OrderNotifier:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    ledger = DynamoLedger(make_client("dynamodb", settings), settings.require("notifications_table"))
    publisher = SnsPublisher(make_client("sns", settings), settings.require("large_orders_topic_arn"))
    quarantine = SqsQuarantine(make_client("sqs", settings), settings.require("quarantine_queue_url"))
    return OrderNotifier(ledger, publisher, quarantine, threshold=settings.large_order_from)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    totals = {"LargeOrdersAnnounced": 0, "LargeOrdersRedelivered": 0, "EventsQuarantined": 0}

    def record_handler(record: KinesisStreamRecord) -> None:
        result = notifier().handle(KinesisRecord.from_lambda(record.raw_event))
        totals["LargeOrdersAnnounced"] += len(result.announced)
        totals["LargeOrdersRedelivered"] += result.already
        totals["EventsQuarantined"] += result.quarantined
        if result.announced:
            logger.info("large orders announced", extra={"invoices": result.announced,
                                                         "sequence_number": record.kinesis.sequence_number})

    response = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    for name, value in totals.items():  # one data point per invocation, not per record
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return response
