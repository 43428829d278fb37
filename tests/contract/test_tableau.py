"""The Tableau data sources in tableau/ and the warehouse DDL describe the same relations
and columns; the Redshift ones connect where Terraform puts the warehouse, over SSL; no
file holds a password; the committed files are exactly what tableau/generate.py writes.

The DDL is read here on its own (sqlglot, independently of the generator), so a
generator bug cannot hide behind itself."""
from __future__ import annotations

import json
import re
import sys
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import hcl2
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from tableau import generate
from tests.conftest import ROOT
from warehouse import statements

TABLEAU = ROOT / "tableau"
TERRAFORM = ROOT / "infra" / "terraform"
TDS_FILES = sorted(TABLEAU.glob("*.tds"))
XML_DECLARATION = "<?xml version='1.0' encoding='utf-8' ?>"
T = exp.DataType.Type

# Tableau's datatype for each family of warehouse types, and the remote-type code it records
COMPATIBLE = {
    "string": {T.VARCHAR, T.CHAR, T.TEXT},
    "integer": {T.SMALLINT, T.INT, T.BIGINT},
    "real": {T.DECIMAL, T.DOUBLE, T.FLOAT},
    "date": {T.DATE},
    "datetime": {T.TIMESTAMP},
    "boolean": {T.BOOLEAN},
}
REMOTE_TYPE = {T.VARCHAR: 129, T.CHAR: 129, T.TEXT: 129, T.SMALLINT: 2, T.INT: 3, T.BIGINT: 20,
               T.DECIMAL: 131, T.DOUBLE: 5, T.FLOAT: 4, T.DATE: 133, T.TIMESTAMP: 135, T.BOOLEAN: 11}


# ── the DDL, read here ─────────────────────────────────────────────────────────────────

@dataclass
class Ddl:
    columns: dict[str, dict[str, exp.DataType]]   # relation → column → type, in DDL order
    primary_keys: dict[str, list[str]]
    materialized_views: set[str]


def _view_column_type(select: exp.Expression) -> exp.DataType:
    if select.type is not None and select.type.this != T.UNKNOWN:
        return select.type
    # Redshift's DATEDIFF returns BIGINT; sqlglot leaves it untyped
    assert isinstance(select.unalias(), (exp.DateDiff, exp.TsOrDsDiff)), select.sql("redshift")
    return exp.DataType.build("BIGINT")


@pytest.fixture(scope="module")
def ddl() -> Ddl:
    columns: dict[str, dict[str, exp.DataType]] = {}
    keys: dict[str, list[str]] = {}
    views: set[str] = set()
    for migration in statements.migrations():
        for sql in migration.statements:
            tree = sqlglot.parse_one(sql, read="redshift")
            if isinstance(tree, exp.Alter) and tree.this.name in columns:  # ADD COLUMN appends
                columns[tree.this.name].update({c.name: c.kind for c in tree.args.get("actions") or []
                                                if isinstance(c, exp.ColumnDef)})
                continue
            if not isinstance(tree, exp.Create):
                continue
            if tree.args["kind"] == "TABLE":
                name = tree.this.this.name
                columns[name] = {c.name: c.kind for c in tree.this.expressions if isinstance(c, exp.ColumnDef)}
                keys[name] = [e.name for pk in tree.this.expressions if isinstance(pk, exp.PrimaryKey)
                              for e in pk.expressions]
            elif tree.args["kind"] == "VIEW":
                name = tree.this.name
                schema = {t: {c: k.sql("redshift") for c, k in cols.items()} for t, cols in columns.items()}
                typed = annotate_types(qualify(tree.expression.copy(), schema=schema, dialect="redshift"),
                                       schema=schema, dialect="redshift")
                columns[name] = {s.alias_or_name: _view_column_type(s) for s in typed.selects}
                views.add(name)
    return Ddl(columns, keys, views)


# ── the .tds files, read as XML ────────────────────────────────────────────────────────

@dataclass
class Tds:
    path: Path
    root: ET.Element

    @property
    def connection(self) -> ET.Element:
        [connection] = self.root.findall("./connection/named-connections/named-connection/connection")
        return connection

    @property
    def tables(self) -> list[ET.Element]:
        return self.root.findall("./connection//relation[@type='table']")

    @property
    def records(self) -> list[ET.Element]:
        return self.root.findall("./connection/metadata-records/metadata-record[@class='column']")

    @property
    def columns(self) -> list[ET.Element]:
        return self.root.findall("./column")


def _read(path: Path) -> Tds:
    return Tds(path, ET.parse(path).getroot())


@pytest.fixture(scope="module")
def sources() -> list[Tds]:
    assert TDS_FILES, f"no .tds file in {TABLEAU}"
    return [_read(path) for path in TDS_FILES]


def _of(sources: list[Tds], dbclass: str) -> list[Tds]:
    chosen = [s for s in sources if s.connection.get("class") == dbclass]
    assert chosen, f"no {dbclass} data source"
    return chosen


def _default(variable: str) -> object:
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    with open(TERRAFORM / "variables.tf") as f:
        document = hcl2.load(f, serialization_options=options)
    return next(block[variable]["default"] for block in document["variable"] if variable in block)


# ── the tests ──────────────────────────────────────────────────────────────────────────

def test_the_committed_files_are_exactly_the_generators_output():
    # GIVEN the .tds files in tableau/
    committed = {path.name: path.read_text(encoding="utf-8") for path in TDS_FILES}
    # WHEN the generator renders them from warehouse/sql with its placeholders
    rendered = generate.render()
    # THEN they are the same files, byte for byte (no drift, nothing extra or missing)
    assert sorted(committed) == sorted(rendered)
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} differs: run python -m tableau"
    assert generate.main(["--check"]) == 0


@pytest.mark.parametrize("path", TDS_FILES, ids=lambda p: p.name)
def test_each_file_is_a_tableau_data_source_document(path):
    # GIVEN a committed .tds file
    text = path.read_text(encoding="utf-8")
    # WHEN it is parsed as XML
    root = ET.fromstring(text.encode("utf-8"))
    # THEN it is one federated data source in the format Tableau writes
    assert text.startswith(XML_DECLARATION + "\n")
    assert root.tag == "datasource"
    assert (root.get("version"), root.get("inline")) == ("18.1", "true")
    assert root.get("formatted-name") == path.stem
    [federated] = root.findall("./connection")
    assert federated.get("class") == "federated"
    [named] = federated.findall("./named-connections/named-connection")
    assert {r.get("connection") for r in root.findall("./connection//relation[@type='table']")} == {named.get("name")}
    assert len(federated.findall("./relation")) == 1  # one relation: a table, or a join of tables


def _document_api():
    """tableaudocumentapi 0.11 imports distutils, which Python 3.12 removed (setuptools brings
    it back): required on 3.11, where the project pins it; skipped only where it cannot import."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # distutils' own deprecation warning
            from tableaudocumentapi import Datasource
    except ImportError as exc:
        if sys.version_info >= (3, 12) and "distutils" in str(exc):
            pytest.skip(f"tableaudocumentapi cannot import on Python {sys.version_info[:2]}: {exc}")
        raise
    return Datasource


@pytest.mark.filterwarnings("ignore:distutils Version classes are deprecated:DeprecationWarning")
@pytest.mark.parametrize("path", TDS_FILES, ids=lambda p: p.name)
def test_tableaus_document_api_reads_the_connection_and_every_field(path):
    Datasource = _document_api()
    # GIVEN a committed .tds file and what its XML says
    tds = _read(path)
    local_types = {r.findtext("local-name"): r.findtext("local-type") for r in tds.records}
    # WHEN Tableau's Document API opens it
    source = Datasource.from_file(str(path))
    # THEN it finds the one connection, with the warehouse the file name promises
    [connection] = source.connections
    assert connection.dbclass == ("redshift" if "-redshift-" in path.name else "postgres")
    assert (connection.server, connection.port, connection.dbname, connection.username, connection.schema) == (
        tds.connection.get("server"), tds.connection.get("port"), tds.connection.get("dbname"),
        tds.connection.get("username"), "public")
    assert connection.authentication == "username-password"
    # AND every field, with the datatype of its metadata record
    assert set(source.fields) == set(local_types)
    for name, field in source.fields.items():
        assert field.datatype == local_types[name], name


@pytest.mark.parametrize("path", TDS_FILES, ids=lambda p: p.name)
def test_every_relation_and_column_it_names_exists_in_the_ddl_with_a_compatible_type(path, ddl):
    # GIVEN a data source's relations and column metadata
    tds = _read(path)
    schema = tds.connection.get("schema")
    relations = {r.get("name"): r for r in tds.tables}
    # THEN each relation is a table or view of warehouse/sql, in the connection's schema
    for name, relation in relations.items():
        assert name in ddl.columns, f"{path.name}: {name} is not created by warehouse/sql"
        assert relation.get("table") == f"[{schema}].[{name}]"
    # AND each column is a column of its relation, of a type Tableau reads as the datatype given
    assert tds.records
    for record in tds.records:
        relation = record.findtext("parent-name").strip("[]")
        column = record.findtext("remote-name")
        assert relation in relations, f"{path.name}: {column} belongs to {relation}, not a relation here"
        assert column in ddl.columns[relation], f"{path.name}: {relation} has no column {column}"
        sql_type = ddl.columns[relation][column]
        local_type = record.findtext("local-type")
        assert sql_type.this in COMPATIBLE[local_type], f"{relation}.{column}: {sql_type.sql()} is not {local_type}"
        assert int(record.findtext("remote-type")) == REMOTE_TYPE[sql_type.this], f"{relation}.{column}"
        if sql_type.this == T.DECIMAL and record.find("scale") is not None:
            assert [p.this.this for p in sql_type.expressions] == [record.findtext("precision"), record.findtext("scale")]


def test_each_materialized_view_has_a_data_source_per_warehouse_with_all_its_columns(sources, ddl):
    # GIVEN the views the loader refreshes
    views = statements.materialized_views()
    assert set(views) == ddl.materialized_views
    for dbclass in ("redshift", "postgres"):
        for view in views:
            # WHEN we look for the data source reading that view alone
            matching = [s for s in _of(sources, dbclass) if [r.get("name") for r in s.tables] == [view]]
            # THEN there is exactly one, and it has every column of the view, in the view's order
            assert len(matching) == 1, f"{dbclass}: {len(matching)} data sources read {view}"
            assert [r.findtext("remote-name") for r in matching[0].records] == list(ddl.columns[view])


def test_the_invoice_lines_source_left_joins_each_dimension_on_its_primary_key(sources, ddl):
    for tds in sources:
        joins = tds.root.findall("./connection//relation[@type='join']")
        if not joins:
            continue
        # GIVEN a data source that joins the fact to dimensions
        tables = [r.get("name") for r in tds.tables]
        assert tables[0] == "fact_invoice_lines"
        for join in joins:
            # THEN each join is LEFT (no fact line is dropped: a quarter have no customer) …
            assert join.get("join") == "left"
            [fact_side, dim_side] = [e.get("op") for e in join.findall("./clause/expression[@op='=']/expression")]
            fact, fact_key = re.fullmatch(r"\[(\w+)\]\.\[(\w+)\]", fact_side).groups()
            dimension, key = re.fullmatch(r"\[(\w+)\]\.\[(\w+)\]", dim_side).groups()
            # … on the whole primary key of the dimension (no fact line is repeated), same type both sides
            assert fact == "fact_invoice_lines" and dimension in tables[1:]
            assert ddl.primary_keys[dimension] == [key] and fact_key == key
            assert ddl.columns[fact][key] == ddl.columns[dimension][key]
        assert len(joins) == len(tables) - 1


@pytest.mark.parametrize("path", TDS_FILES, ids=lambda p: p.name)
def test_every_field_has_one_column_element_with_a_unique_caption(path):
    # GIVEN a data source's metadata records and column elements
    tds = _read(path)
    records = {r.findtext("local-name"): r.findtext("local-type") for r in tds.records}
    columns = {c.get("name"): c for c in tds.columns}
    # THEN each field has exactly one column element, of the same datatype
    assert len(columns) == len(tds.columns) and set(columns) == set(records)
    for name, column in columns.items():
        assert column.get("datatype") == records[name], name
        assert column.get("role") in ("dimension", "measure")
        assert column.get("role") == "dimension" or column.get("datatype") in ("integer", "real"), name
    # AND no two fields look alike in Tableau's data pane
    captions = [c.get("caption") for c in tds.columns]
    assert len(set(captions)) == len(captions)


@pytest.mark.parametrize("path", TDS_FILES, ids=lambda p: p.name)
def test_no_password_is_stored_anywhere(path):
    # GIVEN the whole file, raw and parsed
    text = path.read_text(encoding="utf-8")
    root = ET.fromstring(text.encode("utf-8"))
    # THEN no attribute is a password or secret, and none holds one
    secret = re.compile(r"pass(word)?|pwd|secret|credential", re.IGNORECASE)
    for element in root.iter():
        for key, value in element.attrib.items():
            assert not secret.search(key), f"{path.name}: attribute {key} on <{element.tag}>"
            if (element.tag, key, value) != ("connection", "authentication", "username-password"):
                assert not secret.search(value), f"{path.name}: {key}={value!r} on <{element.tag}>"
        assert not secret.search(element.tag)
        assert not secret.search(element.text or ""), f"{path.name}: <{element.tag}> text"
    assert not re.search(r"(?i)(password|pwd)\s*=", text)


def test_the_redshift_sources_connect_where_terraform_puts_the_warehouse_over_ssl(sources):
    database = _default("redshift_database")
    for tds in _of(sources, "redshift"):
        # GIVEN a Redshift data source's connection
        attributes = tds.connection.attrib
        # THEN it is the Terraform warehouse's port and database, schema public, SSL required
        assert attributes["port"] == "5439"
        assert attributes["sslmode"] == "require"
        assert (attributes["dbname"], attributes["schema"]) == (database, "public")
        assert attributes["authentication"] == "username-password"
        assert attributes["server"] == generate.REDSHIFT_HOST_PLACEHOLDER  # filled in by the generator
        assert attributes["username"] not in ("", _default("redshift_admin_username"))  # read-only user


def test_the_postgres_sources_connect_to_the_local_warehouse(sources):
    for tds in _of(sources, "postgres"):
        attributes = tds.connection.attrib
        assert (attributes["server"], attributes["port"]) == ("127.0.0.1", "5432")
        assert attributes["sslmode"] in ("", "disable", "prefer")  # localhost: SSL not required
        assert attributes["schema"] == "public"
    assert len(_of(sources, "postgres")) == len(_of(sources, "redshift"))


def test_the_how_to_grants_the_read_only_user_every_relation_the_sources_read(sources):
    # GIVEN the GRANT of tableau/README.md and the relations the data sources read
    readme = (TABLEAU / "README.md").read_text(encoding="utf-8")
    [granted] = re.findall(r"GRANT SELECT ON (.+?) TO analyst;", readme, flags=re.DOTALL)
    read = {r.get("name") for tds in sources for r in tds.tables}
    # THEN the user the how-to creates can read exactly those
    assert {name.strip() for name in granted.split(",")} == read


def _connections(directory: Path) -> dict[str, dict[str, str]]:
    return {p.name: dict(_read(p).connection.attrib) for p in sorted(directory.glob("*.tds"))}


def _without_connection(text: str) -> str:
    text = re.sub(r"<connection authentication=[^>]*/>", "<connection/>", text)
    return re.sub(r"<named-connection caption='[^']*'", "<named-connection", text)


def test_the_generator_fills_in_the_connection_and_changes_nothing_else(tmp_path, capsys):
    # GIVEN the host of `terraform output warehouse` and a user
    host = "shopstream-warehouse.abc123.eu-west-1.redshift.amazonaws.com"
    # WHEN the generator writes copies for them
    assert generate.main(["--redshift-host", host, "--user", "bob", "--postgres-database", "shop2",
                          "--out", str(tmp_path)]) == 0
    # THEN the Redshift copies connect there, the local ones to the database given, both as bob
    connections = _connections(tmp_path)
    assert sorted(connections) == [p.name for p in TDS_FILES]
    for name, attributes in connections.items():
        if "-redshift-" in name:
            assert (attributes["server"], attributes["port"], attributes["sslmode"]) == (host, "5439", "require")
        else:
            assert (attributes["server"], attributes["dbname"]) == ("127.0.0.1", "shop2")
        assert attributes["username"] == "bob"
    # AND apart from the connection each copy is the committed file
    for path in TDS_FILES:
        assert _without_connection((tmp_path / path.name).read_text()) == _without_connection(path.read_text())
    assert f"wrote {2 * len(generate.SOURCES)} data sources" in capsys.readouterr().out


@pytest.mark.parametrize("whole_output", [False, True], ids=["output-warehouse", "all-outputs"])
def test_the_generator_reads_terraform_output_json(tmp_path, whole_output):
    # GIVEN `terraform output -json warehouse` (or all outputs) saved to a file
    warehouse = {"host": "wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com", "port": 5439,
                 "database": "shopstream", "secret_arn": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}
    document = {"warehouse": {"sensitive": False, "value": warehouse}} if whole_output else warehouse
    saved = tmp_path / "warehouse.json"
    saved.write_text(json.dumps(document))
    # WHEN the generator reads it
    assert generate.main(["--warehouse-json", str(saved), "--out", str(tmp_path / "out")]) == 0
    # THEN every Redshift copy connects to that host, and the secret's ARN is in none of them
    redshift = {n: a for n, a in _connections(tmp_path / "out").items() if "-redshift-" in n}
    assert len(redshift) == len(generate.SOURCES)
    assert {a["server"] for a in redshift.values()} == {warehouse["host"]}
    assert all("secretsmanager" not in p.read_text() for p in (tmp_path / "out").glob("*.tds"))


def test_the_generator_refuses_a_schema_change_it_does_not_follow():
    # GIVEN the migrations plus a statement that changes a table's columns in a way it does not model
    sqls = generate.migration_statements() + ["ALTER TABLE fact_invoice_lines RENAME COLUMN country TO nation"]
    # WHEN the generator reads them THEN it refuses instead of writing stale columns
    with pytest.raises(generate.CatalogError, match="ALTER TABLE fact_invoice_lines"):
        generate.read_catalog(sqls)


def test_the_generator_appends_an_added_column():
    # GIVEN the migrations plus an ADD COLUMN
    sqls = generate.migration_statements() + ["ALTER TABLE fact_invoice_lines ADD COLUMN channel VARCHAR(20)"]
    # WHEN the generator reads them THEN the fact ends with the new nullable column
    last = generate.read_catalog(sqls)["fact_invoice_lines"].columns[-1]
    assert (last.name, last.nullable) == ("channel", True)


def test_the_generator_refuses_a_view_column_without_a_name():
    sqls = generate.migration_statements() + [
        "CREATE MATERIALIZED VIEW mv_x AS SELECT country, SUM(amount) FROM fact_invoice_lines GROUP BY country"]
    with pytest.raises(generate.CatalogError, match="has no alias"):
        generate.read_catalog(sqls)


def test_the_generator_refuses_a_note_for_a_column_that_is_gone(monkeypatch):
    # GIVEN a note for a column the view does not have (say, after a rename)
    notes = {**generate.NOTES, "mv_customer_summary": {"revenue": generate.Note(caption="Revenue")}}
    monkeypatch.setattr(generate, "NOTES", notes)
    # WHEN rendering THEN the stale note is an error
    with pytest.raises(generate.CatalogError, match="revenue"):
        generate.render()


def test_a_later_migration_dropping_and_recreating_a_view_changes_its_columns():
    # GIVEN the migrations plus one that recreates a view with another column
    sqls = generate.migration_statements() + [
        "DROP MATERIALIZED VIEW mv_customer_summary",
        "CREATE MATERIALIZED VIEW mv_customer_summary AS SELECT customer_id, COUNT(*) AS lines "
        "FROM fact_invoice_lines GROUP BY customer_id"]
    # WHEN the generator reads them
    catalog = generate.read_catalog(sqls)
    # THEN the view has the new columns, typed
    view = catalog["mv_customer_summary"]
    assert [c.name for c in view.columns] == ["customer_id", "lines"]
    assert [generate.tableau_datatype(c.type) for c in view.columns] == ["string", "integer"]
