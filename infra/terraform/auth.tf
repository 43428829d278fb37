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
#   number in the claim customer_id: Cognito adds it only through a pre token generation
#   trigger (event version 2, which needs the Essentials or Plus feature plan), which is
#   not part of this module; an external issuer can set it instead.

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
  prevent_user_existence_errors        = "ENABLED"
  access_token_validity                = 60
  token_validity_units {
    access_token = "minutes"
  }
}
