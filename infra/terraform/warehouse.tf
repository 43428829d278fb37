# The warehouse: Redshift, its admin secret, and the scheduled merge.
#
# On AWS, Redshift Serverless (a namespace and a workgroup) by default, or a provisioned
# cluster with redshift_deployment = "provisioned". The emulator has no Redshift
# Serverless, so there the provisioned cluster is what stands for Redshift: the one
# switch is emulator_endpoint, as everywhere else.
#
# The admin credentials are a Secrets Manager secret that nobody writes down: on AWS,
# Redshift creates and rotates it itself (manage_master_password / manage_admin_password),
# so the password is never in the code, a variable, the state or an output. The emulator
# cannot manage secrets that way, so there Secrets Manager generates one (a data source,
# so it is in the throwaway local state; the local warehouse does not check passwords)
# and it reaches the secret and the cluster through write-only attributes. Firehose
# (secrets_manager_configuration) and the merge (the Data API's SecretArn) read the
# same secret, which holds {"username", "password"}.
#
# Tables, views and the merge are SQL in warehouse/sql/, applied by the warehouse-merge
# function through the Redshift Data API (migrations first, then each scheduled merge).

locals {
  redshift_provisioned = local.emulated || var.redshift_deployment == "provisioned"
  redshift_port        = 5439
  # the Data API target: a cluster identifier or a workgroup name
  redshift_cluster_id = local.redshift_provisioned ? aws_redshift_cluster.warehouse[0].cluster_identifier : ""
  redshift_workgroup  = local.redshift_provisioned ? "" : aws_redshiftserverless_workgroup.warehouse[0].workgroup_name
  redshift_host = (local.redshift_provisioned
    ? aws_redshift_cluster.warehouse[0].dns_name
  : aws_redshiftserverless_workgroup.warehouse[0].endpoint[0].address)
  redshift_jdbc_url = "jdbc:redshift://${local.redshift_host}:${local.redshift_port}/${var.redshift_database}"
  warehouse_secret_arn = (local.emulated ? aws_secretsmanager_secret.warehouse_admin[0].arn
    : local.redshift_provisioned ? aws_redshift_cluster.warehouse[0].master_password_secret_arn
  : aws_redshiftserverless_namespace.warehouse[0].admin_password_secret_arn)
}

# ── the emulator's admin secret ────────────────────────────────────────────────

# (Not an ephemeral resource: `terraform test`'s mock provider cannot mock those, and
# tests/contract/test_terraform_aws_mode.py plans AWS mode with it.)
data "aws_secretsmanager_random_password" "warehouse_admin" {
  count = local.emulated ? 1 : 0

  password_length     = 32
  exclude_punctuation = true # Redshift refuses ' " \ / @ and spaces in passwords
  # Redshift wants an upper-case letter, a lower-case letter and a digit. Without this a
  # password could be drawn without a digit (about 1 in 280 of 32 alphanumerics), and the
  # apply then failed at master_password_wo
  require_each_included_type = true
}

resource "aws_secretsmanager_secret" "warehouse_admin" {
  #checkov:skip=CKV_AWS_149:Exists only on the local emulator (count); on AWS the secret is Redshift's own, encrypted with kms_key_arn when set.
  #checkov:skip=CKV2_AWS_57:Exists only on the local emulator (count); on AWS Redshift rotates the secret it manages itself.
  count = local.emulated ? 1 : 0

  name_prefix             = "${var.name_prefix}-warehouse-admin-"
  description             = "Admin credentials of the local shopstream warehouse (Firehose's COPY, the merge's Data API calls)"
  recovery_window_in_days = 0
}

resource "aws_secretsmanager_secret_version" "warehouse_admin" {
  count = local.emulated ? 1 : 0

  secret_id = aws_secretsmanager_secret.warehouse_admin[0].id
  secret_string_wo = jsonencode({
    username = var.redshift_admin_username
    password = data.aws_secretsmanager_random_password.warehouse_admin[0].random_password
  })
  secret_string_wo_version = 1
}

# ── provisioned (and the emulator) ─────────────────────────────────────────────

resource "aws_redshift_cluster" "warehouse" {
  #checkov:skip=CKV_AWS_142:Encrypted (encrypted = true) with the AWS-managed key, or with kms_key_arn when set. The check cannot see a key given by a variable.
  #checkov:skip=CKV_AWS_71:Audit logging is enabled by aws_redshift_logging.warehouse (AWS only), the provider's replacement for this resource's deprecated logging block.
  #checkov:skip=CKV_AWS_321:Firehose's COPY reads the delivery bucket through S3's public endpoint; enhanced VPC routing would send it through the VPC, which then needs an S3 gateway endpoint this module does not own.
  count = local.redshift_provisioned ? 1 : 0

  cluster_identifier     = "${var.name_prefix}-warehouse"
  database_name          = var.redshift_database
  master_username        = var.redshift_admin_username
  manage_master_password = local.emulated ? null : true
  # the secret Redshift manages: the customer key when given, else Secrets Manager's own
  master_password_secret_kms_key_id = local.emulated ? null : var.kms_key_arn
  master_password_wo                = local.emulated ? data.aws_secretsmanager_random_password.warehouse_admin[0].random_password : null
  master_password_wo_version        = local.emulated ? 1 : null
  node_type                         = var.redshift_node_type
  cluster_type                      = var.redshift_number_of_nodes > 1 ? "multi-node" : "single-node"
  number_of_nodes                   = var.redshift_number_of_nodes
  port                              = local.redshift_port
  encrypted                         = true
  kms_key_id                        = var.kms_key_arn # null: the AWS-managed key
  publicly_accessible               = length(var.warehouse_ingress_cidr_blocks) > 0
  vpc_security_group_ids            = local.emulated ? null : [aws_security_group.warehouse[0].id]
  cluster_subnet_group_name         = local.emulated ? null : aws_redshift_subnet_group.warehouse[0].name
  skip_final_snapshot               = local.emulated || var.redshift_skip_final_snapshot
  final_snapshot_identifier         = local.emulated || var.redshift_skip_final_snapshot ? null : "${var.name_prefix}-warehouse-final"
}

# Connection, user and user-activity logs to CloudWatch Logs (AWS only: the emulator does not
# implement Redshift's logging API).
resource "aws_redshift_logging" "warehouse" {
  count = local.redshift_provisioned && !local.emulated ? 1 : 0

  cluster_identifier   = aws_redshift_cluster.warehouse[0].cluster_identifier
  log_destination_type = "cloudwatch"
  log_exports          = ["connectionlog", "userlog"]
}

# ── serverless (AWS only) ──────────────────────────────────────────────────────

resource "aws_redshiftserverless_namespace" "warehouse" {
  #checkov:skip=CKV_AWS_282:Encrypted with the AWS-managed key, or with kms_key_arn when set. The check cannot see a key given by a variable.
  count = local.redshift_provisioned ? 0 : 1

  namespace_name        = "${var.name_prefix}-warehouse"
  db_name               = var.redshift_database
  admin_username        = var.redshift_admin_username
  manage_admin_password = true
  # the secret Redshift manages and the namespace: the customer key when given
  admin_password_secret_kms_key_id = var.kms_key_arn
  kms_key_id                       = var.kms_key_arn
  log_exports                      = ["connectionlog", "userlog", "useractivitylog"]
}

resource "aws_redshiftserverless_workgroup" "warehouse" {
  count = local.redshift_provisioned ? 0 : 1

  namespace_name      = aws_redshiftserverless_namespace.warehouse[0].namespace_name
  workgroup_name      = "${var.name_prefix}-warehouse"
  base_capacity       = var.redshift_serverless_base_capacity
  port                = local.redshift_port
  publicly_accessible = length(var.warehouse_ingress_cidr_blocks) > 0
  subnet_ids          = local.warehouse_subnet_ids
  security_group_ids  = [aws_security_group.warehouse[0].id]
}

# ── network (AWS only): who may open a connection to the warehouse ─────────────
# Firehose connects to Redshift from the region's Firehose address range (listed in the
# Firehose developer guide, "Grant Firehose access to an Amazon Redshift destination"),
# and Tableau from wherever it runs: both go in warehouse_ingress_cidr_blocks.

# The network is warehouse_vpc_id / warehouse_subnet_ids, or the region's default VPC and
# its subnets when they are null (looked up only then).
data "aws_vpc" "default" {
  count   = !local.emulated && var.warehouse_vpc_id == null ? 1 : 0
  default = true
}

data "aws_subnets" "default" {
  count = !local.emulated && var.warehouse_subnet_ids == null ? 1 : 0
  filter {
    name   = "vpc-id"
    values = [local.warehouse_vpc_id]
  }
}

locals {
  warehouse_vpc_id     = var.warehouse_vpc_id != null ? var.warehouse_vpc_id : one(data.aws_vpc.default[*].id)
  warehouse_subnet_ids = var.warehouse_subnet_ids != null ? var.warehouse_subnet_ids : one(data.aws_subnets.default[*].ids)
}

# The provisioned cluster's subnets (AWS only: the emulator's cluster has no network).
resource "aws_redshift_subnet_group" "warehouse" {
  count = local.redshift_provisioned && !local.emulated ? 1 : 0

  name       = "${var.name_prefix}-warehouse"
  subnet_ids = local.warehouse_subnet_ids
}

resource "aws_security_group" "warehouse" {
  count = local.emulated ? 0 : 1

  name        = "${var.name_prefix}-warehouse"
  description = "Redshift: Firehose's COPY and analysts' tools"
  vpc_id      = local.warehouse_vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "warehouse" {
  for_each = local.emulated ? toset([]) : toset(var.warehouse_ingress_cidr_blocks)

  security_group_id = aws_security_group.warehouse[0].id
  description       = "Redshift from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.redshift_port
  to_port           = local.redshift_port
}

# ── the scheduled merge ────────────────────────────────────────────────────────

resource "aws_cloudwatch_event_rule" "merge" {
  name                = "${var.name_prefix}-warehouse-merge"
  description         = "Merge staged rows into the fact and dimensions, then refresh the materialized views"
  schedule_expression = var.merge_schedule_expression
}

resource "aws_cloudwatch_event_target" "merge" {
  rule = aws_cloudwatch_event_rule.merge.name
  arn  = aws_lambda_function.function["warehouse-merge"].arn
}

resource "aws_lambda_permission" "merge_schedule" {
  statement_id  = "AllowScheduledMerge"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["warehouse-merge"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.merge.arn
}

# Firehose reaches Redshift over the internet: with no ingress CIDR blocks (the default)
# the warehouse stays private and every COPY fails until the retry duration is spent. A
# plan says so, without refusing a private first deployment.
check "firehose_can_reach_the_warehouse" {
  assert {
    condition     = local.emulated || length(var.warehouse_ingress_cidr_blocks) > 0
    error_message = "warehouse_ingress_cidr_blocks is empty: Redshift is not publicly accessible, so Firehose cannot COPY into it. Add the region's Firehose CIDR block (see warehouse.tf)."
  }
}
