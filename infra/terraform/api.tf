# The HTTP API in front of the ingest and query functions (payload format 2.0).

locals {
  routes = {
    "POST /events"                          = "ingest"
    "GET /invoices/{invoice_no}"            = "query-api"
    "GET /customers/{customer_id}/invoices" = "query-api"
    "GET /openapi.json"                     = "query-api"
  }
  api_functions              = toset(values(local.routes))
  api_integration_timeout_ms = 29000
}

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name_prefix}-http"
  protocol_type = "HTTP"
  description   = "shopstream: event ingest and invoice queries"
}

# Every route is throttled at the stage (token bucket: api_throttling_rate_limit requests a
# second, bursts of api_throttling_burst_limit), below the account's regional quota that
# every API of the account shares; above it API Gateway answers 429 without invoking.
# Each request is logged as one JSON line to the access log group.
resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.api_throttling_burst_limit
    throttling_rate_limit  = var.api_throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      sourceIp           = "$context.identity.sourceIp"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      protocol           = "$context.protocol"
      requestLength      = "$context.requestLength"
      responseLength     = "$context.responseLength"
      responseLatency    = "$context.responseLatency"
      integrationStatus  = "$context.integrationStatus"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      error              = "$context.error.message"
    })
  }
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_158:Encrypted at rest by CloudWatch Logs in every case; with kms_key_arn set, by that customer key (its key policy must allow logs.<region>.amazonaws.com). The check only accepts a literal key.
  name              = "/aws/apigateway/${var.name_prefix}-http"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_apigatewayv2_integration" "function" {
  for_each = local.api_functions

  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.function[each.key].invoke_arn
  payload_format_version = "2.0"
  # under the HTTP API's 30 s maximum, and above each function's own timeout, so a slow
  # invocation ends in the function (which answers) before API Gateway gives up on it
  timeout_milliseconds = local.api_integration_timeout_ms

  lifecycle {
    precondition {
      condition     = local.functions[each.key].timeout * 1000 < local.api_integration_timeout_ms
      error_message = "${each.key}'s timeout must be shorter than its integration's ${local.api_integration_timeout_ms} ms."
    }
  }
}

# Every route but the OpenAPI document needs a token with one of its scopes (auth.tf);
# the document stays public, so a client can learn the API before it has credentials.
resource "aws_apigatewayv2_route" "route" {
  for_each = { for key, function in local.routes : key => function if local.route_scopes[key] != null }

  api_id               = aws_apigatewayv2_api.http.id
  route_key            = each.key
  target               = "integrations/${aws_apigatewayv2_integration.function[each.value].id}"
  authorization_type   = var.api_auth ? "JWT" : "NONE"
  authorizer_id        = var.api_auth ? aws_apigatewayv2_authorizer.jwt[0].id : null
  authorization_scopes = var.api_auth ? local.route_scopes[each.key] : null
}

resource "aws_apigatewayv2_route" "public" {
  #checkov:skip=CKV_AWS_309:The OpenAPI document is public on purpose: it describes the API (and its security scheme) to clients before they hold a token, and holds no data.
  for_each = { for key, function in local.routes : key => function if local.route_scopes[key] == null }

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.function[each.value].id}"
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "api" {
  for_each = local.api_functions

  statement_id  = "AllowHttpApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}
