"""The warehouse contract seen from both sides: Terraform's Firehose COPY (table, columns,
options) is the staging table of warehouse/schema.py and warehouse/sql, and what the
transformation emits is exactly what the COPY lists."""
from __future__ import annotations

import json

import hcl2
import pytest
import sqlglot

from firehose.core import SourceRecord, Transformer
from tests.conftest import ROOT
from tests.factories import event
from warehouse.schema import STAGING_COLUMN_NAMES, STAGING_COLUMNS, STAGING_TABLE, jsonpaths

TERRAFORM = ROOT / "infra" / "terraform"
_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def _load(name: str) -> dict:
    with open(TERRAFORM / name) as f:
        return hcl2.load(f, serialization_options=_OPTIONS)


@pytest.fixture(scope="module")
def firehose_tf() -> dict:
    return _load("firehose.tf")


def _local(document: dict, name: str):
    return next(block[name] for block in document["locals"] if name in block)


def _redshift(firehose_tf) -> dict:
    stream = next(r["aws_kinesis_firehose_delivery_stream"]["warehouse"] for r in firehose_tf["resource"]
                  if "aws_kinesis_firehose_delivery_stream" in r)
    [config] = stream["redshift_configuration"]
    return config


def test_the_copy_lists_exactly_the_staging_columns_in_order(firehose_tf):
    assert _local(firehose_tf, "warehouse_staging_columns") == list(STAGING_COLUMN_NAMES)
    assert _local(firehose_tf, "warehouse_staging_table") == STAGING_TABLE
    config = _redshift(firehose_tf)
    assert config["data_table_columns"] == '${join(",", local.warehouse_staging_columns)}'
    assert config["data_table_name"] == "${local.warehouse_staging_table}"


def test_copy_options_read_what_the_transform_writes(firehose_tf):
    assert _redshift(firehose_tf)["copy_options"] == "${local.warehouse_copy_options}"
    options = _local(firehose_tf, "warehouse_copy_options")
    assert options == "JSON 's3://${aws_s3_bucket.delivery.bucket}/${local.warehouse_jsonpaths_key}' GZIP TIMEFORMAT 'auto'"
    [s3] = _redshift(firehose_tf)["s3_configuration"]
    assert s3["compression_format"] == "GZIP"  # COPY ... GZIP reads what Firehose staged
    # the JSONPaths file Terraform writes is warehouse/schema.py's: element i is column i
    written = next(r["aws_s3_object"]["jsonpaths"] for r in firehose_tf["resource"] if "aws_s3_object" in r)
    assert written["key"] == "${local.warehouse_jsonpaths_key}"
    assert written["content"] == '${jsonencode({jsonpaths = [for i, column in local.warehouse_staging_columns : "$[${i}]"]})}'
    assert jsonpaths_of(STAGING_COLUMN_NAMES) == jsonpaths()
    # and the transform writes one array per line with a value for each of those paths
    outcome = Transformer().transform_one(SourceRecord("r", event().to_json(), "1"))
    row = json.loads(outcome.data.decode().splitlines()[0])
    assert isinstance(row, list) and len(row) == len(jsonpaths()["jsonpaths"])


def jsonpaths_of(columns) -> dict:
    """What the Terraform expression above evaluates to."""
    return {"jsonpaths": [f"$[{i}]" for i, _ in enumerate(columns)]}


def test_the_staging_ddl_is_the_column_list():
    migration = (ROOT / "warehouse" / "sql" / "migrations" / "001_staging.sql").read_text()
    [create] = [s for s in sqlglot.parse(migration, read="redshift") if s is not None and s.key == "create"]
    assert create.this.this.name == STAGING_TABLE
    columns = [(c.name, c.args["kind"].sql(dialect="redshift").upper()) for c in create.this.expressions
               if c.key == "columndef"]
    # columns added by later migrations (ALTER TABLE ... ADD COLUMN) come last, in migration order
    for path in sorted((ROOT / "warehouse" / "sql" / "migrations").glob("*.sql")):
        for statement in sqlglot.parse(path.read_text(), read="redshift"):
            if statement is not None and statement.key == "alter" and statement.this.name == STAGING_TABLE:
                columns += [(c.name, c.args["kind"].sql(dialect="redshift").upper())
                            for c in statement.args["actions"] if c.key == "columndef"]
    assert [name for name, _ in columns] == list(STAGING_COLUMN_NAMES)
    declared = {c.name: c.type.replace(" ", "").upper() for c in STAGING_COLUMNS}
    assert {name: kind.replace(" ", "") for name, kind in columns} == declared


def test_the_schedule_targets_the_merge_function():
    warehouse = _load("warehouse.tf")
    target = next(r["aws_cloudwatch_event_target"]["merge"] for r in warehouse["resource"]
                  if "aws_cloudwatch_event_target" in r)
    assert target["arn"] == '${aws_lambda_function.function["warehouse-merge"].arn}'
    rule = next(r["aws_cloudwatch_event_rule"]["merge"] for r in warehouse["resource"] if "aws_cloudwatch_event_rule" in r)
    assert rule["schedule_expression"] == "${var.merge_schedule_expression}"
