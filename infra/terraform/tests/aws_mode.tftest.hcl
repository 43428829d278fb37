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
  target          = aws_kinesis_stream.events
  override_during = plan
  values = {
    arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/shopstream-events"
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
