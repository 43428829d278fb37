# Large-order notifications (consumers/notifications): the order-notifier function reads
# the stream like every consumer and publishes one message per invoice whose total
# reaches large_order_threshold on the large-orders topic; the ledger table remembers
# which invoices were announced, so a redelivered event (at-least-once delivery, a
# retried batch, a redrive) announces nothing twice.
#
# Subscribe people with large_order_emails (each address confirms its own subscription),
# or anything else (a queue, a chat webhook) to the large_orders_topic_arn output; the
# message attributes kind, invoice_no, country and total serve subscription filter
# policies. On the emulator the topic keeps every message published to it:
# `shopstream notifications` shows them.

resource "aws_sns_topic" "large_orders" {
  #checkov:skip=CKV_AWS_26:Encrypted on AWS with kms_key_arn or the AWS-managed alias/aws/sns key (asserted by tests/aws_mode.tftest.hcl); unencrypted only on the local emulator. The check cannot evaluate the emulator switch.
  name = "${var.name_prefix}-large-orders"
  # Only the order-notifier function publishes (with its role), so the AWS-managed key
  # serves: its key policy lets the account's principals use it through SNS. (The alerts
  # topic cannot use it: CloudWatch publishes there, see alerts.tf.)
  kms_master_key_id = local.emulated ? null : coalesce(var.kms_key_arn, "alias/aws/sns")
}

resource "aws_sns_topic_subscription" "large_order_email" {
  for_each = toset(var.large_order_emails)

  topic_arn = aws_sns_topic.large_orders.arn
  protocol  = "email"
  endpoint  = each.value
}

# The announced invoices: one item per invoice number, written after its message was
# published (consumers/notifications/store.py DynamoLedger).
resource "aws_dynamodb_table" "order_notifications" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-owned key, or with kms_key_arn when set. The check cannot see a key given by a variable.
  name         = "${var.name_prefix}-order-notifications"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "invoice_no"

  attribute {
    name = "invoice_no"
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

# A message SNS could not deliver to a subscription (after its retries) is a missed
# notification: the alerts topic hears of the first one.
resource "aws_cloudwatch_metric_alarm" "large_orders_delivery" {
  alarm_name          = "${var.name_prefix}-large-orders-delivery-failed"
  alarm_description   = "SNS could not deliver a large-order notification to a subscription of ${aws_sns_topic.large_orders.name}."
  namespace           = "AWS/SNS"
  metric_name         = "NumberOfNotificationsFailed"
  dimensions          = { TopicName = aws_sns_topic.large_orders.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic_arns
  ok_actions          = local.alarm_topic_arns
}
