"""Lambda entry point of the file loader: S3 object-created notifications on the drop
bucket (``transactions/…`` files and the loader's own ``continuations/…`` markers)."""
from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from batch.core import FileLoader, files_of
from batch.store import DynamoFileLedger, S3Files
from consumers.notifications.store import SnsPublisher
from consumers.quarantine import SqsQuarantine
from ingest.producer import KinesisProducer
from pipeline.clients import make_client
from pipeline.logs import function_logger
from pipeline.settings import Settings

logger = function_logger()
metrics = Metrics()

# A load pauses (and continues in a new invocation) when less than this is left of the
# current one: enough to send what is grouped and write the continuation marker.
PAUSE_WHEN_LEFT_MS = 90_000


@lru_cache(maxsize=1)
def loader() -> FileLoader:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    return FileLoader(
        S3Files(make_client("s3", settings)),
        DynamoFileLedger(make_client("dynamodb", settings), settings.require("files_table")),
        SnsPublisher(make_client("sns", settings), settings.require("file_outcomes_topic_arn")),
        KinesisProducer(make_client("kinesis", settings), settings.require("stream_name")),
        SqsQuarantine(make_client("sqs", settings), settings.require("quarantine_queue_url")),
        drop_bucket=settings.require("drop_bucket"),
        archive_bucket=settings.require("drop_archive_bucket"),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    def should_pause() -> bool:
        return context.get_remaining_time_in_millis() < PAUSE_WHEN_LEFT_MS

    outcomes = []
    for file in files_of(event):
        outcome = loader().handle(file, should_pause=should_pause)
        counts = outcome.counts.to_dict() if outcome.counts else None
        logger.info("file %s", outcome.status, extra={"bucket": file.bucket, "key": file.key, "counts": counts,
                                                       "error": outcome.error})
        metrics.add_metric(name=f"Files{outcome.status.capitalize()}", unit=MetricUnit.Count, value=1)
        if outcome.counts and outcome.status == "loaded":
            metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=outcome.counts.rejected)
        outcomes.append({"key": file.key, "status": outcome.status, "counts": counts, "error": outcome.error})
    return {"files": outcomes}
