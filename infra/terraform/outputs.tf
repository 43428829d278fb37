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
  description = "Function name per function key (ingest, invoice-writer, query-api)."
  value       = { for key, fn in aws_lambda_function.function : key => fn.function_name }
}

output "function_arns" {
  description = "Function ARN per function key."
  value       = { for key, fn in aws_lambda_function.function : key => fn.arn }
}

output "event_source_mapping_uuid" {
  description = "UUID of the stream -> invoice-writer event source mapping."
  value       = aws_lambda_event_source_mapping.invoice_writer.uuid
}

output "quarantine_queue_url" {
  description = "URL of the queue of events the invoice writer can never process."
  value       = aws_sqs_queue.quarantine.url
}

output "failures_queue_url" {
  description = "URL of the invoice writer mapping's on-failure destination."
  value       = aws_sqs_queue.invoice_writer_failures.url
}

output "region" {
  description = "Region the stack is deployed in."
  value       = var.region
}
