# The stream of invoice events (KPL-aggregated records, partition key = invoice number).

resource "aws_kinesis_stream" "events" {
  #checkov:skip=CKV_AWS_43:KMS-encrypted on AWS (asserted by tests/aws_mode.tftest.hcl); unencrypted only on the local emulator, which keeps records in memory. The check cannot evaluate the emulator switch.
  name             = "${var.name_prefix}-events"
  shard_count      = var.shard_count
  retention_period = var.stream_retention_hours # how long a failed batch can still be redriven

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }

  # At rest with the AWS-managed key (no key policy to manage, no grants for producers or
  # consumers), or with kms_key_arn when given. The emulator does not encrypt, and enabling
  # it there only costs the provider's 10 s wait for the stream to become ACTIVE again.
  encryption_type = local.emulated ? "NONE" : "KMS"
  kms_key_id      = local.emulated ? null : coalesce(var.kms_key_arn, "alias/aws/kinesis")
}
