# One role per function, each allowed only the calls its code (or its event source
# mapping) makes: the handlers' boto3 and pynamodb calls are listed next to each statement.
# No statement allows a wildcard action; "*" resources only for actions that have no
# resource-level permissions.

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
  # What each stream consumer's event source mapping reads the stream with (it uses the
  # function's role; the actions of AWSLambdaKinesisExecutionRole).
  stream_reader_statements = [
    {
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
  ]
  # Statements per function, on top of writing its own logs.
  function_statements = {
    "ingest" = [
      {
        # ingest/producer.py: list_shards (the shard map), put_records
        sid       = "PutEvents"
        actions   = ["kinesis:PutRecords", "kinesis:ListShards"]
        resources = [aws_kinesis_stream.events.arn]
      },
      {
        # ingest/ownership.py: one conditional put_item per new invoice (the claim); batch_get_item
        # reads the owners already recorded, so a resent invoice needs no write
        sid       = "ClaimInvoices"
        actions   = ["dynamodb:BatchGetItem", "dynamodb:PutItem"]
        resources = [aws_dynamodb_table.invoice_owners.arn]
      },
    ]
    "invoice-writer" = concat(local.stream_reader_statements, [
      {
        # dynamo_models/repository.py: batch_write_item, and a conditional put_item for the
        # first item of a versioned invoice (the newest version wins); nothing else (pynamodb
        # builds the table's description from the model: no DescribeTable)
        sid       = "WriteInvoices"
        actions   = ["dynamodb:BatchWriteItem", "dynamodb:PutItem"]
        resources = [aws_dynamodb_table.invoices.arn]
      },
      {
        # quarantined events (consumers/quarantine.py: send_message) and failed batches (the mapping)
        sid       = "SendFailures"
        actions   = ["sqs:SendMessage"]
        resources = [aws_sqs_queue.quarantine.arn, aws_sqs_queue.consumer_failures["invoice-writer"].arn]
      },
    ])
    "archive-writer" = concat(local.stream_reader_statements, [
      {
        # consumers/archive/store.py: put_object
        sid       = "WriteArchive"
        actions   = ["s3:PutObject"]
        resources = ["${aws_s3_bucket.archive.arn}/${local.archive_prefix}*"]
      },
      {
        # quarantined events (consumers/quarantine.py: send_message) and failed batches (the mapping)
        sid       = "SendFailures"
        actions   = ["sqs:SendMessage"]
        resources = [aws_sqs_queue.quarantine.arn, aws_sqs_queue.consumer_failures["archive-writer"].arn]
      },
    ])
    "order-notifier" = concat(local.stream_reader_statements, [
      {
        # consumers/notifications/store.py DynamoLedger: get_item, then a conditional put_item
        sid       = "KeepLedger"
        actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
        resources = [aws_dynamodb_table.order_notifications.arn]
      },
      {
        # consumers/notifications/store.py SnsPublisher: publish
        sid       = "AnnounceLargeOrders"
        actions   = ["sns:Publish"]
        resources = [aws_sns_topic.large_orders.arn]
      },
      {
        # quarantined events (consumers/quarantine.py: send_message) and failed batches (the mapping)
        sid       = "SendFailures"
        actions   = ["sqs:SendMessage"]
        resources = [aws_sqs_queue.quarantine.arn, aws_sqs_queue.consumer_failures["order-notifier"].arn]
      },
    ])
    "firehose-transform" = [] # a pure function of its input: logs only
    "warehouse-merge" = [
      {
        # warehouse/data_api.py: execute_statement, batch_execute_statement
        sid       = "RunStatements"
        actions   = ["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement"]
        resources = [local.redshift_provisioned ? aws_redshift_cluster.warehouse[0].arn : aws_redshiftserverless_workgroup.warehouse[0].arn]
      },
      {
        # warehouse/data_api.py: describe_statement, get_statement_result, cancel_statement;
        # statement ids are not resources: these actions take "*" only
        sid       = "FollowStatements"
        actions   = ["redshift-data:DescribeStatement", "redshift-data:GetStatementResult", "redshift-data:CancelStatement"]
        resources = ["*"]
      },
      {
        # the Data API reads the secret named by SecretArn with the caller's permissions
        sid       = "ReadWarehouseSecret"
        actions   = ["secretsmanager:GetSecretValue"]
        resources = [local.warehouse_secret_arn]
      },
    ]
    "batch" = [
      {
        # batch/store.py S3Files: get_object (ranged), delete_object, put_object (continuation
        # markers), head_object and the managed copy (CopyObject) from the drop bucket
        sid       = "TakeDroppedFiles"
        actions   = ["s3:GetObject", "s3:DeleteObject", "s3:PutObject"]
        resources = ["${aws_s3_bucket.drops.arn}/*"]
      },
      {
        # the copy's destination, and head_object there (re-dropped files)
        sid       = "ArchiveFiles"
        actions   = ["s3:PutObject", "s3:GetObject"]
        resources = ["${aws_s3_bucket.drop_archive.arn}/*"]
      },
      {
        # a HeadObject of a missing key answers 404 only with ListBucket (403 without)
        sid       = "SeeArchivedFiles"
        actions   = ["s3:ListBucket"]
        resources = [aws_s3_bucket.drop_archive.arn]
      },
      {
        # ingest/producer.py (the same producer as the ingest function): list_shards, put_records
        sid       = "PutEvents"
        actions   = ["kinesis:PutRecords", "kinesis:ListShards"]
        resources = [aws_kinesis_stream.events.arn]
      },
      {
        # batch/store.py DynamoFileLedger: get_item, put_item
        sid       = "KeepLedger"
        actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
        resources = [aws_dynamodb_table.dropped_files.arn]
      },
      {
        # consumers/notifications/store.py SnsPublisher: publish
        sid       = "AnnounceFiles"
        actions   = ["sns:Publish"]
        resources = [aws_sns_topic.file_outcomes.arn]
      },
      {
        # rejected rows (consumers/quarantine.py: send_message)
        sid       = "QuarantineRows"
        actions   = ["sqs:SendMessage"]
        resources = [aws_sqs_queue.quarantine.arn]
      },
      {
        # batch/store.py WarehouseDimensions through warehouse/data_api.py: execute_statement
        sid       = "ReadDimensions"
        actions   = ["redshift-data:ExecuteStatement"]
        resources = [local.redshift_provisioned ? aws_redshift_cluster.warehouse[0].arn : aws_redshiftserverless_workgroup.warehouse[0].arn]
      },
      {
        sid       = "FollowStatements" # statement ids are not resources
        actions   = ["redshift-data:DescribeStatement", "redshift-data:GetStatementResult"]
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
        # dynamo_models/repository.py: query on the table (get_invoice, consistent) and on
        # the customer-invoices index
        sid       = "ReadInvoices"
        actions   = ["dynamodb:Query"]
        resources = [aws_dynamodb_table.invoices.arn, "${aws_dynamodb_table.invoices.arn}/index/customer-invoices"]
      },
    ]
  }
}

locals {
  # Every function, on top of its own statements: its logs, its traces (tracing_config
  # Active: the Lambda service sends the segments with the function's role) and, with a
  # customer key, the key (the stream, queues and bucket it uses are encrypted with it, and
  # so is its environment).
  common_statements = {
    for key in keys(local.functions) : key => concat(
      [
        {
          sid       = "WriteOwnLogs"
          actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          resources = ["${aws_cloudwatch_log_group.function[key].arn}:*"]
        },
        {
          sid       = "WriteTraces" # no resource-level permissions for these actions
          actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
          resources = ["*"]
        },
      ],
      var.kms_key_arn == null ? [] : [
        {
          sid       = "UseDataKey"
          actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
          resources = [var.kms_key_arn]
        },
      ],
    )
  }
  role_statements = { for key in keys(local.functions) : key => concat(local.common_statements[key], local.function_statements[key]) }
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  dynamic "statement" {
    for_each = local.role_statements[each.key]
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
