"""`shopstream dashboard` as a command: it needs the stack, writes a static snapshot with
the data embedded, and says clearly when its port is taken. The stack's Data API is
stood in for by a local warehouse holding the sample (the command only asks the stack
for a StatementExecutor)."""
from __future__ import annotations

import json
import re
import socket
from decimal import Decimal

import pytest

from devstack import cli, stack
from tests.fixtures.warehouse_sample import load_sample


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory):
    warehouse = load_sample(f"duckdb://{tmp_path_factory.mktemp('dashboard-cli') / 'warehouse.duckdb'}", extra=False)
    yield warehouse
    warehouse.close()


@pytest.fixture
def running_stack(monkeypatch, sample_warehouse):
    """A stack that is 'up', whose warehouse executor is the sample warehouse."""
    monkeypatch.setattr(stack, "require_running", lambda config: object())
    monkeypatch.setattr(stack, "warehouse_executor", lambda config, info: sample_warehouse)
    return sample_warehouse


def test_the_command_needs_the_stack_up(tmp_path, capsys):
    # WHEN the dashboard is asked for with no stack running
    code = cli.main(["--state-dir", str(tmp_path / "nothing"), "dashboard"])
    # THEN it refuses, saying how to start it
    assert code == 2
    assert "run `shopstream up` first" in capsys.readouterr().err


def test_static_writes_a_page_with_every_country_embedded(running_stack, tmp_path, capsys):
    # GIVEN France's gross sales in the warehouse
    gross = running_stack.execute("SELECT SUM(gross_sales) FROM mv_sales_by_country_day "
                                  "WHERE country = 'France'").scalar()
    countries = {row[0] for row in running_stack.execute("SELECT DISTINCT country FROM mv_sales_by_country_day").rows}
    target = tmp_path / "out" / "dashboard.html"
    # WHEN a static snapshot is written
    code = cli.main(["--state-dir", str(tmp_path), "dashboard", "--static", str(target)])
    # THEN the page holds the overview and every country's details, money as decimal strings
    assert code == 0 and str(target) in capsys.readouterr().out
    html = target.read_text(encoding="utf-8")
    embedded = re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    data = json.loads(embedded)
    assert set(data["countries"]) == countries == {row["country"] for row in data["overview"]["countries"]}
    assert data["countries"]["France"]["totals"]["gross_sales"] == format(gross, "f")
    assert Decimal(data["overview"]["totals"]["net_sales"]) == running_stack.execute(
        "SELECT SUM(amount) FROM fact_invoice_lines").scalar()
    assert data["generated_at"].endswith("UTC")


def test_a_taken_port_is_a_clear_error(running_stack, tmp_path, capsys):
    # GIVEN a port something else listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # WHEN the dashboard is started on it
        code = cli.main(["--state-dir", str(tmp_path), "dashboard", "--port", str(port)])
    # THEN it says which port and what to do
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
