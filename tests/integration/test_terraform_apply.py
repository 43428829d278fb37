"""infra/terraform applied to a fresh emulator by devstack/terraform.py: every resource as
configured, a second plan/apply that changes nothing, then destroy.

The apply (~50 s on the emulator, nearly all of it the AWS provider's own fixed waits:
10 s per Kinesis stream update, ~25 s for SQS attributes to "propagate", 5 s per Lambda
function) runs once for the module; its duration is printed (``pytest -s``).
"""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from devstack import terraform
from devstack.emulator import Emulator, free_port
from dynamo_models.invoice import CUSTOMER_INDEX, SUMMARY_ATTRIBUTES
from pipeline.settings import FUNCTION_ENV, POWERTOOLS_ENV

PREFIX = "shopstream"
ROUTES = {
    "POST /events": "ingest",
    "GET /invoices/{invoice_no}": "query-api",
    "GET /customers/{customer_id}/invoices": "query-api",
    "GET /openapi.json": "query-api",
}
HANDLERS = {
    "ingest": "ingest.handler.lambda_handler",
    "invoice-writer": "consumers.invoices.handler.lambda_handler",
    "archive-writer": "consumers.archive.handler.lambda_handler",
    "query-api": "query_api.handler.lambda_handler",
    "firehose-transform": "firehose.handler.lambda_handler",
    "order-notifier": "consumers.notifications.handler.lambda_handler",
    "warehouse-merge": "warehouse.merge.handler.lambda_handler",
    "batch": "batch.handler.lambda_handler",
}
LAYERS = {key: ["deps", "arrow"] if key == "archive-writer" else ["deps"] for key in HANDLERS}
# batch size, window, bisect (the archive writer retries a batch whole: its keys are the batch's range)
STREAM_CONSUMERS = {"invoice-writer": (25, 1, True), "archive-writer": (10000, 60, False), "order-notifier": (25, 1, True)}


@dataclass
class Deployed:
    emulator: Emulator
    state_dir: Path
    build_dir: Path
    outputs: dict
    apply_seconds: float
    progress: list[str]

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.emulator.endpoint_url, region_name="eu-west-1",
                            aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("terraform")
    build_dir = tmp / "build"
    build_dir.mkdir()
    # reuse layers already built from the same requirements (their fingerprints decide)
    for name in ("layer.zip", "layer.zip.sha256", "arrow-layer.zip", "arrow-layer.zip.sha256"):
        if (terraform.BUILD_DIR / name).is_file():
            shutil.copy2(terraform.BUILD_DIR / name, build_dir / name)
    emulator = Emulator.start(free_port())
    progress: list[str] = []
    try:
        started = time.monotonic()
        try:
            outputs = terraform.apply_to_emulator(emulator.endpoint_url, tmp / "state", build_dir=build_dir,
                                                  say=progress.append)
        except terraform.ApplyStuck as exc:  # the emulator's intermittent Lambda create hang: as `up` does,
            print(f"\n{str(exc).splitlines()[0]}: starting over once with a fresh emulator")  # start over once
            emulator.stop()
            shutil.rmtree(tmp / "state")
            emulator = Emulator.start(free_port())
            progress.clear()
            started = time.monotonic()
            outputs = terraform.apply_to_emulator(emulator.endpoint_url, tmp / "state", build_dir=build_dir,
                                                  say=progress.append)
        elapsed = time.monotonic() - started
        print(f"\nterraform apply on the emulator took {elapsed:.1f}s (zips, init, apply)")
        yield Deployed(emulator, tmp / "state", build_dir, outputs, elapsed, progress)
    finally:
        emulator.stop()


@pytest.mark.e2e
def test_outputs_name_every_resource(deployed):
    out = deployed.outputs
    assert out["stream_name"] == f"{PREFIX}-events"
    assert out["stream_arn"] == f"arn:aws:kinesis:eu-west-1:123456789012:stream/{PREFIX}-events"
    assert out["invoices_table_name"] == f"{PREFIX}-invoices"
    assert out["function_names"] == {key: f"{PREFIX}-{key}" for key in FUNCTION_ENV}
    assert out["quarantine_queue_url"].endswith(f"/123456789012/{PREFIX}-quarantine")
    assert {key: url.rsplit("/", 2)[1:] for key, url in out["failures_queue_urls"].items()} == {
        key: ["123456789012", f"{PREFIX}-{key}-failures"] for key in STREAM_CONSUMERS}
    assert out["archive_bucket_name"] == f"{PREFIX}-archive-123456789012-eu-west-1"
    assert out["archive_prefix"] == "archive/"
    assert out["api_endpoint"].startswith("https://")
    assert out["region"] == "eu-west-1"
    # progress was streamed, compactly
    assert any(line.strip().startswith("created   aws_kinesis_stream.events") for line in deployed.progress)
    assert any("Apply complete!" in line for line in deployed.progress)


@pytest.mark.e2e
def test_local_state_stays_in_the_state_dir(deployed):
    assert (deployed.state_dir / "terraform.tfstate").is_file()
    assert (deployed.state_dir / ".terraform" / "providers").is_dir()
    assert not (terraform.MODULE_DIR / "terraform.tfstate").exists()
    assert json.loads((deployed.state_dir / "emulator.tfvars.json").read_text())["emulator_endpoint"] == \
        deployed.emulator.endpoint_url


@pytest.mark.e2e
def test_stream(deployed):
    kinesis = deployed.client("kinesis")
    summary = kinesis.describe_stream_summary(StreamName=f"{PREFIX}-events")["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert summary["RetentionPeriodHours"] == 168  # stream_retention_hours: the window redrive has
    assert len(kinesis.list_shards(StreamName=f"{PREFIX}-events")["Shards"]) == 2
    tags = kinesis.list_tags_for_stream(StreamName=f"{PREFIX}-events")["Tags"]
    assert {"Key": "Project", "Value": "shopstream"} in tags


@pytest.mark.e2e
def test_table_matches_the_model(deployed):
    ddb = deployed.client("dynamodb")
    table = ddb.describe_table(TableName=f"{PREFIX}-invoices")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "invoice_no", "KeyType": "HASH"},
                                  {"AttributeName": "part", "KeyType": "RANGE"}]
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {
        "invoice_no": "S", "part": "N", "customer_id": "S", "invoice_sort": "S"}
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == CUSTOMER_INDEX
    assert index["KeySchema"] == [{"AttributeName": "customer_id", "KeyType": "HASH"},
                                  {"AttributeName": "invoice_sort", "KeyType": "RANGE"}]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert sorted(index["Projection"]["NonKeyAttributes"]) == sorted(SUMMARY_ATTRIBUTES)
    assert table.get("DeletionProtectionEnabled", False) is False  # off on the emulator: its stack is thrown away
    backups = ddb.describe_continuous_backups(TableName=f"{PREFIX}-invoices")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


@pytest.mark.e2e
def test_queues(deployed):
    sqs = deployed.client("sqs")
    for url in [deployed.outputs["quarantine_queue_url"], *deployed.outputs["failures_queue_urls"].values()]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)
        assert attributes["SqsManagedSseEnabled"] == "true"


@pytest.mark.e2e
def test_functions(deployed):
    lam, logs = deployed.client("lambda"), deployed.client("logs")
    layer_arns = {name: lam.list_layer_versions(LayerName=f"{PREFIX}-{name}")["LayerVersions"][0]["LayerVersionArn"]
                  for name in ("deps", "arrow")}
    for key, handler in HANDLERS.items():
        config = lam.get_function(FunctionName=f"{PREFIX}-{key}")["Configuration"]
        assert config["Handler"] == handler
        assert config["Runtime"] == "python3.12"
        assert [layer["Arn"] for layer in config["Layers"]] == [layer_arns[name] for name in LAYERS[key]]
        assert config["Role"] == f"arn:aws:iam::123456789012:role/{PREFIX}-{key}"
        assert config["TracingConfig"] == {"Mode": "Active"}
        assert config["Timeout"] < 29 or key not in ROUTES.values()  # under the API integration's timeout
        env = config["Environment"]["Variables"]
        assert set(env) == FUNCTION_ENV[key] | POWERTOOLS_ENV
        assert env["POWERTOOLS_SERVICE_NAME"] == key
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "shopstream"
        assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
        zip_bytes = (deployed.build_dir / f"{key}.zip").read_bytes()
        assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
        groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{PREFIX}-{key}")["logGroups"]
        assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [(f"/aws/lambda/{PREFIX}-{key}", 365)]
    env = {key: lam.get_function(FunctionName=f"{PREFIX}-{key}")["Configuration"]["Environment"]["Variables"]
           for key in HANDLERS}
    assert env["ingest"]["SHOPSTREAM_STREAM_NAME"] == f"{PREFIX}-events"
    assert env["ingest"]["SHOPSTREAM_MAX_BODY_BYTES"] == "2000000"
    assert env["invoice-writer"]["SHOPSTREAM_INVOICES_TABLE"] == f"{PREFIX}-invoices"
    assert env["invoice-writer"]["SHOPSTREAM_QUARANTINE_QUEUE_URL"] == deployed.outputs["quarantine_queue_url"]
    assert env["query-api"]["SHOPSTREAM_INVOICES_TABLE"] == f"{PREFIX}-invoices"
    assert env["archive-writer"]["SHOPSTREAM_ARCHIVE_BUCKET"] == deployed.outputs["archive_bucket_name"]
    assert env["archive-writer"]["SHOPSTREAM_ARCHIVE_PREFIX"] == "archive/"
    assert env["order-notifier"]["SHOPSTREAM_NOTIFICATIONS_TABLE"] == deployed.outputs["order_notifications_table_name"]
    assert env["order-notifier"]["SHOPSTREAM_LARGE_ORDERS_TOPIC_ARN"] == deployed.outputs["large_orders_topic_arn"]
    assert env["order-notifier"]["SHOPSTREAM_LARGE_ORDER_FROM"] == "5000"


@pytest.mark.e2e
def test_event_source_mappings(deployed):
    lam, sqs = deployed.client("lambda"), deployed.client("sqs")
    mappings = {m["FunctionArn"].rsplit(":function:", 1)[1].removeprefix(f"{PREFIX}-"): m for m in
                lam.list_event_source_mappings(EventSourceArn=deployed.outputs["stream_arn"])["EventSourceMappings"]}
    assert set(mappings) == set(STREAM_CONSUMERS)
    for key, (batch_size, window, bisect) in STREAM_CONSUMERS.items():
        mapping = mappings[key]
        failures_arn = sqs.get_queue_attributes(QueueUrl=deployed.outputs["failures_queue_urls"][key],
                                                AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert mapping["UUID"] == deployed.outputs["event_source_mapping_uuids"][key]
        assert mapping["State"] == "Enabled"
        assert mapping["StartingPosition"] == "TRIM_HORIZON"
        assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (batch_size, window)
        assert mapping["ParallelizationFactor"] == 1
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping.get("BisectBatchOnFunctionError", False) is bisect  # moto leaves out a false one
        assert mapping["MaximumRetryAttempts"] == 5
        assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": failures_arn}}


@pytest.mark.e2e
def test_buckets_are_private_encrypted_and_tls_only(deployed):
    s3 = deployed.client("s3")
    bucket = deployed.outputs["archive_bucket_name"]
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    for bucket in (deployed.outputs["archive_bucket_name"], deployed.outputs["delivery_bucket_name"]):
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block[k] for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"))
        [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        # no TLS-only policy here: the emulator evaluates it and is reached over plain HTTP
        # (AWS mode's is asserted by infra/terraform/tests/aws_mode.tftest.hcl)
        with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
            s3.get_bucket_policy(Bucket=bucket)


@pytest.mark.e2e
def test_warehouse_cluster_secret_and_schedule(deployed):
    out = deployed.outputs
    warehouse = out["warehouse"]
    # the emulator stands in for Redshift with a provisioned cluster
    assert warehouse["deployment"] == "provisioned" and warehouse["workgroup"] == ""
    [cluster] = deployed.client("redshift").describe_clusters(ClusterIdentifier=warehouse["cluster_id"])["Clusters"]
    assert cluster["DBName"] == warehouse["database"] == "shopstream" and cluster["Encrypted"] is True
    assert cluster["MasterUsername"] == "shopstream_admin" and cluster["ClusterAvailabilityStatus"] == "Available"
    assert warehouse["jdbc_url"] == f"jdbc:redshift://{cluster['Endpoint']['Address']}:5439/shopstream"
    # the admin secret holds username and password; no output carries the password
    secret = json.loads(deployed.client("secretsmanager").get_secret_value(SecretId=warehouse["secret_arn"])["SecretString"])
    assert set(secret) == {"username", "password"} and secret["username"] == "shopstream_admin"
    assert len(secret["password"]) == 32 and secret["password"] not in json.dumps(out)
    # in the local state only as the data source that generated it: no resource holds it
    state = json.loads((deployed.state_dir / "terraform.tfstate").read_text())
    holders = {f"{r['mode']}.{r['type']}.{r['name']}" for r in state["resources"]
               if secret["password"] in json.dumps(r)}
    assert holders == {"data.aws_secretsmanager_random_password.warehouse_admin"}
    events, lam = deployed.client("events"), deployed.client("lambda")
    rule = events.describe_rule(Name=warehouse["merge_rule"])
    assert rule["ScheduleExpression"] == "rate(5 minutes)" and rule["State"] == "ENABLED"
    [target] = events.list_targets_by_rule(Rule=warehouse["merge_rule"])["Targets"]
    assert target["Arn"] == out["function_arns"]["warehouse-merge"]
    env = lam.get_function(FunctionName=f"{PREFIX}-warehouse-merge")["Configuration"]["Environment"]["Variables"]
    assert env["SHOPSTREAM_REDSHIFT_CLUSTER"] == warehouse["cluster_id"] and env["SHOPSTREAM_REDSHIFT_WORKGROUP"] == ""
    assert env["SHOPSTREAM_REDSHIFT_SECRET_ARN"] == warehouse["secret_arn"]


@pytest.mark.e2e
def test_firehose_reads_the_stream_transforms_and_copies_into_staging(deployed):
    from warehouse.schema import STAGING_COLUMN_NAMES, STAGING_TABLE, jsonpaths

    out = deployed.outputs
    description = deployed.client("firehose").describe_delivery_stream(
        DeliveryStreamName=out["delivery_stream_name"])["DeliveryStreamDescription"]
    assert description["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert description["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == out["stream_arn"]
    [destination] = description["Destinations"]
    redshift = destination["RedshiftDestinationDescription"]
    assert redshift["ClusterJDBCURL"] == out["warehouse"]["jdbc_url"]
    jsonpaths_key = f"firehose/jsonpaths/{STAGING_TABLE}.json"
    assert redshift["CopyCommand"] == {
        "DataTableName": STAGING_TABLE, "DataTableColumns": ",".join(STAGING_COLUMN_NAMES),
        "CopyOptions": f"JSON 's3://{out['delivery_bucket_name']}/{jsonpaths_key}' GZIP TIMEFORMAT 'auto'"}
    body = deployed.client("s3").get_object(Bucket=out["delivery_bucket_name"], Key=jsonpaths_key)["Body"].read()
    assert json.loads(body) == jsonpaths()
    assert redshift["SecretsManagerConfiguration"]["SecretARN"] == out["warehouse"]["secret_arn"]
    assert "Username" not in redshift and "Password" not in redshift
    staging = redshift["S3DestinationDescription"]
    assert staging["BucketARN"] == f"arn:aws:s3:::{out['delivery_bucket_name']}"
    assert (staging["Prefix"], staging["ErrorOutputPrefix"]) == (out["firehose_prefixes"]["staging"], out["firehose_prefixes"]["errors"])
    assert staging["CompressionFormat"] == "GZIP" and staging["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 60}
    [processor] = redshift["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert parameters.pop("LambdaArn") == out["function_arns"]["firehose-transform"]
    # what else is there are Firehose's defaults, which the provider sends itself
    assert {k: v for k, v in parameters.items() if k != "RoleArn"} in ({}, {"NumberOfRetries": "3", "BufferSizeInMBs": "1",
                                                                           "BufferIntervalInSeconds": "60"})
    assert redshift["S3BackupMode"] == "Enabled" and redshift["RetryOptions"] == {"DurationInSeconds": 3600}


@pytest.mark.e2e
def test_http_api(deployed):
    api_client, lam = deployed.client("apigatewayv2"), deployed.client("lambda")
    [api] = [a for a in api_client.get_apis()["Items"] if a["Name"] == f"{PREFIX}-http"]
    assert api["ProtocolType"] == "HTTP"
    assert deployed.outputs["api_endpoint"] == api["ApiEndpoint"]
    [stage] = api_client.get_stages(ApiId=api["ApiId"])["Items"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 500
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 1000
    assert stage["AccessLogSettings"]["DestinationArn"] == \
        f"arn:aws:logs:eu-west-1:123456789012:log-group:/aws/apigateway/{PREFIX}-http"
    assert json.loads(stage["AccessLogSettings"]["Format"])["status"] == "$context.status"
    integrations = {i["IntegrationId"]: i for i in api_client.get_integrations(ApiId=api["ApiId"])["Items"]}
    routes = {}
    for route in api_client.get_routes(ApiId=api["ApiId"])["Items"]:
        integration = integrations[route["Target"].removeprefix("integrations/")]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
        assert integration["TimeoutInMillis"] == 29000
        routes[route["RouteKey"]] = integration["IntegrationUri"].split(":function:")[1].split("/")[0]
    assert routes == {key: f"{PREFIX}-{fn}" for key, fn in ROUTES.items()}
    # AND the emulator holds each route's authorizer and scopes, which the local gateway applies
    authorized = {r["RouteKey"]: r for r in api_client.get_routes(ApiId=api["ApiId"])["Items"]}
    assert authorized.pop("GET /openapi.json")["AuthorizationType"] == "NONE"
    assert {r["AuthorizationType"] for r in authorized.values()} == {"JWT"}
    assert set(authorized["POST /events"]["AuthorizationScopes"]) == {"shopstream/events.write"}
    [authorizer_id] = {r["AuthorizerId"] for r in authorized.values()}
    authorizer = api_client.get_authorizer(ApiId=api["ApiId"], AuthorizerId=authorizer_id)
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["JwtConfiguration"] == {"Issuer": "http://127.0.0.1:8080", "Audience": ["shopstream"]}
    execution_arn = f"arn:aws:execute-api:eu-west-1:123456789012:{api['ApiId']}"
    for fn in set(ROUTES.values()):
        [statement] = json.loads(lam.get_policy(FunctionName=f"{PREFIX}-{fn}")["Policy"])["Statement"]
        assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
        assert statement["Action"] == "lambda:InvokeFunction"
        assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == f"{execution_arn}/*/*"


@pytest.mark.e2e
def test_alarms_notify_the_alerts_topic_and_the_dashboard_shows_them(deployed):
    out = deployed.outputs
    topic = deployed.client("sns").get_topic_attributes(TopicArn=out["alerts_topic_arn"])["Attributes"]
    assert topic["TopicArn"].endswith(f":{PREFIX}-alerts") and "KmsMasterKeyId" not in topic  # AWS mode encrypts it
    alarms = {a["AlarmName"]: a for page in deployed.client("cloudwatch").get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=f"{PREFIX}-") for a in page["MetricAlarms"]}
    functions = [f"{PREFIX}-{key}-{kind}" for key in HANDLERS for kind in ("errors", "throttles")]
    expected = {
        *(f"{PREFIX}-stream-{name}" for name in ("iterator-age", "read-throughput-exceeded", "write-throughput-exceeded",
                                                 "put-records-success", "get-records-success")),
        *(f"{PREFIX}-{key}-iterator-age" for key in STREAM_CONSUMERS),
        *(f"{PREFIX}-{key}-failures-depth" for key in STREAM_CONSUMERS), f"{PREFIX}-quarantine-depth",
        *functions, f"{PREFIX}-api-5xx",
        *(f"{PREFIX}-{name}-throttles" for name in ("table-read", "table-write", "index-read", "index-write")),
        *(f"{PREFIX}-firehose-{name}" for name in ("freshness", "staging-failed", "copy-failed", "transform-failed")),
        f"{PREFIX}-large-orders-delivery-failed", f"{PREFIX}-file-outcomes-delivery-failed",
    }
    assert set(alarms) == expected
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [out["alerts_topic_arn"]] and alarm["OKActions"] == [out["alerts_topic_arn"]]
    age = alarms[f"{PREFIX}-stream-iterator-age"]
    assert (age["Namespace"], age["MetricName"], age["Statistic"], age["Threshold"]) == (
        "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "Maximum", 60000)
    assert age["Dimensions"] == [{"Name": "StreamName", "Value": f"{PREFIX}-events"}]
    assert {m["Id"] for m in alarms[f"{PREFIX}-api-5xx"]["Metrics"]} == {"rate", "errors", "requests"}
    body = json.loads(deployed.client("cloudwatch").get_dashboard(DashboardName=out["dashboard_name"])["DashboardBody"])
    [status] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(status["properties"]["alarms"]) == sorted(a["AlarmArn"] for a in alarms.values())


def _statements(iam, key: str) -> dict[str, tuple[set[str], set[str]]]:
    document = iam.get_role_policy(RoleName=f"{PREFIX}-{key}", PolicyName=f"{PREFIX}-{key}")["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    as_set = lambda v: set(v) if isinstance(v, list) else {v}  # noqa: E731
    return {s["Sid"]: (as_set(s["Action"]), as_set(s["Resource"])) for s in document["Statement"]}


@pytest.mark.e2e
def test_roles_are_least_privilege(deployed):
    iam = deployed.client("iam")
    out = deployed.outputs
    table_arn = out["invoices_table_arn"]
    sqs = deployed.client("sqs")
    queue_arn = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # noqa: E731
    for key in HANDLERS:
        role = iam.get_role(RoleName=f"{PREFIX}-{key}")["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert iam.list_attached_role_policies(RoleName=f"{PREFIX}-{key}")["AttachedPolicies"] == []
        statements = _statements(iam, key)
        assert statements["WriteOwnLogs"] == ({"logs:CreateLogStream", "logs:PutLogEvents"},
                                              {f"arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/{PREFIX}-{key}:*"})
        assert statements["WriteTraces"] == ({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, {"*"})
        assert not [a for actions, _ in statements.values() for a in actions if "*" in a]

    ingest = _statements(iam, "ingest")
    assert ingest == {
        "WriteOwnLogs": ingest["WriteOwnLogs"], "WriteTraces": ingest["WriteTraces"],
        "PutEvents": ({"kinesis:PutRecords", "kinesis:ListShards"}, {out["stream_arn"]}),
        "ClaimInvoices": ({"dynamodb:BatchGetItem", "dynamodb:PutItem"},
                          {f"arn:aws:dynamodb:eu-west-1:123456789012:table/{out['invoice_owners_table_name']}"}),
    }
    writer = _statements(iam, "invoice-writer")
    assert writer["ReadEvents"] == ({"kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream",
                                     "kinesis:DescribeStreamSummary", "kinesis:ListShards"}, {out["stream_arn"]})
    assert writer["ListStreams"] == ({"kinesis:ListStreams"}, {"*"})
    assert writer["WriteInvoices"] == ({"dynamodb:BatchWriteItem", "dynamodb:PutItem"}, {table_arn})
    assert writer["SendFailures"] == ({"sqs:SendMessage"}, {queue_arn(out["quarantine_queue_url"]),
                                                            queue_arn(out["failures_queue_urls"]["invoice-writer"])})
    assert set(writer) == {"WriteOwnLogs", "WriteTraces", "ReadEvents", "ListStreams", "WriteInvoices", "SendFailures"}
    archive = _statements(iam, "archive-writer")
    assert archive["ReadEvents"] == writer["ReadEvents"]
    assert archive["WriteArchive"] == ({"s3:PutObject"}, {f"arn:aws:s3:::{out['archive_bucket_name']}/archive/*"})
    assert archive["SendFailures"] == ({"sqs:SendMessage"}, {queue_arn(out["quarantine_queue_url"]),
                                                             queue_arn(out["failures_queue_urls"]["archive-writer"])})
    assert set(archive) == {"WriteOwnLogs", "WriteTraces", "ReadEvents", "ListStreams", "WriteArchive", "SendFailures"}
    notifier = _statements(iam, "order-notifier")
    assert notifier["ReadEvents"] == writer["ReadEvents"]
    assert notifier["KeepLedger"] == ({"dynamodb:GetItem", "dynamodb:PutItem"}, {
        f"arn:aws:dynamodb:eu-west-1:123456789012:table/{out['order_notifications_table_name']}"})
    assert notifier["AnnounceLargeOrders"] == ({"sns:Publish"}, {out["large_orders_topic_arn"]})
    assert notifier["SendFailures"] == ({"sqs:SendMessage"}, {queue_arn(out["quarantine_queue_url"]),
                                                              queue_arn(out["failures_queue_urls"]["order-notifier"])})
    assert set(notifier) == {"WriteOwnLogs", "WriteTraces", "ReadEvents", "ListStreams", "KeepLedger",
                             "AnnounceLargeOrders", "SendFailures"}
    query = _statements(iam, "query-api")
    assert query["ReadInvoices"] == ({"dynamodb:Query"},
                                     {table_arn, f"{table_arn}/index/{CUSTOMER_INDEX}"})
    assert set(query) == {"WriteOwnLogs", "WriteTraces", "ReadInvoices"}


@pytest.mark.e2e
def test_a_second_plan_and_apply_change_nothing(deployed):
    # the same zips (the code may change under a running test), the same variables
    changes, text = terraform.plan_has_changes(deployed.emulator.endpoint_url, deployed.state_dir,
                                               build_dir=deployed.build_dir, build=False, say=lambda _: None)
    assert not changes, text[-4000:]
    progress: list[str] = []
    again = terraform.apply_to_emulator(deployed.emulator.endpoint_url, deployed.state_dir,
                                        build_dir=deployed.build_dir, build=False, say=progress.append)
    assert again == deployed.outputs
    assert any("Resources: 0 added, 0 changed, 0 destroyed." in line for line in progress), progress


@pytest.mark.e2e
def test_destroy_removes_everything(deployed):
    # runs last among the tests above: it takes the stack away
    terraform.destroy(deployed.emulator.endpoint_url, deployed.state_dir, build_dir=deployed.build_dir,
                      build=False, say=lambda _: None)
    assert deployed.client("lambda").list_functions()["Functions"] == []
    assert deployed.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert deployed.client("kinesis").list_streams()["StreamNames"] == []
    assert deployed.client("dynamodb").list_tables()["TableNames"] == []
    assert deployed.client("sqs").list_queues().get("QueueUrls", []) == []
    assert deployed.client("apigatewayv2").get_apis()["Items"] == []
    assert deployed.client("s3").list_buckets()["Buckets"] == []
    assert deployed.client("firehose").list_delivery_streams()["DeliveryStreamNames"] == []
    assert deployed.client("redshift").describe_clusters()["Clusters"] == []
    assert deployed.client("events").list_rules()["Rules"] == []
    assert deployed.client("sns").list_topics()["Topics"] == []
    assert deployed.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert deployed.client("cloudwatch").list_dashboards()["DashboardEntries"] == []
    assert [r["RoleName"] for r in deployed.client("iam").list_roles()["Roles"]
            if r["RoleName"].startswith(PREFIX)] == []
    assert terraform.outputs(deployed.emulator.endpoint_url, deployed.state_dir) == {}


# ── devstack/terraform.py without terraform (no emulator) ───────────────────────


def test_mirror_from_the_environment_must_hold_the_provider(tmp_path, monkeypatch):
    with pytest.raises(terraform.TerraformError, match="holds no registry.terraform.io/hashicorp/aws"):
        terraform.find_provider_mirror({terraform.ENV_MIRROR: str(tmp_path)})
    (tmp_path / terraform.PROVIDER / "5.100.0" / "linux_amd64").mkdir(parents=True)
    assert terraform.find_provider_mirror({terraform.ENV_MIRROR: str(tmp_path)}) == tmp_path.resolve()


def test_mirror_found_in_a_well_known_place_or_none(tmp_path, monkeypatch):
    monkeypatch.setattr(terraform, "WELL_KNOWN_MIRRORS", (str(tmp_path / "absent"), str(tmp_path / "mirror")))
    assert terraform.find_provider_mirror({}) is None
    (tmp_path / "mirror" / terraform.PROVIDER).mkdir(parents=True)
    assert terraform.find_provider_mirror({}) == (tmp_path / "mirror").resolve()


def test_cli_config_installs_only_aws_from_the_mirror():
    text = terraform._cli_config(Path("/opt/tf-plugins"))
    assert 'path    = "/opt/tf-plugins"' in text
    assert 'include = ["registry.terraform.io/hashicorp/aws"]' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text


def test_missing_terraform_says_how_to_install(monkeypatch):
    monkeypatch.setattr(terraform.shutil, "which", lambda name: None)
    with pytest.raises(terraform.TerraformError, match="developer.hashicorp.com/terraform/install"):
        terraform.find_terraform()


def test_unknown_variables_are_refused(tmp_path, monkeypatch):
    workspace = terraform._Workspace(tmp_path, "http://127.0.0.1:1", "terraform", None)
    with pytest.raises(terraform.TerraformError, match="no variable shard_cuont"):
        terraform._write_vars(workspace, {"shard_cuont": 3}, tmp_path)
    terraform._write_vars(workspace, {"shard_count": 3}, tmp_path)
    assert json.loads(workspace.vars_file.read_text()) == {
        "emulator_endpoint": "http://127.0.0.1:1", "lambda_build_dir": str(tmp_path), "shard_count": 3}


def test_a_local_apply_never_sees_real_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "secret")
    monkeypatch.setenv("TF_VAR_emulator_endpoint", "http://elsewhere")
    env = terraform._Workspace(tmp_path, "http://127.0.0.1:1", "terraform", tmp_path).env()
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env and "TF_VAR_emulator_endpoint" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "test" and env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["TF_DATA_DIR"] == str(tmp_path / ".terraform")
    assert env["TF_CLI_CONFIG_FILE"] == str(tmp_path / "terraform.rc")
