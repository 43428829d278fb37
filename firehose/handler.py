"""Lambda entry point of the Firehose transformation: invoice events → staging rows."""
from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import (
    KinesisFirehoseDataTransformationRecord,
    KinesisFirehoseDataTransformationResponse,
    KinesisFirehoseEvent,
)

from firehose.core import DROPPED, OK, PROCESSING_FAILED, SizeClasses, SourceRecord, Transformer
from pipeline.logs import function_logger
from pipeline.settings import Settings

logger = function_logger()
metrics = Metrics()


@lru_cache(maxsize=1)
def transformer() -> Transformer:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    return Transformer(SizeClasses(settings.size_medium_from, settings.size_large_from))


def _source(record) -> SourceRecord:
    raw = record.raw_event
    meta = raw.get("kinesisRecordMetadata") or {}
    return SourceRecord(
        record_id=record.record_id,
        data=record.data_as_bytes,
        sequence_number=meta.get("sequenceNumber"),
        subsequence_number=int(meta.get("subsequenceNumber") or 0),
        arrival_ms=int(raw.get("approximateArrivalTimestamp") or meta.get("approximateArrivalTimestamp") or 0),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    firehose_event = KinesisFirehoseEvent(event)
    response = KinesisFirehoseDataTransformationResponse()
    counts = {OK: 0, DROPPED: 0, PROCESSING_FAILED: 0}
    lines = 0
    for record in firehose_event.records:
        outcome = transformer().transform_one(_source(record))
        counts[outcome.result] += 1
        lines += outcome.lines
        if outcome.result != OK:
            logger.warning("record not loaded", extra={"record_id": outcome.record_id, "result": outcome.result,
                                                       "reason": outcome.reason, "invoice_no": outcome.invoice_no})
        response.add_record(KinesisFirehoseDataTransformationRecord(
            record_id=outcome.record_id, result=outcome.result,  # type: ignore[arg-type]
            data=_b64(outcome.data)))
    metrics.add_metric(name="InvoicesTransformed", unit=MetricUnit.Count, value=counts[OK])
    metrics.add_metric(name="LinesTransformed", unit=MetricUnit.Count, value=lines)
    metrics.add_metric(name="RecordsDropped", unit=MetricUnit.Count, value=counts[DROPPED])
    metrics.add_metric(name="RecordsProcessingFailed", unit=MetricUnit.Count, value=counts[PROCESSING_FAILED])
    return response.asdict()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")
