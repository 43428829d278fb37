# The pipeline's functions. The keys of local.functions are the keys of
# FUNCTION_ENV in pipeline/settings.py, and each function's environment is exactly
# FUNCTION_ENV[key] plus Powertools' variables (tests/contract/test_settings_terraform.py).
# Zips come from infra/build_lambdas.py: one per function (the modules its handler
# imports), and one per dependency layer; each function gets only the layers it imports
# from (infra/build_lambdas.py function_layers, checked by the same contract test).

locals {
  build_dir = coalesce(var.lambda_build_dir, "${path.module}/../../build/lambda")

  functions = {
    "ingest" = {
      description = "POST /events: validates invoice events and puts them on the stream, KPL-aggregated"
      handler     = "ingest.handler.lambda_handler"
      zip         = "ingest.zip"
      layers      = ["deps"]
      memory_size = 512
      timeout     = 25 # under the API integration's 29 s (api.tf)
      environment = {
        SHOPSTREAM_STREAM_NAME    = aws_kinesis_stream.events.name
        SHOPSTREAM_MAX_BODY_BYTES = "2000000" # pipeline/settings.py DEFAULT_MAX_BODY_BYTES
        SHOPSTREAM_OWNERS_TABLE   = aws_dynamodb_table.invoice_owners.name
        SHOPSTREAM_API_AUTH       = var.api_auth ? "jwt" : "none"
      }
    }
    "invoice-writer" = {
      description = "Kinesis consumer: writes each invoice event to the invoices table"
      handler     = "consumers.invoices.handler.lambda_handler"
      zip         = "invoice-writer.zip"
      layers      = ["deps"]
      memory_size = 512
      timeout     = 60
      environment = {
        SHOPSTREAM_INVOICES_TABLE       = aws_dynamodb_table.invoices.name
        SHOPSTREAM_QUARANTINE_QUEUE_URL = aws_sqs_queue.quarantine.url
      }
    }
    "archive-writer" = {
      description = "Kinesis consumer: archives every invoice event to S3 as Parquet, by invoice date"
      handler     = "consumers.archive.handler.lambda_handler"
      zip         = "archive-writer.zip"
      layers      = ["deps", "arrow"]
      memory_size = 1024
      timeout     = 120
      environment = {
        SHOPSTREAM_ARCHIVE_BUCKET       = aws_s3_bucket.archive.bucket
        SHOPSTREAM_ARCHIVE_PREFIX       = local.archive_prefix
        SHOPSTREAM_QUARANTINE_QUEUE_URL = aws_sqs_queue.quarantine.url
      }
    }
    "firehose-transform" = {
      description = "Firehose transformation: each invoice event -> its line rows for the warehouse's staging table"
      handler     = "firehose.handler.lambda_handler"
      zip         = "firehose-transform.zip"
      layers      = ["deps"]
      memory_size = 512
      timeout     = 60 # Firehose allows up to 5 minutes; a 1 MB buffer takes well under a second
      environment = {
        SHOPSTREAM_SIZE_MEDIUM_FROM = var.size_class_medium_from
        SHOPSTREAM_SIZE_LARGE_FROM  = var.size_class_large_from
      }
    }
    "order-notifier" = {
      description = "Kinesis consumer: announces each invoice whose total reaches large_order_threshold on the large-orders topic, once"
      handler     = "consumers.notifications.handler.lambda_handler"
      zip         = "order-notifier.zip"
      layers      = ["deps"]
      memory_size = 256
      timeout     = 60
      environment = {
        SHOPSTREAM_NOTIFICATIONS_TABLE    = aws_dynamodb_table.order_notifications.name
        SHOPSTREAM_LARGE_ORDERS_TOPIC_ARN = aws_sns_topic.large_orders.arn
        SHOPSTREAM_LARGE_ORDER_FROM       = var.large_order_threshold
        SHOPSTREAM_QUARANTINE_QUEUE_URL   = aws_sqs_queue.quarantine.url
      }
    }
    "warehouse-merge" = {
      description = "Scheduled: applies warehouse migrations, merges staged rows into the fact and dimensions, refreshes the views"
      handler     = "warehouse.merge.handler.lambda_handler"
      zip         = "warehouse-merge.zip"
      layers      = ["deps"]
      memory_size = 256
      timeout     = 900 # a merge waits for its Data API statements
      environment = {
        SHOPSTREAM_REDSHIFT_DATABASE   = var.redshift_database
        SHOPSTREAM_REDSHIFT_CLUSTER    = local.redshift_cluster_id
        SHOPSTREAM_REDSHIFT_WORKGROUP  = local.redshift_workgroup
        SHOPSTREAM_REDSHIFT_SECRET_ARN = local.warehouse_secret_arn
      }
    }
    "batch" = {
      description = "S3 drop bucket: each daily file's invoices onto the stream, one outcome message per file, the file archived"
      handler     = "batch.handler.lambda_handler"
      zip         = "batch.zip"
      layers      = ["deps"]
      memory_size = 1024
      timeout     = 900 # the full UCI data as one file loads in well under a minute; longer files continue (drops.tf)
      environment = {
        SHOPSTREAM_STREAM_NAME             = aws_kinesis_stream.events.name
        SHOPSTREAM_DROP_BUCKET             = aws_s3_bucket.drops.bucket
        SHOPSTREAM_DROP_ARCHIVE_BUCKET     = aws_s3_bucket.drop_archive.bucket
        SHOPSTREAM_FILES_TABLE             = aws_dynamodb_table.dropped_files.name
        SHOPSTREAM_FILE_OUTCOMES_TOPIC_ARN = aws_sns_topic.file_outcomes.arn
        SHOPSTREAM_QUARANTINE_QUEUE_URL    = aws_sqs_queue.quarantine.url
        SHOPSTREAM_REDSHIFT_DATABASE       = var.redshift_database
        SHOPSTREAM_REDSHIFT_CLUSTER        = local.redshift_cluster_id
        SHOPSTREAM_REDSHIFT_WORKGROUP      = local.redshift_workgroup
        SHOPSTREAM_REDSHIFT_SECRET_ARN     = local.warehouse_secret_arn
      }
    }
    "query-api" = {
      description = "GET /invoices/{invoice_no}, GET /customers/{customer_id}/invoices, GET /openapi.json"
      handler     = "query_api.handler.lambda_handler"
      zip         = "query-api.zip"
      layers      = ["deps"]
      memory_size = 256
      timeout     = 10
      environment = {
        SHOPSTREAM_INVOICES_TABLE = aws_dynamodb_table.invoices.name
        SHOPSTREAM_API_AUTH       = var.api_auth ? "jwt" : "none"
      }
    }
  }
}

locals {
  # infra/build_lambdas.py LAYERS
  layers = {
    "deps" = {
      zip          = "layer.zip"
      requirements = "requirements-lambda.txt"
    }
    "arrow" = {
      zip          = "arrow-layer.zip"
      requirements = "requirements-lambda-arrow.txt"
    }
  }
}

locals {
  # var.log_level (Python's names, as Powertools takes them) in Lambda's advanced logging
  # controls, which filter JSON lines by their "level"
  lambda_log_levels = { DEBUG = "DEBUG", INFO = "INFO", WARNING = "WARN", ERROR = "ERROR", CRITICAL = "FATAL" }
}

resource "aws_lambda_layer_version" "layer" {
  for_each = local.layers

  layer_name               = "${var.name_prefix}-${each.key}"
  description              = "${each.value.requirements} for ${var.lambda_runtime}"
  filename                 = "${local.build_dir}/${each.value.zip}"
  source_code_hash         = filebase64sha256("${local.build_dir}/${each.value.zip}")
  compatible_runtimes      = [var.lambda_runtime]
  compatible_architectures = ["x86_64"]
}

# Created before the functions, so Lambda never creates them without a retention.
resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:Encrypted at rest by CloudWatch Logs in every case; with kms_key_arn set, by that customer key (its key policy must allow logs.<region>.amazonaws.com). The check cannot see a key given by a variable.
  for_each = local.functions

  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_117:The functions reach only AWS APIs (Kinesis, DynamoDB, S3, SQS, the Redshift Data API), nothing inside a VPC; in one they would need a NAT gateway or an interface endpoint per service.
  #checkov:skip=CKV_AWS_116:No function is invoked asynchronously by a producer that could lose events: the API and Firehose invoke synchronously, the stream consumers' failed batches go to their mapping's on-failure queue, and a failed scheduled merge loses nothing (the next run merges whatever is still staged).
  #checkov:skip=CKV_AWS_115:Reserved concurrency is taken from the account's pool (new accounts cannot reserve any); the ingest function's is set by ingest_reserved_concurrency, the API is bounded by stage throttling, the stream consumers by shards x parallelization factor, the merge by its schedule.
  #checkov:skip=CKV_AWS_272:The zips are built reproducibly from this repository (infra/build_lambdas.py) and uploaded by Terraform directly; code signing needs signed artifacts from a Signer profile in S3.
  #checkov:skip=CKV_AWS_173:Environment variables are encrypted at rest by Lambda (AWS-managed key, or kms_key_arn when set) and hold only resource names and settings, no secret. The check cannot see a key given by a variable.
  for_each = local.functions

  function_name    = "${var.name_prefix}-${each.key}"
  description      = each.value.description
  role             = aws_iam_role.function[each.key].arn
  runtime          = var.lambda_runtime
  architectures    = ["x86_64"]
  handler          = each.value.handler
  filename         = "${local.build_dir}/${each.value.zip}"
  source_code_hash = filebase64sha256("${local.build_dir}/${each.value.zip}")
  layers           = [for layer in each.value.layers : aws_lambda_layer_version.layer[layer].arn]
  memory_size      = each.value.memory_size
  timeout          = each.value.timeout
  kms_key_arn      = var.kms_key_arn
  # -1: no reservation (the account's unreserved pool)
  reserved_concurrent_executions = each.key == "ingest" && var.ingest_reserved_concurrency != null ? var.ingest_reserved_concurrency : -1

  tracing_config {
    mode = "Active"
  }

  # Every line in the function's log group is JSON: the handlers' own lines and the
  # repository's modules' (pipeline/logs.py) are Powertools JSON objects, and Lambda writes
  # its platform lines (START, END, REPORT, init and uncaught errors) as JSON too, and drops
  # application lines below the function's log level. AWS only: the emulator ignores
  # LoggingConfig (it never returns it), so a second plan there would always differ; the
  # local runtime's lines from the repository's code are the same Powertools JSON.
  dynamic "logging_config" {
    for_each = local.emulated ? [] : [local.lambda_log_levels[var.log_level]]
    content {
      log_format            = "JSON"
      log_group             = aws_cloudwatch_log_group.function[each.key].name
      application_log_level = logging_config.value
      system_log_level      = "INFO" # keeps REPORT (duration, memory) for every invocation
    }
  }

  environment {
    variables = merge(each.value.environment, {
      POWERTOOLS_SERVICE_NAME      = each.key
      POWERTOOLS_METRICS_NAMESPACE = "shopstream"
      POWERTOOLS_LOG_LEVEL         = var.log_level
    })
  }

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]
}

# The stream's consumers, each through its own event source mapping. invoice-writer and
# order-notifier: a batch is at most 25 records of <= 128 KB KPL aggregates (~4.3 MB once
# base64-encoded), under the 6 MB invocation payload. archive-writer: large batches,
# gathered for up to archive_batching_window_seconds, so each Parquet object holds many
# invoices (the runtime and Lambda cut a batch at the 6 MB payload whatever the count).
# Failed records are reported individually (ReportBatchItemFailures), retries are
# bounded, and what still fails is described on the consumer's failures queue. The
# invoice writer's and the notifier's failing batches are bisected; the archive writer's
# is not: its object keys are the batch's sequence range, so only the same batch retried
# whole overwrites what a failed attempt wrote.
locals {
  stream_consumers = {
    "invoice-writer" = {
      batch_size = 25
      window     = 1
      bisect     = true
    }
    "archive-writer" = {
      batch_size = var.archive_batch_size
      window     = var.archive_batching_window_seconds
      bisect     = false
    }
    "order-notifier" = {
      batch_size = 25
      window     = 1
      bisect     = true
    }
  }
}

resource "aws_lambda_event_source_mapping" "consumer" {
  for_each = local.stream_consumers

  event_source_arn                   = aws_kinesis_stream.events.arn
  function_name                      = aws_lambda_function.function[each.key].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.window
  parallelization_factor             = 1
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = each.value.bisect
  maximum_retry_attempts             = 5

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.consumer_failures[each.key].arn
    }
  }
}

moved {
  from = aws_lambda_event_source_mapping.invoice_writer
  to   = aws_lambda_event_source_mapping.consumer["invoice-writer"]
}

# The dependency layer was a single resource before layers were per function.
moved {
  from = aws_lambda_layer_version.deps
  to   = aws_lambda_layer_version.layer["deps"]
}
