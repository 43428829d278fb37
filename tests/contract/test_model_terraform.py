"""dynamo_models/invoice.py and infra/terraform/dynamodb.tf describe the same table: keys,
attribute types, and the customer-invoices index with its projection.

The model side is what pynamodb itself would send to CreateTable (``Model._get_schema()``),
cross-checked against the model's attributes and the index's Meta.
"""
from __future__ import annotations

import hcl2
import pytest
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection

from dynamo_models.invoice import CUSTOMER_INDEX, SUMMARY_ATTRIBUTES, TABLE_KEY, InvoiceItem
from tests.conftest import ROOT

_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@pytest.fixture(scope="module")
def terraform() -> dict:
    with open(ROOT / "infra" / "terraform" / "dynamodb.tf") as f:
        return hcl2.load(f, serialization_options=_OPTIONS)


@pytest.fixture(scope="module")
def table(terraform) -> dict:
    return next(r["aws_dynamodb_table"][TABLE_KEY] for r in terraform["resource"] if "aws_dynamodb_table" in r)


@pytest.fixture(scope="module")
def schema() -> dict:
    return InvoiceItem._get_schema()


def _resolve(terraform, value):
    """A literal, or the value of ``${local.<name>}`` as dynamodb.tf defines it."""
    if isinstance(value, str) and value.startswith("${local."):
        name = value.removeprefix("${local.").removesuffix("}")
        return next(block[name] for block in terraform["locals"] if name in block)
    return value


def _keys(key_schema: list[dict]) -> tuple[str | None, str | None]:
    by_type = {k["KeyType"]: k["AttributeName"] for k in key_schema}
    return by_type.get("HASH"), by_type.get("RANGE")


def test_table_name_follows_the_prefix(table):
    assert table["name"] == "${var.name_prefix}-invoices"
    assert InvoiceItem.Meta.table_name == "shopstream-invoices"  # the name with the default prefix


def test_table_keys(table, schema):
    assert (table["hash_key"], table["range_key"]) == _keys(schema["key_schema"])
    attributes = InvoiceItem.get_attributes()
    assert attributes[table["hash_key"]].is_hash_key and attributes[table["range_key"]].is_range_key


def test_attribute_definitions(table, schema):
    declared = {a["name"]: a["type"] for a in table["attribute"]}
    assert declared == {d["AttributeName"]: d["AttributeType"] for d in schema["attribute_definitions"]}
    attributes = InvoiceItem.get_attributes()
    assert all(attributes[name].attr_type == type_ for name, type_ in declared.items())


def test_customer_index(terraform, table, schema):
    [index] = table["global_secondary_index"]
    [model_index] = schema["global_secondary_indexes"]
    assert schema["local_secondary_indexes"] == []
    assert index["name"] == model_index["index_name"] == CUSTOMER_INDEX
    assert (index["hash_key"], index["range_key"]) == _keys(model_index["key_schema"])
    assert index["projection_type"] == model_index["projection"]["ProjectionType"] == "INCLUDE"
    non_key = _resolve(terraform, index["non_key_attributes"])
    assert non_key == model_index["projection"]["NonKeyAttributes"] == list(SUMMARY_ATTRIBUTES)


def test_the_model_index_is_the_one_terraform_creates():
    indexes = [v for v in vars(InvoiceItem).values() if isinstance(v, GlobalSecondaryIndex)]
    assert [type(i).Meta.index_name for i in indexes] == [CUSTOMER_INDEX]
    assert isinstance(InvoiceItem.by_customer.Meta.projection, IncludeProjection)
    # projected attributes are attributes of the model
    assert set(SUMMARY_ATTRIBUTES) <= set(InvoiceItem.get_attributes())


def test_billing_mode_needs_no_capacity(table):
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert "read_capacity" not in table and "write_capacity" not in table
    [index] = table["global_secondary_index"]
    assert "read_capacity" not in index and "write_capacity" not in index
