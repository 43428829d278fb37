# CloudWatch alarms, after the AWS Streaming Data Solution for Kinesis (its monitoring
# stack's alarm set for a stream with Lambda consumers), widened to the rest of the
# pipeline: the stream, each consumer's lag, every dead-letter and the quarantine queue,
# each function's errors and throttles, the API's 5xx, the table's throttles and Firehose's
# delivery to the warehouse. Each one notifies the alerts topic (alerts.tf) when it goes to
# ALARM and again when it is back to OK.
#
# Missing data, alarm by alarm (treat_missing_data):
# * "breaching" only where silence is itself the fault: the event source mappings and
#   Firehose poll every shard about once a second even when the shop is quiet, so a
#   stream with no GetRecords data points at all has no reader left.
# * "notBreaching" everywhere else: those metrics are emitted only when something
#   happens (an invocation, a request, a throttle, a COPY), or, for SQS, stop while a
#   queue is empty and idle, so no data means nothing went wrong; a quiet night must not
#   page anyone.

locals {
  alarm_topic_arns = [aws_sns_topic.alerts.arn]

  stream_alarms = {
    # how far behind the slowest reader (either mapping or Firehose) is
    "iterator-age" = {
      metric      = "GetRecords.IteratorAgeMilliseconds"
      statistic   = "Maximum"
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = var.alarm_iterator_age_seconds * 1000
      missing     = "breaching" # no GetRecords at all: nobody reads the stream
      description = "The stream's slowest reader is ${var.alarm_iterator_age_seconds} s or more behind the newest record."
    }
    "read-throughput-exceeded" = {
      metric      = "ReadProvisionedThroughputExceeded"
      statistic   = "Average"
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = var.alarm_throughput_exceeded_ratio
      missing     = "notBreaching"
      description = "GetRecords calls are throttled by the shards' read throughput (too many readers or too much data per shard)."
    }
    "write-throughput-exceeded" = {
      metric      = "WriteProvisionedThroughputExceeded"
      statistic   = "Average"
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = var.alarm_throughput_exceeded_ratio
      missing     = "notBreaching"
      description = "Records are refused for the shards' write throughput: POST /events answers 503 while it lasts; more shards (shard_count) take more."
    }
    "put-records-success" = {
      metric      = "PutRecords.Success"
      statistic   = "Average"
      comparison  = "LessThanOrEqualToThreshold"
      threshold   = var.alarm_put_records_success_ratio
      missing     = "notBreaching" # no PutRecords: no orders coming in, not a failure
      description = "PutRecords calls from the ingest function are failing."
    }
    "get-records-success" = {
      metric      = "GetRecords.Success"
      statistic   = "Average"
      comparison  = "LessThanOrEqualToThreshold"
      threshold   = var.alarm_get_records_success_ratio
      missing     = "breaching" # as for the iterator age: readers poll even an idle stream
      description = "GetRecords calls from the consumers and Firehose are failing."
    }
  }

  # every queue whose depth means an event is waiting for someone: each consumer's
  # dead letters (failed batches) and the quarantine (events no consumer can process)
  alarm_queues = merge(
    { for key, queue in aws_sqs_queue.consumer_failures : "${key}-failures" => queue.name },
    { "quarantine" = aws_sqs_queue.quarantine.name },
  )

  # DynamoDB reports a global secondary index's throttles under its own dimension; a
  # throttled index write throttles the table write that feeds it
  table_throttle_alarms = {
    "table-read"  = { metric = "ReadThrottleEvents", index = null }
    "table-write" = { metric = "WriteThrottleEvents", index = null }
    "index-read"  = { metric = "ReadThrottleEvents", index = "customer-invoices" }
    "index-write" = { metric = "WriteThrottleEvents", index = "customer-invoices" }
  }

  firehose_alarms = {
    # A Redshift destination stages into S3 before each COPY: the staging's freshness is
    # how far the warehouse is behind (Firehose has no DataFreshness for Redshift itself).
    "freshness" = {
      metric      = "DeliveryToS3.DataFreshness"
      statistic   = "Maximum"
      comparison  = "GreaterThanOrEqualToThreshold"
      threshold   = var.alarm_firehose_freshness_seconds
      description = "Firehose holds records older than ${var.alarm_firehose_freshness_seconds} s not yet staged for the warehouse."
    }
    # the Success metrics are ratios of successful calls to all calls in each data point
    "staging-failed" = {
      metric      = "DeliveryToS3.Success"
      statistic   = "Minimum"
      comparison  = "LessThanThreshold"
      threshold   = 1
      description = "Firehose failed to write staging objects to the delivery bucket."
    }
    "copy-failed" = {
      metric      = "DeliveryToRedshift.Success"
      statistic   = "Minimum"
      comparison  = "LessThanThreshold"
      threshold   = 1
      description = "A COPY into the warehouse's staging table failed (retried for firehose_retry_duration_seconds, then its manifest goes under the error prefix): is the warehouse reachable from Firehose's address range?"
    }
    "transform-failed" = {
      metric      = "ExecuteProcessing.Success"
      statistic   = "Minimum"
      comparison  = "LessThanThreshold"
      threshold   = 1
      description = "An invocation of the firehose-transform function failed (its records are retried, then written under the error prefix)."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "stream" {
  for_each = local.stream_alarms

  alarm_name          = "${var.name_prefix}-stream-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/Kinesis"
  metric_name         = each.value.metric
  dimensions          = { StreamName = aws_kinesis_stream.events.name }
  statistic           = each.value.statistic
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3 # 3 minutes of 5: a burst that clears by itself does not page
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = each.value.missing
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
}

# Each consumer's own lag as its event source mapping sees it. The archive writer's
# mapping holds records for up to its batching window before invoking, so its threshold
# is the stream's plus that window.
resource "aws_cloudwatch_metric_alarm" "consumer_iterator_age" {
  for_each = local.stream_consumers

  alarm_name          = "${var.name_prefix}-${each.key}-iterator-age"
  alarm_description   = "${each.key} is handling records ${var.alarm_iterator_age_seconds + each.value.window} s or more after they reached the stream (a batch failing and retried, or too slow for its shards)."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = (var.alarm_iterator_age_seconds + each.value.window) * 1000
  treat_missing_data  = "notBreaching" # emitted per invocation; an idle stream invokes nothing
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
}

# One message is enough: each is a batch or an event that did not reach a sink, and waits
# for `shopstream redrive` (failures, within the stream's retention) or a person (quarantine).
resource "aws_cloudwatch_metric_alarm" "queue_depth" {
  for_each = local.alarm_queues

  alarm_name          = "${var.name_prefix}-${each.key}-depth"
  alarm_description   = "${each.value} holds messages: ${endswith(each.key, "-failures") ? "a batch still failed after its retries; redrive it within the stream's retention" : "events no consumer can process, each with its reason"}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching" # SQS stops reporting a queue only while it is empty and idle
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
}

# Errors are invocations that failed as a whole (an exception, a timeout): a stream
# consumer's batch retried, an API request answered 502 by API Gateway, a failed merge
# (the next run merges what is still staged) or transformation. Handled failures (a 503, a
# record reported in batchItemFailures) are not errors.
resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-errors"
  alarm_description   = "${each.key} invocations failed (exception or timeout): see its log group's ERROR lines."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching" # no invocations, no errors
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
}

# The Cognito trigger (auth.tf, AWS with the user pool only): when it fails, so does every
# customer's sign-in.
resource "aws_cloudwatch_metric_alarm" "pre_token_generation_errors" {
  count = local.cognito ? 1 : 0

  alarm_name          = "${var.name_prefix}-${local.pre_token_generation.key}-errors"
  alarm_description   = "The Cognito pre token generation trigger failed: customers' sign-ins fail with it. See its log group's ERROR lines."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.pre_token_generation[0].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = local.functions

  alarm_name          = "${var.name_prefix}-${each.key}-throttles"
  alarm_description   = "${each.key} invocations were refused for concurrency (the account's pool, or ingest_reserved_concurrency)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
}

# A rate, not a count: what a handful of 5xx means depends on the traffic, and the ingest
# function answers 503 on purpose while the stream refuses records (which the stream's
# write-throughput alarm reports on its own), so a few during a burst are backpressure
# working. alarm_api_5xx_percent of all requests over 5 minutes is an outage or a bug.
resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name_prefix}-api-5xx"
  alarm_description   = "${var.alarm_api_5xx_percent}% or more of the HTTP API's requests were answered 5xx over 5 minutes."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.alarm_api_5xx_percent
  treat_missing_data  = "notBreaching" # no requests, no errors
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns

  metric_query {
    id          = "rate"
    label       = "5xx (% of requests)"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = aws_apigatewayv2_stage.default.name }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = aws_apigatewayv2_stage.default.name }
      stat        = "Sum"
      period      = 300
    }
  }
}

# On-demand tables throttle only past a partition's or the table's limits; the invoice
# writer retries them, so one throttle is not yet a lost write, but any throttling slows
# the invoice writer and the query API's reads and is worth knowing about.
resource "aws_cloudwatch_metric_alarm" "table_throttles" {
  for_each = local.table_throttle_alarms

  alarm_name        = "${var.name_prefix}-${each.key}-throttles"
  alarm_description = "${each.value.metric} on ${aws_dynamodb_table.invoices.name}${each.value.index == null ? "" : " (index ${each.value.index})"}."
  namespace         = "AWS/DynamoDB"
  metric_name       = each.value.metric
  dimensions = merge(
    { TableName = aws_dynamodb_table.invoices.name },
    each.value.index == null ? {} : { GlobalSecondaryIndexName = each.value.index },
  )
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching" # emitted only when a request is throttled
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns

  lifecycle {
    precondition {
      condition     = contains([for index in aws_dynamodb_table.invoices.global_secondary_index : index.name], "customer-invoices")
      error_message = "The index throttle alarms name an index the table does not have."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "firehose" {
  for_each = local.firehose_alarms

  alarm_name          = "${var.name_prefix}-firehose-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/Firehose"
  metric_name         = each.value.metric
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.warehouse.name }
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = 1
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  # emitted while Firehose has records to deliver; a stalled read of the stream shows in
  # the stream's iterator age, which treats silence as breaching
  treat_missing_data = "notBreaching"
  alarm_actions      = local.alarm_topic_arns
  ok_actions         = local.alarm_topic_arns
}

locals {
  all_alarm_arns = concat(
    [for alarm in aws_cloudwatch_metric_alarm.stream : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.consumer_iterator_age : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.queue_depth : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.function_errors : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.function_throttles : alarm.arn],
    [aws_cloudwatch_metric_alarm.api_5xx.arn],
    [for alarm in aws_cloudwatch_metric_alarm.table_throttles : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.firehose : alarm.arn],
    [aws_cloudwatch_metric_alarm.large_orders_delivery.arn],
    [aws_cloudwatch_metric_alarm.file_outcomes_delivery.arn],
    [for alarm in aws_cloudwatch_metric_alarm.pre_token_generation_errors : alarm.arn],
  )
}
