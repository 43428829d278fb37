"""Redshift's COPY, as the local warehouse accepts it: parsing the statement, reading the
manifest and its objects.

Firehose loads a Redshift destination with exactly::

    COPY <table> (<columns>) FROM 's3://<bucket>/<manifest key>'
    CREDENTIALS 'aws_iam_role=<arn>' MANIFEST <the delivery stream's CopyOptions>

with CopyOptions such as ``JSON 's3://<bucket>/<jsonpaths key>' GZIP TIMEFORMAT 'auto'``.
This module accepts that family, in any order and case, and refuses everything else with
the option's name, rather than load data differently from Redshift:

* required: ``MANIFEST`` (without it Redshift loads every object under a prefix, and the
  local warehouse reads objects by key only) and ``JSON 'auto'`` / ``FORMAT [AS] JSON
  'auto'`` (keys matched to column names; a missing key loads NULL, other keys are
  ignored) or ``JSON 's3://…'``, a JSONPaths file (``{"jsonpaths": ["$[0]", …]}``: one
  expression per listed column, in order, each ``$[n]`` — element n of an array row — or
  ``$.name`` / ``$['name']`` — a top-level key; deeper paths are refused);
* accepted: ``GZIP``, ``TIMEFORMAT 'auto'``, ``DATEFORMAT 'auto'``;
* accepted and without effect locally: ``CREDENTIALS``, ``IAM_ROLE``, ``ACCESS_KEY_ID`` /
  ``SECRET_ACCESS_KEY`` / ``SESSION_TOKEN``, ``REGION``, ``COMPUPDATE``, ``STATUPDATE``.

Objects are read only through ``object_reader(bucket, key) -> bytes``; the engine knows
nothing of S3 clients. A reader signals a missing object by raising ``FileNotFoundError``
or ``KeyError`` (any ``LookupError``): a missing ``"mandatory": true`` entry fails the
COPY, a missing optional one is skipped (as in Redshift); any other error fails it.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from devstack.warehouse.errors import CopyError

ObjectReader = Callable[[str, str], bytes]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<ident>"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*(?:\.(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))*)
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<punct>[(),;])
    )""",
    re.VERBOSE,
)

SUPPORTED_OPTIONS = ("MANIFEST", "JSON 'auto'", "JSON 's3://…jsonpaths'", "FORMAT AS JSON 'auto'", "GZIP",
                     "TIMEFORMAT 'auto'",
                     "DATEFORMAT 'auto'", "CREDENTIALS", "IAM_ROLE", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY",
                     "SESSION_TOKEN", "REGION", "COMPUPDATE", "STATUPDATE")


@dataclass(frozen=True, slots=True)
class S3Url:
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> S3Url:
        match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
        if match is None:
            raise CopyError(f"not an s3://bucket/key URL: {url!r}")
        return cls(match.group(1), match.group(2))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class CopyCommand:
    table: str                        # as written (possibly schema-qualified or quoted)
    columns: tuple[str, ...] | None   # None: every column of the table, in order
    manifest: S3Url
    gzip: bool
    jsonpaths: S3Url | None = None    # None: JSON 'auto'


@dataclass(frozen=True, slots=True)
class JsonPath:
    """One JSONPaths expression: element ``index`` of an array row, or top-level ``key``."""

    index: int | None = None
    key: str | None = None

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        match = re.fullmatch(r"\$\[\s*(\d+)\s*\]", text) or re.fullmatch(r"\$\.([A-Za-z_][A-Za-z0-9_]*)", text) \
            or re.fullmatch(r"\$\[\s*'([^']*)'\s*\]", text) or re.fullmatch(r'\$\[\s*"([^"]*)"\s*\]', text)
        if match is None:
            raise CopyError(f"JSONPath {text!r} is not supported locally (only $[n], $.name and $['name']: "
                            f"one level, no wildcards or filters)")
        value = match.group(1)
        return cls(index=int(value)) if text.startswith("$[") and value.isdigit() and "'" not in text \
            and '"' not in text else cls(key=value)


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    url: S3Url
    mandatory: bool


def is_copy(sql: str) -> bool:
    match = _TOKEN.match(sql)
    return match is not None and (match.group("ident") or "").upper() == "COPY"


def _tokens(sql: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = sql.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise CopyError(f"cannot read the COPY statement at character {pos}: {text[pos:pos + 30]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    if out and out[-1] == ("punct", ";"):
        out.pop()
    return out


def _unquote_string(token: str) -> str:
    return token[1:-1].replace("''", "'")


def _identifier(token: str) -> str:
    """An unquoted identifier folds to lower case (as in Redshift); a quoted one keeps its text."""
    if token.startswith('"'):
        return token[1:-1].replace('""', '"')
    return token.lower()


def parse_copy(sql: str) -> CopyCommand:
    tokens = _tokens(sql)
    pos = 0

    def peek(offset: int = 0) -> tuple[str, str] | None:
        return tokens[pos + offset] if pos + offset < len(tokens) else None

    def word(offset: int = 0) -> str | None:
        tok = peek(offset)
        return tok[1].upper() if tok is not None and tok[0] == "ident" else None

    def take_string(what: str) -> str:
        nonlocal pos
        if word() == "AS":
            pos += 1
        tok = peek()
        if tok is None or tok[0] != "string":
            raise CopyError(f"COPY: {what} needs a quoted value")
        pos += 1
        return _unquote_string(tok[1])

    if word() != "COPY":
        raise CopyError("not a COPY statement")
    pos = 1
    tok = peek()
    if tok is None or tok[0] != "ident":
        raise CopyError("COPY: the table name is missing")
    table = tok[1]
    pos += 1
    columns: tuple[str, ...] | None = None
    if peek() == ("punct", "("):
        pos += 1
        names: list[str] = []
        while True:
            tok = peek()
            if tok is None or tok[0] != "ident":
                raise CopyError("COPY: the column list must be names separated by commas")
            names.append(_identifier(tok[1]))
            pos += 1
            tok = peek()
            if tok == ("punct", ","):
                pos += 1
                continue
            if tok == ("punct", ")"):
                pos += 1
                break
            raise CopyError("COPY: the column list is not closed")
        if len(set(names)) != len(names):
            raise CopyError(f"COPY: a column is listed twice: {names}")
        columns = tuple(names)
    if word() != "FROM":
        raise CopyError("COPY: FROM 's3://bucket/key' is missing")
    pos += 1
    source = take_string("FROM")
    if not source.startswith("s3://"):
        raise CopyError(f"COPY: only FROM 's3://…' is supported locally, got {source!r}")

    manifest = gzip = json_auto = False
    jsonpaths: S3Url | None = None
    while pos < len(tokens):
        option = word()
        if option is None:
            raise CopyError(f"COPY: unexpected {peek()[1]!r} where an option was expected")  # type: ignore[index]
        pos += 1
        if option == "MANIFEST":
            manifest = True
        elif option == "GZIP":
            gzip = True
        elif option in ("JSON", "FORMAT"):
            if option == "FORMAT":
                if word() == "AS":
                    pos += 1
                if word() != "JSON":
                    raise CopyError(f"COPY: FORMAT {word() or '?'} is not supported locally (only JSON 'auto')")
                pos += 1
            value = take_string("JSON")
            if value.startswith("s3://"):
                jsonpaths = S3Url.parse(value)
            elif value.lower() != "auto":
                raise CopyError(f"COPY: JSON {value!r} is not supported locally (JSON 'auto' or a JSONPaths file "
                                f"'s3://…': 'auto ignorecase' would map keys differently)")
            json_auto = True
        elif option in ("TIMEFORMAT", "DATEFORMAT"):
            value = take_string(option)
            if value.lower() != "auto":
                raise CopyError(f"COPY: {option} {value!r} is not supported locally (only 'auto')")
        elif option in ("CREDENTIALS", "REGION", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
            take_string(option)
        elif option == "IAM_ROLE":
            if word() == "DEFAULT":
                pos += 1
            else:
                take_string(option)
        elif option in ("COMPUPDATE", "STATUPDATE"):
            if word() in ("ON", "OFF", "TRUE", "FALSE", "PRESET"):
                pos += 1
        else:
            raise CopyError(f"COPY option {option} is not supported by the local warehouse "
                            f"(supported: {', '.join(SUPPORTED_OPTIONS)})")
    if not manifest:
        raise CopyError("COPY without MANIFEST is not supported locally: Redshift would load every object under "
                        "the prefix, and the local warehouse reads objects by key only")
    if not json_auto:
        raise CopyError("COPY: only JSON data is supported locally (add JSON 'auto' or JSON 's3://…jsonpaths')")
    return CopyCommand(table=table, columns=columns, manifest=S3Url.parse(source), gzip=gzip, jsonpaths=jsonpaths)


def _read(reader: ObjectReader, url: S3Url) -> bytes:
    """The object's bytes; a missing object's LookupError / FileNotFoundError goes to the
    caller (whether it fails the COPY depends on the entry), any other failure fails it."""
    try:
        data = reader(url.bucket, url.key)
    except (LookupError, FileNotFoundError):
        raise
    except Exception as exc:
        raise CopyError(f"reading {url} failed: {exc!r}") from exc
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CopyError(f"the object reader returned {type(data).__name__} for {url}, not bytes")
    return bytes(data)


def read_manifest(reader: ObjectReader, url: S3Url) -> list[ManifestEntry]:
    try:
        raw = _read(reader, url)
    except LookupError as exc:
        raise CopyError(f"the manifest {url} does not exist ({exc!r})") from exc
    except FileNotFoundError as exc:
        raise CopyError(f"the manifest {url} does not exist ({exc})") from exc
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CopyError(f"the manifest {url} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise CopyError(f"the manifest {url} must be an object with an \"entries\" array")
    entries: list[ManifestEntry] = []
    for i, entry in enumerate(document["entries"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise CopyError(f"the manifest {url}: entries[{i}] must be an object with a \"url\" string")
        mandatory = entry.get("mandatory", False)
        if not isinstance(mandatory, bool):
            raise CopyError(f"the manifest {url}: entries[{i}].mandatory must be true or false")
        try:
            entries.append(ManifestEntry(S3Url.parse(entry["url"]), mandatory))
        except CopyError as exc:
            raise CopyError(f"the manifest {url}: entries[{i}]: {exc}") from exc
    return entries


def read_objects(reader: ObjectReader | None, command: CopyCommand) -> list[bytes]:
    """The data objects of the COPY's manifest, in manifest order (missing optional ones skipped)."""
    if reader is None:
        raise CopyError("this local warehouse was opened without an object_reader, so it cannot COPY")
    objects: list[bytes] = []
    for entry in read_manifest(reader, command.manifest):
        try:
            objects.append(_read(reader, entry.url))
        except (LookupError, FileNotFoundError) as exc:
            if entry.mandatory:
                raise CopyError(f"the mandatory object {entry.url} of the manifest {command.manifest} "
                                f"does not exist ({exc!r})") from exc
    return objects


def read_jsonpaths(reader: ObjectReader | None, url: S3Url, columns: int) -> list[JsonPath]:
    """The JSONPaths file's expressions; there must be one per column the COPY loads."""
    if reader is None:
        raise CopyError("this local warehouse was opened without an object_reader, so it cannot COPY")
    try:
        raw = _read(reader, url)
    except (LookupError, FileNotFoundError) as exc:
        raise CopyError(f"the JSONPaths file {url} does not exist ({exc!r})") from exc
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CopyError(f"the JSONPaths file {url} is not JSON: {exc}") from exc
    paths = document.get("jsonpaths") if isinstance(document, dict) else None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise CopyError(f"the JSONPaths file {url} must be an object with a \"jsonpaths\" array of strings")
    if len(paths) != columns:
        raise CopyError(f"the JSONPaths file {url} has {len(paths)} expressions for {columns} columns "
                        f"(Redshift requires one per column)")
    return [JsonPath.parse(p) for p in paths]
