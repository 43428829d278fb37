# Where every alarm (alarms.tf) sends its ALARM and OK notifications: one SNS topic, with
# an email subscription per address in alert_emails (each address confirms its own).
#
# Encryption: CloudWatch can publish to an encrypted topic only if the key's policy lets
# cloudwatch.amazonaws.com use it, and the AWS-managed alias/aws/sns key's policy cannot be
# changed, so a topic under that key silently receives no alarm at all. The topic is
# therefore encrypted with kms_key_arn when given (its key policy must allow
# cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*, as it allows
# logs.<region>.amazonaws.com for the log groups), or else with a key of its own whose
# policy does. Not on the emulator, which does not encrypt (as for the stream).

locals {
  alerts_key_created = !local.emulated && var.kms_key_arn == null
  alerts_key_arn     = local.emulated ? null : (local.alerts_key_created ? aws_kms_key.alerts[0].arn : var.kms_key_arn)
}

resource "aws_kms_key" "alerts" {
  count = local.alerts_key_created ? 1 : 0

  description             = "${var.name_prefix}: the alerts topic (CloudWatch alarms publish to it)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alerts_key[0].json
}

data "aws_iam_policy_document" "alerts_key" {
  count = local.alerts_key_created ? 1 : 0

  # the account administers the key through IAM, as with a default key policy
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_alias" "alerts" {
  count = local.alerts_key_created ? 1 : 0

  name          = "alias/${var.name_prefix}-alerts"
  target_key_id = aws_kms_key.alerts[0].key_id
}

data "aws_partition" "current" {}

resource "aws_sns_topic" "alerts" {
  #checkov:skip=CKV_AWS_26:Encrypted on AWS with kms_key_arn or the topic's own key (asserted by tests/aws_mode.tftest.hcl); unencrypted only on the local emulator. The check cannot evaluate the emulator switch.
  name              = "${var.name_prefix}-alerts"
  kms_master_key_id = local.alerts_key_arn
}

resource "aws_sns_topic_subscription" "alert_email" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}
