# What AWS mode creates, planned offline against a mocked AWS provider (no account, no
# network): run by tests/contract/test_terraform_aws_mode.py with `terraform test`
# (which passes lambda_build_dir, a directory of placeholder zips). Mocked values are only
# what a plan needs to be well-formed (valid policy JSON, an account id, subnets); the
# assertions read the configuration the plan would send to AWS.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
  mock_data "aws_subnets" {
    defaults = {
      ids = ["subnet-a", "subnet-b", "subnet-c"]
    }
  }
}

# ARNs AWS would return, known at plan time so the wiring between resources can be checked
override_resource {
  target          = aws_redshiftserverless_namespace.warehouse
  override_during = plan
  values = {
    admin_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redshift!shopstream-warehouse-admin-AbCdEf"
  }
}

override_resource {
  target          = aws_redshift_cluster.warehouse
  override_during = plan
  values = {
    master_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redshift!shopstream-warehouse-admin-GhIjKl"
  }
}

override_resource {
  target          = aws_lambda_function.function["firehose-transform"]
  override_during = plan
  values = {
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:shopstream-firehose-transform"
  }
}

override_resource {
  target          = aws_lambda_function.function["warehouse-merge"]
  override_during = plan
  values = {
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:shopstream-warehouse-merge"
  }
}

override_resource {
  target          = aws_lambda_function.pre_token_generation
  override_during = plan
  values = {
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:shopstream-pre-token-generation"
  }
}

override_resource {
  target          = aws_cloudwatch_log_group.pre_token_generation
  override_during = plan
  values = {
    arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/shopstream-pre-token-generation"
  }
}

override_resource {
  target          = aws_cognito_user_pool.api
  override_during = plan
  values = {
    arn = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Ab12Cd34E"
  }
}

override_resource {
  target          = aws_kinesis_stream.events
  override_during = plan
  values = {
    arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/shopstream-events"
  }
}

override_resource {
  target          = aws_s3_bucket.archive
  override_during = plan
  values = {
    id  = "shopstream-archive-123456789012-eu-west-1"
    arn = "arn:aws:s3:::shopstream-archive-123456789012-eu-west-1"
  }
}

override_resource {
  target          = aws_s3_bucket.delivery
  override_during = plan
  values = {
    id  = "shopstream-delivery-123456789012-eu-west-1"
    arn = "arn:aws:s3:::shopstream-delivery-123456789012-eu-west-1"
  }
}

override_resource {
  target          = aws_s3_bucket.drops
  override_during = plan
  values = {
    id  = "shopstream-drops-123456789012-eu-west-1"
    arn = "arn:aws:s3:::shopstream-drops-123456789012-eu-west-1"
  }
}

override_resource {
  target          = aws_s3_bucket.drop_archive
  override_during = plan
  values = {
    id  = "shopstream-drop-archive-123456789012-eu-west-1"
    arn = "arn:aws:s3:::shopstream-drop-archive-123456789012-eu-west-1"
  }
}

override_resource {
  target          = aws_sns_topic.alerts
  override_during = plan
  values = {
    arn = "arn:aws:sns:eu-west-1:123456789012:shopstream-alerts"
  }
}

override_resource {
  target          = aws_kms_key.alerts
  override_during = plan
  values = {
    arn    = "arn:aws:kms:eu-west-1:123456789012:key/0000aaaa-00aa-00aa-00aa-000000aaaaaa"
    key_id = "0000aaaa-00aa-00aa-00aa-000000aaaaaa"
  }
}

variables {
  emulator_endpoint = null
}

run "serverless_warehouse_with_a_secret_redshift_manages" {
  command = plan
  # no ingress CIDR blocks yet: the plan warns that Firehose cannot reach Redshift
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = length(aws_redshiftserverless_workgroup.warehouse) == 1 && length(aws_redshift_cluster.warehouse) == 0
    error_message = "AWS mode deploys Redshift Serverless by default"
  }
  assert {
    condition     = aws_redshiftserverless_namespace.warehouse[0].manage_admin_password == true
    error_message = "Redshift manages (and rotates) the admin password in Secrets Manager"
  }
  assert {
    condition = (aws_redshiftserverless_namespace.warehouse[0].admin_user_password == null
    && aws_redshiftserverless_namespace.warehouse[0].admin_user_password_wo == null)
    error_message = "no admin password is written by Terraform"
  }
  assert {
    condition     = length(aws_secretsmanager_secret.warehouse_admin) == 0 && length(aws_secretsmanager_secret_version.warehouse_admin) == 0
    error_message = "AWS mode creates no secret of its own (and so no secret value anywhere in Terraform)"
  }
  assert {
    condition     = aws_redshiftserverless_namespace.warehouse[0].db_name == "shopstream" && aws_redshiftserverless_workgroup.warehouse[0].base_capacity == 8
    error_message = "database and capacity are the documented defaults"
  }
  assert {
    condition     = aws_redshiftserverless_workgroup.warehouse[0].publicly_accessible == false && length(aws_vpc_security_group_ingress_rule.warehouse) == 0
    error_message = "the warehouse is not reachable from outside until warehouse_ingress_cidr_blocks says who may connect"
  }
  assert {
    condition     = aws_kinesis_stream.events.encryption_type == "KMS"
    error_message = "the stream is encrypted at rest on AWS"
  }
}

run "firehose_copies_the_staging_columns_with_the_managed_secret" {
  command = plan
  # no ingress CIDR blocks yet: the plan warns that Firehose cannot reach Redshift
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = aws_kinesis_firehose_delivery_stream.warehouse.destination == "redshift"
    error_message = "Firehose delivers to Redshift"
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.warehouse.kinesis_source_configuration[0].kinesis_stream_arn == aws_kinesis_stream.events.arn
    error_message = "Firehose reads the events stream"
  }
  assert {
    condition = (aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].data_table_name == "stg_invoice_lines"
      && aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].data_table_columns == join(",", local.warehouse_staging_columns)
    && aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].copy_options == local.warehouse_copy_options)
    error_message = "the COPY loads the staging table's columns as the transformation writes them"
  }
  assert {
    condition = (aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].secrets_manager_configuration[0].enabled == true
      && aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].username == null
    && aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].password == null)
    error_message = "Firehose signs in with the Secrets Manager secret, never a username and password of its own"
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].secrets_manager_configuration[0].secret_arn == aws_redshiftserverless_namespace.warehouse[0].admin_password_secret_arn
    error_message = "the secret Firehose reads is the one Redshift manages"
  }
  assert {
    condition = (aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].s3_configuration[0].compression_format == "GZIP"
      && aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].s3_configuration[0].buffering_interval == 60
      && aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].s3_configuration[0].buffering_size == 5
      && aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].retry_duration == 3600
    && aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].s3_backup_mode == "Enabled")
    error_message = "GZIP staging, buffering hints, retry duration and source-record backup as documented"
  }
  assert {
    condition = ([for p in aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].processing_configuration[0].processors[0].parameters : p.parameter_value if p.parameter_name == "LambdaArn"]
    == ["arn:aws:lambda:eu-west-1:123456789012:function:shopstream-firehose-transform"])
    error_message = "the transformation Lambda is the processor"
  }
  assert {
    condition     = length(aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].processing_configuration[0].processors[0].parameters) == 1
    error_message = "no processor parameter equal to Firehose's default is written (a permanent diff otherwise)"
  }
  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.delivery) == 1
    error_message = "staging objects expire on AWS"
  }
}

run "the_merge_runs_on_a_schedule_through_the_data_api" {
  command = plan
  # no ingress CIDR blocks yet: the plan warns that Firehose cannot reach Redshift
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = aws_cloudwatch_event_rule.merge.schedule_expression == "rate(5 minutes)"
    error_message = "the merge runs every five minutes by default"
  }
  assert {
    condition     = aws_cloudwatch_event_target.merge.arn == "arn:aws:lambda:eu-west-1:123456789012:function:shopstream-warehouse-merge"
    error_message = "the schedule invokes the merge function"
  }
  assert {
    condition = (aws_lambda_function.function["warehouse-merge"].environment[0].variables["SHOPSTREAM_REDSHIFT_WORKGROUP"] == "shopstream-warehouse"
    && aws_lambda_function.function["warehouse-merge"].environment[0].variables["SHOPSTREAM_REDSHIFT_CLUSTER"] == "")
    error_message = "the merge targets the Serverless workgroup"
  }
}

run "stream_consumers_retry_so_that_nothing_is_archived_twice" {
  command = plan
  # no ingress CIDR blocks yet: the plan warns that Firehose cannot reach Redshift
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = aws_lambda_event_source_mapping.consumer["invoice-writer"].bisect_batch_on_function_error
    error_message = "the invoice writer bisects a failing batch to isolate a poison record"
  }
  assert {
    condition     = !aws_lambda_event_source_mapping.consumer["archive-writer"].bisect_batch_on_function_error
    error_message = "the archive writer retries a batch whole, so its object keys (the batch's sequence range) are overwritten"
  }
  assert {
    condition     = aws_lambda_event_source_mapping.consumer["archive-writer"].batch_size == 10000 && aws_lambda_event_source_mapping.consumer["archive-writer"].maximum_batching_window_in_seconds == 60
    error_message = "the archive writer gathers large batches on AWS"
  }
}

run "provisioned_cluster_by_variable" {
  command = plan

  variables {
    redshift_deployment           = "provisioned"
    warehouse_ingress_cidr_blocks = ["52.19.239.192/27"]
  }

  assert {
    condition     = length(aws_redshift_cluster.warehouse) == 1 && length(aws_redshiftserverless_namespace.warehouse) == 0
    error_message = "redshift_deployment = provisioned deploys a cluster instead"
  }
  assert {
    condition = (aws_redshift_cluster.warehouse[0].manage_master_password == true && aws_redshift_cluster.warehouse[0].master_password == null
    && aws_redshift_cluster.warehouse[0].master_password_wo == null)
    error_message = "Redshift manages the cluster's master password; Terraform writes none"
  }
  assert {
    condition     = aws_redshift_cluster.warehouse[0].encrypted == true && aws_redshift_cluster.warehouse[0].publicly_accessible == true
    error_message = "encrypted, and reachable only as the ingress rules allow"
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.warehouse.redshift_configuration[0].secrets_manager_configuration[0].secret_arn == aws_redshift_cluster.warehouse[0].master_password_secret_arn
    error_message = "Firehose reads the cluster's managed secret"
  }
  assert {
    condition     = [for rule in aws_vpc_security_group_ingress_rule.warehouse : rule.cidr_ipv4] == ["52.19.239.192/27"] && alltrue([for rule in aws_vpc_security_group_ingress_rule.warehouse : rule.from_port == 5439])
    error_message = "only the given CIDR blocks may open a connection, on Redshift's port"
  }
}

run "size_class_thresholds_are_ordered_amounts" {
  command = plan

  variables {
    size_class_medium_from        = "10"
    size_class_large_from         = "5"
    warehouse_ingress_cidr_blocks = ["52.19.239.192/27"]
  }
  expect_failures = [var.size_class_large_from]
}

run "a_size_class_threshold_is_a_number" {
  command = plan

  variables {
    size_class_medium_from        = "ten"
    warehouse_ingress_cidr_blocks = ["52.19.239.192/27"]
  }
  expect_failures = [var.size_class_medium_from]
}

run "names_follow_the_prefix" {
  command = plan
  # no ingress CIDR blocks yet: the plan warns that Firehose cannot reach Redshift
  expect_failures = [check.firehose_can_reach_the_warehouse]

  variables {
    name_prefix = "shop-prod"
  }

  assert {
    condition = (aws_kinesis_stream.events.name == "shop-prod-events" && aws_dynamodb_table.invoices.name == "shop-prod-invoices"
      && aws_sqs_queue.quarantine.name == "shop-prod-quarantine" && aws_apigatewayv2_api.http.name == "shop-prod-http"
    && aws_kinesis_firehose_delivery_stream.warehouse.name == "shop-prod-warehouse")
    error_message = "the stream, table, queue, API and delivery stream are named after name_prefix"
  }
  assert {
    condition     = aws_s3_bucket.archive.bucket == "shop-prod-archive-123456789012-eu-west-1" && aws_s3_bucket.delivery.bucket == "shop-prod-delivery-123456789012-eu-west-1"
    error_message = "bucket names carry the account and the region"
  }
  assert {
    condition = alltrue([for key, fn in aws_lambda_function.function : fn.function_name == "shop-prod-${key}"
    && aws_iam_role.function[key].name == "shop-prod-${key}" && aws_cloudwatch_log_group.function[key].name == "/aws/lambda/shop-prod-${key}"])
    error_message = "each function, its role and its log group are named <prefix>-<function>"
  }
  assert {
    condition     = [for key, queue in aws_sqs_queue.consumer_failures : queue.name] == ["shop-prod-archive-writer-failures", "shop-prod-invoice-writer-failures", "shop-prod-order-notifier-failures"]
    error_message = "one failures queue per stream consumer"
  }
}

run "event_source_mappings_read_the_stream_with_bounded_retries" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition = alltrue([for key, esm in aws_lambda_event_source_mapping.consumer : esm.starting_position == "TRIM_HORIZON"
      && esm.function_response_types == toset(["ReportBatchItemFailures"]) && esm.maximum_retry_attempts == 5
    && esm.parallelization_factor == 1 && esm.event_source_arn == aws_kinesis_stream.events.arn])
    error_message = "every mapping starts at the trim horizon, report partial failures and retry 5 times"
  }
  assert {
    condition = (aws_lambda_event_source_mapping.consumer["invoice-writer"].batch_size == 25
    && aws_lambda_event_source_mapping.consumer["invoice-writer"].maximum_batching_window_in_seconds == 1)
    error_message = "the invoice writer takes 25 records (~4.3 MB base64-encoded) within a second"
  }
  assert {
    condition     = keys(aws_lambda_event_source_mapping.consumer) == ["archive-writer", "invoice-writer", "order-notifier"]
    error_message = "three stream consumers"
  }
}

run "the_api_is_throttled_and_times_out_before_api_gateway" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition = (aws_apigatewayv2_stage.default.default_route_settings[0].throttling_burst_limit == 500
    && aws_apigatewayv2_stage.default.default_route_settings[0].throttling_rate_limit == 1000)
    error_message = "every route is throttled at 1,000 requests/s with bursts of 500 by default"
  }
  assert {
    condition = alltrue([for key, integration in aws_apigatewayv2_integration.function : integration.timeout_milliseconds == 29000
    && aws_lambda_function.function[key].timeout * 1000 < integration.timeout_milliseconds])
    error_message = "integrations time out at 29 s, after their function's own timeout"
  }
  assert {
    condition     = aws_lambda_function.function["ingest"].reserved_concurrent_executions == -1
    error_message = "no concurrency is reserved by default (new accounts cannot reserve)"
  }
  assert {
    condition     = aws_lambda_function.function["ingest"].environment[0].variables["SHOPSTREAM_MAX_BODY_BYTES"] == "2000000"
    error_message = "the ingest function refuses bodies over 2,000,000 bytes, the most it is sure to receive"
  }
  assert {
    condition     = length(aws_apigatewayv2_stage.default.access_log_settings) == 1
    error_message = "the stage writes an access log"
  }
  assert {
    condition     = alltrue([for fn in aws_lambda_function.function : fn.tracing_config[0].mode == "Active"])
    error_message = "every function is traced by X-Ray"
  }
}

run "limits_by_variable" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  variables {
    api_throttling_burst_limit  = 50
    api_throttling_rate_limit   = 100
    ingest_reserved_concurrency = 20
  }

  assert {
    condition = (aws_apigatewayv2_stage.default.default_route_settings[0].throttling_burst_limit == 50
    && aws_apigatewayv2_stage.default.default_route_settings[0].throttling_rate_limit == 100)
    error_message = "stage throttling follows the variables"
  }
  assert {
    condition = (aws_lambda_function.function["ingest"].reserved_concurrent_executions == 20
    && alltrue([for key, fn in aws_lambda_function.function : fn.reserved_concurrent_executions == -1 if key != "ingest"]))
    error_message = "only the ingest function reserves concurrency"
  }
}

run "reserved_concurrency_is_a_whole_number" {
  command = plan

  variables {
    ingest_reserved_concurrency   = 0
    warehouse_ingress_cidr_blocks = ["52.19.239.192/27"]
  }
  expect_failures = [var.ingest_reserved_concurrency]
}

run "data_is_protected_and_encrypted_with_aws_managed_keys" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = aws_dynamodb_table.invoices.deletion_protection_enabled == true && aws_dynamodb_table.invoices.point_in_time_recovery[0].enabled == true
    error_message = "the table is protected from deletion and keeps continuous backups on AWS"
  }
  assert {
    condition     = aws_dynamodb_table.invoices.server_side_encryption[0].enabled == false
    error_message = "without a customer key the table is encrypted with the AWS-owned key"
  }
  assert {
    condition     = aws_kinesis_stream.events.encryption_type == "KMS" && aws_kinesis_stream.events.kms_key_id == "alias/aws/kinesis"
    error_message = "the stream is encrypted with the AWS-managed key"
  }
  assert {
    condition     = alltrue([for queue in concat([aws_sqs_queue.quarantine], values(aws_sqs_queue.consumer_failures)) : queue.sqs_managed_sse_enabled == true])
    error_message = "every queue is encrypted with SQS-managed keys"
  }
  assert {
    condition = alltrue([for config in concat([aws_s3_bucket_server_side_encryption_configuration.archive, aws_s3_bucket_server_side_encryption_configuration.delivery], values(aws_s3_bucket_server_side_encryption_configuration.drop)) :
      [for rule in config.rule : [for d in rule.apply_server_side_encryption_by_default : d.sse_algorithm][0]][0] == "aws:kms"
    && [for rule in config.rule : rule.bucket_key_enabled][0] == true])
    error_message = "both buckets encrypt every object with SSE-KMS and bucket keys"
  }
  assert {
    condition = alltrue([for block in [aws_s3_bucket_public_access_block.archive, aws_s3_bucket_public_access_block.delivery] :
    block.block_public_acls && block.block_public_policy && block.ignore_public_acls && block.restrict_public_buckets])
    error_message = "neither bucket can be made public"
  }
  assert {
    condition     = keys(data.aws_iam_policy_document.tls_only) == ["archive", "delivery", "drop_archive", "drops"]
    error_message = "every bucket has a TLS-only policy"
  }
  assert {
    condition     = alltrue([for doc in data.aws_iam_policy_document.tls_only : length(doc.statement) == 1 && doc.statement[0].effect == "Deny"])
    error_message = "each bucket's policy is one Deny"
  }
  assert {
    condition     = alltrue([for doc in data.aws_iam_policy_document.tls_only : doc.statement[0].actions == toset(["s3:*"])])
    error_message = "each bucket's policy refuses every action"
  }
  assert {
    condition     = alltrue([for doc in data.aws_iam_policy_document.tls_only : [for c in doc.statement[0].condition : [c.test, c.variable]] == [["Bool", "aws:SecureTransport"]]])
    error_message = "each bucket's policy applies to requests without TLS"
  }
  assert {
    condition     = alltrue([for doc in data.aws_iam_policy_document.tls_only : [for c in doc.statement[0].condition : one(c.values)] == ["false"]])
    error_message = "each bucket's policy applies when aws:SecureTransport is false"
  }
  assert {
    condition     = alltrue([for key, doc in data.aws_iam_policy_document.tls_only : doc.statement[0].resources == toset([local.bucket_arns[key], "${local.bucket_arns[key]}/*"])])
    error_message = "each bucket's policy refuses every request made without TLS"
  }
  assert {
    condition     = aws_s3_bucket_policy.archive[0].bucket == aws_s3_bucket.archive.id && aws_s3_bucket_policy.delivery[0].bucket == aws_s3_bucket.delivery.id
    error_message = "the TLS-only policies are attached to both buckets"
  }
  assert {
    condition     = alltrue([for group in concat(values(aws_cloudwatch_log_group.function), [aws_cloudwatch_log_group.firehose, aws_cloudwatch_log_group.api_access]) : group.retention_in_days == 365])
    error_message = "every log group keeps a year"
  }
}

run "a_customer_key_encrypts_everything_at_rest" {
  command = plan

  variables {
    kms_key_arn                   = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    redshift_deployment           = "provisioned"
    warehouse_ingress_cidr_blocks = ["52.19.239.192/27"]
  }

  assert {
    condition = (aws_kinesis_stream.events.kms_key_id == var.kms_key_arn
      && aws_dynamodb_table.invoices.server_side_encryption[0].enabled && aws_dynamodb_table.invoices.server_side_encryption[0].kms_key_arn == var.kms_key_arn
    && alltrue([for queue in concat([aws_sqs_queue.quarantine], values(aws_sqs_queue.consumer_failures)) : queue.kms_master_key_id == var.kms_key_arn]))
    error_message = "the stream, the table and the queues use the customer key"
  }
  assert {
    condition = alltrue([for config in concat([aws_s3_bucket_server_side_encryption_configuration.archive, aws_s3_bucket_server_side_encryption_configuration.delivery], values(aws_s3_bucket_server_side_encryption_configuration.drop)) :
    [for rule in config.rule : [for d in rule.apply_server_side_encryption_by_default : d.kms_master_key_id][0]][0] == var.kms_key_arn])
    error_message = "every bucket uses the customer key"
  }
  assert {
    condition = (alltrue([for group in concat(values(aws_cloudwatch_log_group.function), [aws_cloudwatch_log_group.firehose, aws_cloudwatch_log_group.api_access]) : group.kms_key_id == var.kms_key_arn])
    && alltrue([for fn in aws_lambda_function.function : fn.kms_key_arn == var.kms_key_arn]))
    error_message = "log groups and the functions' environments use the customer key"
  }
  assert {
    condition     = aws_redshift_cluster.warehouse[0].kms_key_id == var.kms_key_arn && aws_redshift_cluster.warehouse[0].master_password_secret_kms_key_id == var.kms_key_arn
    error_message = "Redshift and the secret it manages use the customer key"
  }
  assert {
    condition = alltrue([for key, statements in local.role_statements : contains([for s in statements : s.sid], "UseDataKey")
    && [for s in statements : s.resources if s.sid == "UseDataKey"] == [[var.kms_key_arn]]])
    error_message = "every function's role may use the key, and only that key"
  }
  assert {
    condition     = length([for s in data.aws_iam_policy_document.firehose.statement : s if s.sid == "UseDataKey"]) == 1
    error_message = "Firehose's role may use the key"
  }
  assert {
    condition = (aws_cloudwatch_log_group.pre_token_generation[0].kms_key_id == var.kms_key_arn && aws_lambda_function.pre_token_generation[0].kms_key_arn == var.kms_key_arn
    && [for s in local.pre_token_generation_statements : s.resources if s.sid == "UseDataKey"] == [[var.kms_key_arn]])
    error_message = "the user pool's trigger logs and keeps its environment under the customer key, which its role may use"
  }
  assert {
    condition     = length(aws_redshift_subnet_group.warehouse) == 1 && aws_redshift_cluster.warehouse[0].cluster_subnet_group_name == "shopstream-warehouse"
    error_message = "the provisioned cluster is placed in the warehouse's subnets"
  }
}

run "deletion_protection_can_be_turned_off" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  variables {
    deletion_protection = false
  }

  assert {
    condition     = aws_dynamodb_table.invoices.deletion_protection_enabled == false
    error_message = "deletion_protection = false lets terraform destroy delete the table"
  }
}

run "roles_allow_only_what_each_function_calls" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = alltrue(flatten([for key, statements in local.role_statements : [for s in statements : [for a in s.actions : !strcontains(a, "*")]]]))
    error_message = "no function's statement allows a wildcard action"
  }
  assert {
    condition     = alltrue(flatten([for s in data.aws_iam_policy_document.firehose.statement : [for a in s.actions : !strcontains(a, "*")]]))
    error_message = "no statement of Firehose's role allows a wildcard action"
  }
  assert {
    condition     = [for s in local.role_statements["ingest"] : s.actions if s.sid == "PutEvents"] == [["kinesis:PutRecords", "kinesis:ListShards"]]
    error_message = "ingest puts records and lists shards, nothing else on the stream"
  }
  assert {
    condition     = [for s in local.role_statements["invoice-writer"] : s.actions if s.sid == "WriteInvoices"] == [["dynamodb:BatchWriteItem", "dynamodb:PutItem"]]
    error_message = "the invoice writer only batch-writes the table, and puts the first item of a versioned invoice"
  }
  assert {
    condition = ([for s in local.role_statements["batch"] : s.sid] == ["WriteOwnLogs", "WriteTraces", "TakeDroppedFiles",
      "ArchiveFiles", "SeeArchivedFiles", "PutEvents", "KeepLedger", "AnnounceFiles", "QuarantineRows", "ReadDimensions",
      "FollowStatements", "ReadWarehouseSecret"]
    && [for s in local.role_statements["batch"] : s.actions if s.sid == "ReadDimensions"] == [["redshift-data:ExecuteStatement"]])
    error_message = "the batch function reads and clears the drop bucket, archives, puts events, keeps its ledger, announces, quarantines and only reads the dimensions"
  }
  assert {
    condition = (length(aws_s3_bucket_notification.drops.lambda_function) == 2
      && alltrue([for f in aws_s3_bucket_notification.drops.lambda_function : f.events == toset(["s3:ObjectCreated:*"])])
      && toset([for f in aws_s3_bucket_notification.drops.lambda_function : f.filter_prefix]) == toset(["transactions/", "continuations/"])
    && aws_lambda_permission.drops.principal == "s3.amazonaws.com" && length(aws_lambda_function_recursion_config.batch) == 1)
    error_message = "files under transactions/ and the loader's continuation markers invoke the batch function, which may loop through S3 on purpose"
  }
  assert {
    condition     = [for s in local.role_statements["query-api"] : s.actions if s.sid == "ReadInvoices"] == [["dynamodb:Query"]]
    error_message = "the query API only queries the table and its index"
  }
  assert {
    condition     = [for s in local.role_statements["firehose-transform"] : s.sid] == ["WriteOwnLogs", "WriteTraces"]
    error_message = "the transformation writes only its logs and traces"
  }
  assert {
    condition     = alltrue([for key, role in aws_iam_role.function : role.name == "shopstream-${key}"]) && length(aws_iam_role.function) == 8
    error_message = "one role per function"
  }
}

run "every_alarm_notifies_the_alerts_topic" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition = (length(aws_cloudwatch_metric_alarm.stream) == 5 && length(aws_cloudwatch_metric_alarm.consumer_iterator_age) == 3
      && length(aws_cloudwatch_metric_alarm.queue_depth) == 4 && length(aws_cloudwatch_metric_alarm.function_errors) == 8
      && length(aws_cloudwatch_metric_alarm.function_throttles) == 8 && length(aws_cloudwatch_metric_alarm.table_throttles) == 4
    && length(aws_cloudwatch_metric_alarm.firehose) == 4 && length(local.all_alarm_arns) == 40 && length(aws_cloudwatch_metric_alarm.pre_token_generation_errors) == 1)
    error_message = "40 alarms: the stream (5), each consumer's lag (3), every failures queue and the quarantine (4), each function's errors and throttles (16), the API (1), the table (4), Firehose (4), large-order and file-outcome deliveries (2), the Cognito trigger's errors (1)"
  }
  assert {
    condition = alltrue([for alarm in concat(values(aws_cloudwatch_metric_alarm.stream), values(aws_cloudwatch_metric_alarm.consumer_iterator_age),
      values(aws_cloudwatch_metric_alarm.queue_depth), values(aws_cloudwatch_metric_alarm.function_errors), values(aws_cloudwatch_metric_alarm.function_throttles),
      [aws_cloudwatch_metric_alarm.api_5xx], values(aws_cloudwatch_metric_alarm.table_throttles), values(aws_cloudwatch_metric_alarm.firehose),
      [aws_cloudwatch_metric_alarm.large_orders_delivery], aws_cloudwatch_metric_alarm.pre_token_generation_errors) :
      alarm.alarm_actions == toset([aws_sns_topic.alerts.arn]) && alarm.ok_actions == toset([aws_sns_topic.alerts.arn])
    && alarm.actions_enabled != false && contains(["breaching", "notBreaching"], alarm.treat_missing_data)])
    error_message = "every alarm notifies the alerts topic when it goes to ALARM and when it is OK again, and says how it treats missing data"
  }
  assert {
    condition     = aws_sns_topic.alerts.name == "shopstream-alerts" && length(aws_sns_topic_subscription.alert_email) == 0
    error_message = "one alerts topic, with no subscription until alert_emails names someone"
  }
  assert {
    condition     = aws_sns_topic.alerts.kms_master_key_id == aws_kms_key.alerts[0].arn && aws_kms_key.alerts[0].enable_key_rotation
    error_message = "without a customer key the topic is encrypted with a rotated key of its own (CloudWatch cannot publish to a topic under alias/aws/sns)"
  }
  assert {
    condition = [for st in data.aws_iam_policy_document.alerts_key[0].statement : [
      one(st.principals).type, one(st.principals).identifiers == toset(["cloudwatch.amazonaws.com"]),
      st.actions == toset(["kms:Decrypt", "kms:GenerateDataKey*"]),
      one(st.condition).test, one(st.condition).variable, one(st.condition).values == tolist(["123456789012"]),
    ] if st.sid == "CloudWatchAlarmsPublish"] == [["Service", true, true, "StringEquals", "aws:SourceAccount", true]]
    error_message = "the topic's key lets CloudWatch alarms of this account publish"
  }
  assert {
    condition     = output.alerts_topic_arn == aws_sns_topic.alerts.arn
    error_message = "the topic's ARN is an output, to subscribe paging or chat to"
  }
}

run "alarm_thresholds_and_metrics" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition = (aws_cloudwatch_metric_alarm.stream["iterator-age"].metric_name == "GetRecords.IteratorAgeMilliseconds"
      && aws_cloudwatch_metric_alarm.stream["iterator-age"].statistic == "Maximum"
      && aws_cloudwatch_metric_alarm.stream["iterator-age"].comparison_operator == "GreaterThanOrEqualToThreshold"
      && aws_cloudwatch_metric_alarm.stream["iterator-age"].threshold == 60000
    && aws_cloudwatch_metric_alarm.stream["iterator-age"].treat_missing_data == "breaching")
    error_message = "the stream's iterator age alarms at 60 s (Maximum), and when nobody reads the stream"
  }
  assert {
    condition = alltrue([for key in ["read-throughput-exceeded", "write-throughput-exceeded"] :
      aws_cloudwatch_metric_alarm.stream[key].statistic == "Average" && aws_cloudwatch_metric_alarm.stream[key].threshold == 0.01
    && aws_cloudwatch_metric_alarm.stream[key].comparison_operator == "GreaterThanOrEqualToThreshold"])
    error_message = "read and write throughput exceeded alarm at 0.01 (Average)"
  }
  assert {
    condition = (aws_cloudwatch_metric_alarm.stream["read-throughput-exceeded"].metric_name == "ReadProvisionedThroughputExceeded"
    && aws_cloudwatch_metric_alarm.stream["write-throughput-exceeded"].metric_name == "WriteProvisionedThroughputExceeded")
    error_message = "the throughput alarms watch Kinesis's ProvisionedThroughputExceeded metrics"
  }
  assert {
    condition = (aws_cloudwatch_metric_alarm.stream["put-records-success"].metric_name == "PutRecords.Success"
      && aws_cloudwatch_metric_alarm.stream["put-records-success"].threshold == 0.95
      && aws_cloudwatch_metric_alarm.stream["get-records-success"].metric_name == "GetRecords.Success"
      && aws_cloudwatch_metric_alarm.stream["get-records-success"].threshold == 0.98
      && alltrue([for key in ["put-records-success", "get-records-success"] :
    aws_cloudwatch_metric_alarm.stream[key].statistic == "Average" && aws_cloudwatch_metric_alarm.stream[key].comparison_operator == "LessThanOrEqualToThreshold"]))
    error_message = "PutRecords.Success at or below 0.95 and GetRecords.Success at or below 0.98 (Average) alarm"
  }
  assert {
    condition = alltrue([for alarm in aws_cloudwatch_metric_alarm.stream :
    alarm.namespace == "AWS/Kinesis" && alarm.dimensions == tomap({ StreamName = "shopstream-events" })])
    error_message = "the stream alarms watch the events stream"
  }
  assert {
    condition = (aws_cloudwatch_metric_alarm.consumer_iterator_age["invoice-writer"].threshold == 61000
      && aws_cloudwatch_metric_alarm.consumer_iterator_age["archive-writer"].threshold == 120000
      && alltrue([for key, alarm in aws_cloudwatch_metric_alarm.consumer_iterator_age :
        alarm.namespace == "AWS/Lambda" && alarm.metric_name == "IteratorAge" && alarm.statistic == "Maximum"
    && alarm.dimensions == tomap({ FunctionName = "shopstream-${key}" })]))
    error_message = "each consumer's IteratorAge alarms at 60 s plus its mapping's batching window"
  }
  assert {
    condition = (keys(aws_cloudwatch_metric_alarm.queue_depth) == ["archive-writer-failures", "invoice-writer-failures", "order-notifier-failures", "quarantine"]
      && alltrue([for key, alarm in aws_cloudwatch_metric_alarm.queue_depth :
        alarm.namespace == "AWS/SQS" && alarm.metric_name == "ApproximateNumberOfMessagesVisible" && alarm.dimensions == tomap({ QueueName = "shopstream-${key}" })
    && alarm.threshold == 1 && alarm.comparison_operator == "GreaterThanOrEqualToThreshold"]))
    error_message = "every failures queue and the quarantine alarm at one visible message"
  }
  assert {
    condition = (keys(aws_cloudwatch_metric_alarm.function_errors) == keys(local.functions) && keys(aws_cloudwatch_metric_alarm.function_throttles) == keys(local.functions)
      && alltrue([for key, alarm in aws_cloudwatch_metric_alarm.function_errors :
      alarm.namespace == "AWS/Lambda" && alarm.metric_name == "Errors" && alarm.dimensions == tomap({ FunctionName = "shopstream-${key}" }) && alarm.threshold == 1])
      && alltrue([for key, alarm in aws_cloudwatch_metric_alarm.function_throttles :
    alarm.namespace == "AWS/Lambda" && alarm.metric_name == "Throttles" && alarm.dimensions == tomap({ FunctionName = "shopstream-${key}" }) && alarm.threshold == 1]))
    error_message = "one Errors and one Throttles alarm per function, the merge's among them"
  }
  assert {
    condition = (aws_cloudwatch_metric_alarm.api_5xx.threshold == 5 && aws_cloudwatch_metric_alarm.api_5xx.comparison_operator == "GreaterThanOrEqualToThreshold"
      && [for q in aws_cloudwatch_metric_alarm.api_5xx.metric_query : q.expression if q.return_data == true] == ["IF(requests > 0, 100 * errors / requests, 0)"]
      && jsonencode({ for q in aws_cloudwatch_metric_alarm.api_5xx.metric_query : q.id => [for m in q.metric : [m.namespace, m.metric_name, m.stat, m.dimensions.Stage]] }) == jsonencode({
        rate     = []
        errors   = [["AWS/ApiGateway", "5xx", "Sum", "$default"]]
        requests = [["AWS/ApiGateway", "Count", "Sum", "$default"]]
    }))
    error_message = "the API alarms when 5% or more of its requests on the stage are answered 5xx"
  }
  assert {
    condition = (jsonencode({ for key, alarm in aws_cloudwatch_metric_alarm.table_throttles : key => [alarm.namespace, alarm.metric_name, alarm.dimensions] }) == jsonencode({
      "table-read"  = ["AWS/DynamoDB", "ReadThrottleEvents", { TableName = "shopstream-invoices" }]
      "table-write" = ["AWS/DynamoDB", "WriteThrottleEvents", { TableName = "shopstream-invoices" }]
      "index-read"  = ["AWS/DynamoDB", "ReadThrottleEvents", { TableName = "shopstream-invoices", GlobalSecondaryIndexName = "customer-invoices" }]
      "index-write" = ["AWS/DynamoDB", "WriteThrottleEvents", { TableName = "shopstream-invoices", GlobalSecondaryIndexName = "customer-invoices" }]
    }))
    error_message = "the table's and its index's read and write throttles alarm"
  }
  assert {
    condition = (jsonencode({ for key, alarm in aws_cloudwatch_metric_alarm.firehose : key => [alarm.metric_name, alarm.statistic, alarm.comparison_operator, alarm.threshold] }) == jsonencode({
      "freshness"        = ["DeliveryToS3.DataFreshness", "Maximum", "GreaterThanOrEqualToThreshold", 900]
      "staging-failed"   = ["DeliveryToS3.Success", "Minimum", "LessThanThreshold", 1]
      "copy-failed"      = ["DeliveryToRedshift.Success", "Minimum", "LessThanThreshold", 1]
      "transform-failed" = ["ExecuteProcessing.Success", "Minimum", "LessThanThreshold", 1]
      }) && alltrue([for alarm in aws_cloudwatch_metric_alarm.firehose :
    alarm.namespace == "AWS/Firehose" && alarm.dimensions == tomap({ DeliveryStreamName = "shopstream-warehouse" })]))
    error_message = "Firehose alarms on its staging's freshness and on any failed staging write, COPY or transformation"
  }
}

run "alarm_thresholds_and_recipients_by_variable" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  variables {
    alert_emails                     = ["ops@example.com", "oncall@example.com"]
    alarm_iterator_age_seconds       = 300
    alarm_throughput_exceeded_ratio  = 0.05
    alarm_api_5xx_percent            = 1
    alarm_firehose_freshness_seconds = 1800
  }

  assert {
    condition = (aws_cloudwatch_metric_alarm.stream["iterator-age"].threshold == 300000
      && aws_cloudwatch_metric_alarm.consumer_iterator_age["archive-writer"].threshold == 360000
      && aws_cloudwatch_metric_alarm.stream["write-throughput-exceeded"].threshold == 0.05
    && aws_cloudwatch_metric_alarm.api_5xx.threshold == 1 && aws_cloudwatch_metric_alarm.firehose["freshness"].threshold == 1800)
    error_message = "thresholds follow their variables"
  }
  assert {
    condition = (jsonencode({ for address, s in aws_sns_topic_subscription.alert_email : address => [s.protocol, s.endpoint, s.topic_arn] }) == jsonencode({
      "ops@example.com"    = ["email", "ops@example.com", "arn:aws:sns:eu-west-1:123456789012:shopstream-alerts"]
      "oncall@example.com" = ["email", "oncall@example.com", "arn:aws:sns:eu-west-1:123456789012:shopstream-alerts"]
    }))
    error_message = "each address in alert_emails is subscribed to the alerts topic"
  }
}

run "an_alert_address_must_be_an_email" {
  command = plan

  variables {
    alert_emails = ["not an address"]
  }

  expect_failures = [var.alert_emails, check.firehose_can_reach_the_warehouse]
}

run "a_customer_key_encrypts_the_alerts_topic" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = aws_sns_topic.alerts.kms_master_key_id == var.kms_key_arn && length(aws_kms_key.alerts) == 0 && length(aws_kms_alias.alerts) == 0
    error_message = "with kms_key_arn the topic uses that key (whose policy must let CloudWatch use it) and no key of its own is made"
  }
  assert {
    condition = (aws_sns_topic.large_orders.kms_master_key_id == var.kms_key_arn
    && aws_dynamodb_table.order_notifications.server_side_encryption[0].kms_key_arn == var.kms_key_arn)
    error_message = "with kms_key_arn the large-orders topic and its ledger use that key"
  }
}

run "the_dashboard_shows_every_alarm_and_what_it_watches" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = aws_cloudwatch_dashboard.pipeline.dashboard_name == "shopstream" && output.dashboard_name == "shopstream"
    error_message = "one dashboard, named after the prefix"
  }
  assert {
    condition = alltrue([for alarm in concat(values(aws_cloudwatch_metric_alarm.stream), values(aws_cloudwatch_metric_alarm.consumer_iterator_age),
      values(aws_cloudwatch_metric_alarm.queue_depth), values(aws_cloudwatch_metric_alarm.function_errors), values(aws_cloudwatch_metric_alarm.function_throttles),
      values(aws_cloudwatch_metric_alarm.table_throttles), values(aws_cloudwatch_metric_alarm.firehose)) :
      anytrue([for row in local.dashboard_rows : anytrue([for m in row.metrics :
    m[0] == alarm.namespace && m[1] == alarm.metric_name && alltrue([for name, value in alarm.dimensions : contains([for x in m : x if can(tostring(x))], name) && contains([for x in m : x if can(tostring(x))], value)])])])])
    error_message = "every alarm's metric, with its dimensions, is on a widget"
  }
  assert {
    condition     = anytrue([for row in local.dashboard_rows : anytrue([for m in row.metrics : m[0] == "AWS/ApiGateway" && m[1] == "5xx"])])
    error_message = "the API's 5xx are on a widget"
  }
  assert {
    condition     = length(local.dashboard_rows) == 14 && length(local.all_alarm_arns) == 40
    error_message = "an alarm status widget over all 40 alarms, and 14 metric widgets"
  }
}

run "every_function_logs_json_and_is_traced" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition = length(aws_lambda_function.function) == 8 && alltrue([for key, fn in aws_lambda_function.function :
      fn.tracing_config[0].mode == "Active" && fn.logging_config[0].log_format == "JSON"
      && fn.logging_config[0].log_group == "/aws/lambda/shopstream-${key}"
    && fn.logging_config[0].application_log_level == "INFO" && fn.logging_config[0].system_log_level == "INFO"])
    error_message = "every function is traced (Active) and logs JSON into its own log group, at the log level"
  }
  assert {
    condition = alltrue([for key, statements in local.role_statements :
    [for s in statements : s.actions if s.sid == "WriteTraces"] == [["xray:PutTraceSegments", "xray:PutTelemetryRecords"]]])
    error_message = "every function's role may write its traces"
  }
}

run "the_log_level_in_lambdas_terms" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  variables {
    log_level = "WARNING"
  }

  assert {
    condition     = alltrue([for fn in concat(values(aws_lambda_function.function), aws_lambda_function.pre_token_generation) : fn.logging_config[0].application_log_level == "WARN"])
    error_message = "Powertools' WARNING is Lambda's WARN"
  }
}

run "every_route_but_the_document_needs_a_token_with_its_scopes" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = aws_apigatewayv2_authorizer.jwt[0].authorizer_type == "JWT" && aws_apigatewayv2_authorizer.jwt[0].identity_sources == toset(["$request.header.Authorization"])
    error_message = "one JWT authorizer reads the bearer token of the Authorization header"
  }
  assert {
    condition     = sort(keys(aws_apigatewayv2_route.route)) == sort(["POST /events", "GET /invoices/{invoice_no}", "GET /customers/{customer_id}/invoices"])
    error_message = "every route but the OpenAPI document is an authorized route"
  }
  assert {
    condition     = alltrue([for route in aws_apigatewayv2_route.route : route.authorization_type == "JWT"])
    error_message = "every authorized route uses the JWT authorizer"
  }
  assert {
    condition     = aws_apigatewayv2_route.route["POST /events"].authorization_scopes == toset(["shopstream/events.write"])
    error_message = "only producers (events.write) may send events"
  }
  assert {
    condition = alltrue([for key in ["GET /invoices/{invoice_no}", "GET /customers/{customer_id}/invoices"] :
    aws_apigatewayv2_route.route[key].authorization_scopes == toset(["shopstream/invoices.read", "shopstream/invoices.read.own"])])
    error_message = "reading needs staff's scope or a customer's own"
  }
  assert {
    condition     = keys(aws_apigatewayv2_route.public) == ["GET /openapi.json"] && aws_apigatewayv2_route.public["GET /openapi.json"].authorization_type == "NONE"
    error_message = "only the OpenAPI document is public"
  }
  assert {
    condition     = length(aws_cognito_user_pool.api) == 1 && keys(aws_cognito_user_pool_client.producer) == ["replay"]
    error_message = "without jwt_issuer a Cognito user pool issues the tokens, with one app client per producer"
  }
  assert {
    condition     = alltrue([for client in aws_cognito_user_pool_client.producer : client.allowed_oauth_flows == toset(["client_credentials"]) && client.allowed_oauth_scopes == toset(["shopstream/events.write"])])
    error_message = "producers sign in with the client-credentials grant and may only write events"
  }
  assert {
    condition     = aws_cognito_user_pool_client.staff[0].allowed_oauth_scopes == toset(["shopstream/invoices.read"]) && aws_cognito_user_pool_client.customers[0].allowed_oauth_scopes == toset(["openid", "shopstream/invoices.read.own"])
    error_message = "staff read everything, customers their own"
  }
  assert {
    condition     = length(local.jwt_audience) == 3
    error_message = "the authorizer accepts the user pool's three app clients"
  }
  assert {
    condition     = [for s in local.role_statements["ingest"] : s.actions if s.sid == "ClaimInvoices"] == [["dynamodb:BatchGetItem", "dynamodb:PutItem"]]
    error_message = "ingest only reads owners and puts (claims) items in the owners table"
  }
  assert {
    condition     = aws_lambda_function.function["ingest"].environment[0].variables["SHOPSTREAM_API_AUTH"] == "jwt" && aws_lambda_function.function["query-api"].environment[0].variables["SHOPSTREAM_API_AUTH"] == "jwt"
    error_message = "the API functions check the caller's claims"
  }
}

run "customer_tokens_get_their_number_from_the_pre_token_generation_trigger" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  assert {
    condition     = aws_cognito_user_pool.api[0].user_pool_tier == "ESSENTIALS"
    error_message = "the pool is on the Essentials plan, the least whose trigger may change access tokens"
  }
  assert {
    condition = ([for c in aws_cognito_user_pool.api[0].lambda_config[0].pre_token_generation_config : [c.lambda_version, c.lambda_arn]]
    == [["V2_0", "arn:aws:lambda:eu-west-1:123456789012:function:shopstream-pre-token-generation"]])
    error_message = "the pool sends version 2 pre token generation events to the trigger"
  }
  assert {
    condition = (aws_lambda_permission.pre_token_generation[0].principal == "cognito-idp.amazonaws.com"
      && aws_lambda_permission.pre_token_generation[0].action == "lambda:InvokeFunction"
      && aws_lambda_permission.pre_token_generation[0].function_name == "shopstream-pre-token-generation"
    && aws_lambda_permission.pre_token_generation[0].source_arn == "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Ab12Cd34E")
    error_message = "Cognito may invoke the trigger, for this user pool only"
  }
  assert {
    condition = ([for a in aws_cognito_user_pool.api[0].schema : [a.name, a.attribute_data_type, a.mutable, a.developer_only_attribute,
      [for c in a.string_attribute_constraints : [c.min_length, c.max_length]]]]
    == [["customer_id", "String", false, false, [["1", "20"]]]])
    error_message = "the pool's one custom attribute is customer_id: a string of 1 to 20 characters, immutable once a user is enrolled"
  }
  assert {
    condition = alltrue([for client in concat(values(aws_cognito_user_pool_client.producer), aws_cognito_user_pool_client.staff, aws_cognito_user_pool_client.customers) :
    client.write_attributes == toset(["name"]) && !contains(client.write_attributes, "custom:customer_id")])
    error_message = "every app client names what users may write (else every mutable attribute), and none may write custom:customer_id"
  }
  assert {
    condition = (aws_lambda_function.pre_token_generation[0].function_name == "shopstream-pre-token-generation"
      && aws_lambda_function.pre_token_generation[0].handler == "identity.handler.lambda_handler"
      && aws_lambda_function.pre_token_generation[0].timeout <= 5
    && local.pre_token_generation.layers == ["deps"] && length(aws_lambda_function.pre_token_generation[0].layers) == 1)
    error_message = "the trigger runs identity/handler.py with the deps layer, within the 5 s Cognito waits"
  }
  assert {
    condition = (aws_lambda_function.pre_token_generation[0].tracing_config[0].mode == "Active"
      && aws_lambda_function.pre_token_generation[0].logging_config[0].log_format == "JSON"
      && aws_lambda_function.pre_token_generation[0].logging_config[0].log_group == "/aws/lambda/shopstream-pre-token-generation"
      && aws_cloudwatch_log_group.pre_token_generation[0].retention_in_days == 365
    && aws_lambda_function.pre_token_generation[0].logging_config[0].application_log_level == "INFO")
    error_message = "the trigger is traced and logs JSON into its own log group, kept a year, like every function"
  }
  assert {
    condition     = keys(aws_lambda_function.pre_token_generation[0].environment[0].variables) == tolist(["POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_SERVICE_NAME"])
    error_message = "the trigger reads no setting: its environment is Powertools' only"
  }
  assert {
    condition = (aws_iam_role.pre_token_generation[0].name == "shopstream-pre-token-generation"
      && [for s in local.pre_token_generation_statements : s.sid] == ["WriteOwnLogs", "WriteTraces"]
    && [for s in local.pre_token_generation_statements : s.resources if s.sid == "WriteOwnLogs"] == [["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/shopstream-pre-token-generation:*"]])
    error_message = "the trigger has a role of its own that writes only its logs and traces"
  }
  assert {
    condition     = alltrue(flatten([for s in local.pre_token_generation_statements : [for a in s.actions : !strcontains(a, "*")]]))
    error_message = "no statement of the trigger's role allows a wildcard action"
  }
}

run "an_external_issuer_replaces_the_user_pool" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  variables {
    jwt_issuer   = "https://issuer.example.com/"
    jwt_audience = ["shopstream-api"]
  }

  assert {
    condition     = length(aws_cognito_user_pool.api) == 0 && length(aws_cognito_user_pool_client.producer) == 0
    error_message = "no user pool when an issuer is given"
  }
  assert {
    condition = (length(aws_lambda_function.pre_token_generation) == 0 && length(aws_lambda_permission.pre_token_generation) == 0
    && length(aws_iam_role.pre_token_generation) == 0 && length(aws_cloudwatch_log_group.pre_token_generation) == 0)
    error_message = "no pre token generation trigger without the user pool: the issuer sets customer_id itself"
  }
  assert {
    condition     = aws_apigatewayv2_authorizer.jwt[0].jwt_configuration[0].issuer == "https://issuer.example.com/" && aws_apigatewayv2_authorizer.jwt[0].jwt_configuration[0].audience == toset(["shopstream-api"])
    error_message = "the authorizer trusts the given issuer and audience"
  }
}

run "auth_cannot_be_turned_off_on_aws" {
  command = plan

  variables {
    api_auth                      = false
    warehouse_ingress_cidr_blocks = ["52.19.239.192/27"]
  }

  expect_failures = [var.api_auth]
}

run "large_orders_are_announced_on_their_own_encrypted_topic_from_a_threshold" {
  command         = plan
  expect_failures = [check.firehose_can_reach_the_warehouse]

  variables {
    large_order_threshold = "2500.50"
    large_order_emails    = ["sales@example.com"]
  }

  assert {
    condition     = aws_sns_topic.large_orders.name == "shopstream-large-orders" && aws_sns_topic.large_orders.kms_master_key_id == "alias/aws/sns"
    error_message = "the large-orders topic is encrypted with the AWS-managed key (only the function publishes to it)"
  }
  assert {
    condition     = aws_lambda_function.function["order-notifier"].environment[0].variables["SHOPSTREAM_LARGE_ORDER_FROM"] == "2500.50"
    error_message = "the notifier's threshold is large_order_threshold, exactly as written"
  }
  assert {
    condition = (aws_lambda_event_source_mapping.consumer["order-notifier"].batch_size == 25
      && aws_lambda_event_source_mapping.consumer["order-notifier"].bisect_batch_on_function_error
    && aws_sqs_queue.consumer_failures["order-notifier"].name == "shopstream-order-notifier-failures")
    error_message = "the notifier reads the stream like the invoice writer (a failing batch bisected), with its own failures queue"
  }
  assert {
    condition = ([for s in local.role_statements["order-notifier"] : s.sid] == ["WriteOwnLogs", "WriteTraces", "ReadEvents", "ListStreams", "KeepLedger", "AnnounceLargeOrders", "SendFailures"]
      && [for s in local.role_statements["order-notifier"] : s.actions if s.sid == "KeepLedger"] == [["dynamodb:GetItem", "dynamodb:PutItem"]]
    && [for s in local.role_statements["order-notifier"] : s.actions if s.sid == "AnnounceLargeOrders"] == [["sns:Publish"]])
    error_message = "the notifier may read the stream, keep its ledger and publish to its topic, nothing more"
  }
  assert {
    condition = (aws_dynamodb_table.order_notifications.deletion_protection_enabled && aws_dynamodb_table.order_notifications.point_in_time_recovery[0].enabled
    && aws_dynamodb_table.order_notifications.hash_key == "invoice_no")
    error_message = "the ledger of announced invoices is protected like the invoices table"
  }
  assert {
    condition     = [for s in aws_sns_topic_subscription.large_order_email : [s.protocol, s.endpoint]] == [["email", "sales@example.com"]]
    error_message = "each address in large_order_emails is subscribed to the large-orders topic"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.large_orders_delivery.dimensions == tomap({ TopicName = "shopstream-large-orders" }) && aws_cloudwatch_metric_alarm.large_orders_delivery.metric_name == "NumberOfNotificationsFailed"
    error_message = "a notification SNS could not deliver raises an alarm"
  }
}

run "a_large_order_threshold_is_a_positive_amount" {
  command = plan

  variables {
    large_order_threshold = "0"
  }

  expect_failures = [var.large_order_threshold, check.firehose_can_reach_the_warehouse]
}
