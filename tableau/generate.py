"""Write the Tableau data sources (.tds) of the shopstream warehouse from its DDL.

The tables, views and columns come from ``warehouse/sql/migrations`` (parsed with
sqlglot, the types of a materialized view's columns inferred from its SELECT), so a .tds
cannot name a column the warehouse does not have. What the DDL cannot say -- captions,
descriptions, which numbers are dimensions, what to hide -- is in :data:`NOTES` below,
and a note for a column that no longer exists is an error, not a silent leftover.

Every data source is written once per warehouse: ``shopstream-redshift-<name>.tds``
(class ``redshift``, port 5439, SSL required) and ``shopstream-postgres-<name>.tds``
(class ``postgres``, the local warehouse of ``shopstream up --warehouse postgresql://…``).
No password is ever written: Tableau asks for it when it connects.

    python -m tableau                    # rewrite the committed files (placeholders)
    python -m tableau --check            # exit 1 if they differ from what the DDL gives
    python -m tableau --redshift-host HOST --user analyst       # your copies, in build/tableau/
    terraform -chdir=infra/terraform output -json warehouse | python -m tableau --warehouse-json - --user analyst

``python tableau/generate.py …`` works too.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

if __package__ in (None, ""):  # run as a script: the repository root holds the warehouse package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from warehouse import statements

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_CUSTOM_OUT = ROOT / "build" / "tableau"
FILE_PREFIX = "shopstream"

TDS_VERSION = "18.1"  # the document version Tableau 2018.1 … 2024.x writes
USER_NAMESPACE = "http://www.tableausoftware.com/xml/user"

# The Terraform output warehouse.host goes here; .invalid (RFC 2606) can never resolve, so
# a file opened unchanged fails at once, and Tableau's connection dialog shows what to set.
REDSHIFT_HOST_PLACEHOLDER = "warehouse-host-from-terraform-output.invalid"


class CatalogError(ValueError):
    """The DDL holds something the generator cannot turn into data sources."""


# ── the warehouse, as its DDL describes it ─────────────────────────────────────────────

TABLE, VIEW, MATERIALIZED_VIEW = "table", "view", "materialized view"


@dataclass(frozen=True, slots=True)
class WarehouseColumn:
    name: str
    type: exp.DataType
    nullable: bool


@dataclass(frozen=True, slots=True)
class WarehouseRelation:
    name: str
    kind: str  # TABLE | VIEW | MATERIALIZED_VIEW
    columns: tuple[WarehouseColumn, ...]
    primary_key: tuple[str, ...] = ()

    def column(self, name: str) -> WarehouseColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise CatalogError(f"{self.name} has no column {name!r} (it has {', '.join(c.name for c in self.columns)})")


# Functions whose result type sqlglot does not infer, with Redshift's (and the local
# warehouse's) result type.
_RESULT_TYPES: dict[type[exp.Expression], str] = {
    exp.DateDiff: "BIGINT",     # Redshift DATEDIFF returns BIGINT
    exp.TsOrDsDiff: "BIGINT",   # what sqlglot parses Redshift's DATEDIFF(part, a, b) into
}


def migration_statements() -> list[str]:
    """Every statement of warehouse/sql/migrations, in version order."""
    return [sql for migration in statements.migrations() for sql in migration.statements]


def read_catalog(sqls: Iterable[str] | None = None) -> dict[str, WarehouseRelation]:
    """The relations the statements leave behind (default: the migrations), by name.

    CREATE TABLE gives its columns, types and NOT NULL; ALTER TABLE … ADD COLUMN appends
    one; CREATE [MATERIALIZED] VIEW the output columns of its SELECT with their inferred
    types; DROP removes. Any other
    statement that changes a relation (ALTER, RENAME …) is refused rather than ignored,
    so the data sources cannot silently fall behind the schema.
    """
    catalog: dict[str, WarehouseRelation] = {}
    for sql in migration_statements() if sqls is None else sqls:
        try:
            tree = sqlglot.parse_one(sql, read="redshift")
        except SqlglotError as exc:
            raise CatalogError(f"cannot parse a migration statement: {exc}\n{sql}") from exc
        if isinstance(tree, exp.Create) and tree.args.get("kind") == "TABLE":
            relation = _table(tree)
        elif isinstance(tree, exp.Create) and tree.args.get("kind") == "VIEW":
            relation = _view(tree, catalog)
        elif (isinstance(tree, exp.Alter) and tree.args.get("kind") == "TABLE" and tree.this.name in catalog
              and tree.args.get("actions") and all(isinstance(a, exp.ColumnDef) for a in tree.args["actions"])):
            relation = _added_columns(catalog[tree.this.name], tree.args["actions"])  # ADD COLUMN: appended
        elif isinstance(tree, exp.Drop) and tree.args.get("kind") in ("TABLE", "VIEW"):
            for dropped in tree.args.get("tables") or [tree.this]:
                catalog.pop(dropped.name, None)
            continue
        elif isinstance(tree, (exp.Create, exp.Drop, exp.Alter)) or (
                isinstance(tree, exp.Command) and tree.this.upper() in ("ALTER", "CREATE", "DROP", "RENAME")):
            raise CatalogError("tableau/generate.py does not follow this schema change yet; teach "
                               f"read_catalog() how it changes the columns:\n{sql}")
        else:
            continue  # INSERT, COMMENT …: no change to any relation's columns
        catalog[relation.name] = relation
    return catalog


def _table(tree: exp.Create) -> WarehouseRelation:
    schema = tree.this
    keys: list[str] = []
    for constraint in schema.expressions:
        if isinstance(constraint, exp.PrimaryKey):
            keys.extend(e.name for e in constraint.expressions)
    columns = []
    for definition in schema.expressions:
        if not isinstance(definition, exp.ColumnDef):
            continue
        kinds = [c.kind for c in definition.constraints]
        if any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds):
            keys.append(definition.name)
        not_null = any(isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null") for k in kinds)
        columns.append(WarehouseColumn(definition.name, definition.kind, nullable=not not_null))
    primary_key = tuple(keys)
    columns = [replace(c, nullable=False) if c.name in primary_key else c for c in columns]
    return WarehouseRelation(schema.this.name, TABLE, tuple(columns), primary_key)


def _added_columns(relation: WarehouseRelation, definitions: list[exp.ColumnDef]) -> WarehouseRelation:
    added = []
    for definition in definitions:
        kinds = [c.kind for c in definition.constraints]
        not_null = any(isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null") for k in kinds)
        added.append(WarehouseColumn(definition.name, definition.kind, nullable=not not_null))
    return replace(relation, columns=(*relation.columns, *added))


def _view(tree: exp.Create, catalog: dict[str, WarehouseRelation]) -> WarehouseRelation:
    name = tree.this.name
    materialized = any(isinstance(p, exp.MaterializedProperty)
                       for p in (tree.args.get("properties") or exp.Properties(expressions=[])).expressions)
    query = tree.expression
    if not isinstance(query, exp.Query):
        raise CatalogError(f"view {name}: no SELECT to read its columns from")
    schema = {r.name: {c.name: c.type.sql("redshift") for c in r.columns} for r in catalog.values()}
    try:
        typed = annotate_types(qualify(query.copy(), schema=schema, dialect="redshift", quote_identifiers=False),
                               schema=schema, dialect="redshift")
    except SqlglotError as exc:
        raise CatalogError(f"view {name}: cannot resolve its columns against the tables before it: {exc}") from exc
    columns = []
    # names from the SQL as written (qualify() would invent aliases), types from the typed copy
    for written, select in zip(query.selects, typed.selects, strict=True):
        output = written.output_name
        if not output or output == "*":
            raise CatalogError(f"view {name}: the expression {written.sql('redshift')!r} has no alias, so its "
                               "column name is the engine's choice; give it one (AS …) in the SQL")
        columns.append(WarehouseColumn(output, _result_type(name, output, select), nullable=True))
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise CatalogError(f"view {name}: duplicate output column names {names}")
    return WarehouseRelation(name, MATERIALIZED_VIEW if materialized else VIEW, tuple(columns))


def _result_type(view: str, column: str, select: exp.Expression) -> exp.DataType:
    inferred = select.type
    if inferred is not None and inferred.this not in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL):
        return inferred
    expression = select.unalias()
    for kind, result in _RESULT_TYPES.items():
        if isinstance(expression, kind):
            return exp.DataType.build(result, dialect="redshift")
    raise CatalogError(f"view {view}: cannot tell the type of {column} ({expression.sql('redshift')}); "
                       "CAST it in the SQL or add its function to _RESULT_TYPES")


# ── Redshift/PostgreSQL types as Tableau sees them ─────────────────────────────────────

_T = exp.DataType.Type
_STRING = {_T.VARCHAR, _T.CHAR, _T.TEXT, _T.NVARCHAR, _T.NCHAR, _T.BPCHAR}
# remote-type: the OLE DB type code Tableau records for a database column
_REMOTE_TYPE = {_T.SMALLINT: 2, _T.INT: 3, _T.BIGINT: 20, _T.DECIMAL: 131, _T.FLOAT: 4, _T.DOUBLE: 5,
                _T.DATE: 133, _T.TIMESTAMP: 135, _T.TIMESTAMPTZ: 135, _T.BOOLEAN: 11,
                **{t: 129 for t in _STRING}}


def _decimal_params(dtype: exp.DataType) -> tuple[int, int]:
    """Precision and scale of a DECIMAL; Redshift's bare DECIMAL is DECIMAL(18, 0)."""
    params = [int(p.this.this) for p in dtype.expressions]
    return (params[0] if params else 18), (params[1] if len(params) > 1 else 0)


def tableau_datatype(dtype: exp.DataType) -> str:
    """Tableau's datatype for a column: DECIMAL with a scale is ``real`` in Tableau (a
    double); the database keeps it exact and sums it exactly."""
    kind = dtype.this
    if kind in _STRING:
        return "string"
    if kind in (_T.SMALLINT, _T.INT, _T.BIGINT):
        return "integer"
    if kind == _T.DECIMAL:
        return "integer" if _decimal_params(dtype)[1] == 0 else "real"
    if kind in (_T.FLOAT, _T.DOUBLE):
        return "real"
    if kind == _T.DATE:
        return "date"
    if kind in (_T.TIMESTAMP, _T.TIMESTAMPTZ):
        return "datetime"
    if kind == _T.BOOLEAN:
        return "boolean"
    raise CatalogError(f"no Tableau datatype for {dtype.sql('redshift')}")


_AGGREGATION = {"string": "Count", "boolean": "Count", "integer": "Sum", "real": "Sum",
                "date": "Year", "datetime": "Year"}


# ── what the DDL cannot say ────────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Note:
    caption: str | None = None      # default: the column name in title case
    description: str | None = None  # shown when hovering over the field in Tableau
    role: str | None = None         # "dimension" for numbers that label rather than count
    hidden: bool = False
    country: bool = False           # geographic role: country name


GROSS = ("What sale lines billed: lines of invoices that are neither cancellations nor adjustments "
         "(postage and other charges included).")
NET = ("Gross sales + cancellations + adjustments: the sum of every line, the revenue the shop kept. "
       "Revenue, unqualified, means this.")

# By column name, for every relation that has the column; NOTES below override per relation.
COMMON_NOTES: dict[str, Note] = {
    "country": Note(description="The invoice's country.", country=True),
    "invoices": Note(description="Invoices of every kind: sales, cancellations (C…) and adjustments (A…)."),
    "orders": Note(description="Sale invoices: neither cancellations nor adjustments."),
    "cancellation_invoices": Note(description="Cancellation invoices (numbers starting with C)."),
    "lines": Note(description="Invoice lines of every kind."),
    "units": Note(caption="Units (net)", description="Net units: cancelled quantities count negative."),
    "gross_units": Note(caption="Units (gross)", description="Units on sale lines only."),
    "gross_sales": Note(description=GROSS),
    "cancellations": Note(description="Signed amount of cancellation lines (zero or negative)."),
    "adjustments": Note(description="Signed amount of adjustment lines (A invoices)."),
    "net_sales": Note(description=NET),
    "customers": Note(description="Distinct known customers. Lines without a customer (about a quarter) "
                                  "count in every money total but in no customer count."),
    "customer_id": Note(caption="Customer ID"),
}

NOTES: dict[str, dict[str, Note]] = {
    "mv_sales_by_country_day": {
        "day": Note(description="The invoice date."),
    },
    "mv_top_products_by_country": {
        "stock_code": Note(description="Products only: postage, fees and manual items (POST, DOT, M, "
                                       "BANK CHARGES …) are not products and are not ranked."),
        "description": Note(description="The product's current description."),
        "unique_customers": Note(description="Known customers who bought it (sale lines)."),
        "rank": Note(role="dimension",
                     description="1, 2, 3 … per country by net sales, then net units, then stock code: "
                                 "no ties. Top 3 of a country: filter Rank to 1-3."),
    },
    "mv_customer_summary": {
        "country": Note(description="The country of the customer's latest invoice.", country=True),
        "products": Note(description="Distinct products (not postage, fees …) on the customer's lines."),
        "first_order": Note(description="The customer's first sale invoice; empty if they only have "
                                        "cancellations."),
        "last_order": Note(description="The customer's last sale invoice; empty if they only have "
                                       "cancellations."),
        "active_days": Note(description="Day boundaries between the first and the last order."),
    },
    "mv_customers_by_country": {
        "country": Note(country=True),
        "customers": Note(description="Known customers with a line in the country; a customer who bought "
                                      "in two countries counts in each, so do not sum across countries."),
    },
    "fact_invoice_lines": {
        "invoice_no": Note(caption="Invoice No", description="C… is a cancellation, A… an adjustment."),
        "line_no": Note(caption="Line No", role="dimension", description="The line's place in its invoice."),
        "customer_id": Note(caption="Customer ID", description="Empty on about a quarter of the lines."),
        "description": Note(caption="Line Description", description="The description as on the line."),
        "quantity": Note(description="Negative on cancellation lines."),
        "unit_price": Note(description="The price on the line."),
        "amount": Note(description="Quantity x unit price, signed (negative on cancellations). SUM(Amount) "
                                   "is net sales; gross sales are the lines neither cancellation nor "
                                   "adjustment."),
        "size_class": Note(description="Small, Medium or Large by the absolute amount of the line "
                                       "(thresholds set in the pipeline's settings; by default 10 and 100)."),
        "is_cancellation": Note(description="A line of a C invoice."),
        "is_adjustment": Note(description="A line of an A invoice."),
        "is_product": Note(description="False for postage, fees and manual items (POST, DOT, M, BANK CHARGES "
                                       "…): they count in money totals, not in product lists."),
        "event_id": Note(hidden=True),
        "source_sequence": Note(hidden=True),
        "arrived_at": Note(hidden=True),
        "merged_at": Note(hidden=True),
    },
    "dim_products": {
        "stock_code": Note(hidden=True),
        "is_product": Note(hidden=True),
        "description": Note(caption="Product Description",
                            description="The product's current description (of its latest sale line)."),
        "unit_price": Note(caption="List Price", description="The product's current price (of its latest sale "
                                                             "line with a positive price)."),
        "first_invoice_date": Note(caption="Product First Invoice Date"),
        "last_invoice_date": Note(caption="Product Last Invoice Date"),
    },
    "dim_customers": {
        "customer_id": Note(hidden=True),
        "country": Note(caption="Customer Country", country=True,
                        description="The country of the customer's latest invoice."),
        "first_order": Note(caption="Customer First Order",
                            description="The customer's first sale invoice; empty if they only have cancellations."),
        "last_order": Note(caption="Customer Last Order",
                           description="The customer's last sale invoice; empty if they only have cancellations."),
    },
}


# ── the data sources ───────────────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Join:
    relation: str   # the dimension, joined to the base relation
    key: str        # the column of the same name on both sides
    kind: str = "left"


@dataclass(frozen=True, slots=True)
class Source:
    key: str        # the file name: shopstream-<target>-<key>.tds
    caption: str
    relation: str
    joins: tuple[Join, ...] = ()

    @property
    def relations(self) -> tuple[str, ...]:
        return (self.relation, *(j.relation for j in self.joins))


SOURCES: tuple[Source, ...] = (
    Source("sales-by-country-day", "Sales by country and day", "mv_sales_by_country_day"),
    Source("top-products-by-country", "Top products by country", "mv_top_products_by_country"),
    Source("customer-summary", "Customer summary", "mv_customer_summary"),
    Source("customers-by-country", "Customers by country", "mv_customers_by_country"),
    # left joins on the dimensions' keys: every line stays (a quarter have no customer), none repeats
    Source("invoice-lines", "Invoice lines with products and customers", "fact_invoice_lines",
           joins=(Join("dim_products", "stock_code"), Join("dim_customers", "customer_id"))),
)


@dataclass(frozen=True, slots=True)
class Target:
    key: str        # redshift | postgres
    label: str
    dbclass: str
    server: str
    port: int
    database: str
    username: str
    sslmode: str    # Tableau's "Require SSL": 'require', or '' (the driver's default)
    schema: str = "public"


REDSHIFT = Target("redshift", "Redshift", "redshift", REDSHIFT_HOST_PLACEHOLDER, 5439, "shopstream",
                  "analyst", "require")
POSTGRES = Target("postgres", "local PostgreSQL", "postgres", "127.0.0.1", 5432, "shop", "postgres", "")
TARGETS: tuple[Target, ...] = (REDSHIFT, POSTGRES)


@dataclass(frozen=True, slots=True)
class Field:
    relation: str
    column: WarehouseColumn
    local_name: str         # unique in the data source: the column name, or "name (relation)"
    ordinal: int
    note: Note

    @property
    def datatype(self) -> str:
        return tableau_datatype(self.column.type)

    @property
    def role(self) -> str:
        if self.note.role:
            return self.note.role
        return "measure" if self.datatype in ("integer", "real") else "dimension"

    @property
    def type(self) -> str:
        if self.role == "measure":
            return "quantitative"
        return "nominal" if self.datatype in ("string", "boolean") else "ordinal"

    @property
    def caption(self) -> str:
        if self.note.caption:
            return self.note.caption
        caption = self.column.name.replace("_", " ").title()
        return caption if self.local_name == self.column.name else f"{caption} ({self.relation})"


def check_notes(catalog: dict[str, WarehouseRelation]) -> None:
    """Every note names a column of a relation some data source uses."""
    used = {name for source in SOURCES for name in source.relations}
    for relation, notes in NOTES.items():
        if relation not in used:
            raise CatalogError(f"NOTES names {relation}, which no data source uses")
        if relation not in catalog:
            raise CatalogError(f"NOTES names {relation}, which warehouse/sql does not create")
        for column in notes:
            catalog[relation].column(column)
    known = {c.name for name in used if name in catalog for c in catalog[name].columns}
    stale = set(COMMON_NOTES) - known
    if stale:
        raise CatalogError(f"COMMON_NOTES names columns no data source has: {sorted(stale)}")


def fields(source: Source, catalog: dict[str, WarehouseRelation]) -> list[Field]:
    out: list[Field] = []
    taken: set[str] = set()
    for name in source.relations:
        if name not in catalog:
            raise CatalogError(f"data source {source.key}: warehouse/sql creates no {name}")
        for ordinal, column in enumerate(catalog[name].columns):
            local = column.name if column.name not in taken else f"{column.name} ({name})"
            taken.add(local)
            note = NOTES.get(name, {}).get(column.name) or COMMON_NOTES.get(column.name) or Note()
            out.append(Field(name, column, local, ordinal, note))
    for join in source.joins:
        catalog[source.relation].column(join.key)
        catalog[join.relation].column(join.key)
    return out


def datasource(source: Source, target: Target, catalog: dict[str, WarehouseRelation]) -> Element:
    connection_name = f"{target.dbclass}.{FILE_PREFIX}"
    root = Element("datasource", {
        "caption": f"{FILE_PREFIX}: {source.caption} ({target.label})",
        "formatted-name": f"{FILE_PREFIX}-{target.key}-{source.key}",
        "inline": "true",
        "version": TDS_VERSION,
        "xmlns:user": USER_NAMESPACE,
    })
    federated = SubElement(root, "connection", {"class": "federated"})
    named = SubElement(SubElement(federated, "named-connections"), "named-connection",
                       {"caption": target.server, "name": connection_name})
    SubElement(named, "connection", {
        "authentication": "username-password",
        "class": target.dbclass,
        "dbname": target.database,
        "port": str(target.port),
        "schema": target.schema,
        "server": target.server,
        "sslmode": target.sslmode,
        "username": target.username,
    })

    def table(name: str) -> Element:
        return Element("relation", {"connection": connection_name, "name": name,
                                    "table": f"[{target.schema}].[{name}]", "type": "table"})

    relation = table(source.relation)
    for join in source.joins:  # left-deep: ((base ⋈ first) ⋈ second) …
        joined = Element("relation", {"join": join.kind, "type": "join"})
        equals = SubElement(SubElement(joined, "clause", {"type": "join"}), "expression", {"op": "="})
        SubElement(equals, "expression", {"op": f"[{source.relation}].[{join.key}]"})
        SubElement(equals, "expression", {"op": f"[{join.relation}].[{join.key}]"})
        joined.append(relation)
        joined.append(table(join.relation))
        relation = joined
    federated.append(relation)

    all_fields = fields(source, catalog)
    records = SubElement(federated, "metadata-records")
    for field in all_fields:
        record = SubElement(records, "metadata-record", {"class": "column"})
        column = field.column
        values = [("remote-name", column.name), ("remote-type", str(_REMOTE_TYPE[column.type.this])),
                  ("local-name", f"[{field.local_name}]"), ("parent-name", f"[{field.relation}]"),
                  ("remote-alias", column.name), ("ordinal", str(field.ordinal)),
                  ("local-type", field.datatype), ("aggregation", _AGGREGATION[field.datatype])]
        if column.type.this == _T.DECIMAL and catalog[field.relation].kind == TABLE:
            precision, scale = _decimal_params(column.type)  # a view's sums are wider than the DDL shows
            values += [("precision", str(precision)), ("scale", str(scale))]
        if column.type.this in _STRING and column.type.expressions:
            values.append(("width", column.type.expressions[0].this.this))
        values.append(("contains-null", "true" if column.nullable else "false"))
        for tag, text in values:
            SubElement(record, tag).text = str(text)

    SubElement(root, "aliases", {"enabled": "yes"})
    for field in all_fields:
        attributes = {"caption": field.caption, "datatype": field.datatype, "name": f"[{field.local_name}]",
                      "role": field.role, "type": field.type}
        if field.note.hidden:
            attributes["hidden"] = "true"
        if field.note.country:
            attributes["semantic-role"] = "[Country].[Name]"
        column_element = SubElement(root, "column", attributes)
        if field.note.description:
            run = SubElement(SubElement(SubElement(column_element, "desc"), "formatted-text"), "run")
            run.text = field.note.description
    SubElement(root, "layout", {"dim-ordering": "alphabetic", "measure-ordering": "alphabetic",
                                "show-structure": "true"})
    return root


# ── writing: Tableau's own layout (single-quoted attributes in name order, two-space indent) ──

HEADER = ("<?xml version='1.0' encoding='utf-8' ?>\n\n"
          "<!-- Generated by tableau/generate.py from warehouse/sql: change the generator, not this file. "
          "No password is stored: Tableau asks for it. -->\n")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    return "'" + _escape(value).replace("'", "&apos;").replace('"', "&quot;") + "'"


def _lines(element: Element, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    attributes = "".join(f" {key}={_attribute(value)}" for key, value in sorted(element.attrib.items()))
    children = list(element)
    if not children and element.text is None:
        out.append(f"{pad}<{element.tag}{attributes} />")
    elif not children:
        out.append(f"{pad}<{element.tag}{attributes}>{_escape(element.text or '')}</{element.tag}>")
    else:
        out.append(f"{pad}<{element.tag}{attributes}>")
        for child in children:
            _lines(child, depth + 1, out)
        out.append(f"{pad}</{element.tag}>")


def serialize(root: Element) -> str:
    out: list[str] = []
    _lines(root, 0, out)
    return HEADER + "\n".join(out) + "\n"


def file_name(source: Source, target: Target) -> str:
    return f"{FILE_PREFIX}-{target.key}-{source.key}.tds"


def render(targets: Sequence[Target] = TARGETS, catalog: dict[str, WarehouseRelation] | None = None) -> dict[str, str]:
    """Every data source for every target, by file name."""
    catalog = read_catalog() if catalog is None else catalog
    check_notes(catalog)
    return {file_name(source, target): serialize(datasource(source, target, catalog))
            for target in targets for source in SOURCES}


# ── command line ───────────────────────────────────────────────────────────────────────

def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port")
    return port


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text.strip()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tableau",
        description="Write the Tableau data sources (.tds) of the shopstream warehouse from warehouse/sql. "
                    "Without connection options it rewrites the committed files in tableau/ (placeholders); "
                    "with any, it writes your copies to build/tableau/ (or --out).")
    parser.add_argument("--out", type=Path, help="the directory to write to")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the committed files differ from the generator's output")
    parser.add_argument("--user", type=_text, help="the user name of both warehouses (default: analyst on "
                                                   "Redshift, postgres locally)")
    redshift = parser.add_argument_group("Redshift (from `terraform output warehouse`)")
    redshift.add_argument("--warehouse-json", metavar="FILE",
                          help="`terraform output -json warehouse` (or `terraform output -json`) saved to FILE, "
                               "or - for standard input: host, port and database are read from it")
    redshift.add_argument("--redshift-host", type=_text, help="warehouse.host")
    redshift.add_argument("--redshift-port", type=_port, help=f"warehouse.port (default {REDSHIFT.port})")
    redshift.add_argument("--redshift-database", type=_text, help=f"warehouse.database (default {REDSHIFT.database})")
    redshift.add_argument("--redshift-user", type=_text, help=f"default {REDSHIFT.username}")
    postgres = parser.add_argument_group("local PostgreSQL (shopstream up --warehouse postgresql://USER@HOST:PORT/DB)")
    postgres.add_argument("--postgres-host", type=_text, help=f"default {POSTGRES.server}")
    postgres.add_argument("--postgres-port", type=_port, help=f"default {POSTGRES.port}")
    postgres.add_argument("--postgres-database", type=_text, help=f"default {POSTGRES.database}")
    postgres.add_argument("--postgres-user", type=_text, help=f"default {POSTGRES.username}")
    return parser


def _terraform_warehouse(path: str) -> dict:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--warehouse-json: not JSON ({exc}); use `terraform output -json warehouse`") from exc
    if isinstance(data, dict) and isinstance(data.get("warehouse"), dict):  # the whole `terraform output -json`
        data = data["warehouse"].get("value", {})
    if not isinstance(data, dict) or not data.get("host"):
        raise SystemExit("--warehouse-json: no warehouse host in it; use `terraform output -json warehouse`")
    return data


def targets_from(args: argparse.Namespace) -> tuple[Target, ...]:
    redshift, postgres = REDSHIFT, POSTGRES
    if args.warehouse_json:
        output = _terraform_warehouse(args.warehouse_json)
        redshift = replace(redshift, server=str(output["host"]),
                           port=int(output.get("port") or redshift.port),
                           database=str(output.get("database") or redshift.database))
    if args.user:
        redshift, postgres = replace(redshift, username=args.user), replace(postgres, username=args.user)
    redshift = replace(redshift, **{k: v for k, v in {
        "server": args.redshift_host, "port": args.redshift_port, "database": args.redshift_database,
        "username": args.redshift_user}.items() if v is not None})
    postgres = replace(postgres, **{k: v for k, v in {
        "server": args.postgres_host, "port": args.postgres_port, "database": args.postgres_database,
        "username": args.postgres_user}.items() if v is not None})
    return redshift, postgres


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    targets = targets_from(args)
    customised = targets != TARGETS
    try:
        files = render(targets)
    except CatalogError as exc:
        print(f"tableau: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if customised or args.out:
            print("tableau: --check compares the committed files; give no connection options or --out",
                  file=sys.stderr)
            return 2
        committed = {p.name: p.read_text(encoding="utf-8") for p in HERE.glob(f"{FILE_PREFIX}-*.tds")}
        differ = sorted(n for n in set(files) | set(committed) if files.get(n) != committed.get(n))
        for name in differ:
            print(f"tableau: {name} is not what the generator writes (run python -m tableau)", file=sys.stderr)
        return 1 if differ else 0
    out = args.out or (DEFAULT_CUSTOM_OUT if customised else HERE)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() == HERE:  # the committed folder: drop files of sources that are gone
        for stale in HERE.glob(f"{FILE_PREFIX}-*.tds"):
            if stale.name not in files:
                stale.unlink()
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8", newline="\n")
    shown = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    print(f"wrote {len(files)} data sources to {shown}/")
    for target in targets:
        print(f"  {target.label}: {target.dbclass}://{target.username}@{target.server}:{target.port}/"
              f"{target.database} (schema {target.schema}, sslmode '{target.sslmode}')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
