# The stream of invoice events (KPL-aggregated records, partition key = invoice number).

resource "aws_kinesis_stream" "events" {
  name             = "${var.name_prefix}-events"
  shard_count      = var.shard_count
  retention_period = var.stream_retention_hours # how long a failed batch can still be redriven

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }

  # At rest with the AWS-managed key: no key policy to manage, no grants for producers or
  # consumers. The emulator does not encrypt, and enabling it there only costs the
  # provider's 10 s wait for the stream to become ACTIVE again.
  encryption_type = local.emulated ? "NONE" : "KMS"
  kms_key_id      = local.emulated ? null : "alias/aws/kinesis"
}
