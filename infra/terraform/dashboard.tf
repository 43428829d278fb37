# One CloudWatch dashboard of the pipeline, in the order an event travels: every alarm's
# state first, then the API, the stream, its consumers, the queues where events wait, the
# table, Firehose, and the functions.

locals {
  dashboard_stream    = { StreamName = aws_kinesis_stream.events.name }
  dashboard_api       = ["ApiId", aws_apigatewayv2_api.http.id, "Stage", aws_apigatewayv2_stage.default.name]
  dashboard_table     = aws_dynamodb_table.invoices.name
  dashboard_firehose  = aws_kinesis_firehose_delivery_stream.warehouse.name
  dashboard_functions = { for key, fn in aws_lambda_function.function : key => fn.function_name }

  # [namespace, metric, dimension name, value, ..., options]
  dashboard_rows = [
    {
      title = "HTTP API: requests and errors"
      stat  = "Sum"
      metrics = [
        concat(["AWS/ApiGateway", "Count"], local.dashboard_api),
        concat(["AWS/ApiGateway", "4xx"], local.dashboard_api),
        concat(["AWS/ApiGateway", "5xx"], local.dashboard_api),
      ]
    },
    {
      title = "HTTP API: latency (p99)"
      stat  = "p99"
      metrics = [
        concat(["AWS/ApiGateway", "Latency"], local.dashboard_api),
        concat(["AWS/ApiGateway", "IntegrationLatency"], local.dashboard_api),
      ]
    },
    {
      title   = "Stream: records in and out"
      stat    = "Sum"
      metrics = [for m in ["IncomingRecords", "GetRecords.Records"] : ["AWS/Kinesis", m, "StreamName", local.dashboard_stream.StreamName]]
    },
    {
      title   = "Stream: slowest reader's iterator age (ms)"
      stat    = "Maximum"
      metrics = [["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", local.dashboard_stream.StreamName]]
    },
    {
      title = "Stream: success and throughput exceeded (ratios)"
      stat  = "Average"
      metrics = [for m in ["PutRecords.Success", "GetRecords.Success", "ReadProvisionedThroughputExceeded", "WriteProvisionedThroughputExceeded"] :
      ["AWS/Kinesis", m, "StreamName", local.dashboard_stream.StreamName]]
    },
    {
      title   = "Consumers: iterator age (ms)"
      stat    = "Maximum"
      metrics = [for key in keys(local.stream_consumers) : ["AWS/Lambda", "IteratorAge", "FunctionName", local.dashboard_functions[key]]]
    },
    {
      title   = "Dead letters and quarantine: messages waiting"
      stat    = "Maximum"
      metrics = [for queue in values(local.alarm_queues) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue]]
    },
    {
      title = "Invoices table: consumed capacity and throttles"
      stat  = "Sum"
      metrics = concat(
        [for m in ["ConsumedWriteCapacityUnits", "ConsumedReadCapacityUnits", "WriteThrottleEvents", "ReadThrottleEvents"] :
        ["AWS/DynamoDB", m, "TableName", local.dashboard_table]],
        [for m in ["ReadThrottleEvents", "WriteThrottleEvents"] :
        ["AWS/DynamoDB", m, "TableName", local.dashboard_table, "GlobalSecondaryIndexName", "customer-invoices"]],
      )
    },
    {
      title = "Firehose: records read, transformed, copied"
      stat  = "Sum"
      metrics = [for m in ["DataReadFromKinesisStream.Records", "SucceedProcessing.Records", "DeliveryToS3.Records", "DeliveryToRedshift.Records"] :
      ["AWS/Firehose", m, "DeliveryStreamName", local.dashboard_firehose]]
    },
    {
      title = "Firehose: staging freshness (s) and success ratios"
      stat  = "Maximum"
      metrics = concat(
        [["AWS/Firehose", "DeliveryToS3.DataFreshness", "DeliveryStreamName", local.dashboard_firehose]],
        [for m in ["DeliveryToS3.Success", "DeliveryToRedshift.Success", "ExecuteProcessing.Success"] :
        ["AWS/Firehose", m, "DeliveryStreamName", local.dashboard_firehose, { stat = "Minimum", yAxis = "right" }]],
      )
    },
    {
      title   = "Functions: errors"
      stat    = "Sum"
      metrics = [for key, name in local.dashboard_functions : ["AWS/Lambda", "Errors", "FunctionName", name]]
    },
    {
      title   = "Functions: throttles"
      stat    = "Sum"
      metrics = [for key, name in local.dashboard_functions : ["AWS/Lambda", "Throttles", "FunctionName", name]]
    },
    {
      title   = "Functions: duration (p99, ms)"
      stat    = "p99"
      metrics = [for key, name in local.dashboard_functions : ["AWS/Lambda", "Duration", "FunctionName", name]]
    },
    {
      title   = "Functions: concurrent executions"
      stat    = "Maximum"
      metrics = [for key, name in local.dashboard_functions : ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", name]]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "pipeline" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = concat(
      [{
        type   = "alarm"
        x      = 0
        y      = 0
        width  = 24
        height = 6
        properties = {
          title  = "Alarms"
          alarms = local.all_alarm_arns
        }
      }],
      [for i, row in local.dashboard_rows : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = 6 + floor(i / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = row.title
          region  = var.region
          view    = "timeSeries"
          stacked = false
          stat    = row.stat
          period  = 60
          metrics = row.metrics
        }
      }],
    )
  })
}
