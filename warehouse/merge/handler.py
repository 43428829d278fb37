"""Lambda entry point of the scheduled warehouse merge: migrations, merge, refresh —
through the Redshift Data API (locally, the emulator's Data API runs them on the local
warehouse; this function does not know the difference)."""
from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from pipeline.clients import make_client
from pipeline.logs import function_logger
from pipeline.settings import Settings
from warehouse.data_api import DataApiExecutor
from warehouse.loader import WarehouseLoader

logger = function_logger()
metrics = Metrics()


@lru_cache(maxsize=1)
def loader() -> WarehouseLoader:
    """The composition root, built once per cold start."""
    settings = Settings.from_env()
    target = settings.redshift_target()
    executor = DataApiExecutor(make_client("redshift-data", settings), database=settings.require("redshift_database"),
                               secret_arn=settings.redshift_secret_arn, **target)
    return WarehouseLoader(executor)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    result = loader().run()
    merge = result.merge
    summary = {
        "migrations_applied": result.migrations_applied,
        "merged": merge.ran,
        "staged_rows": merge.staged_rows,
        "invoices_inserted": merge.invoices_inserted,
        "invoices_replaced": merge.invoices_replaced,
        "invoices_skipped": merge.invoices_skipped,
        "lines_inserted": merge.lines_inserted,
        "lines_deleted": merge.lines_deleted,
        "views_refreshed": result.views_refreshed,
    }
    logger.info("warehouse merge", extra=summary)
    metrics.add_metric(name="StagedRowsMerged", unit=MetricUnit.Count, value=merge.staged_rows)
    metrics.add_metric(name="InvoicesMerged", unit=MetricUnit.Count, value=merge.invoices_inserted + merge.invoices_replaced)
    return summary
