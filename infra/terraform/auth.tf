# Who may call the HTTP API (pipeline/auth.py, docs/ARCHITECTURE.md "Authentication").
#
# One JWT authorizer checks every route but GET /openapi.json: the token's issuer, its
# audience (aud, or client_id when it has no aud), expiry and signature, and at least one
# of the route's scopes. The issuer is jwt_issuer (any OIDC issuer; the local stack gives
# its own), or else the Cognito user pool below:
#
# * the resource server "shopstream" with three scopes: events.write (producers),
#   invoices.read (staff: everything), invoices.read.own (customers: their own);
# * one app client per producer (client-credentials grant, events.write), whose id the
#   ingest function records as the producer of the invoices it sends;
# * a staff client (client-credentials grant, invoices.read) for services that read
#   everything, and a customers' client (authorization code grant with the hosted
#   sign-in, invoices.read.own). A customer's access token must carry their customer
#   number in the claim customer_id, which Cognito puts in access tokens only through a
#   pre token generation trigger: the function below (identity/), given event version 2
#   (V2_0, which needs the Essentials or Plus feature plan: the pool is on Essentials),
#   copies the user's custom:customer_id into it. The shop sets that attribute when it
#   enrols a customer; it is immutable and no app client may write it, so no customer can
#   make their token speak for another. A user without it (or with a malformed one) gets
#   no claim and reads nothing. An external issuer (jwt_issuer) must set the claim itself.
#
# The pool's schema is for good. Cognito adds custom attributes (customer_id is added in
# place, by AddCustomAttributes, to a pool created before it) but never changes or removes
# one, and the provider refuses to try: any later change to that schema block means a new
# user pool (terraform apply -replace=aws_cognito_user_pool.api[0]), so every user enrolled
# again and every app client's id and secret new. An immutable attribute is set only when
# a user is created: customers enrolled before the attribute existed (who could read
# nothing without the claim) are enrolled again to get their number.

locals {
  # The emulator never gets the user pool: the local stack's own issuer (devstack/auth.py)
  # signs its tokens, and without jwt_issuer the default local gateway's is assumed.
  cognito = var.api_auth && var.jwt_issuer == null && !local.emulated
  scopes = {
    events_write      = "shopstream/events.write"
    invoices_read     = "shopstream/invoices.read"
    invoices_read_own = "shopstream/invoices.read.own"
  }
  # Route key → the scopes a token needs (any one of them); null: no token needed.
  route_scopes = {
    "POST /events"                          = [local.scopes.events_write]
    "GET /invoices/{invoice_no}"            = [local.scopes.invoices_read, local.scopes.invoices_read_own]
    "GET /customers/{customer_id}/invoices" = [local.scopes.invoices_read, local.scopes.invoices_read_own]
    "GET /openapi.json"                     = null
  }
  jwt_issuer = (local.cognito ? "https://${aws_cognito_user_pool.api[0].endpoint}"
  : var.jwt_issuer != null ? var.jwt_issuer : local.emulated ? local.local_issuer : null)
  jwt_audience = local.cognito ? concat(
    [for client in aws_cognito_user_pool_client.producer : client.id],
    [aws_cognito_user_pool_client.staff[0].id, aws_cognito_user_pool_client.customers[0].id],
  ) : length(var.jwt_audience) > 0 ? var.jwt_audience : (local.emulated ? [local.local_audience] : [])
  local_issuer   = "http://127.0.0.1:8080" # devstack/auth.py: the local gateway's default issuer
  local_audience = "shopstream"            # devstack/auth.py AUDIENCE
  # What a signed-in user may change of their own attributes, through any app client: an
  # explicit list, as without one a client may write every mutable attribute. Never
  # custom:customer_id (and the shop keeps the email it enrolled a customer with).
  user_writable_attributes = ["name"]
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count = var.api_auth ? 1 : 0

  api_id           = aws_apigatewayv2_api.http.id
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]
  name             = "${var.name_prefix}-jwt"

  jwt_configuration {
    issuer   = local.jwt_issuer
    audience = local.jwt_audience
  }
}

resource "aws_cognito_user_pool" "api" {
  count = local.cognito ? 1 : 0

  name                = "${var.name_prefix}-api"
  deletion_protection = local.deletion_protection ? "ACTIVE" : "INACTIVE"
  mfa_configuration   = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  password_policy {
    minimum_length    = 12
    require_lowercase = true
    require_uppercase = true
    require_numbers   = true
    require_symbols   = true
  }

  admin_create_user_config {
    allow_admin_create_user_only = true # customers are enrolled by the shop, not self-registered
  }

  # Essentials: the least feature plan whose pre token generation trigger may change access
  # tokens (event version 2); Lite sends only version 1, which changes ID tokens only.
  user_pool_tier = "ESSENTIALS"

  # custom:customer_id, set by the shop when it enrols a customer (AdminCreateUser) and
  # fixed from then on: immutable (no user and no administrator can change it afterwards;
  # a wrong number means deleting and enrolling that user again), and in no app client's
  # write_attributes. Cognito can neither change nor remove a custom attribute: see the header.
  schema {
    name                     = "customer_id"
    attribute_data_type      = "String"
    mutable                  = false
    required                 = false # custom attributes cannot be required
    developer_only_attribute = false # the legacy dev: attributes; app clients' permissions replace them
    string_attribute_constraints {   # required by the provider for a String, or it plans a change every time
      min_length = 1
      max_length = 20 # pipeline/events.py: a customer number has at most 20 digits
    }
  }

  lambda_config {
    pre_token_generation_config {
      lambda_arn     = aws_lambda_function.pre_token_generation[0].arn
      lambda_version = "V2_0"
    }
  }
}

resource "aws_cognito_user_pool_domain" "api" {
  count = local.cognito ? 1 : 0

  domain       = coalesce(var.cognito_domain_prefix, "${var.name_prefix}-${local.account_id}")
  user_pool_id = aws_cognito_user_pool.api[0].id
}

resource "aws_cognito_resource_server" "api" {
  count = local.cognito ? 1 : 0

  identifier   = "shopstream"
  name         = "shopstream"
  user_pool_id = aws_cognito_user_pool.api[0].id

  scope {
    scope_name        = "events.write"
    scope_description = "send invoice events (trusted producers)"
  }
  scope {
    scope_name        = "invoices.read"
    scope_description = "read any invoice and any customer's history (staff)"
  }
  scope {
    scope_name        = "invoices.read.own"
    scope_description = "read one's own invoices and history (customers)"
  }
}

resource "aws_cognito_user_pool_client" "producer" {
  for_each = local.cognito ? toset(var.producers) : toset([])

  name                                 = "${var.name_prefix}-producer-${each.key}"
  user_pool_id                         = aws_cognito_user_pool.api[0].id
  generate_secret                      = true
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["client_credentials"]
  allowed_oauth_scopes                 = ["${aws_cognito_resource_server.api[0].identifier}/events.write"]
  supported_identity_providers         = ["COGNITO"]
  write_attributes                     = local.user_writable_attributes
  access_token_validity                = 60
  token_validity_units {
    access_token = "minutes"
  }
}

resource "aws_cognito_user_pool_client" "staff" {
  count = local.cognito ? 1 : 0

  name                                 = "${var.name_prefix}-staff"
  user_pool_id                         = aws_cognito_user_pool.api[0].id
  generate_secret                      = true
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["client_credentials"]
  allowed_oauth_scopes                 = ["${aws_cognito_resource_server.api[0].identifier}/invoices.read"]
  supported_identity_providers         = ["COGNITO"]
  write_attributes                     = local.user_writable_attributes
  access_token_validity                = 60
  token_validity_units {
    access_token = "minutes"
  }
}

resource "aws_cognito_user_pool_client" "customers" {
  count = local.cognito ? 1 : 0

  name                                 = "${var.name_prefix}-customers"
  user_pool_id                         = aws_cognito_user_pool.api[0].id
  generate_secret                      = false # a browser or mobile app: authorization code with PKCE
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "${aws_cognito_resource_server.api[0].identifier}/invoices.read.own"]
  callback_urls                        = var.customer_callback_urls
  supported_identity_providers         = ["COGNITO"]
  write_attributes                     = local.user_writable_attributes
  prevent_user_existence_errors        = "ENABLED"
  access_token_validity                = 60
  token_validity_units {
    access_token = "minutes"
  }
}

# The pre token generation trigger: identity/handler.py, built by infra/build_lambdas.py
# (FUNCTIONS["pre-token-generation"]) like the functions of lambda.tf, and deployed only
# with the user pool (so not on the emulator, and not with an external issuer). Not one of
# local.functions: those are the pipeline's functions, deployed on the emulator too, each
# with the settings of pipeline/settings.py FUNCTION_ENV; this one reads no setting and
# exists only for Cognito. The same shape, checked against the build the same way
# (tests/contract/test_settings_terraform.py).
locals {
  pre_token_generation = {
    key         = "pre-token-generation"
    description = "Cognito pre token generation (V2_0): a customer's access token gets their custom:customer_id as customer_id"
    handler     = "identity.handler.lambda_handler"
    zip         = "pre-token-generation.zip"
    layers      = ["deps"]
    memory_size = 256
    timeout     = 5 # Cognito waits 5 s for a trigger's answer (and retries up to 3 times)
  }
  # Its role's statements, as iam.tf writes each function's: its logs, its traces and, with
  # a customer key, the key (its environment is encrypted with it). It calls nothing else.
  pre_token_generation_statements = concat(
    [
      {
        sid       = "WriteOwnLogs"
        actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        resources = [for group in aws_cloudwatch_log_group.pre_token_generation : "${group.arn}:*"]
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

resource "aws_cloudwatch_log_group" "pre_token_generation" {
  #checkov:skip=CKV_AWS_158:Encrypted at rest by CloudWatch Logs in every case; with kms_key_arn set, by that customer key (its key policy must allow logs.<region>.amazonaws.com). The check cannot see a key given by a variable.
  count = local.cognito ? 1 : 0

  name              = "/aws/lambda/${var.name_prefix}-${local.pre_token_generation.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_iam_role" "pre_token_generation" {
  count = local.cognito ? 1 : 0

  name               = "${var.name_prefix}-${local.pre_token_generation.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "pre_token_generation" {
  count = local.cognito ? 1 : 0

  dynamic "statement" {
    for_each = local.pre_token_generation_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

resource "aws_iam_role_policy" "pre_token_generation" {
  count = local.cognito ? 1 : 0

  name   = "${var.name_prefix}-${local.pre_token_generation.key}"
  role   = aws_iam_role.pre_token_generation[0].id
  policy = data.aws_iam_policy_document.pre_token_generation[0].json
}

resource "aws_lambda_function" "pre_token_generation" {
  #checkov:skip=CKV_AWS_117:The trigger reaches nothing but its answer to Cognito (no network call at all); a VPC would add only a NAT gateway's cost.
  #checkov:skip=CKV_AWS_116:Cognito invokes the trigger synchronously and waits for its answer (a failure fails that sign-in, which the user retries); there is no asynchronous event to keep in a dead-letter queue.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is taken from the account's pool (new accounts cannot reserve any); sign-ins are bounded by Cognito's own request quotas.
  #checkov:skip=CKV_AWS_272:The zip is built reproducibly from this repository (infra/build_lambdas.py) and uploaded by Terraform directly; code signing needs signed artifacts from a Signer profile in S3.
  #checkov:skip=CKV_AWS_173:Environment variables are encrypted at rest by Lambda (AWS-managed key, or kms_key_arn when set) and hold only Powertools' settings, no secret. The check cannot see a key given by a variable.
  count = local.cognito ? 1 : 0

  function_name                  = "${var.name_prefix}-${local.pre_token_generation.key}"
  description                    = local.pre_token_generation.description
  role                           = aws_iam_role.pre_token_generation[0].arn
  runtime                        = var.lambda_runtime
  architectures                  = ["x86_64"]
  handler                        = local.pre_token_generation.handler
  filename                       = "${local.build_dir}/${local.pre_token_generation.zip}"
  source_code_hash               = filebase64sha256("${local.build_dir}/${local.pre_token_generation.zip}")
  layers                         = [for layer in local.pre_token_generation.layers : aws_lambda_layer_version.layer[layer].arn]
  memory_size                    = local.pre_token_generation.memory_size
  timeout                        = local.pre_token_generation.timeout
  kms_key_arn                    = var.kms_key_arn
  reserved_concurrent_executions = -1

  tracing_config {
    mode = "Active"
  }

  # JSON lines, as every function of lambda.tf writes on AWS (this one exists only there)
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.pre_token_generation[0].name
    application_log_level = local.lambda_log_levels[var.log_level]
    system_log_level      = "INFO"
  }

  environment {
    variables = {
      POWERTOOLS_SERVICE_NAME      = local.pre_token_generation.key
      POWERTOOLS_METRICS_NAMESPACE = "shopstream"
      POWERTOOLS_LOG_LEVEL         = var.log_level
    }
  }

  depends_on = [
    aws_cloudwatch_log_group.pre_token_generation,
    aws_iam_role_policy.pre_token_generation,
  ]
}

resource "aws_lambda_permission" "pre_token_generation" {
  count = local.cognito ? 1 : 0

  statement_id  = "AllowCognitoPreTokenGeneration"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.pre_token_generation[0].function_name
  principal     = "cognito-idp.amazonaws.com"
  source_arn    = aws_cognito_user_pool.api[0].arn
}
