# What the same module plans for the local emulator (`shopstream up`), offline against a
# mocked provider: run by tests/contract/test_terraform_aws_mode.py with `terraform test`.
# The local stack applies it for real (tests/integration/test_terraform_apply.py); these
# runs cover the settings that stack does not use by default.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_data "aws_secretsmanager_random_password" {
    defaults = {
      random_password = "Mocked-Passw0rd-For-The-Plan"
    }
  }
}

variables {
  emulator_endpoint = "http://127.0.0.1:4566"
}

run "locally_tokens_are_checked_against_the_local_issuer" {
  command = plan

  assert {
    condition = (aws_apigatewayv2_authorizer.jwt[0].jwt_configuration[0].issuer == "http://127.0.0.1:8080"
      && aws_apigatewayv2_authorizer.jwt[0].jwt_configuration[0].audience == toset(["shopstream"])
    && length(aws_cognito_user_pool.api) == 0)
    error_message = "on the emulator the authorizer trusts the local issuer (devstack/auth.py), and no user pool is made"
  }
  assert {
    condition     = alltrue([for route in aws_apigatewayv2_route.route : route.authorization_type == "JWT"]) && length(aws_apigatewayv2_route.route) == 3
    error_message = "every route but the document needs a token, as on AWS"
  }
  assert {
    condition = (length(aws_lambda_function.pre_token_generation) == 0 && length(aws_lambda_permission.pre_token_generation) == 0
    && length(aws_iam_role.pre_token_generation) == 0 && length(aws_cloudwatch_log_group.pre_token_generation) == 0)
    error_message = "the emulator gets no pre token generation trigger: the local issuer puts customer_id in its tokens itself"
  }
}

run "no_auth_serves_every_route_without_a_token_and_tells_the_functions" {
  command = plan

  variables {
    api_auth = false
  }

  assert {
    condition     = length(aws_apigatewayv2_authorizer.jwt) == 0
    error_message = "api_auth = false (shopstream up --no-auth) makes no authorizer"
  }
  assert {
    condition = alltrue([for route in aws_apigatewayv2_route.route : route.authorization_type == "NONE"
    && route.authorizer_id == null && route.authorization_scopes == null])
    error_message = "with api_auth = false no route asks for a token or a scope"
  }
  assert {
    condition = (aws_lambda_function.function["ingest"].environment[0].variables["SHOPSTREAM_API_AUTH"] == "none"
    && aws_lambda_function.function["query-api"].environment[0].variables["SHOPSTREAM_API_AUTH"] == "none")
    error_message = "the API functions are told (pipeline/auth.py: every caller is anonymous, nothing is refused for its token)"
  }
}

run "the_local_warehouse_password_has_every_kind_of_character_redshift_wants" {
  command = plan

  assert {
    condition = (data.aws_secretsmanager_random_password.warehouse_admin[0].require_each_included_type
      && data.aws_secretsmanager_random_password.warehouse_admin[0].exclude_punctuation
    && data.aws_secretsmanager_random_password.warehouse_admin[0].password_length == 32)
    error_message = "the password always holds an upper-case letter, a lower-case letter and a digit, and no punctuation"
  }
}
