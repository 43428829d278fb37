# Firehose: the events stream → transformation Lambda → S3 staging → COPY into the
# warehouse's staging table (the merge takes it from there, warehouse.tf).
#
# Firehose de-aggregates the KPL records of its Kinesis source, so the transformation
# receives one record per invoice event and answers with that invoice's line rows as
# newline-terminated JSON arrays, one value per staging column (firehose/core.py); the
# COPY lists the same columns (warehouse/schema.py STAGING_COLUMNS, checked by
# tests/contract/test_warehouse_terraform.py) and maps element i to column i with the
# JSONPaths file written below (arrays, not keyed objects: see warehouse/schema.py).

locals {
  # warehouse/schema.py STAGING_TABLE and STAGING_COLUMN_NAMES
  warehouse_staging_table = "stg_invoice_lines"
  warehouse_staging_columns = [
    "event_id", "invoice_no", "line_no", "invoice_date", "customer_id", "country", "stock_code", "description",
    "quantity", "unit_price", "amount", "size_class", "is_cancellation", "is_adjustment", "is_product",
    "source_sequence", "arrived_at", "status", "source_version",
  ]
  warehouse_jsonpaths_key = "firehose/jsonpaths/${local.warehouse_staging_table}.json"
  warehouse_copy_options  = "JSON 's3://${aws_s3_bucket.delivery.bucket}/${local.warehouse_jsonpaths_key}' GZIP TIMEFORMAT 'auto'"
  firehose_prefixes = {
    staging = "firehose/staging/"        # the gzip objects each COPY loads (and their manifests)
    errors  = "firehose/errors/"         # what could not be transformed or loaded, with why
    backup  = "firehose/source-records/" # every source record before transformation
  }
  # The processor's parameters that differ from Firehose's defaults (writing a default
  # gives a permanent diff): 1 MB, 60 s, 3 retries.
  firehose_processor_parameters = merge(
    { LambdaArn = aws_lambda_function.function["firehose-transform"].arn },
    var.firehose_processor_buffer_size_mb == 1 ? {} : { BufferSizeInMBs = tostring(var.firehose_processor_buffer_size_mb) },
    var.firehose_processor_buffer_interval_seconds == 60 ? {} : { BufferIntervalInSeconds = tostring(var.firehose_processor_buffer_interval_seconds) },
  )
}

resource "aws_s3_bucket" "delivery" {
  #checkov:skip=CKV_AWS_18:Object access is audited account-wide by CloudTrail data events; server access logs would need a log bucket per deployment.
  #checkov:skip=CKV_AWS_144:Staging is transient (the warehouse holds the data once loaded) and the module deploys one region.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events: Firehose's COPY is told which objects to load.
  #checkov:skip=CKV_AWS_21:Staging objects expire after firehose_staging_retention_days; Firehose never rewrites an object, so versions would only keep expired staging.
  bucket        = "${var.name_prefix}-delivery-${local.account_id}-${var.region}"
  force_destroy = var.force_destroy_buckets
}

# warehouse/schema.py jsonpaths(): element i of each row is column i
resource "aws_s3_object" "jsonpaths" {
  bucket       = aws_s3_bucket.delivery.id
  key          = local.warehouse_jsonpaths_key
  content_type = "application/json"
  content      = jsonencode({ jsonpaths = [for i, column in local.warehouse_staging_columns : "$[${i}]"] })
}

resource "aws_s3_bucket_public_access_block" "delivery" {
  bucket                  = aws_s3_bucket.delivery.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Not on the emulator: the provider waits ~55 s there for the rule to "propagate", and
# the local stack's bucket goes with the stack anyway.
resource "aws_s3_bucket_lifecycle_configuration" "delivery" {
  count  = local.emulated ? 0 : 1
  bucket = aws_s3_bucket.delivery.id

  rule {
    id     = "expire-staging"
    status = "Enabled"
    filter {
      prefix = local.firehose_prefixes.staging
    }
    expiration {
      days = var.firehose_staging_retention_days
    }
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  #checkov:skip=CKV_AWS_158:Encrypted at rest by CloudWatch Logs in every case; with kms_key_arn set, by that customer key (its key policy must allow logs.<region>.amazonaws.com). The check cannot see a key given by a variable.
  name              = "/aws/kinesisfirehose/${var.name_prefix}-warehouse"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_stream" "firehose" {
  for_each = toset(["DestinationDelivery", "S3Delivery", "BackupDelivery"])

  name           = each.key
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

# Encryption: server_side_encryption applies only to Direct PUT delivery streams. Records
# from this Kinesis source stay encrypted in the stream, what Firehose stages is encrypted
# by the delivery bucket's default (s3.tf), and Redshift by its own key.
resource "aws_kinesis_firehose_delivery_stream" "warehouse" {
  name        = "${var.name_prefix}-warehouse"
  destination = "redshift"

  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.events.arn
    role_arn           = aws_iam_role.firehose.arn
  }

  redshift_configuration {
    role_arn           = aws_iam_role.firehose.arn
    cluster_jdbcurl    = local.redshift_jdbc_url
    data_table_name    = local.warehouse_staging_table
    data_table_columns = join(",", local.warehouse_staging_columns)
    copy_options       = local.warehouse_copy_options
    retry_duration     = var.firehose_retry_duration_seconds
    s3_backup_mode     = "Enabled"

    secrets_manager_configuration {
      enabled    = true
      secret_arn = local.warehouse_secret_arn
      role_arn   = aws_iam_role.firehose.arn
    }

    s3_configuration {
      role_arn            = aws_iam_role.firehose.arn
      bucket_arn          = aws_s3_bucket.delivery.arn
      prefix              = local.firehose_prefixes.staging
      error_output_prefix = local.firehose_prefixes.errors
      buffering_size      = var.firehose_buffering_size_mb
      buffering_interval  = var.firehose_buffering_interval_seconds
      compression_format  = "GZIP" # the only compression a Redshift destination's staging takes

      cloudwatch_logging_options {
        enabled         = true
        log_group_name  = aws_cloudwatch_log_group.firehose.name
        log_stream_name = aws_cloudwatch_log_stream.firehose["S3Delivery"].name
      }
    }

    s3_backup_configuration {
      role_arn           = aws_iam_role.firehose.arn
      bucket_arn         = aws_s3_bucket.delivery.arn
      prefix             = local.firehose_prefixes.backup
      buffering_size     = var.firehose_buffering_size_mb
      buffering_interval = var.firehose_buffering_interval_seconds
      compression_format = "GZIP"

      cloudwatch_logging_options {
        enabled         = true
        log_group_name  = aws_cloudwatch_log_group.firehose.name
        log_stream_name = aws_cloudwatch_log_stream.firehose["BackupDelivery"].name
      }
    }

    processing_configuration {
      enabled = true
      processors {
        type = "Lambda"
        dynamic "parameters" {
          for_each = local.firehose_processor_parameters
          content {
            parameter_name  = parameters.key
            parameter_value = parameters.value
          }
        }
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose["DestinationDelivery"].name
    }
  }

  depends_on = [aws_iam_role_policy.firehose, aws_s3_object.jsonpaths]
}

# ── Firehose's role: read the stream, call the transformation, write the bucket, read the secret ──

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${var.name_prefix}-firehose"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid       = "ReadEvents"
    actions   = ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.events.arn]
  }
  statement {
    sid       = "Transform"
    actions   = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
    resources = [aws_lambda_function.function["firehose-transform"].arn, "${aws_lambda_function.function["firehose-transform"].arn}:*"]
  }
  statement {
    sid = "WriteDelivery"
    actions = [
      "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
      "s3:ListBucketMultipartUploads", "s3:PutObject",
    ]
    resources = [aws_s3_bucket.delivery.arn, "${aws_s3_bucket.delivery.arn}/firehose/*"]
  }
  statement {
    sid       = "ReadWarehouseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.warehouse_secret_arn]
  }
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:*"]
  }
  # with a customer key: the stream's records (Decrypt), the staging objects (GenerateDataKey)
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "UseDataKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "${var.name_prefix}-firehose"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}
