"""Start-up patches to moto, applied by :mod:`devstack.emulator.server` before it serves.

Each patch fixes one measured problem of the pinned moto version and keeps moto's
observable behaviour (responses, ordering, pagination) exactly as it was:

``host-lookup``
    Every request asked :func:`moto.backends.list_of_moto_modules`, which lists and
    stats moto's package directory on disk (~0.8 ms, a large share of a cheap request).
    The list never changes while the server runs, so it is read once.
``kinesis-shard``
    ``Shard.put_record`` copied every key of the shard to find the last sequence
    number, and ``Shard.get_records`` walked the shard from its first record on every
    call: both O(records in the shard). A sorted list of the shard's sequence numbers
    makes a put O(1) and a GetRecords O(log n + records returned). Puts are serialised
    (moto's own put was not safe against concurrent requests).
``kinesis-tags``
    CreateStream ignored its ``Tags`` (the AWS provider tags a stream as it creates it,
    so every plan showed the tags missing); they are now added to the new stream.
``esm-delivery``
    moto pushes records from Kinesis streams, SQS queues and DynamoDB streams to the
    functions of their event source mappings by running them in Docker. shopstream's
    local runtime polls the sources and invokes the functions itself, so a mapping is
    kept (it is listed, described, updated and deleted as before) but never attached to
    its source: moto delivers nothing, and an SQS source keeps its messages for the
    runtime rather than having moto receive them.
``dynamodb-query``
    ``Table.query`` collected and sorted every item of the table on each call, for table
    and index queries alike. A table query now considers only the items under its hash
    key; an index query on an attribute other than the table's hash key uses an index of
    that attribute (value -> items), built on the first such query and kept current by
    PutItem, DeleteItem and UpdateItem (and everything built on them: BatchWriteItem,
    TransactWriteItems, PartiQL, imports). Every candidate is checked against the table
    before use, so a stale index entry can never return a wrong item; moto's own query
    code then filters, sorts and paginates the candidates as before.
``dynamodb-scan``
    Outside a query, ``Table.all_items`` (every Scan page, among others) collected and
    sorted the whole table again: a scan of 25,900 invoices took 18 s. The sorted list
    is kept until the table's items change: PutItem and DeleteItem (and everything built
    on them) bump a version, and a replaced ``items`` dict is noticed. Order only
    depends on the keys, and in-place updates change the same item objects, so a kept
    list is always what moto would have built.
``dynamodb-item-size``
    Building an item re-summed the size of every attribute already set each time one
    more was set (moto's 400 KB check), quadratic in the number of attributes. A new
    item now checks the same limit once, on the sum of its attributes: sizes only grow
    as distinct attributes are added, so it fails in exactly the same cases. Changes to
    an existing item keep moto's own per-attribute check.
``dynamodb-serialize``
    Every attribute value of every item in a response went through moto's generic,
    model-driven serialiser, which probes all ten members of ``AttributeValue`` per
    value (~25 ms for a 20-item Query page). Attribute values are already in their wire
    form, so they are written directly (binary base64-encoded, maps and lists
    recursively), exactly as the generic serialiser writes them.
``dynamodb-parse``
    The same on the way in: request attribute values went through moto's model-driven
    parser member by member (~40% of a BatchWriteItem's time). A well-formed value (one
    known type) is now taken as it is, binary base64-decoded and maps and lists
    recursively, exactly as the generic parser reads it; anything else still goes
    through the generic parser (and its errors).
``redshift-cluster``
    A cluster never reported ``ClusterAvailabilityStatus`` (and a few more fields the AWS
    provider waits for or compares): ``aws_redshift_cluster`` failed its apply with
    "unexpected state '', wanted 'Available'". New clusters now report them as AWS does,
    and their maintenance window in the lower case AWS returns.
``redshift-data``
    moto's Data API answered every statement with one canned table and had no
    BatchExecuteStatement. Its actions now run on the local warehouse
    (:mod:`devstack.emulator.data_api`): ExecuteStatement, BatchExecuteStatement,
    DescribeStatement, GetStatementResult, CancelStatement, ListStatements.
``response-overhead``
    Every response body, JSON included, was searched with a look-behind regex for an
    XML ``<RequestId>`` to rewrite (milliseconds on a multi-megabyte GetRecords page),
    and every request listed the handler class's methods with ``inspect.getmembers``.
    The regex now runs only on bodies that contain ``<RequestId>``, and the method list
    is read once per class (classes do not change while the server runs).

:func:`apply` checks that every patched symbol is present and still looks the way these
patches expect (the pinned version, signatures, the calls they rely on) before changing
anything, and raises :class:`PatchError` naming what differs: the emulator refuses to
start rather than run with half of its fixes.
"""
from __future__ import annotations

import base64
import binascii
import bisect
import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MOTO_VERSION = "5.2.5"  # the version pinned in requirements.txt; the patches target it


class PatchError(RuntimeError):
    """moto does not look the way the start-up patches expect."""


@dataclass(frozen=True)
class _Target:
    """One attribute to replace, and what its current value must look like — or, with
    ``new``, one moto lacks and the patch adds (it must still be absent)."""

    module: str
    path: str  # "function" or "Class.method"
    params: tuple[str, ...]  # parameter names of the original, in order
    calls: tuple[str, ...] = ()  # source fragments the patch relies on
    new: bool = False

    @property
    def name(self) -> str:
        return f"{self.module}.{self.path}"


@dataclass(frozen=True)
class _Patch:
    key: str
    target: _Target
    make: Callable[[Callable[..., Any]], Callable[..., Any]]  # original -> replacement


_applied: set[str] = set()
_apply_lock = threading.Lock()


# ── host-lookup ────────────────────────────────────────────────────────────────


def _cached_module_list(original: Callable[[], Any]) -> Callable[[], Any]:
    modules = tuple(original())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    return list_of_moto_modules


# ── kinesis-shard ──────────────────────────────────────────────────────────────
# A shard's sequence numbers are kept, ascending, in a list beside ``shard.records``
# (moto assigns them as max + 1, so insertion order is ascending). The list is rebuilt
# if moto replaces or changes ``records`` behind our back (SplitShard empties a shard).

_KINESIS_LOCK = threading.Lock()
_SEQS = "_shopstream_sequence_numbers"


def _sequence_numbers(shard: Any) -> list[int]:
    held = shard.__dict__.get(_SEQS)
    if held is None or held[0] is not shard.records or len(held[1]) != len(shard.records):
        held = (shard.records, sorted(shard.records))
        shard.__dict__[_SEQS] = held
    return held[1]


def _shard_put_record(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.kinesis.models import Record

    def put_record(self: Any, partition_key: str, data: str, explicit_hash_key: str) -> str:
        with _KINESIS_LOCK:
            seqs = _sequence_numbers(self)
            sequence_number = (seqs[-1] if seqs else 0) + 1
            self.records[sequence_number] = Record(partition_key, data, sequence_number, explicit_hash_key)
            seqs.append(sequence_number)
        return str(sequence_number)

    return put_record


def _shard_get_records(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        last_sequence_int = int(last_sequence_id)
        with _KINESIS_LOCK:
            seqs = _sequence_numbers(self)
            start = bisect.bisect_right(seqs, last_sequence_int)
            # moto stops when len(results) == limit: 0 returns nothing, a negative or
            # missing limit returns everything after the iterator.
            chosen = seqs[start:] if limit is None or limit < 0 else seqs[start:start + limit]
            records = [self.records[s] for s in chosen]
            newest = self.records[seqs[-1]] if seqs else None
        if not records:
            return [], last_sequence_int, 0
        millis_behind_latest = int((newest.created_at - records[-1].created_at) * 1000)
        return records, chosen[-1], millis_behind_latest

    return get_records


def _shard_min(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_min_sequence_number(self: Any) -> int:
        seqs = _sequence_numbers(self)
        return seqs[0] if seqs else 0

    return get_min_sequence_number


def _shard_max(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_max_sequence_number(self: Any) -> int:
        seqs = _sequence_numbers(self)
        return seqs[-1] if seqs else 0

    return get_max_sequence_number


def _create_stream_with_tags(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_stream(self: Any) -> Any:
        result = original(self)
        tags = self._get_param("Tags")
        if tags:
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return result

    return create_stream


# ── esm-delivery ───────────────────────────────────────────────────────────────


def _detached_event_source_mapping(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        esm = original(self, spec)
        from moto.dynamodb.models import dynamodb_backends
        from moto.kinesis.models import kinesis_backends
        from moto.sqs.models import sqs_backends

        account, region = self.account_id, self.region_name
        sources = [
            *sqs_backends[account][region].queues.values(),
            *dynamodb_backends[account][region].tables.values(),
            *kinesis_backends[account][region].streams.values(),
        ]
        for source in sources:
            attached = source.lambda_event_source_mappings
            for key in [k for k, v in attached.items() if v is esm]:
                del attached[key]
        return esm

    return create_event_source_mapping


# ── dynamodb-query ─────────────────────────────────────────────────────────────
# Per table and per indexed attribute: attribute value -> {(hash, range): item}. Kept on
# the table object itself so that moto's deep copies of a table (TransactWriteItems
# rollback) carry a consistent copy. One re-entrant lock guards every index and every
# write that maintains one, so a query never sees an item between the table and the
# index; moto's own query code then runs on the chosen candidates outside the lock.

_DDB_LOCK = threading.RLock()
_INDEX = "_shopstream_attribute_index"
_scope = threading.local()  # the candidates ``all_items`` returns inside a patched query
_KEY_TYPES = frozenset({"S", "N", "B"})  # the only types a key attribute can have


def _key_value(item: Any, attribute: str) -> Any:
    value = item.attrs.get(attribute)
    return value if value is not None and value.type in _KEY_TYPES else None


def _current_item(table: Any, hash_key: Any, range_key: Any) -> Any:
    bucket = table.items.get(hash_key)  # .get: table.items is a defaultdict
    if table.range_key_attr is None or bucket is None:
        return bucket
    return bucket.get(range_key)


def _bucket_items(table: Any, bucket: Any) -> list[Any]:
    """The items under one hash key (``table.items[hash]`` is the item itself without a range key)."""
    return list(bucket.values()) if table.range_key_attr else [bucket]


def _index_put(by_value: dict[Any, dict[tuple[Any, Any], Any]], attribute: str, item: Any) -> None:
    value = _key_value(item, attribute)
    if value is not None:
        by_value.setdefault(value, {})[(item.hash_key, item.range_key)] = item


def _index_add(table: Any, item: Any) -> None:
    indexes = table.__dict__.get(_INDEX)
    if not indexes or item is None:
        return
    for attribute, by_value in indexes.items():
        _index_put(by_value, attribute, item)


def _index_for(table: Any, attribute: str) -> dict[Any, dict[tuple[Any, Any], Any]]:
    indexes = table.__dict__.setdefault(_INDEX, {})
    by_value = indexes.get(attribute)
    if by_value is None:
        by_value = {}
        for bucket in table.items.values():
            for item in _bucket_items(table, bucket):
                _index_put(by_value, attribute, item)
        indexes[attribute] = by_value
    return by_value


def _candidates(table: Any, hash_key: Any, index_name: str | None, hash_conditions: Any) -> list[Any] | None:
    """The items a query can match (a superset), or None to let moto look at all items."""
    if index_name is None:
        attribute, value = table.hash_key_attr, hash_key
    elif hash_conditions:
        attribute, value = hash_conditions[0]
    else:
        return None
    if value is None or getattr(value, "type", None) not in _KEY_TYPES:
        return None
    if attribute == table.hash_key_attr:
        bucket = table.items.get(value)
        return [] if bucket is None else _bucket_items(table, bucket)
    entries = _index_for(table, attribute).get(value)
    if not entries:
        return []
    found = []
    for key, item in list(entries.items()):
        current_value = _key_value(item, attribute)
        if _current_item(table, *key) is item and current_value is not None and current_value == value:
            found.append(item)
        else:  # replaced, deleted or moved to another value since it was indexed
            del entries[key]
    return found


def _table_query(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        with _DDB_LOCK:
            candidates = _candidates(
                self, arguments["hash_key"], arguments.get("index_name"), arguments.get("hash_key_conditions")
            )
        if candidates is None:
            return original(self, *args, **kwargs)
        # in the order moto's all_items() gives, so that ties sort exactly as before
        candidates.sort(key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
        previous = getattr(_scope, "value", None)
        _scope.value = (self, candidates)
        try:
            return original(self, *args, **kwargs)
        finally:
            _scope.value = previous

    return query


_VERSION = "_shopstream_items_version"
_SORTED = "_shopstream_sorted_items"


def _items_changed(table: Any) -> None:
    table.__dict__[_VERSION] = table.__dict__.get(_VERSION, 0) + 1


def _table_all_items(original: Callable[..., Any]) -> Callable[..., Any]:
    def all_items(self: Any) -> list[Any]:
        scoped = getattr(_scope, "value", None)
        if scoped is not None and scoped[0] is self:
            return list(scoped[1])
        with _DDB_LOCK:
            version = self.__dict__.get(_VERSION, 0)
            kept = self.__dict__.get(_SORTED)
            if kept is None or kept[0] != version or kept[1] is not self.items:
                kept = (version, self.items, original(self))
                self.__dict__[_SORTED] = kept
            return list(kept[2])

    return all_items


def _table_put_item(original: Callable[..., Any]) -> Callable[..., Any]:
    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _DDB_LOCK:
            item = original(self, *args, **kwargs)
            _index_add(self, item)
            _items_changed(self)
        return item

    return put_item


def _table_delete_item(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        with _DDB_LOCK:
            item = original(self, hash_key, range_key)
            _items_changed(self)
            if item is not None:
                for attribute, by_value in self.__dict__.get(_INDEX, {}).items():
                    value = _key_value(item, attribute)
                    if value is not None:
                        by_value.get(value, {}).pop((item.hash_key, item.range_key), None)
        return item

    return delete_item


def _backend_update_item(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        # UpdateItem changes the stored item in place, so the index learns of it here.
        with _DDB_LOCK:
            table = self.get_table(table_name)
            try:
                item = original(self, table_name, *args, **kwargs)
            except ConditionalCheckFailed:
                raise  # checked before anything changes
            except BaseException:
                table.__dict__.pop(_INDEX, None)  # maybe half-applied: rebuild on next query
                raise
            _index_add(table, item)
        return item

    return update_item


# ── dynamodb-item-size ─────────────────────────────────────────────────────────


def _item_init(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > _ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, values)  # checked above, as a whole

    return __init__


_ITEM_SIZE_LIMIT = 405000  # moto's own limit (LimitedSizeDict): AWS's 400 KB plus moto's margin


# ── dynamodb-serialize ─────────────────────────────────────────────────────────


def _attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value in its JSON wire form (``{"B": bytes}`` → base64 text)."""
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode("ascii") if isinstance(inner, (bytes, bytearray)) else inner}
    if kind == "BS":
        return {"BS": [base64.b64encode(v).decode("ascii") if isinstance(v, (bytes, bytearray)) else v for v in inner]}
    if kind == "M":
        return {"M": {k: _attribute_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_attribute_value(v) for v in inner]}
    if kind in ("S", "N"):
        return {kind: str(inner)}
    if kind in ("SS", "NS"):
        return {kind: [str(v) for v in inner]}
    return {kind: inner}  # BOOL, NULL


_WIRE_KINDS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})


def _serialize_structure(original: Callable[..., Any]) -> Callable[..., Any]:
    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            shape.name == "AttributeValue"
            and type(value) is dict
            and len(value) == 1
            and next(iter(value)) in _WIRE_KINDS
        ):
            self._default_serialize(serialized, _attribute_value(value), shape, key)
            return
        original(self, serialized, value, shape, key)

    return _serialize_type_structure


# ── dynamodb-parse ─────────────────────────────────────────────────────────────


def _parsed_attribute_value(value: Any) -> dict[str, Any] | None:
    """A request attribute value as moto's parser reads it, or None to let it parse."""
    if type(value) is not dict or len(value) != 1:
        return None
    (kind, inner), = value.items()
    if inner is None or kind not in _WIRE_KINDS:
        return None
    try:
        if kind == "B":
            return {"B": base64.b64decode(inner)} if isinstance(inner, str) else None
        if kind == "BS":
            if isinstance(inner, list) and all(isinstance(v, str) for v in inner):
                return {"BS": [base64.b64decode(v) for v in inner]}
            return None
    except (binascii.Error, ValueError):
        return None
    if kind == "M":
        if type(inner) is not dict:
            return None
        parsed = {k: _parsed_attribute_value(v) for k, v in inner.items()}
        return None if any(v is None for v in parsed.values()) else {"M": parsed}
    if kind == "L":
        if type(inner) is not list:
            return None
        items = [_parsed_attribute_value(v) for v in inner]
        return None if any(v is None for v in items) else {"L": items}
    if kind in ("S", "N"):
        return value if isinstance(inner, str) else None
    if kind in ("SS", "NS"):
        return value if isinstance(inner, list) and all(isinstance(v, str) for v in inner) else None
    return value if isinstance(inner, bool) else None  # BOOL, NULL


def _parse_structure(original: Callable[..., Any]) -> Callable[..., Any]:
    def _parse_structure(self: Any, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue":
            parsed = _parsed_attribute_value(value)
            if parsed is not None:
                return parsed
        return original(self, shape, value)

    return _parse_structure


# ── response-overhead ──────────────────────────────────────────────────────────


def _enrich_response(original: Callable[..., Any]) -> Callable[..., Any]:
    def enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" in body:
            return original(headers, body)
        # what the original does when its regex cannot match (or cannot run on bytes)
        if "status" in headers:
            headers["status"] = str(headers["status"])
        from moto.core.responses import gen_amzn_requestid_long

        gen_amzn_requestid_long(headers)
        return headers, body

    return enrich_response


def _method_names(original: Callable[[object], list[str]]) -> Callable[[object], list[str]]:
    cache: dict[object, list[str]] = {}

    def method_names_from_class(clazz: object) -> list[str]:
        names = cache.get(clazz)
        if names is None:
            names = cache[clazz] = original(clazz)
        return names

    return method_names_from_class


# ── redshift-cluster ───────────────────────────────────────────────────────────
# What DescribeClusters reports beyond moto's fields (the serializer reads attributes
# named after the shape's members): the AWS provider waits for ClusterAvailabilityStatus
# "Available" and compares the others with what it sent.

_CLUSTER_FIELDS = {
    "cluster_availability_status": "Available",
    "availability_zone_relocation_status": "disabled",
    "multi_az": "Disabled",
    "manual_snapshot_retention_period": -1,
    "maintenance_track_name": "current",
}


def _cluster_init(original: Callable[..., Any]) -> Callable[..., Any]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        for name, value in _CLUSTER_FIELDS.items():
            if getattr(self, name, None) is None:
                setattr(self, name, value)
        if isinstance(self.preferred_maintenance_window, str):
            self.preferred_maintenance_window = self.preferred_maintenance_window.lower()

    return __init__


# ── redshift-data ──────────────────────────────────────────────────────────────
# Each action of moto's redshift-data response class is answered by the local Data API.

def _data_api_target(response: Any) -> dict[str, str]:
    target = {}
    for key in ("ClusterIdentifier", "WorkgroupName", "Database", "DbUser", "SecretArn"):
        value = response._get_param(key)
        if value:
            target[key] = value
    return target


def _data_api_action(action: str) -> Callable[[Callable[..., Any] | None], Callable[..., Any]]:
    def make(original: Callable[..., Any] | None) -> Callable[..., Any]:
        def handler(self: Any) -> tuple[int, dict[str, str], str]:
            import json

            from devstack.emulator.data_api import DataApiError, api

            local = api()
            try:
                if action == "execute_statement":
                    body = local.execute_statement(self._get_param("Sql"), _data_api_target(self))
                elif action == "batch_execute_statement":
                    body = local.batch_execute_statement(self._get_param("Sqls"), _data_api_target(self))
                elif action == "describe_statement":
                    body = local.describe_statement(self._get_param("Id"))
                elif action == "get_statement_result":
                    body = local.get_statement_result(self._get_param("Id"), self._get_param("NextToken"))
                elif action == "cancel_statement":
                    body = local.cancel_statement(self._get_param("Id"))
                else:
                    body = local.list_statements(self._get_param("Status"), int(self._get_param("MaxResults") or 100))
            except DataApiError as exc:
                return exc.status, {"status": exc.status, "Content-Type": "application/x-amz-json-1.1"}, json.dumps(
                    {"__type": exc.code, "message": exc.message})
            return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(body, default=str)

        handler.__name__ = action
        return handler

    return make


# ── the list ───────────────────────────────────────────────────────────────────

_KINESIS = "moto.kinesis.models"
_DATA_API = "moto.redshiftdata.responses"
_DDB_TABLE = "moto.dynamodb.models.table"

PATCHES: tuple[_Patch, ...] = (
    _Patch("host-lookup", _Target("moto.backends", "list_of_moto_modules", ()), _cached_module_list),
    _Patch(
        "kinesis-shard",
        _Target(_KINESIS, "Shard.put_record", ("self", "partition_key", "data", "explicit_hash_key"),
                ("self.records[sequence_number] = Record(",)),
        _shard_put_record,
    ),
    _Patch(
        "kinesis-shard",
        _Target(_KINESIS, "Shard.get_records", ("self", "last_sequence_id", "limit"),
                ("very_last_record.created_at - record.created_at", "len(results) == limit")),
        _shard_get_records,
    ),
    _Patch("kinesis-shard", _Target(_KINESIS, "Shard.get_min_sequence_number", ("self",)), _shard_min),
    _Patch("kinesis-shard", _Target(_KINESIS, "Shard.get_max_sequence_number", ("self",)), _shard_max),
    _Patch(
        "kinesis-tags",
        _Target("moto.kinesis.responses", "KinesisResponse.create_stream", ("self",),
                ("self.kinesis_backend.create_stream(",)),
        _create_stream_with_tags,
    ),
    _Patch(
        "esm-delivery",
        _Target("moto.awslambda.models", "LambdaBackend.create_event_source_mapping", ("self", "spec"),
                ("queue.lambda_event_source_mappings[", "table.lambda_event_source_mappings[",
                 "stream.lambda_event_source_mappings[")),
        _detached_event_source_mapping,
    ),
    _Patch(
        "dynamodb-query",
        _Target(_DDB_TABLE, "Table.query",
                ("self", "hash_key", "range_comparison", "range_objs", "limit", "exclusive_start_key",
                 "scan_index_forward", "projection_expressions", "index_name", "consistent_read",
                 "filter_expression", "hash_key_conditions", "range_key_conditions", "filter_kwargs"),
                ("for item in self.all_items():", "item.hash_key == hash_key")),
        _table_query,
    ),
    _Patch("dynamodb-query", _Target(_DDB_TABLE, "Table.all_items", ("self",)), _table_all_items),
    _Patch(
        "dynamodb-query",
        _Target(_DDB_TABLE, "Table.put_item",
                ("self", "item_attrs", "expected", "condition_expression", "expression_attribute_names",
                 "expression_attribute_values", "overwrite", "return_values_on_condition_check_failure"),
                ("self.items[hash_value][range_value] = item", "return item")),
        _table_put_item,
    ),
    _Patch(
        "dynamodb-query",
        _Target(_DDB_TABLE, "Table.delete_item", ("self", "hash_key", "range_key"),
                ("self.items[hash_key].pop(range_key)", "return item")),
        _table_delete_item,
    ),
    _Patch(
        "dynamodb-query",
        _Target("moto.dynamodb.models", "DynamoDBBackend.update_item",
                ("self", "table_name", "key", "update_expression", "expression_attribute_names",
                 "expression_attribute_values", "attribute_updates", "expected", "condition_expression",
                 "return_values_on_condition_check_failure"),
                ("UpdateExpressionExecutor(", "raise ConditionalCheckFailed", "return item")),
        _backend_update_item,
    ),
    _Patch(
        "dynamodb-item-size",
        _Target("moto.dynamodb.models.dynamo_type", "Item.__init__", ("self", "hash_key", "range_key", "attrs"),
                ("self.attrs = LimitedSizeDict()", "self.attrs[key] = DynamoType(value)")),
        _item_init,
    ),
    _Patch(
        "dynamodb-serialize",
        _Target("moto.core.serialize", "BaseJSONSerializer._serialize_type_structure",
                ("self", "serialized", "value", "shape", "key"),
                ("shape.is_document_type", "super()._serialize_type_structure(")),
        _serialize_structure,
    ),
    _Patch(
        "dynamodb-parse",
        _Target("moto.core.parse", "BaseJSONParser._parse_structure", ("self", "shape", "value"),
                ("shape.is_document_type", "final_parsed[member_name] = self._parse_shape(")),
        _parse_structure,
    ),
    _Patch(
        "redshift-cluster",
        _Target("moto.redshift.models", "Cluster.__init__",
                ("self", "redshift_backend", "cluster_identifier", "node_type", "master_username",
                 "master_user_password", "db_name", "cluster_type", "cluster_security_groups",
                 "vpc_security_group_ids", "cluster_subnet_group_name", "availability_zone",
                 "preferred_maintenance_window", "cluster_parameter_group_name",
                 "automated_snapshot_retention_period", "port", "cluster_version", "allow_version_upgrade",
                 "number_of_nodes", "publicly_accessible", "encrypted", "region_name", "tags", "iam_roles_arn",
                 "enhanced_vpc_routing", "restored_from_snapshot", "kms_key_id"),
                ("self.preferred_maintenance_window = (",)),
        _cluster_init,
    ),
    *(
        _Patch("redshift-data", _Target(_DATA_API, f"RedshiftDataAPIServiceResponse.{action}", ("self",),
                                        ("self.redshiftdata_backend.",)), _data_api_action(action))
        for action in ("execute_statement", "describe_statement", "get_statement_result", "cancel_statement")
    ),
    *(
        _Patch("redshift-data", _Target(_DATA_API, f"RedshiftDataAPIServiceResponse.{action}", ("self",), new=True),
               _data_api_action(action))
        for action in ("batch_execute_statement", "list_statements")
    ),
    _Patch(
        "response-overhead",
        _Target("moto.core.responses", "BaseResponse._enrich_response", ("headers", "body"),
                ("gen_amzn_requestid_long(headers)", "<RequestId>", 'headers["status"] = str(headers["status"])')),
        _enrich_response,
    ),
    _Patch("response-overhead", _Target("moto.core.responses", "method_names_from_class", ("clazz",)), _method_names),
)


def _resolve(target: _Target) -> tuple[Any, str, Any]:
    try:
        owner: Any = importlib.import_module(target.module)
    except ImportError as exc:
        raise PatchError(f"cannot import {target.module} ({exc})") from exc
    *parents, attribute = target.path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
        if owner is None:
            raise PatchError(f"{target.module}.{parent} no longer exists")
    original = owner.__dict__.get(attribute) if isinstance(owner, type) else getattr(owner, attribute, None)
    if target.new:
        if original is not None or (isinstance(owner, type) and hasattr(owner, attribute)):
            raise PatchError(f"{target.name} exists now; the patch that adds it would shadow moto's own")
        return owner, attribute, None
    if original is None:
        raise PatchError(f"{target.name} no longer exists")
    return owner, attribute, original


def _check(target: _Target, original: Any) -> None:
    if target.new:
        return
    if not callable(original):
        raise PatchError(f"{target.name} is no longer a function")
    params = tuple(inspect.signature(original).parameters)
    if params != target.params:
        raise PatchError(f"{target.name} takes {params}, the patch expects {target.params}")
    if target.calls:
        try:
            source = inspect.getsource(original)
        except (OSError, TypeError) as exc:
            raise PatchError(f"cannot read the source of {target.name} to check it ({exc})") from exc
        missing = [fragment for fragment in target.calls if fragment not in source]
        if missing:
            raise PatchError(f"{target.name} no longer contains {missing}; the patch relies on it")


def _check_environment() -> None:
    import moto

    version = getattr(moto, "__version__", None)
    if version != MOTO_VERSION:
        raise PatchError(
            f"moto {version} is installed but the emulator's patches target moto {MOTO_VERSION} "
            f"(pip install -r requirements.txt)"
        )
    from moto.moto_server import werkzeug_app

    if "backends.list_of_moto_modules()" not in inspect.getsource(werkzeug_app.DomainDispatcherApplication):
        raise PatchError("moto's werkzeug app no longer calls backends.list_of_moto_modules() per request")


def apply(patches: tuple[_Patch, ...] = PATCHES) -> list[str]:
    """Check every patch against the installed moto, then install them all (or none).

    Idempotent; returns the names of the patched symbols. Raises :class:`PatchError`.
    """
    with _apply_lock:
        pending = [p for p in patches if p.target.name not in _applied]
        if not pending:
            return sorted(p.target.name for p in patches)
        _check_environment()
        resolved = []
        for patch in pending:
            owner, attribute, original = _resolve(patch.target)
            _check(patch.target, original)
            resolved.append((patch, owner, attribute, original))
        replacements = []
        for patch, owner, attribute, original in resolved:
            static = isinstance(original, staticmethod)  # patched as a function, installed as a staticmethod
            function = original.__func__ if static else original
            replacement = patch.make(function)
            if function is not None:
                replacement.__wrapped__ = function  # type: ignore[attr-defined]
            replacement.__qualname__ = patch.target.path
            replacements.append((owner, attribute, staticmethod(replacement) if static else replacement, patch))
        for owner, attribute, replacement, patch in replacements:
            setattr(owner, attribute, replacement)
            _applied.add(patch.target.name)
        return sorted(p.target.name for p in patches)
