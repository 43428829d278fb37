# Where records end up when they cannot be written.

locals {
  queue_retention_seconds = 14 * 24 * 3600 # the SQS maximum
  # At rest with SQS-managed keys, or with kms_key_arn when given.
  queue_sse_managed = var.kms_key_arn == null
}

# On-failure destination of each stream consumer's event source mapping: a batch that
# still fails after bisecting and the bounded retries is described here (shard, sequence
# range), so it can be re-read from the stream within its retention.
resource "aws_sqs_queue" "consumer_failures" {
  for_each = local.stream_consumers

  name                      = "${var.name_prefix}-${each.key}-failures"
  message_retention_seconds = local.queue_retention_seconds
  sqs_managed_sse_enabled   = local.queue_sse_managed ? true : null
  kms_master_key_id         = var.kms_key_arn
}

moved {
  from = aws_sqs_queue.invoice_writer_failures
  to   = aws_sqs_queue.consumer_failures["invoice-writer"]
}

# Events a consumer can never process (bad schema, corrupt record), each with the reason
# and the consumer that found it, so they never block the shard.
resource "aws_sqs_queue" "quarantine" {
  name                      = "${var.name_prefix}-quarantine"
  message_retention_seconds = local.queue_retention_seconds
  sqs_managed_sse_enabled   = local.queue_sse_managed ? true : null
  kms_master_key_id         = var.kms_key_arn
}
