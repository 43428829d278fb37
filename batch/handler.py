"""Lambda entry point of the file loader: S3 object-created notifications on the drop
bucket (``transactions/…`` files and the loader's own ``continuations/…`` markers)."""
from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from batch.core import FileLoader, files_of
from batch.store import DynamoFileLedger, S3Files, WarehouseDimensions
from consumers.notifications.store import SnsPublisher
from consumers.quarantine import SqsQuarantine
from ingest.producer import KinesisProducer
from pipeline.clients import make_client
from pipeline.logs import function_logger
from pipeline.settings import Settings
from warehouse.data_api import DataApiExecutor

logger = function_logger()
metrics = Metrics()

# A load pauses (and continues in a new invocation) when less than this is left of the
# current one: enough to send what is grouped and write the continuation marker.
PAUSE_WHEN_LEFT_MS = 90_000


def loader() -> FileLoader:
    """The loader, with the dimensions read afresh in each invocation (as they stand after the latest
    merge); its clients are built once per cold start."""
    root, warehouse = _root()
    root.dimensions = WarehouseDimensions(warehouse)
    return root


@lru_cache(maxsize=1)
def _root() -> tuple[FileLoader, DataApiExecutor]:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    target = settings.redshift_target()
    warehouse = DataApiExecutor(make_client("redshift-data", settings), database=settings.require("redshift_database"),
                                cluster_id=target.get("cluster_id"), workgroup=target.get("workgroup"),
                                secret_arn=settings.redshift_secret_arn, timeout=120.0)
    return FileLoader(
        S3Files(make_client("s3", settings)),
        DynamoFileLedger(make_client("dynamodb", settings), settings.require("files_table")),
        SnsPublisher(make_client("sns", settings), settings.require("file_outcomes_topic_arn")),
        KinesisProducer(make_client("kinesis", settings), settings.require("stream_name")),
        SqsQuarantine(make_client("sqs", settings), settings.require("quarantine_queue_url")),
        drop_bucket=settings.require("drop_bucket"),
        archive_bucket=settings.require("drop_archive_bucket"),
    ), warehouse


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
