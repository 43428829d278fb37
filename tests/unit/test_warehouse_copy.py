"""The COPY the local warehouse accepts (Firehose's), the ones it refuses, and the manifest rules."""
from __future__ import annotations

import json

import pytest

from devstack.warehouse.copy import CopyError, S3Url, parse_copy, read_objects
from warehouse.schema import STAGING_COLUMN_NAMES

COLUMNS = ", ".join(STAGING_COLUMN_NAMES)
FIREHOSE = (f"COPY stg_invoice_lines ({COLUMNS}) FROM 's3://shopstream-staging/manifests/2010/12/01/batch-1' "
            f"CREDENTIALS 'aws_iam_role=arn:aws:iam::123456789012:role/firehose' MANIFEST JSON 'auto' GZIP "
            f"TIMEFORMAT 'auto';")


def test_firehoses_copy_is_understood():
    command = parse_copy(FIREHOSE)
    assert command.table == "stg_invoice_lines"
    assert command.columns == STAGING_COLUMN_NAMES
    assert command.manifest == S3Url("shopstream-staging", "manifests/2010/12/01/batch-1")
    assert command.gzip is True


@pytest.mark.parametrize("tail", [
    "MANIFEST gzip json 'AUTO' timeformat as 'auto'",
    "FORMAT AS JSON 'auto' MANIFEST DATEFORMAT 'auto' REGION AS 'eu-west-1' GZIP STATUPDATE OFF COMPUPDATE ON",
    "IAM_ROLE DEFAULT MANIFEST JSON AS 'auto' GZIP",
])
def test_options_are_taken_in_any_order_and_case(tail):
    statement = f"copy stg_invoice_lines ({COLUMNS}) from 's3://b/m' {tail}"
    command = parse_copy(statement)
    assert command.manifest == S3Url("b", "m") and command.gzip


def test_without_gzip_and_without_a_column_list():
    command = parse_copy("COPY public.stg_invoice_lines FROM 's3://b/m' IAM_ROLE 'arn' MANIFEST JSON 'auto'")
    assert command.table == "public.stg_invoice_lines" and command.columns is None and command.gzip is False


@pytest.mark.parametrize("statement, reason", [
    ("COPY t FROM 's3://b/m' JSON 'auto' GZIP", "without MANIFEST"),
    ("COPY t FROM 's3://b/m' MANIFEST CSV GZIP", "COPY option CSV is not supported"),
    ("COPY t FROM 's3://b/m' MANIFEST GZIP", "only JSON data"),
    ("COPY t FROM 's3://b/m' MANIFEST JSON 'auto ignorecase'", "ignorecase"),
    ("COPY t FROM 's3://b/m' MANIFEST JSON 'paths.json'", "JSONPaths file 's3://"),
    ("COPY t FROM 's3://b/m' MANIFEST JSON 'auto ignorecase'", "auto ignorecase"),
    ("COPY t FROM 's3://b/m' MANIFEST JSON 'auto' TIMEFORMAT 'epochsecs'", "TIMEFORMAT 'epochsecs'"),
    ("COPY t FROM 's3://b/m' MANIFEST JSON 'auto' MAXERROR 100", "COPY option MAXERROR"),
    ("COPY t FROM 's3://b/m' MANIFEST JSON 'auto' BZIP2", "COPY option BZIP2"),
    ("COPY t FROM 's3://b/m' MANIFEST FORMAT AS PARQUET", "FORMAT PARQUET"),
    ("COPY t FROM 'dynamodb://table' MANIFEST JSON 'auto'", "only FROM 's3://"),
    ("COPY t (a, a) FROM 's3://b/m' MANIFEST JSON 'auto'", "listed twice"),
    ("COPY t 's3://b/m' MANIFEST JSON 'auto'", "FROM"),
])
def test_anything_else_is_refused_with_what_is_wrong(statement, reason):
    with pytest.raises(CopyError, match=reason):
        parse_copy(statement)


class Bucket(dict):
    def reader(self, bucket: str, key: str) -> bytes:
        return self[(bucket, key)]


def _manifest(bucket: Bucket, entries: list) -> S3Url:
    bucket[("b", "m")] = json.dumps({"entries": entries}).encode()
    return S3Url("b", "m")


def test_objects_are_read_in_manifest_order_and_missing_optional_ones_skipped():
    bucket = Bucket({("b", "1"): b"one", ("b", "3"): b"three"})
    _manifest(bucket, [{"url": "s3://b/3", "mandatory": True}, {"url": "s3://b/2", "mandatory": False},
                       {"url": "s3://b/1"}])
    assert read_objects(bucket.reader, parse_copy("COPY t FROM 's3://b/m' MANIFEST JSON 'auto'")) == [b"three", b"one"]


def test_a_missing_mandatory_object_fails_the_copy():
    bucket = Bucket()
    _manifest(bucket, [{"url": "s3://b/gone", "mandatory": True}])
    with pytest.raises(CopyError, match="mandatory object s3://b/gone"):
        read_objects(bucket.reader, parse_copy("COPY t FROM 's3://b/m' MANIFEST JSON 'auto'"))


@pytest.mark.parametrize("manifest, reason", [
    (None, "does not exist"),
    (b"not json", "not JSON"),
    (b'{"files": []}', '"entries" array'),
    (b'{"entries": [{"url": "https://b/x"}]}', "s3://bucket/key"),
    (b'{"entries": [{"url": "s3://b/x", "mandatory": "yes"}]}', "mandatory must be true or false"),
])
def test_a_bad_manifest_fails_the_copy_and_says_why(manifest, reason):
    bucket = Bucket()
    if manifest is not None:
        bucket[("b", "m")] = manifest
    with pytest.raises(CopyError, match=reason):
        read_objects(bucket.reader, parse_copy("COPY t FROM 's3://b/m' MANIFEST JSON 'auto'"))


def test_a_failing_reader_fails_the_copy_naming_the_object():
    def broken(bucket: str, key: str) -> bytes:
        raise PermissionError("access denied")

    with pytest.raises(CopyError, match=r"reading s3://b/m failed: PermissionError\('access denied'\)"):
        read_objects(broken, parse_copy("COPY t FROM 's3://b/m' MANIFEST JSON 'auto'"))
    with pytest.raises(CopyError, match="without an object_reader"):
        read_objects(None, parse_copy("COPY t FROM 's3://b/m' MANIFEST JSON 'auto'"))


def test_a_jsonpaths_file_is_named_by_its_s3_url():
    from devstack.warehouse.copy import JsonPath, parse_copy

    command = parse_copy("COPY t (a, b) FROM 's3://b/m' MANIFEST JSON 's3://b/paths/t.json' GZIP")
    assert str(command.jsonpaths) == "s3://b/paths/t.json" and command.gzip
    assert [JsonPath.parse(p) for p in ("$[0]", "$[12]", "$.name", "$['a b']")] == [
        JsonPath(index=0), JsonPath(index=12), JsonPath(key="name"), JsonPath(key="a b")]
    with pytest.raises(CopyError, match="not supported locally"):
        JsonPath.parse("$.a.b")
