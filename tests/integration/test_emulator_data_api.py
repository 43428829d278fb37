"""The emulator's Redshift Data API on the local warehouse (devstack/emulator/data_api.py),
through boto3 as the merge Lambda, the local Firehose and `shopstream sql` call it, on
DuckDB and on a throwaway PostgreSQL 15."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack.emulator import Emulator, free_port
from warehouse.data_api import DataApiExecutor, StatementFailed

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def data_api(request, tmp_path_factory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    emulator = Emulator.start(free_port(), warehouse_url=url, warehouse_dir=tmp_path_factory.mktemp("data-api"),
                              fresh_warehouse=True)
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-west-1")
    client = session.client("redshift-data", endpoint_url=emulator.endpoint_url)
    try:
        yield client, DataApiExecutor(client, database="dev", cluster_id="local", timeout=60)
    finally:
        emulator.stop()


def test_a_query_comes_back_typed_as_the_data_api_types_it(data_api):
    _, executor = data_api
    result = executor.execute("SELECT CAST(2.55 AS DECIMAL(15,6)) AS price, CAST(7 AS BIGINT) AS n, "
                              "CAST('2010-12-01' AS DATE) AS day, CAST('2010-12-01 08:26:00' AS TIMESTAMP) AS at, "
                              "TRUE AS ok, CAST(NULL AS VARCHAR) AS nothing, 'Côte d''Ivoire' AS country")
    assert [c.name for c in result.columns] == ["price", "n", "day", "at", "ok", "nothing", "country"]
    assert result.rows == [(Decimal("2.550000"), 7, dt.date(2010, 12, 1), dt.datetime(2010, 12, 1, 8, 26), True,
                            None, "Côte d'Ivoire")]


def test_a_batch_is_one_transaction_and_a_failure_in_it_applies_nothing(data_api):
    client, executor = data_api
    executor.execute("CREATE TABLE t_batch (n INTEGER NOT NULL)")
    executor.execute_batch(["INSERT INTO t_batch VALUES (1)", "CREATE TEMP TABLE scratch AS SELECT n FROM t_batch",
                            "INSERT INTO t_batch SELECT n + 1 FROM scratch"])
    assert executor.execute("SELECT SUM(n) FROM t_batch").scalar() == 3
    with pytest.raises(StatementFailed, match="in: INSERT INTO t_missing"):  # the failing statement is named
        executor.execute_batch(["INSERT INTO t_batch VALUES (10)", "INSERT INTO t_missing VALUES (1)"])
    assert executor.execute("SELECT SUM(n) FROM t_batch").scalar() == 3  # the first insert was rolled back
    [statement] = [s for s in client.list_statements(Status="FAILED")["Statements"] if s["IsBatchStatement"]]
    described = client.describe_statement(Id=statement["Id"])
    assert [s["Status"] for s in described["SubStatements"]] in (["ABORTED", "FAILED"], ["FAILED", "FAILED"])
    assert "t_missing" in described["Error"]


def test_each_statement_of_a_batch_has_its_own_result(data_api):
    client, executor = data_api
    executor.execute("CREATE TABLE t_sub (n INTEGER NOT NULL)")
    batch = client.batch_execute_statement(ClusterIdentifier="local", Database="dev", Sqls=[
        "INSERT INTO t_sub VALUES (1), (2)", "INSERT INTO t_sub SELECT n + 10 FROM t_sub", "SELECT SUM(n) AS total FROM t_sub"])
    executor._wait(batch["Id"], "batch")
    described = client.describe_statement(Id=batch["Id"])
    assert [(s["ResultRows"], s["HasResultSet"]) for s in described["SubStatements"]] == [(2, False), (2, False),
                                                                                          (1, True)]
    assert described["ResultRows"] == 5 and not described["HasResultSet"]
    result = client.get_statement_result(Id=f"{batch['Id']}:3")
    assert result["Records"] == [[{"longValue": 26}]]


def test_large_results_are_paged_and_all_rows_arrive(data_api):
    _, executor = data_api
    executor.execute("CREATE TABLE t_many AS SELECT CAST(n AS INTEGER) AS n FROM (SELECT 1 AS n) seed")
    for _ in range(15):  # 2**15 = 32,768 rows, more than one page of 10,000
        executor.execute("INSERT INTO t_many SELECT n + (SELECT COUNT(*) FROM t_many) FROM t_many")
    result = executor.execute("SELECT n FROM t_many ORDER BY n")
    assert result.rowcount == 32768 and [r[0] for r in result.rows] == list(range(1, 32769))


def test_errors_are_the_data_apis(data_api):
    client, executor = data_api
    with pytest.raises(StatementFailed, match="no_such"):
        executor.execute("SELECT * FROM no_such")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.describe_statement(Id="00000000-0000-0000-0000-000000000000")
    statement = client.execute_statement(Sql="CREATE TABLE t_plain (n INTEGER)", Database="dev", ClusterIdentifier="local")
    executor._wait(statement["Id"], "CREATE")
    with pytest.raises(ClientError, match="no result set"):
        client.get_statement_result(Id=statement["Id"])
