"""Reads what to run from the emulator with boto3 (the one source of truth).

- Lambda: ``ListFunctions`` (name, ARN, Handler, Environment, Timeout, MemorySize, Role)
  and ``GetFunctionConcurrency`` (reserved concurrency);
  ``ListEventSourceMappings`` (every setting the Kinesis pollers honour).
- Kinesis: ``ListShards`` and the retention period of each mapped stream.
- API Gateway v2: ``GetApis`` (HTTP only), ``GetRoutes`` (with each route's
  ``AuthorizationType``, ``AuthorizerId`` and ``AuthorizationScopes``, which moto stores
  as given), ``GetAuthorizer`` for each authorizer a route names (moto has no
  ``GetAuthorizers`` listing; its ``JwtConfiguration`` holds the issuer and audiences),
  ``GetIntegrations`` (AWS_PROXY to a Lambda ARN or the ``arn:aws:apigateway:…:lambda:
  path/2015-03-31/functions/<arn>/invocations`` form), ``GetStages``.
- Firehose: ``ListDeliveryStreams`` and ``DescribeDeliveryStream`` (those with a Kinesis
  source and a Redshift destination, which the runtime delivers).
- EventBridge: ``ListRules`` with a ScheduleExpression, ``ListTargetsByRule`` (Lambda
  targets), which the runtime runs on their schedule.

Credentials are fake and fixed, so discovery can never reach a real AWS account.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
from botocore.config import Config

from devstack.runtime.model import (
    AuthorizerSpec,
    DeliveryStreamSpec,
    Discovery,
    EsmSpec,
    FunctionSpec,
    HttpApiSpec,
    RouteSpec,
    ScheduleSpec,
    arn_account,
    arn_region,
    arn_resource_name,
    function_arn_from_uri,
    function_name_from_arn,
)
from devstack.runtime.workers import FAKE_CREDENTIALS

log = logging.getLogger("devstack.runtime.discovery")

_session_lock = threading.Lock()


class ClientFactory:
    """boto3 clients for the emulator, created once per (service, region) and shared (boto3 clients are
    thread-safe); :meth:`new` gives one of its own."""

    def __init__(self, endpoint_url: str, region: str, *, read_timeout: float = 10.0) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2,
                             read_timeout=read_timeout, max_pool_connections=50)
        self._session = boto3.session.Session(aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                              aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                              aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
                                              region_name=region)
        self._clients: dict[tuple[str, str], Any] = {}

    def __call__(self, service: str, region: str | None = None):
        key = (service, region or self.region)
        client = self._clients.get(key)
        if client is None:
            with _session_lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._session.client(service, region_name=key[1], endpoint_url=self.endpoint_url,
                                                  config=self.config)
                    self._clients[key] = client
        return client

    def new(self, service: str, region: str | None = None):
        """A client of one's own (for a poller thread)."""
        with _session_lock:
            return self._session.client(service, region_name=region or self.region,
                                        endpoint_url=self.endpoint_url, config=self.config)


def _paginate(client, operation: str, key: str, **kwargs) -> list[dict]:
    items: list[dict] = []
    if client.can_paginate(operation):
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
        return items
    token_key = "NextToken"
    while True:
        page = getattr(client, operation)(**kwargs)
        items.extend(page.get(key, []))
        token = page.get(token_key) or page.get("NextMarker")
        if not token:
            return items
        kwargs[token_key] = token


def discover_functions(clients: ClientFactory) -> dict[str, FunctionSpec]:
    lam = clients("lambda")
    out: dict[str, FunctionSpec] = {}
    for config in _paginate(lam, "list_functions", "Functions"):
        reserved = None
        try:
            reserved = lam.get_function_concurrency(FunctionName=config["FunctionName"]).get(
                "ReservedConcurrentExecutions")
        except Exception as exc:  # older emulators: no concurrency API → no reservation
            log.debug("GetFunctionConcurrency failed for %s: %s", config["FunctionName"], exc)
        spec = FunctionSpec.from_api(config, reserved)
        out[spec.name] = spec
    return out


def discover_mappings(clients: ClientFactory) -> dict[str, EsmSpec]:
    lam = clients("lambda")
    out: dict[str, EsmSpec] = {}
    for config in _paginate(lam, "list_event_source_mappings", "EventSourceMappings"):
        spec = EsmSpec.from_api(config)
        if spec.is_kinesis:
            out[spec.uuid] = spec
    return out


def discover_shards(clients: ClientFactory, stream_arn: str) -> tuple[tuple[tuple[str, str | None, str | None], ...], int | None]:
    kinesis = clients("kinesis", arn_region(stream_arn))
    name = arn_resource_name(stream_arn)
    shards: list[dict] = []
    kwargs: dict[str, Any] = {"StreamName": name}
    while True:
        page = kinesis.list_shards(**kwargs)
        shards.extend(page.get("Shards", []))
        token = page.get("NextToken")
        if not token:
            break
        kwargs = {"NextToken": token}
    retention = None
    try:
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        retention = int(summary.get("RetentionPeriodHours") or 24) * 3600
    except Exception as exc:
        log.debug("DescribeStreamSummary failed for %s: %s", stream_arn, exc)
    return tuple((s["ShardId"], s.get("ParentShardId"),
                  (s.get("SequenceNumberRange") or {}).get("EndingSequenceNumber"),
                  s.get("AdjacentParentShardId")) for s in shards), retention


def _integration_function_arn(integration: dict) -> str | None:
    if (integration.get("IntegrationType") or "").upper() != "AWS_PROXY":
        return None
    uri = integration.get("IntegrationUri") or ""
    if ":lambda:" not in uri and ":function:" not in uri:
        return None
    return function_arn_from_uri(uri)


def _authorizer(gw, api_id: str, authorizer_id: str) -> AuthorizerSpec:
    found = gw.get_authorizer(ApiId=api_id, AuthorizerId=authorizer_id)
    jwt = found.get("JwtConfiguration") or {}
    return AuthorizerSpec(authorizer_id=authorizer_id, authorizer_type=(found.get("AuthorizerType") or "").upper(),
                          name=found.get("Name") or "", identity_sources=tuple(found.get("IdentitySource") or ()),
                          issuer=jwt.get("Issuer"), audience=tuple(jwt.get("Audience") or ()))


def discover_apis(clients: ClientFactory) -> tuple[HttpApiSpec, ...]:
    gw = clients("apigatewayv2")
    out: list[HttpApiSpec] = []
    for api in _paginate(gw, "get_apis", "Items"):
        if (api.get("ProtocolType") or "HTTP").upper() != "HTTP":
            continue
        api_id = api["ApiId"]
        integrations = {i["IntegrationId"]: i for i in _paginate(gw, "get_integrations", "Items", ApiId=api_id)}
        routes: list[RouteSpec] = []
        authorizers: dict[str, AuthorizerSpec] = {}
        for route in _paginate(gw, "get_routes", "Items", ApiId=api_id):
            target = route.get("Target") or ""
            integration = integrations.get(target.split("/", 1)[1]) if target.startswith("integrations/") else None
            if integration is None:
                log.warning("route without a Lambda integration is not served api=%s route=%r target=%r",
                            api_id, route.get("RouteKey"), target)
                continue
            function_arn = _integration_function_arn(integration)
            if function_arn is None:
                log.warning("only AWS_PROXY Lambda integrations are served locally api=%s route=%r type=%s",
                            api_id, route.get("RouteKey"), integration.get("IntegrationType"))
                continue
            version = integration.get("PayloadFormatVersion") or "2.0"
            if version != "2.0":
                log.warning("payload format %s is served as 2.0 locally api=%s route=%r", version, api_id,
                            route.get("RouteKey"))
            authorization = (route.get("AuthorizationType") or "NONE").upper()
            authorizer = None
            if authorization != "NONE" and route.get("AuthorizerId"):
                if route["AuthorizerId"] not in authorizers:
                    authorizers[route["AuthorizerId"]] = _authorizer(gw, api_id, route["AuthorizerId"])
                authorizer = authorizers[route["AuthorizerId"]]
            routes.append(RouteSpec(route_key=route["RouteKey"], function_name=function_name_from_arn(function_arn),
                                    function_arn=function_arn, payload_format_version=version,
                                    timeout_ms=int(integration.get("TimeoutInMillis") or 30000),
                                    authorization_type=authorization, authorizer=authorizer,
                                    authorization_scopes=tuple(route.get("AuthorizationScopes") or ())))
        stages = tuple(s["StageName"] for s in _paginate(gw, "get_stages", "Items", ApiId=api_id)) or ("$default",)
        account = next((arn_account(r.function_arn) for r in routes if r.function_arn.startswith("arn:")),
                       "123456789012")
        out.append(HttpApiSpec(api_id=api_id, name=api.get("Name") or api_id, routes=tuple(routes), stages=stages,
                               account_id=account, region=clients.region))
    return tuple(out)


def discover_delivery_streams(clients: ClientFactory) -> dict[str, DeliveryStreamSpec]:
    firehose = clients("firehose")
    names: list[str] = []
    kwargs: dict[str, Any] = {"Limit": 100}
    while True:
        page = firehose.list_delivery_streams(**kwargs)
        names.extend(page.get("DeliveryStreamNames", []))
        if not page.get("HasMoreDeliveryStreams") or not names:
            break
        kwargs["ExclusiveStartDeliveryStreamName"] = names[-1]
    out: dict[str, DeliveryStreamSpec] = {}
    for name in names:
        description = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        spec = DeliveryStreamSpec.from_api(description)
        if spec is None:
            log.debug("delivery stream %s is not Kinesis -> Redshift; not delivered locally", name)
            continue
        out[name] = spec
    return out


def discover_schedules(clients: ClientFactory) -> dict[str, ScheduleSpec]:
    events = clients("events")
    out: dict[str, ScheduleSpec] = {}
    for rule in _paginate(events, "list_rules", "Rules"):
        expression = rule.get("ScheduleExpression")
        if not expression:
            continue
        targets = tuple(
            (target["Arn"], target.get("Input"))
            for target in _paginate(events, "list_targets_by_rule", "Targets", Rule=rule["Name"])
            if ":lambda:" in target.get("Arn", "") and ":function:" in target.get("Arn", "")
        )
        out[rule["Name"]] = ScheduleSpec(name=rule["Name"], arn=rule["Arn"], expression=expression,
                                         enabled=(rule.get("State") or "ENABLED") == "ENABLED", targets=targets)
    return out


def discover(clients: ClientFactory) -> Discovery:
    functions = discover_functions(clients)
    mappings = discover_mappings(clients)
    delivery_streams = discover_delivery_streams(clients)
    shards: dict[str, tuple] = {}
    retention: dict[str, int] = {}
    sources = [(spec.event_source_arn, f"mapping {spec.uuid}") for spec in mappings.values() if spec.enabled]
    sources += [(spec.source_stream_arn, f"delivery stream {spec.name}") for spec in delivery_streams.values()]
    for stream_arn, reader in sources:
        if stream_arn in shards:
            continue
        try:
            shards[stream_arn], seconds = discover_shards(clients, stream_arn)
            if seconds:
                retention[stream_arn] = seconds
        except Exception as exc:
            log.warning("cannot list the shards of %s (%s): %s", stream_arn, reader, exc)
    apis = discover_apis(clients)
    from devstack.runtime.s3_notifications import discover_bucket_notifications

    return Discovery(functions=functions, mappings=mappings, apis=apis, shards=shards, retention_seconds=retention,
                     delivery_streams=delivery_streams, schedules=discover_schedules(clients),
                     bucket_notifications=discover_bucket_notifications(clients))
