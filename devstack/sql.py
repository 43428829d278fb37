"""Printing a warehouse result as ``shopstream sql`` does: an aligned table, JSON or CSV.

Values keep their exactness: numeric columns are printed (and written to JSON) as their
decimal text, never through a float; dates and timestamps in ISO 8601; NULL as empty in
a table and CSV, ``null`` in JSON.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, (Decimal, datetime, date)):
        return _text(value)
    return value


def format_result(result: Any, how: str = "table") -> str:
    names = [c.name for c in result.columns]
    if not names:
        return f"{result.rowcount} rows affected"
    if how == "json":
        return json.dumps([{n: _json_value(v) for n, v in zip(names, row)} for row in result.rows], indent=2,
                          ensure_ascii=False)
    if how == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([_text(v) for v in row] for row in result.rows)
        return out.getvalue().rstrip("\n")
    cells = [[_text(v) for v in row] for row in result.rows]
    numeric = [c.type_name in ("int2", "int4", "int8", "numeric", "float4", "float8") for c in result.columns]
    widths = [max([len(n)] + [len(row[i]) for row in cells]) for i, n in enumerate(names)]
    line = lambda values: "  ".join(v.rjust(w) if num else v.ljust(w)  # noqa: E731
                                    for v, w, num in zip(values, widths, numeric)).rstrip()
    rows = [line(names), "  ".join("-" * w for w in widths)] + [line(row) for row in cells]
    rows.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(rows)
