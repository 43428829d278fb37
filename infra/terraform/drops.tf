# Daily files (batch/): a shop's order system (or `shopstream drop`) puts a CSV under
# transactions/ in the drop bucket; the object-created notification invokes the batch
# function, which puts the file's invoices on the stream like any POST, records the
# file's outcome in the ledger table, announces it on the file-outcomes topic and moves
# the file to the drop-archive bucket under the same key. A load short of time writes a
# marker under continuations/, whose own notification invokes the function again.
#
# Subscribe people with file_outcome_emails, or anything else to the
# file_outcomes_topic_arn output (the message attributes kind = file-loaded | file-failed
# and key serve filter policies).

resource "aws_s3_bucket" "drops" {
  #checkov:skip=CKV_AWS_18:Object access is audited account-wide by CloudTrail data events; server access logs would need a log bucket per deployment.
  #checkov:skip=CKV_AWS_144:The module deploys one region; a dropped file is loaded where it lands and then moved to the drop-archive bucket.
  #checkov:skip=CKV2_AWS_61:Objects leave the bucket once loaded (moved to the drop-archive bucket); what stays is a file that could not be read, kept for its owner to see.
  #checkov:skip=CKV_AWS_21:A dropped file is moved out once loaded; its copy in the drop-archive bucket is the record.
  bucket        = "${var.name_prefix}-drops-${local.account_id}-${var.region}"
  force_destroy = var.force_destroy_buckets
}

resource "aws_s3_bucket" "drop_archive" {
  #checkov:skip=CKV_AWS_18:Object access is audited account-wide by CloudTrail data events; server access logs would need a log bucket per deployment.
  #checkov:skip=CKV_AWS_144:The module deploys one region; the loaded files are kept where they were loaded.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events of the loaded files.
  #checkov:skip=CKV2_AWS_61:The loaded files are the record of what each drop held and are kept; objects are written whole (CopyObject).
  #checkov:skip=CKV_AWS_21:A re-dropped file of the same content is the same object under the same key.
  bucket        = "${var.name_prefix}-drop-archive-${local.account_id}-${var.region}"
  force_destroy = var.force_destroy_buckets
}

locals {
  drop_buckets = { drops = aws_s3_bucket.drops, drop_archive = aws_s3_bucket.drop_archive }
}

resource "aws_s3_bucket_public_access_block" "drop" {
  for_each = local.drop_buckets

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "drop" {
  for_each = local.drop_buckets

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

# TLS only: the same policy as the other buckets (s3.tf local.bucket_arns, AWS only)
resource "aws_s3_bucket_policy" "drop" {
  for_each = local.emulated ? {} : local.drop_buckets

  bucket = each.value.id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.drop]
}

resource "aws_lambda_permission" "drops" {
  statement_id   = "DropBucketNotifications"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function["batch"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.drops.arn
  source_account = local.emulated ? null : local.account_id # the emulator answers with an account id of its own
}

resource "aws_s3_bucket_notification" "drops" {
  bucket = aws_s3_bucket.drops.id

  lambda_function {
    id                  = "transactions"
    lambda_function_arn = aws_lambda_function.function["batch"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = "transactions/"
  }
  lambda_function {
    id                  = "continuations"
    lambda_function_arn = aws_lambda_function.function["batch"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = "continuations/"
  }

  depends_on = [aws_lambda_permission.drops]
}

# The continuation markers make an S3 -> Lambda -> S3 loop on purpose (bounded: one part
# per 15 minutes of a file's load); Lambda's recursive-loop detection would stop it after
# 16 parts. AWS only: the emulator has no such API.
resource "aws_lambda_function_recursion_config" "batch" {
  count = local.emulated ? 0 : 1

  function_name  = aws_lambda_function.function["batch"].function_name
  recursive_loop = "Allow"
}

# The loaded files: one item per file content, keyed by its SHA-256 (batch/store.py DynamoFileLedger).
resource "aws_dynamodb_table" "dropped_files" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-owned key, or with kms_key_arn when set. The check cannot see a key given by a variable.
  name         = "${var.name_prefix}-dropped-files"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "file_sha256"

  attribute {
    name = "file_sha256"
    type = "S"
  }

  deletion_protection_enabled = local.deletion_protection

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = var.kms_key_arn != null
    kms_key_arn = var.kms_key_arn
  }
}

resource "aws_sns_topic" "file_outcomes" {
  #checkov:skip=CKV_AWS_26:Encrypted on AWS with kms_key_arn or the AWS-managed alias/aws/sns key; unencrypted only on the local emulator. The check cannot evaluate the emulator switch.
  name = "${var.name_prefix}-file-outcomes"
  # Only the batch function publishes (with its role), so the AWS-managed key serves.
  kms_master_key_id = local.emulated ? null : coalesce(var.kms_key_arn, "alias/aws/sns")
}

resource "aws_sns_topic_subscription" "file_outcome_email" {
  for_each = toset(var.file_outcome_emails)

  topic_arn = aws_sns_topic.file_outcomes.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "file_outcomes_delivery" {
  alarm_name          = "${var.name_prefix}-file-outcomes-delivery-failed"
  alarm_description   = "SNS could not deliver a dropped file's outcome to a subscription of ${aws_sns_topic.file_outcomes.name}."
  namespace           = "AWS/SNS"
  metric_name         = "NumberOfNotificationsFailed"
  dimensions          = { TopicName = aws_sns_topic.file_outcomes.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
}
