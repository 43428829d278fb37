output "api_endpoint" {
  description = "Base URL of the HTTP API (POST /events, GET /invoices/{invoice_no}, …)."
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.http.id
}

output "stream_name" {
  description = "Name of the Kinesis stream of invoice events."
  value       = aws_kinesis_stream.events.name
}

output "stream_arn" {
  description = "ARN of the Kinesis stream of invoice events."
  value       = aws_kinesis_stream.events.arn
}

output "invoices_table_name" {
  description = "Name of the DynamoDB invoices table."
  value       = aws_dynamodb_table.invoices.name
}

output "invoices_table_arn" {
  description = "ARN of the DynamoDB invoices table."
  value       = aws_dynamodb_table.invoices.arn
}

output "function_names" {
  description = "Function name per function key (ingest, invoice-writer, query-api, archive-writer, firehose-transform, warehouse-merge)."
  value       = { for key, fn in aws_lambda_function.function : key => fn.function_name }
}

output "function_arns" {
  description = "Function ARN per function key."
  value       = { for key, fn in aws_lambda_function.function : key => fn.arn }
}

output "event_source_mapping_uuids" {
  description = "UUID of each stream consumer's event source mapping (invoice-writer, archive-writer)."
  value       = { for key, esm in aws_lambda_event_source_mapping.consumer : key => esm.uuid }
}

output "quarantine_queue_url" {
  description = "URL of the queue of events the stream consumers (invoice-writer, archive-writer) can never process."
  value       = aws_sqs_queue.quarantine.url
}

output "failures_queue_urls" {
  description = "URL of each stream consumer mapping's on-failure destination queue."
  value       = { for key, queue in aws_sqs_queue.consumer_failures : key => queue.url }
}

output "archive_bucket_name" {
  description = "Name of the archive bucket (Parquet under archive_prefix, hive-partitioned by invoice date)."
  value       = aws_s3_bucket.archive.bucket
}

output "archive_prefix" {
  description = "Key prefix of the archive's objects."
  value       = local.archive_prefix
}

output "region" {
  description = "Region the stack is deployed in."
  value       = var.region
}

output "delivery_bucket_name" {
  description = "Name of Firehose's delivery bucket (staging objects, errors, source-record backup)."
  value       = aws_s3_bucket.delivery.bucket
}

output "firehose_prefixes" {
  description = "Key prefixes in the delivery bucket: staging, errors, backup."
  value       = local.firehose_prefixes
}

output "delivery_stream_name" {
  description = "Name of the Firehose delivery stream (events stream -> warehouse staging table)."
  value       = aws_kinesis_firehose_delivery_stream.warehouse.name
}

output "warehouse" {
  description = "Where the warehouse is: Data API target (cluster id or workgroup), database, JDBC URL, and the ARN of the admin secret (not the secret)."
  value = {
    deployment = local.redshift_provisioned ? "provisioned" : "serverless"
    cluster_id = local.redshift_cluster_id
    workgroup  = local.redshift_workgroup
    database   = var.redshift_database
    host       = local.redshift_host
    port       = local.redshift_port
    jdbc_url   = local.redshift_jdbc_url
    secret_arn = local.warehouse_secret_arn
    staging    = local.warehouse_staging_table
    merge_rule = aws_cloudwatch_event_rule.merge.name
  }
}

output "alerts_topic_arn" {
  description = "ARN of the SNS topic every alarm notifies (ALARM and OK): subscribe email (alert_emails), chat or paging to it."
  value       = aws_sns_topic.alerts.arn
}

output "dashboard_name" {
  description = "Name of the pipeline's CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.pipeline.dashboard_name
}

output "auth" {
  description = "Who may call the API: the JWT issuer and audiences the authorizer accepts, the scopes per route, and with the Cognito user pool its token endpoint and app client ids (secrets: terraform state or the Cognito console)."
  value = {
    enabled             = var.api_auth
    issuer              = var.api_auth ? local.jwt_issuer : null
    audience            = var.api_auth ? local.jwt_audience : []
    route_scopes        = { for key, scopes in local.route_scopes : key => scopes if scopes != null }
    token_endpoint      = local.cognito ? "https://${aws_cognito_user_pool_domain.api[0].domain}.auth.${var.region}.amazoncognito.com/oauth2/token" : null
    producer_client_ids = { for name, client in aws_cognito_user_pool_client.producer : name => client.id }
    staff_client_id     = local.cognito ? aws_cognito_user_pool_client.staff[0].id : null
    customers_client_id = local.cognito ? aws_cognito_user_pool_client.customers[0].id : null
  }
}

output "invoice_owners_table_name" {
  description = "Name of the DynamoDB table recording the producer of each invoice."
  value       = aws_dynamodb_table.invoice_owners.name
}

output "large_orders_topic_arn" {
  description = "ARN of the SNS topic the order-notifier publishes each large order to, once per invoice (large_order_threshold): subscribe email (large_order_emails), queues or webhooks to it."
  value       = aws_sns_topic.large_orders.arn
}

output "order_notifications_table_name" {
  description = "Name of the DynamoDB table of announced invoices (one item per invoice number announced on the large-orders topic)."
  value       = aws_dynamodb_table.order_notifications.name
}

output "drop_bucket_name" {
  description = "Name of the S3 bucket daily files are dropped in, under transactions/ (shopstream drop; any upload): each object-created event invokes the batch function."
  value       = aws_s3_bucket.drops.bucket
}

output "drop_archive_bucket_name" {
  description = "Name of the S3 bucket loaded files are moved to, under the key they were dropped under."
  value       = aws_s3_bucket.drop_archive.bucket
}

output "dropped_files_table_name" {
  description = "Name of the DynamoDB table of dropped files' outcomes, keyed by each file's SHA-256 (a re-dropped file changes nothing)."
  value       = aws_dynamodb_table.dropped_files.name
}

output "file_outcomes_topic_arn" {
  description = "ARN of the SNS topic the batch function announces each dropped file's outcome on (counts, or its failure): subscribe email (file_outcome_emails), queues or webhooks to it."
  value       = aws_sns_topic.file_outcomes.arn
}
