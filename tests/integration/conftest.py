"""Fixtures of the local warehouse tests: one warehouse per test on each backend."""
from __future__ import annotations

import pytest

from devstack.warehouse import LocalWarehouse
from tests.factories import FakeBucket

WAREHOUSE_BACKENDS = ("duckdb", "postgresql")


@pytest.fixture(params=WAREHOUSE_BACKENDS)
def warehouse_url(request, tmp_path) -> str:
    """An empty warehouse's URL: a DuckDB file of this test, or the module's PostgreSQL database
    (emptied by the ``warehouse`` fixture's reset after each test)."""
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def bucket() -> FakeBucket:
    return FakeBucket()


@pytest.fixture
def warehouse(warehouse_url, bucket):
    warehouse = LocalWarehouse.open(warehouse_url, object_reader=bucket.reader)
    warehouse.reset()
    yield warehouse
    warehouse.reset()
    warehouse.close()
