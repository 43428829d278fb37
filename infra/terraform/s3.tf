# The archive: every invoice event as delivered, as Parquet under
# <archive_prefix>year=YYYY/month=MM/day=DD/ (consumers/archive). Bucket names are global:
# the account and region make this one unique to the deployment.

data "aws_caller_identity" "current" {}

locals {
  archive_prefix = "archive/"
}

resource "aws_s3_bucket" "archive" {
  bucket        = "${var.name_prefix}-archive-${data.aws_caller_identity.current.account_id}-${var.region}"
  force_destroy = var.force_destroy_buckets
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket                  = aws_s3_bucket.archive.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
