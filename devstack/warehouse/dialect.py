"""Redshift SQL → DuckDB and Redshift SQL → PostgreSQL, in one place.

sqlglot (Redshift reader) does most of the work: SELECTs, window functions, MERGE,
DELETE … USING, CTAS and the usual functions transpile cleanly. What it drops, keeps or
breaks is handled here, each rule tested against expected results
(``tests/unit/test_warehouse_dialect.py``, ``tests/integration/test_warehouse_dialects.py``):

* physical attributes — ``ENCODE``, ``DISTSTYLE``, ``DISTKEY``, ``[COMPOUND|INTERLEAVED]
  SORTKEY``, ``SORTKEY AUTO``, ``BACKUP``, ``AUTO REFRESH`` — are removed from CREATE
  statements before parsing (they mean nothing locally; PostgreSQL rejects ``ENCODE``
  and sqlglot cannot parse several of the forms);
* ``CREATE MATERIALIZED VIEW`` / ``REFRESH`` / ``DROP MATERIALIZED VIEW`` become actions
  (:class:`CreateMaterializedView` …): PostgreSQL runs its own materialized views,
  DuckDB has none and the engine emulates them with a table rebuilt from the remembered
  definition (sqlglot would make a plain view of it: always current, so wrong);
* ``COPY`` becomes a :class:`Copy` action (:mod:`devstack.warehouse.copy`);
* ``GETDATE()`` is the current UTC time without fractional seconds and ``SYSDATE`` with
  them, as a TIMESTAMP (sqlglot gives a zoned CURRENT_TIMESTAMP);
* ``DATEDIFF(part, a, b)`` counts part boundaries crossed, as Redshift does — sqlglot's
  PostgreSQL form measures elapsed time (0 instead of 1 from 23:59 to 00:01). ``week`` is
  refused: DuckDB counts 7-day spans and Redshift's week boundary is not verified here;
* ``TRUNC(timestamp)`` is the date (sqlglot keeps TRUNC, which DuckDB and PostgreSQL
  only have for numbers); the argument's type comes from the table's columns;
* ``LISTAGG([DISTINCT] x, sep) [WITHIN GROUP (ORDER BY …)]`` becomes ``STRING_AGG``
  (sqlglot garbles DISTINCT and emits WITHIN GROUP for PostgreSQL's STRING_AGG);
* ``QUALIFY`` with ORDER BY / LIMIT on PostgreSQL: sqlglot moves ORDER BY and LIMIT into
  the subquery it builds, so rows are cut before QUALIFY filters; they go outside;
* ``IDENTITY`` columns are refused on DuckDB (no identity columns there).

Anything sqlglot itself reports as unsupported is an error, never a silent drop.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.dialects.postgres import Postgres
from sqlglot.dialects.redshift import Redshift
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from devstack.warehouse.copy import CopyCommand, is_copy, parse_copy
from devstack.warehouse.errors import CopyError, DialectError
from warehouse.statements import SqlFileError, split_statements

DUCKDB = "duckdb"
POSTGRES = "postgres"
TARGETS = (DUCKDB, POSTGRES)

TABLE, VIEW, MATERIALIZED_VIEW = "table", "view", "materialized view"

# table name → {column: type} (None when the table is unknown); used to type TRUNC's argument
ColumnTypes = Callable[[str], dict[str, str] | None]


# ---- what a statement becomes -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """An object a statement creates or drops, as the local catalog records it."""

    name: str   # as the target writes it (``fact``, ``public.fact``, ``"Odd"``)
    kind: str   # TABLE | VIEW | MATERIALIZED_VIEW


@dataclass(frozen=True, slots=True)
class Query:
    """A statement that returns rows and changes nothing (runs without the writer lock)."""

    sql: str


@dataclass(frozen=True, slots=True)
class Command:
    """Any other statement. ``creates`` / ``drops`` keep the local catalog in step;
    ``temporary`` says the session holds temporary tables afterwards."""

    sql: str
    creates: CatalogEntry | None = None
    drops: tuple[CatalogEntry, ...] = ()
    temporary: bool = False
    if_not_exists: bool = False
    analyze: str | None = None   # a table CREATE TABLE AS filled: Redshift analyzes it at once


@dataclass(frozen=True, slots=True)
class CreateMaterializedView:
    name: str
    query: str   # the defining SELECT, in the target dialect


@dataclass(frozen=True, slots=True)
class RefreshMaterializedView:
    name: str


@dataclass(frozen=True, slots=True)
class DropMaterializedView:
    names: tuple[str, ...]
    if_exists: bool


@dataclass(frozen=True, slots=True)
class Copy:
    command: CopyCommand


Translation = Query | Command | CreateMaterializedView | RefreshMaterializedView | DropMaterializedView | Copy


class _Refusal(Exception):
    """Raised inside generation; becomes a DialectError naming the statement."""


# ---- physical attributes ------------------------------------------------------------------

_REDSHIFT = Redshift()


def strip_physical_attributes(sql: str) -> str:
    """A CREATE statement without Redshift's storage attributes (anything else unchanged)."""
    try:
        tokens = _REDSHIFT.tokenize(sql)  # a tokenizer of its own: tokenizers keep state, threads share this
    except SqlglotError:
        return sql  # the parser will say what is wrong
    if not tokens or tokens[0].text.upper() != "CREATE":
        return sql
    words = [t.text.upper() for t in tokens]
    spans: list[tuple[int, int]] = []
    depth = 0
    i = 0

    def through_parens(j: int) -> int:
        """Index of the token closing the parenthesis opened at j."""
        level = 0
        while j < len(tokens):
            if tokens[j].text == "(":
                level += 1
            elif tokens[j].text == ")":
                level -= 1
                if level == 0:
                    return j
            j += 1
        return len(tokens) - 1

    while i < len(tokens):
        word = words[i]
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth == 0 and word == "AS" and i + 1 < len(tokens) and words[i + 1] in ("SELECT", "WITH", "("):
            break  # the query of a CTAS or a materialized view: nothing more to strip
        end = None
        if word in ("ENCODE", "DISTSTYLE", "BACKUP") and i + 1 < len(tokens):
            end = i + 1
        elif word == "AUTO" and i + 2 < len(tokens) and words[i + 1] == "REFRESH":
            end = i + 2
        elif word == "DISTKEY":
            end = through_parens(i + 1) if i + 1 < len(tokens) and words[i + 1] == "(" else i
        elif word in ("COMPOUND", "INTERLEAVED") and i + 1 < len(tokens) and words[i + 1] == "SORTKEY":
            end = through_parens(i + 2) if i + 2 < len(tokens) and words[i + 2] == "(" else i + 1
        elif word == "SORTKEY":
            if i + 1 < len(tokens) and words[i + 1] == "(":
                end = through_parens(i + 1)
            elif i + 1 < len(tokens) and words[i + 1] == "AUTO":
                end = i + 1
            else:
                end = i
        if end is not None:
            spans.append((tokens[i].start, tokens[end].end))
            i = end + 1
            continue
        i += 1
    if not spans:
        return sql
    out, pos = [], 0
    for start, end in spans:
        out.append(sql[pos:start])
        pos = end + 1
    out.append(sql[pos:])
    return "".join(out)


# ---- generation rules -----------------------------------------------------------------------

_DATE_PARTS = {
    "YEAR": "year", "YEARS": "year", "Y": "year", "YR": "year", "YRS": "year",
    "QUARTER": "quarter", "QUARTERS": "quarter", "QTR": "quarter", "QTRS": "quarter",
    "MONTH": "month", "MONTHS": "month", "MON": "month", "MONS": "month",
    "WEEK": "week", "WEEKS": "week", "W": "week",
    "DAY": "day", "DAYS": "day", "D": "day",
    "HOUR": "hour", "HOURS": "hour", "H": "hour", "HR": "hour", "HRS": "hour",
    "MINUTE": "minute", "MINUTES": "minute", "M": "minute", "MIN": "minute", "MINS": "minute",
    "SECOND": "second", "SECONDS": "second", "S": "second", "SEC": "second", "SECS": "second",
}
DATEDIFF_PARTS = ("year", "quarter", "month", "day", "hour", "minute", "second")


def _datediff_part(expression: exp.Expression) -> str:
    unit = expression.args.get("unit")
    name = (unit.name if unit is not None else "DAY").upper()
    part = _DATE_PARTS.get(name)
    if part not in DATEDIFF_PARTS:
        raise _Refusal(f"DATEDIFF({name.lower()}, …) is not emulated by the local warehouse "
                       f"(supported parts: {', '.join(DATEDIFF_PARTS)})")
    return part  # type: ignore[return-value]


def _duck_datediff(self: DuckDB.Generator, expression: exp.TsOrDsDiff) -> str:
    part = _datediff_part(expression)
    start, end = self.sql(expression, "expression"), self.sql(expression, "this")
    return f"DATE_DIFF('{part}', CAST({start} AS TIMESTAMP), CAST({end} AS TIMESTAMP))"


def _pg_datediff(self: Postgres.Generator, expression: exp.TsOrDsDiff) -> str:
    part = _datediff_part(expression)
    s = f"CAST({self.sql(expression, 'expression')} AS TIMESTAMP)"
    e = f"CAST({self.sql(expression, 'this')} AS TIMESTAMP)"
    years = f"(EXTRACT(YEAR FROM {e}) - EXTRACT(YEAR FROM {s}))"
    if part == "year":
        diff = years
    elif part == "quarter":
        diff = f"({years} * 4 + EXTRACT(QUARTER FROM {e}) - EXTRACT(QUARTER FROM {s}))"
    elif part == "month":
        diff = f"({years} * 12 + EXTRACT(MONTH FROM {e}) - EXTRACT(MONTH FROM {s}))"
    elif part == "day":
        diff = f"(CAST({e} AS DATE) - CAST({s} AS DATE))"
    else:
        seconds = {"hour": 3600, "minute": 60, "second": 1}[part]
        diff = f"(EXTRACT(EPOCH FROM DATE_TRUNC('{part}', {e}) - DATE_TRUNC('{part}', {s})) / {seconds})"
    return f"CAST({diff} AS BIGINT)"


def _duck_now(self: DuckDB.Generator, expression: exp.CurrentTimestamp) -> str:
    if expression.args.get("sysdate"):
        return "CAST(TIMEZONE('UTC', NOW()) AS TIMESTAMP)"
    return "CAST(DATE_TRUNC('second', TIMEZONE('UTC', NOW())) AS TIMESTAMP)"


def _pg_now(self: Postgres.Generator, expression: exp.CurrentTimestamp) -> str:
    if expression.args.get("sysdate"):
        return "(NOW() AT TIME ZONE 'UTC')"
    return "DATE_TRUNC('second', NOW() AT TIME ZONE 'UTC')"


class StringAgg(exp.Expression, exp.Func):
    """LISTAGG rewritten: STRING_AGG([DISTINCT] this, separator [ORDER BY …])."""

    arg_types = {"this": True, "separator": False, "distinct": False, "order": False}


def _string_agg(self: DuckDB.Generator | Postgres.Generator, expression: StringAgg) -> str:
    distinct = "DISTINCT " if expression.args.get("distinct") else ""
    separator = self.sql(expression, "separator") or "''"
    order = expression.args.get("order")
    order_sql = f" {self.sql(order).strip()}" if order is not None else ""
    return f"STRING_AGG({distinct}{self.sql(expression, 'this')}, {separator}{order_sql})"


class _LocalDuckDB(DuckDB):
    class Generator(DuckDB.Generator):
        TRANSFORMS = {
            **DuckDB.Generator.TRANSFORMS,
            exp.TsOrDsDiff: _duck_datediff,
            exp.CurrentTimestamp: _duck_now,
            StringAgg: _string_agg,
        }


class _LocalPostgres(Postgres):
    class Generator(Postgres.Generator):
        TRANSFORMS = {
            **Postgres.Generator.TRANSFORMS,
            exp.TsOrDsDiff: _pg_datediff,
            exp.CurrentTimestamp: _pg_now,
            StringAgg: _string_agg,
        }


_GENERATORS = {DUCKDB: _LocalDuckDB, POSTGRES: _LocalPostgres}


# ---- tree rewrites --------------------------------------------------------------------------


def _rewrite_listagg(tree: exp.Expression) -> exp.Expression:
    def rewrite(node: exp.Expression) -> exp.Expression:
        order = None
        concat = node
        if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.GroupConcat):
            concat, order = node.this, node.expression
        elif not isinstance(node, exp.GroupConcat) or isinstance(node.parent, exp.WithinGroup):
            return node
        value = concat.this
        separator = concat.args.get("separator")
        distinct = False
        if isinstance(value, exp.Distinct):
            distinct = True
            parts = list(value.expressions)
            if len(parts) == 2 and separator is None:
                value, separator = parts
            elif len(parts) == 1:
                value = parts[0]
            else:
                raise _Refusal("LISTAGG(DISTINCT …) takes one expression and an optional delimiter")
        return StringAgg(this=value.copy(), separator=separator.copy() if separator else None,
                         distinct=distinct or None, order=order.copy() if order else None)

    return tree.transform(rewrite)


_TEMPORAL = {exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.DATE,
             exp.DataType.Type.DATETIME, exp.DataType.Type.TIMESTAMPLTZ}


def _rewrite_trunc(tree: exp.Expression, column_types: ColumnTypes | None) -> exp.Expression:
    truncs = [t for t in tree.find_all(exp.Trunc) if t.args.get("decimals") is None]
    if not truncs:
        return tree
    schema: dict[str, dict[str, str]] = {}
    if column_types is not None:
        for table in tree.find_all(exp.Table):
            columns = column_types(table.name)
            if columns:
                schema[table.name] = columns
    try:
        typed = annotate_types(qualify(tree.copy(), schema=schema or None, dialect="redshift",
                                       validate_qualify_columns=False, quote_identifiers=False),
                               schema=schema or None, dialect="redshift")
        typed_truncs = [t for t in typed.find_all(exp.Trunc) if t.args.get("decimals") is None]
    except SqlglotError:
        typed_truncs = []
    if len(typed_truncs) != len(truncs):
        typed_truncs = truncs
    for original, typed_node in zip(truncs, typed_truncs):
        argument_type = typed_node.this.type
        if argument_type is not None and argument_type.this in _TEMPORAL:
            original.replace(exp.Cast(this=original.this.copy(), to=exp.DataType.build("DATE")))
    return tree


def _rewrite_qualify_for_postgres(tree: exp.Expression) -> exp.Expression:
    for select in list(tree.find_all(exp.Select)):
        if not select.args.get("qualify"):
            continue
        moved = {key: select.args.get(key) for key in ("order", "limit", "offset") if select.args.get(key)}
        if not moved:
            continue
        inner = select.copy()
        for key in moved:
            inner.set(key, None)
        outer = exp.select("*").from_(inner.subquery("_qualified"))
        for key, value in moved.items():
            value = value.copy()
            for column in value.find_all(exp.Column):
                column.set("table", None)
            outer.set(key, value)
        if select is tree:
            tree = outer
        else:
            select.replace(outer)
    return tree


def _catalog_name(table: exp.Expression, target: str) -> str:
    if isinstance(table, exp.Schema):
        table = table.this
    return table.sql(dialect=_GENERATORS[target])


# ---- translate ------------------------------------------------------------------------------

_REFRESH = re.compile(r"\s*REFRESH\s+MATERIALIZED\s+VIEW\s+(\S+?)\s*(?:RESTRICT|CASCADE)?\s*;?\s*", re.IGNORECASE)
_READ_COMMANDS = ("EXPLAIN", "SHOW", "DESCRIBE")


def _without_comments(sql: str) -> str:
    """The statement without comments (so REFRESH and COPY are recognised after one); the
    text as given when it is not exactly one statement, for the parser to report on."""
    try:
        parts = split_statements(sql)
    except SqlFileError:
        return sql
    return parts[0] if len(parts) == 1 else sql


def translate(sql: str, target: str, *, column_types: ColumnTypes | None = None) -> Translation:
    """What one Redshift statement becomes on ``target`` (``"duckdb"`` or ``"postgres"``)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r} (one of {TARGETS})")
    text = _without_comments(sql)
    refresh = _REFRESH.fullmatch(text)
    if refresh is not None:
        return RefreshMaterializedView(refresh.group(1).lower() if '"' not in refresh.group(1) else refresh.group(1))
    if is_copy(text):
        try:
            return Copy(parse_copy(text))
        except CopyError as exc:
            raise DialectError(str(exc), sql) from exc
    stripped = strip_physical_attributes(text)
    try:
        trees = [t for t in sqlglot.parse(stripped, read="redshift") if t is not None]
    except SqlglotError as exc:  # ParseError, TokenError
        raise DialectError(f"not Redshift SQL sqlglot can read: {exc}", sql) from exc
    if len(trees) != 1:
        raise DialectError(f"expected one statement, got {len(trees)}", sql)
    tree = trees[0]
    try:
        return _translate_tree(tree, target, column_types)
    except _Refusal as exc:
        raise DialectError(str(exc), sql) from exc
    except SqlglotError as exc:
        raise DialectError(f"sqlglot cannot write this for {target}: {exc}", sql) from exc


def _generate(tree: exp.Expression, target: str) -> str:
    return tree.sql(dialect=_GENERATORS[target], unsupported_level=ErrorLevel.RAISE)


def _translate_tree(tree: exp.Expression, target: str, column_types: ColumnTypes | None) -> Translation:
    if isinstance(tree, exp.Command):
        keyword = str(tree.this).upper()
        if keyword in _READ_COMMANDS:
            return Query(tree.sql(dialect="redshift"))
        return Command(tree.sql(dialect="redshift"))
    if target == DUCKDB and tree.find(exp.GeneratedAsIdentityColumnConstraint) is not None:
        raise _Refusal("IDENTITY columns are not emulated on DuckDB: generate the key in the SQL instead")
    tree = _rewrite_listagg(tree)
    tree = _rewrite_trunc(tree, column_types)
    if target == POSTGRES:
        tree = _rewrite_qualify_for_postgres(tree)

    if isinstance(tree, exp.Create):
        properties = tree.args.get("properties")
        props = list(properties.expressions) if properties is not None else []
        materialized = any(isinstance(p, exp.MaterializedProperty) for p in props)
        temporary = any(isinstance(p, exp.TemporaryProperty) for p in props)
        kind = (tree.args.get("kind") or "").upper()
        name = _catalog_name(tree.this, target)
        if materialized:
            leftover = [p for p in props if not isinstance(p, exp.MaterializedProperty)]
            if leftover:
                raise _Refusal(f"materialized view property not supported locally: {leftover[0].sql('redshift')}")
            if tree.expression is None:
                raise _Refusal("CREATE MATERIALIZED VIEW needs AS <query>")
            return CreateMaterializedView(name, _generate(tree.expression, target))
        entry = None
        if not temporary and kind in ("TABLE", "VIEW"):
            entry = CatalogEntry(name, TABLE if kind == "TABLE" else VIEW)
        filled = name if kind == "TABLE" and tree.expression is not None else None
        return Command(_generate(tree, target), creates=entry, temporary=temporary,
                       if_not_exists=bool(tree.args.get("exists")), analyze=filled)
    if isinstance(tree, exp.Drop):
        kind = (tree.args.get("kind") or "").upper()
        names = tuple(_catalog_name(t, target) for t in tree.args.get("expressions") or tree.args.get("tables") or [])
        if kind == "VIEW" and tree.args.get("materialized"):
            return DropMaterializedView(names, bool(tree.args.get("exists")))
        drops = tuple(CatalogEntry(n, TABLE if kind == "TABLE" else VIEW) for n in names) if kind in ("TABLE", "VIEW") else ()
        return Command(_generate(tree, target), drops=drops)
    if isinstance(tree, exp.Select) and tree.args.get("into") is not None:  # SELECT … INTO: a CREATE TABLE AS
        into = tree.args["into"]
        name = _catalog_name(into.this, target)
        temporary = bool(into.args.get("temporary"))
        return Command(_generate(tree, target), creates=None if temporary else CatalogEntry(name, TABLE),
                       temporary=temporary, analyze=name)
    if isinstance(tree, exp.Query):
        return Query(_generate(tree, target))
    return Command(_generate(tree, target))
