# One role per function, each allowed only what its function does.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

locals {
  # Statements per function, on top of writing its own logs.
  function_statements = {
    "ingest" = [
      {
        sid       = "PutEvents"
        actions   = ["kinesis:PutRecords", "kinesis:ListShards", "kinesis:DescribeStreamSummary"]
        resources = [aws_kinesis_stream.events.arn]
      },
    ]
    "invoice-writer" = [
      {
        # what the event source mapping reads the stream with (it uses this role)
        sid = "ReadEvents"
        actions = [
          "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream",
          "kinesis:DescribeStreamSummary", "kinesis:ListShards",
        ]
        resources = [aws_kinesis_stream.events.arn]
      },
      {
        sid       = "ListStreams" # no resource-level permissions for this action
        actions   = ["kinesis:ListStreams"]
        resources = ["*"]
      },
      {
        sid       = "WriteInvoices"
        actions   = ["dynamodb:BatchWriteItem", "dynamodb:PutItem"]
        resources = [aws_dynamodb_table.invoices.arn]
      },
      {
        # quarantined events (the function) and failed batches (the mapping)
        sid       = "SendFailures"
        actions   = ["sqs:SendMessage"]
        resources = [aws_sqs_queue.quarantine.arn, aws_sqs_queue.consumer_failures["invoice-writer"].arn]
      },
    ]
    "archive-writer" = [
      {
        # what the event source mapping reads the stream with (it uses this role)
        sid = "ReadEvents"
        actions = [
          "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream",
          "kinesis:DescribeStreamSummary", "kinesis:ListShards",
        ]
        resources = [aws_kinesis_stream.events.arn]
      },
      {
        sid       = "ListStreams" # no resource-level permissions for this action
        actions   = ["kinesis:ListStreams"]
        resources = ["*"]
      },
      {
        sid       = "WriteArchive"
        actions   = ["s3:PutObject"]
        resources = ["${aws_s3_bucket.archive.arn}/${local.archive_prefix}*"]
      },
      {
        # quarantined events (the function) and failed batches (the mapping)
        sid       = "SendFailures"
        actions   = ["sqs:SendMessage"]
        resources = [aws_sqs_queue.quarantine.arn, aws_sqs_queue.consumer_failures["archive-writer"].arn]
      },
    ]
    "firehose-transform" = [] # a pure function of its input: logs only
    "warehouse-merge" = [
      {
        sid       = "RunStatements"
        actions   = ["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement"]
        resources = [local.redshift_provisioned ? aws_redshift_cluster.warehouse[0].arn : aws_redshiftserverless_workgroup.warehouse[0].arn]
      },
      {
        # statement ids are not resources: these actions take "*" only
        sid       = "FollowStatements"
        actions   = ["redshift-data:DescribeStatement", "redshift-data:GetStatementResult", "redshift-data:CancelStatement"]
        resources = ["*"]
      },
      {
        sid       = "ReadWarehouseSecret"
        actions   = ["secretsmanager:GetSecretValue"]
        resources = [local.warehouse_secret_arn]
      },
    ]
    "query-api" = [
      {
        sid       = "ReadInvoices"
        actions   = ["dynamodb:GetItem", "dynamodb:Query"]
        resources = [aws_dynamodb_table.invoices.arn, "${aws_dynamodb_table.invoices.arn}/index/customer-invoices"]
      },
    ]
  }
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  dynamic "statement" {
    for_each = local.function_statements[each.key]
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${var.name_prefix}-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}
