# The three functions of the invoice path. The keys of local.functions are the keys of
# FUNCTION_ENV in pipeline/settings.py, and each function's environment is exactly
# FUNCTION_ENV[key] plus Powertools' variables (tests/contract/test_settings_terraform.py).
# Zips come from infra/build_lambdas.py: one per function, and one layer with the
# dependencies in requirements-lambda.txt.

locals {
  build_dir = coalesce(var.lambda_build_dir, "${path.module}/../../build/lambda")

  functions = {
    "ingest" = {
      description = "POST /events: validates invoice events and puts them on the stream, KPL-aggregated"
      handler     = "ingest.handler.lambda_handler"
      zip         = "ingest.zip"
      memory_size = 512
      timeout     = 30
      environment = {
        SHOPSTREAM_STREAM_NAME    = aws_kinesis_stream.events.name
        SHOPSTREAM_MAX_BODY_BYTES = "5242880"
      }
    }
    "invoice-writer" = {
      description = "Kinesis consumer: writes each invoice event to the invoices table"
      handler     = "consumers.invoices.handler.lambda_handler"
      zip         = "invoice-writer.zip"
      memory_size = 512
      timeout     = 60
      environment = {
        SHOPSTREAM_INVOICES_TABLE       = aws_dynamodb_table.invoices.name
        SHOPSTREAM_QUARANTINE_QUEUE_URL = aws_sqs_queue.quarantine.url
      }
    }
    "query-api" = {
      description = "GET /invoices/{invoice_no}, GET /customers/{customer_id}/invoices, GET /openapi.json"
      handler     = "query_api.handler.lambda_handler"
      zip         = "query-api.zip"
      memory_size = 256
      timeout     = 10
      environment = {
        SHOPSTREAM_INVOICES_TABLE = aws_dynamodb_table.invoices.name
      }
    }
  }
}

resource "aws_lambda_layer_version" "deps" {
  layer_name               = "${var.name_prefix}-deps"
  description              = "requirements-lambda.txt for ${var.lambda_runtime}"
  filename                 = "${local.build_dir}/layer.zip"
  source_code_hash         = filebase64sha256("${local.build_dir}/layer.zip")
  compatible_runtimes      = [var.lambda_runtime]
  compatible_architectures = ["x86_64"]
}

# Created before the functions, so Lambda never creates them without a retention.
resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "function" {
  for_each = local.functions

  function_name    = "${var.name_prefix}-${each.key}"
  description      = each.value.description
  role             = aws_iam_role.function[each.key].arn
  runtime          = var.lambda_runtime
  architectures    = ["x86_64"]
  handler          = each.value.handler
  filename         = "${local.build_dir}/${each.value.zip}"
  source_code_hash = filebase64sha256("${local.build_dir}/${each.value.zip}")
  layers           = [aws_lambda_layer_version.deps.arn]
  memory_size      = each.value.memory_size
  timeout          = each.value.timeout

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

# stream -> invoice-writer. A batch is at most 25 records of <= 128 KB KPL aggregates
# (~4.3 MB once base64-encoded), under the 6 MB invocation payload; failed records are reported individually
# (ReportBatchItemFailures), a failing batch is bisected, retries are bounded, and what
# still fails is described on the failures queue.
resource "aws_lambda_event_source_mapping" "invoice_writer" {
  event_source_arn                   = aws_kinesis_stream.events.arn
  function_name                      = aws_lambda_function.function["invoice-writer"].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 25
  maximum_batching_window_in_seconds = 1
  parallelization_factor             = 1
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 5

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.invoice_writer_failures.arn
    }
  }
}
