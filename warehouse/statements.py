"""Every SQL statement shopstream sends to Redshift, read from ``warehouse/sql``.

The ``.sql`` files are the one source of SQL, in Redshift's dialect: AWS runs them as
they are, the local warehouse (``devstack.warehouse``) translates them for DuckDB or
PostgreSQL. This module only reads them: it splits a file into statements and fills in
the few ``{placeholder}`` values the loader supplies (a run id, a migration's version
and name), each checked against a strict pattern, because the Data API's
BatchExecuteStatement takes no parameters.

* ``bootstrap.sql`` — the migrations table (``CREATE TABLE IF NOT EXISTS``);
* ``migrations/NNN_name.sql`` — applied once each, in version order;
* ``merge.sql`` — staging → fact and dimensions, one transaction;
* ``refresh.sql`` — one ``REFRESH MATERIALIZED VIEW`` per view;
* ``loader/*.sql`` — the loader's own small queries (migrations applied, rows staged, a
  merge's counts, whether the views need a refresh).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().with_name("sql")
MIGRATIONS_DIR = SQL_DIR / "migrations"

# The Data API's BatchExecuteStatement runs at most 40 statements.
MAX_BATCH_STATEMENTS = 40

_MIGRATION_FILE = re.compile(r"(\d{3})_([a-z0-9_]+)\.sql")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SAFE_TEXT = re.compile(r"[A-Za-z0-9_]{1,200}")
_REFRESH = re.compile(r"REFRESH\s+MATERIALIZED\s+VIEW\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


class SqlFileError(ValueError):
    """A file under warehouse/sql is malformed (a bug in the project, not in the data)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement as :func:`all_statements` lists it: where it comes from, and its SQL."""

    source: str
    sql: str


def split_statements(text: str) -> list[str]:
    """The statements of a SQL script, without comments, each without its ``;``.

    Quotes are respected: a ``;`` or ``--`` inside a string literal or a quoted
    identifier is text, and ``''`` inside a literal is an escaped quote.
    """
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise SqlFileError("unterminated /* comment")
            i = end + 2
            current.append(" ")
            continue
        if ch in ("'", '"'):
            j = i + 1
            while True:
                j = text.find(ch, j)
                if j < 0:
                    raise SqlFileError(f"unterminated {ch} quote starting at character {i}")
                if text.startswith(ch * 2, j):  # an escaped quote
                    j += 2
                    continue
                break
            current.append(text[i : j + 1])
            i = j + 1
            continue
        if ch == ";":
            statement = "".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    tail = "".join(current).strip()
    if tail:
        statements.append(tail)
    return [_tidy(s) for s in statements]


def _tidy(statement: str) -> str:
    """Drop the blank lines comments leave behind; keep the layout otherwise."""
    return "\n".join(line.rstrip() for line in statement.splitlines() if line.strip())


def render(template: str, **values: int | str) -> str:
    """Fill ``{name}`` placeholders; every placeholder must be given, and every value must
    be an int or plain text of letters, digits and ``_`` (so nothing can break out of the
    SQL it is put in)."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"placeholder {key}: {type(value).__name__} is not allowed (int or text)")
        if isinstance(value, str) and not _SAFE_TEXT.fullmatch(value):
            raise ValueError(f"placeholder {key}: {value!r} is not 1-200 letters, digits or '_'")

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ValueError(f"placeholder {{{key}}} has no value (given: {sorted(values)})")
        return str(values[key])

    return _PLACEHOLDER.sub(fill, template)


@cache
def _file_statements(relative: str) -> tuple[str, ...]:
    path = SQL_DIR / relative
    statements = split_statements(path.read_text(encoding="utf-8"))
    if not statements:
        raise SqlFileError(f"{path} holds no statement")
    return tuple(statements)


def _single(relative: str) -> str:
    statements = _file_statements(relative)
    if len(statements) != 1:
        raise SqlFileError(f"{SQL_DIR / relative} must hold exactly one statement, holds {len(statements)}")
    return statements[0]


@cache
def migrations() -> tuple[Migration, ...]:
    """The migrations, in version order (``migrations/NNN_name.sql``, versions 1, 2, 3 … with no gap)."""
    found: list[Migration] = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise SqlFileError(f"{path}: a migration file is named NNN_name.sql (lowercase name)")
        found.append(Migration(int(match.group(1)), match.group(2), _file_statements(f"migrations/{path.name}")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise SqlFileError(f"migration versions must be 1, 2, 3 … without gaps, found {versions}")
    for migration in found:
        if len(migration.statements) + 1 > MAX_BATCH_STATEMENTS:
            raise SqlFileError(f"migration {migration.version} has {len(migration.statements)} statements; "
                               f"with its record it must fit one batch of {MAX_BATCH_STATEMENTS}")
    return tuple(found)


def bootstrap_statement() -> str:
    return _single("bootstrap.sql")


def record_migration_statement(migration: Migration) -> str:
    return render(_single("loader/record_migration.sql"), version=migration.version, name=migration.name)


def applied_migrations_query() -> str:
    return _single("loader/applied_migrations.sql")


def staged_rows_query() -> str:
    return _single("loader/staged_rows.sql")


def refresh_due_query() -> str:
    return _single("loader/refresh_due.sql")


def record_refresh_statement(changing_merges: int) -> str:
    return render(_single("loader/record_refresh.sql"), changing_merges=int(changing_merges))


def merge_run_query(run_id: str) -> str:
    return render(_single("loader/merge_run.sql"), run_id=_check_run_id(run_id))


def merge_statements(run_id: str) -> list[str]:
    """The merge batch for one run (see ``merge.sql``)."""
    statements = [render(s, run_id=_check_run_id(run_id)) for s in _file_statements("merge.sql")]
    if len(statements) > MAX_BATCH_STATEMENTS:
        raise SqlFileError(f"merge.sql has {len(statements)} statements; one batch takes {MAX_BATCH_STATEMENTS}")
    return statements


def refresh_statements() -> list[str]:
    return list(_file_statements("refresh.sql"))


def materialized_views() -> list[str]:
    """The views refresh.sql refreshes, in its order."""
    names = []
    for statement in refresh_statements():
        match = _REFRESH.fullmatch(statement.strip())
        if match is None:
            raise SqlFileError(f"refresh.sql: not a REFRESH MATERIALIZED VIEW statement: {statement!r}")
        names.append(match.group(1))
    return names


EXAMPLE_RUN_ID = "0123456789abcdef0123456789abcdef"


def all_statements() -> list[Statement]:
    """Every statement the project sends to Redshift, placeholders filled with example
    values, labelled with where it comes from (for tests that run or parse them all)."""
    out = [Statement("bootstrap.sql", bootstrap_statement())]
    for migration in migrations():
        label = f"migrations/{migration.version:03d}_{migration.name}.sql"
        out.extend(Statement(label, s) for s in migration.statements)
        out.append(Statement("loader/record_migration.sql", record_migration_statement(migration)))
    out.append(Statement("loader/applied_migrations.sql", applied_migrations_query()))
    out.append(Statement("loader/staged_rows.sql", staged_rows_query()))
    out.extend(Statement("merge.sql", s) for s in merge_statements(EXAMPLE_RUN_ID))
    out.append(Statement("loader/merge_run.sql", merge_run_query(EXAMPLE_RUN_ID)))
    out.extend(Statement("refresh.sql", s) for s in refresh_statements())
    out.append(Statement("loader/refresh_due.sql", refresh_due_query()))
    out.append(Statement("loader/record_refresh.sql", record_refresh_statement(1)))
    return out


_RUN_ID = re.compile(r"[0-9a-f]{32}")


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"a merge run id is 32 lowercase hex digits, got {run_id!r}")
    return run_id
