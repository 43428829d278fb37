"""How an invoice event becomes DynamoDB items (dynamo_models/repository.py)."""
from __future__ import annotations

import random
import string
from decimal import Decimal

from dynamo_models.invoice import PART_BYTES, decode_lines
from dynamo_models.repository import _line, invoice_items
from tests.factories import event, line


def test_a_normal_invoice_is_one_item_with_summary_and_index_keys():
    (item,) = invoice_items(event(n_lines=21))
    assert (item.invoice_no, item.part, item.parts, item.line_count) == ("536365", 0, None, 21)  # parts only when split
    assert item.customer_id == "17850" and item.invoice_sort == "2010-12-01T08:26:00#536365"
    assert item.total == event(n_lines=21).total
    assert len(item.lines) < 1000  # compressed


def test_no_customer_means_no_index_entry():
    (item,) = invoice_items(event(customer_id=None))
    assert item.customer_id is None and item.invoice_sort is None


def test_items_are_a_pure_function_of_the_event():
    assert [i.serialize() for i in invoice_items(event())] == [i.serialize() for i in invoice_items(event())]


def test_a_huge_incompressible_invoice_is_split_into_bounded_parts_that_reassemble():
    rng = random.Random(7)
    lines = [line(i, stock_code=f"{i:05d}", description="".join(rng.choices(string.printable, k=450)), unit_price="1.005")
             for i in range(1, 10_001)]
    big = event(lines=lines)
    items = invoice_items(big)
    assert len(items) > 1
    assert items[0].parts == len(items) and [i.part for i in items] == list(range(len(items)))
    assert all(len(i.lines) <= PART_BYTES for i in items)
    assert all(i.event_id == big.event_id for i in items)
    rows = [row for i in items for row in decode_lines(i.lines)]
    assert [r["line_no"] for r in rows] == list(range(1, 10_001))
    assert sum(_line(r).amount for r in rows) == big.total == Decimal("60300.000")  # 10,000 x 6 x 1.005
