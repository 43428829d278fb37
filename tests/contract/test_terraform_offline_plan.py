"""`terraform fmt -check` and `validate` pass, and `terraform plan` of AWS mode runs offline: fake credentials, every endpoint and proxy a
closed local port, and still a complete plan (skip_aws_checks, with the account and the
warehouse's network given as variables instead of looked up)."""
from __future__ import annotations

from collections import Counter

import pytest

from devstack import terraform
from tests.contract.test_terraform_aws_mode import placeholder_zips  # noqa: F401  (fixture)

OFFLINE = {
    "account_id": "123456789012",
    "warehouse_vpc_id": "vpc-0123456789abcdef0",
    "warehouse_subnet_ids": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb", "subnet-0cccccccccccccccc"],
    "warehouse_ingress_cidr_blocks": ["52.19.239.192/27"],
}
# what AWS mode creates with the defaults (Redshift Serverless), by type: the functions of lambda.tf
# and the user pool's pre token generation trigger (auth.tf), each with its role, policy and log group
EXPECTED = {
    "aws_apigatewayv2_api": 1, "aws_apigatewayv2_authorizer": 1, "aws_apigatewayv2_integration": 2,
    "aws_apigatewayv2_route": 4, "aws_apigatewayv2_stage": 1, "aws_cloudwatch_dashboard": 1,
    "aws_cloudwatch_event_rule": 1, "aws_cloudwatch_event_target": 1, "aws_cloudwatch_log_group": 11,
    "aws_cloudwatch_log_stream": 3, "aws_cloudwatch_metric_alarm": 40, "aws_cognito_resource_server": 1,
    "aws_cognito_user_pool": 1, "aws_cognito_user_pool_client": 3, "aws_cognito_user_pool_domain": 1,
    "aws_dynamodb_table": 4, "aws_iam_role": 10, "aws_iam_role_policy": 10, "aws_kinesis_firehose_delivery_stream": 1,
    "aws_kinesis_stream": 1, "aws_kms_alias": 1, "aws_kms_key": 1, "aws_lambda_event_source_mapping": 3,
    "aws_lambda_function": 9, "aws_lambda_function_recursion_config": 1, "aws_lambda_layer_version": 2, "aws_lambda_permission": 5,
    "aws_redshiftserverless_namespace": 1, "aws_redshiftserverless_workgroup": 1, "aws_s3_bucket": 4, "aws_s3_bucket_notification": 1,
    "aws_s3_bucket_lifecycle_configuration": 1, "aws_s3_bucket_policy": 4, "aws_s3_bucket_public_access_block": 4,
    "aws_s3_bucket_server_side_encryption_configuration": 4, "aws_s3_object": 1, "aws_security_group": 1,
    "aws_sns_topic": 3, "aws_sqs_queue": 4, "aws_vpc_security_group_ingress_rule": 1,
}


@pytest.mark.e2e
def test_aws_mode_plans_offline_with_fake_credentials(tmp_path, placeholder_zips):  # noqa: F811
    plan = terraform.plan_aws_offline(tmp_path / "state", say=lambda _: None,
                                      variables={**OFFLINE, "lambda_build_dir": str(placeholder_zips)})
    changes = [c for c in plan["resource_changes"] if c["mode"] == "managed"]
    assert {tuple(c["change"]["actions"]) for c in changes} == {("create",)}
    counted = Counter(c["type"] for c in changes)
    assert dict(counted) == EXPECTED, dict(counted)
    assert sum(counted.values()) == 150
    # no data source had to be read from AWS: the account and the network came from variables
    assert not [c for c in plan["resource_changes"] if c["mode"] == "data" and c["type"] in (
        "aws_caller_identity", "aws_vpc", "aws_subnets")]
    buckets = {c["name"]: c["change"]["after"]["bucket"] for c in changes if c["type"] == "aws_s3_bucket"}
    assert buckets == {"archive": "shopstream-archive-123456789012-eu-west-1",
                       "delivery": "shopstream-delivery-123456789012-eu-west-1",
                       "drops": "shopstream-drops-123456789012-eu-west-1",
                       "drop_archive": "shopstream-drop-archive-123456789012-eu-west-1"}
    [notification] = [c["change"]["after"] for c in changes if c["type"] == "aws_s3_bucket_notification"]
    assert sorted((f["filter_prefix"], tuple(f["events"])) for f in notification["lambda_function"]) == [
        ("continuations/", ("s3:ObjectCreated:*",)), ("transactions/", ("s3:ObjectCreated:*",))]
    [recursion] = [c["change"]["after"] for c in changes if c["type"] == "aws_lambda_function_recursion_config"]
    assert recursion == {"function_name": "shopstream-batch", "recursive_loop": "Allow"}
    tables = [c["change"]["after"] for c in changes if c["type"] == "aws_dynamodb_table"]
    assert [t["deletion_protection_enabled"] for t in tables] == [True, True, True, True]
    # the provider itself takes the user pool's plan and trigger version (the mocked test cannot say)
    [pool] = [c["change"]["after"] for c in changes if c["type"] == "aws_cognito_user_pool"]
    assert pool["user_pool_tier"] == "ESSENTIALS"
    assert pool["lambda_config"][0]["pre_token_generation_config"][0]["lambda_version"] == "V2_0"
    assert [(a["name"], a["mutable"]) for a in pool["schema"]] == [("customer_id", False)]


def test_terraform_fmt_check(tmp_path):
    workspace = terraform._workspace("http://127.0.0.1:9", tmp_path / "state")
    code, text = workspace.run("fmt", "-check", "-recursive", "-diff", "-no-color", ok_codes=(0, 3))
    assert code == 0, "terraform fmt would change:\n" + text[-4000:]


@pytest.mark.e2e
def test_terraform_validate(tmp_path):
    workspace = terraform._workspace("http://127.0.0.1:9", tmp_path / "state")
    terraform._init_if_needed(workspace, lambda _: None)
    code, text = workspace.run("validate", "-no-color", ok_codes=(0, 1))
    assert code == 0, text[-4000:]
