# One provider for both targets. With `emulator_endpoint` unset it is the ordinary AWS
# provider (credentials from the environment, profile or instance role). With it set,
# every service this module uses is pointed at the local emulator, with fake credentials
# and none of the checks that need AWS itself.

locals {
  emulated = var.emulator_endpoint != null
  # Null: on for AWS, off for the emulator (whose stack is thrown away, and destroyed by tests)
  deletion_protection = coalesce(var.deletion_protection, !local.emulated)
  account_id          = var.account_id != null ? var.account_id : data.aws_caller_identity.current[0].account_id
}

# Only when account_id is not given: it is the one call to AWS a plan would otherwise make.
data "aws_caller_identity" "current" {
  count = var.account_id == null ? 1 : 0
}

provider "aws" {
  region = var.region

  access_key = local.emulated ? "test" : null
  secret_key = local.emulated ? "test" : null

  skip_credentials_validation = local.emulated || var.skip_aws_checks
  skip_metadata_api_check     = local.emulated || var.skip_aws_checks
  skip_region_validation      = local.emulated
  s3_use_path_style           = local.emulated
  # The account ID is asked for (sts:GetCallerIdentity, which the emulator answers with its
  # own account): without it ARNs the provider builds itself, such as the API's execution
  # ARN in the Lambda permissions, would have an empty account field. Only a plan that must
  # not reach AWS skips it (skip_aws_checks); such ARNs are unknown until apply anyway.
  skip_requesting_account_id = var.skip_aws_checks

  # every service the module's resources (and the provider's reads of them) call
  dynamic "endpoints" {
    for_each = local.emulated ? [var.emulator_endpoint] : []
    content {
      apigatewayv2       = endpoints.value
      cloudwatch         = endpoints.value
      cloudwatchevents   = endpoints.value
      dynamodb           = endpoints.value
      ec2                = endpoints.value
      firehose           = endpoints.value
      iam                = endpoints.value
      kinesis            = endpoints.value
      kms                = endpoints.value
      lambda             = endpoints.value
      logs               = endpoints.value
      redshift           = endpoints.value
      redshiftdata       = endpoints.value
      redshiftserverless = endpoints.value
      s3                 = endpoints.value
      secretsmanager     = endpoints.value
      sns                = endpoints.value
      sqs                = endpoints.value
      sts                = endpoints.value
    }
  }

  default_tags {
    tags = merge({ Project = "shopstream" }, var.tags)
  }
}
