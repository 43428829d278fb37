"""Every line a function logs is one JSON object: the modules the handlers call log
through the standard library, and pipeline/logs.py gives them the handler's Powertools
formatter (the producer's and the repository's retries here, through their real code)."""
from __future__ import annotations

import importlib
import io
import json
import logging

import pytest

from dynamo_models.invoice import InvoiceItem
from dynamo_models.repository import InvoiceRepository
from pipeline.logs import PACKAGES, function_logger
from tests.factories import event
from tests.unit.test_producer import FakeKinesis, events, producer
from tests.unit.test_repository_writes import FakeConnection

HANDLER_MODULES = ["ingest.handler", "consumers.invoices.handler", "consumers.archive.handler", "firehose.handler",
                   "warehouse.merge.handler", "query_api.handler", "consumers.notifications.handler", "identity.handler"]


@pytest.fixture(autouse=True)
def packages_logging_restored():
    """function_logger reconfigures process-wide loggers: put them back for the other tests."""
    saved = {name: (lg.handlers[:], lg.level, lg.propagate) for name in PACKAGES for lg in [logging.getLogger(name)]}
    yield
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:], lg.propagate = handlers, propagate
        lg.setLevel(level)


def json_lines(text: str) -> list[dict]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # each line alone is a whole JSON object


def test_a_producer_retry_is_logged_as_one_json_object():
    out = io.StringIO()
    function_logger(service="ingest", logger_handler=logging.StreamHandler(out))
    producer(FakeKinesis(failures=[{0, 2}])).send(events(40))
    [line] = json_lines(out.getvalue())
    assert line["level"] == "INFO" and line["service"] == "ingest" and line["name"] == "ingest.producer"
    assert line["message"] == "PutRecords: 2 of 14 records failed (ProvisionedThroughputExceededException); retrying them"
    assert {"timestamp", "location"} <= set(line)


def test_a_repository_retry_is_logged_as_one_json_object(monkeypatch):
    fake = FakeConnection(unprocessed=3, times=1)
    monkeypatch.setattr(InvoiceItem, "_get_connection", classmethod(lambda cls: fake))
    out = io.StringIO()
    function_logger(service="invoice-writer", logger_handler=logging.StreamHandler(out))
    InvoiceRepository(InvoiceItem, max_attempts=4, sleep=lambda s: None).put_invoices(
        [event(str(600000 + i)) for i in range(30)])
    lines = json_lines(out.getvalue())
    assert [(line["name"], line["service"], line["message"]) for line in lines] == [
        ("dynamo_models.repository", "invoice-writer", "retrying 3 unprocessed items (attempt 2)")]


def test_library_loggers_are_left_alone():
    out = io.StringIO()
    function_logger(service="query-api", logger_handler=logging.StreamHandler(out))
    botocore = logging.getLogger("botocore")
    assert all(isinstance(h, logging.NullHandler) for h in botocore.handlers) and botocore.propagate
    assert not out.getvalue()


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_every_handler_sets_its_logger_up_for_the_repositorys_packages(module):
    handler = importlib.reload(importlib.import_module(module))
    for name in PACKAGES - {handler.logger.name}:
        package = logging.getLogger(name)
        assert package.handlers == handler.logger.handlers and not package.propagate, name


def test_a_second_announcement_is_logged_as_one_json_object():
    from consumers.notifications.store import InMemoryLedger
    from tests.unit.test_order_notifier import MemoryPublisher, large, notifier, record

    out = io.StringIO()
    function_logger(service="order-notifier", logger_handler=logging.StreamHandler(out))

    class RecordedMeanwhile(InMemoryLedger):  # another delivery recorded the invoice while this one published
        def announced(self, invoice_no):
            return False

        def record(self, invoice_no, **kwargs):
            super().record(invoice_no, **kwargs)
            return False

    notifier(RecordedMeanwhile(), MemoryPublisher()).handle(record(large()))
    [line] = json_lines(out.getvalue())
    assert (line["name"], line["level"], line["service"]) == ("consumers.notifications.core", "WARNING", "order-notifier")
    assert "536365" in line["message"]
