"""The dashboard as `shopstream dashboard` runs it: through the Redshift Data API of an
emulator of its own, whose warehouse was loaded through the same API (COPY from the
emulator's S3, then the loader). Values cross the API as strings and come back typed,
so what the dashboard serves must still equal SQL on the warehouse exactly."""
from __future__ import annotations

from decimal import Decimal
from urllib.parse import quote

import boto3
import pytest
import requests

from devstack.dashboard import Dashboard, DashboardServer
from devstack.emulator import Emulator, free_port
from tests.factories import FakeBucket, copy_statement, staging_ndjson
from tests.fixtures.warehouse_sample import IVORY_COAST, sample_events
from warehouse.data_api import DataApiExecutor
from warehouse.loader import WarehouseLoader

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def data_api(tmp_path_factory):
    """A Data API executor on a fresh emulator whose warehouse holds the sample."""
    emulator = Emulator.start(free_port(), warehouse_dir=tmp_path_factory.mktemp("dashboard-data-api"),
                              fresh_warehouse=True)
    try:
        endpoint = f"http://127.0.0.1:{emulator.port}"
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                        region_name="eu-west-1")
        executor = DataApiExecutor(session.client("redshift-data", endpoint_url=endpoint), database="dev",
                                   cluster_id="shopstream-local", timeout=60)
        s3 = session.client("s3", endpoint_url=endpoint)
        staged = FakeBucket("dashboard-staging")
        manifest = staged.stage(staging_ndjson(sample_events()))
        s3.create_bucket(Bucket=staged.name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for (bucket, key), body in staged.objects.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        loader = WarehouseLoader(executor)
        loader.ensure_schema()
        executor.execute(copy_statement(manifest))
        loader.run()
        yield executor
    finally:
        emulator.stop()


def test_a_country_through_the_data_api_equals_sql_on_the_warehouse(data_api):
    # GIVEN Côte d'Ivoire's figures in SQL, sent through the same Data API
    name = "'" + IVORY_COAST.replace("'", "''") + "'"
    top = data_api.execute(f"SELECT stock_code, units, gross_sales, unique_customers FROM mv_top_products_by_country "
                           f"WHERE country = {name} AND rank <= 3 ORDER BY rank").rows
    gross, net, days = data_api.execute(f"SELECT SUM(gross_sales), SUM(net_sales), COUNT(*) "
                                        f"FROM mv_sales_by_country_day WHERE country = {name}").rows[0]
    # WHEN the dashboard served on the Data API is asked for it (and for the overview)
    with DashboardServer(Dashboard(data_api), port=0) as server:
        country = requests.get(server.url + "api/countries/" + quote(IVORY_COAST), timeout=30)
        overview = requests.get(server.url + "api/countries", timeout=30)
        unknown = requests.get(server.url + "api/countries/Atlantis", timeout=30)
    # THEN its figures are the same, exact
    assert country.status_code == 200, country.text
    body = country.json()
    assert [(p["stock_code"], p["units"], Decimal(p["gross_sales"]), p["unique_customers"])
            for p in body["top_products"]] == [(code, int(units), g, int(c)) for code, units, g, c in top]
    assert (Decimal(body["totals"]["gross_sales"]), Decimal(body["totals"]["net_sales"])) == (gross, net)
    assert len(body["daily"]) == body["totals"]["days"] == int(days)
    assert overview.status_code == 200 and IVORY_COAST in {c["country"] for c in overview.json()["countries"]}
    assert unknown.status_code == 404
