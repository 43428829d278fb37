"""Lambda entry point of the archive writer (Kinesis event source mapping,
ReportBatchItemFailures): each batch of records → Parquet objects in S3."""
from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from consumers.archive.core import ArchiveWriter
from consumers.archive.store import S3ArchiveStore
from consumers.quarantine import SqsQuarantine
from consumers.records import KinesisRecord
from pipeline.clients import make_client
from pipeline.errors import TransientError
from pipeline.logs import function_logger
from pipeline.settings import Settings

logger = function_logger()
metrics = Metrics()


@lru_cache(maxsize=1)
def writer() -> ArchiveWriter:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    store = S3ArchiveStore(make_client("s3", settings), settings.require("archive_bucket"))
    quarantine = SqsQuarantine(make_client("sqs", settings), settings.require("quarantine_queue_url"))
    return ArchiveWriter(store, quarantine, prefix=settings.archive_prefix)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    records = [KinesisRecord.from_lambda(r) for r in event.get("Records", [])]
    try:
        result = writer().handle(records)
    except TransientError as exc:
        # the batch is written as a whole: retry it from its first record (same keys, overwritten)
        logger.warning("archive batch not written; it will be retried", extra={"reason": str(exc)})
        return {"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}] if records else []}
    logger.info("archive batch written", extra={"objects": len(result.objects), "events": result.events,
                                                 "lines": result.lines, "bytes": result.bytes})
    metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=result.events)
    metrics.add_metric(name="ArchiveObjectsWritten", unit=MetricUnit.Count, value=len(result.objects))
    metrics.add_metric(name="EventsQuarantined", unit=MetricUnit.Count, value=result.quarantined)
    return {"batchItemFailures": []}
