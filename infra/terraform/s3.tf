# The archive: every invoice event as delivered, as Parquet under
# <archive_prefix>year=YYYY/month=MM/day=DD/ (consumers/archive). Bucket names are global:
# the account and region make this one unique to the deployment.

locals {
  archive_prefix = "archive/"
}

resource "aws_s3_bucket" "archive" {
  #checkov:skip=CKV_AWS_18:Object access is audited account-wide by CloudTrail data events; server access logs would need a log bucket per deployment.
  #checkov:skip=CKV_AWS_144:The module deploys one region; the archive holds what the stream delivered and backfill reads it in place.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events: backfill and reconcile list the archive when asked.
  #checkov:skip=CKV2_AWS_61:The archive is the replayable record of every event and is kept; objects are written whole (PutObject), so no upload is left incomplete.
  #checkov:skip=CKV_AWS_21:A retried batch overwrites its own objects by design (keys are the batch's sequence range); terraform destroy keeps a bucket that holds objects (force_destroy_buckets = false).
  bucket        = "${var.name_prefix}-archive-${local.account_id}-${var.region}"
  force_destroy = var.force_destroy_buckets
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket                  = aws_s3_bucket.archive.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ── the archive and Firehose's delivery bucket: encrypted, TLS only (the drop buckets
# of drops.tf share the TLS-only policy) ──

locals {
  bucket_arns = {
    archive      = aws_s3_bucket.archive.arn
    delivery     = aws_s3_bucket.delivery.arn
    drops        = aws_s3_bucket.drops.arn
    drop_archive = aws_s3_bucket.drop_archive.arn
  }
}

# Default encryption of every object: SSE-KMS with the AWS-managed key aws/s3, or with
# kms_key_arn when given; bucket keys keep KMS requests to about one per object batch.
resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "delivery" {
  bucket = aws_s3_bucket.delivery.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

# Refuse every request that does not use TLS, whoever makes it. AWS only: the emulator
# evaluates bucket policies and is reached over plain HTTP on 127.0.0.1, so there the
# policy would refuse every request of the local stack.
data "aws_iam_policy_document" "tls_only" {
  for_each = local.emulated ? {} : local.bucket_arns

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"] # a deny: every action, over plain HTTP
    resources = [each.value, "${each.value}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  count = local.emulated ? 0 : 1

  bucket = aws_s3_bucket.archive.id
  policy = data.aws_iam_policy_document.tls_only["archive"].json

  depends_on = [aws_s3_bucket_public_access_block.archive]
}

resource "aws_s3_bucket_policy" "delivery" {
  count = local.emulated ? 0 : 1

  bucket = aws_s3_bucket.delivery.id
  policy = data.aws_iam_policy_document.tls_only["delivery"].json

  depends_on = [aws_s3_bucket_public_access_block.delivery]
}
