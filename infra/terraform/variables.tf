variable "name_prefix" {
  description = "Prefix of every resource name (stream, table, queues, functions, roles, API)."
  type        = string
  default     = "shopstream"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy to (also the region the emulator is asked for)."
  type        = string
  default     = "eu-west-1"
}

variable "emulator_endpoint" {
  description = "URL of a local AWS emulator (e.g. http://127.0.0.1:4566). Null deploys to AWS itself."
  type        = string
  default     = null

  validation {
    condition     = var.emulator_endpoint == null || can(regex("^https?://", var.emulator_endpoint))
    error_message = "emulator_endpoint must be an http(s) URL, or null for AWS."
  }
}

variable "stream_retention_hours" {
  description = "How long the events stream keeps records (24-8760 h): the window in which `shopstream redrive` can re-read a failed batch from the stream."
  type        = number
  default     = 168

  validation {
    condition     = var.stream_retention_hours >= 24 && var.stream_retention_hours <= 8760 && floor(var.stream_retention_hours) == var.stream_retention_hours
    error_message = "stream_retention_hours must be a whole number of hours from 24 to 8760."
  }
}

variable "shard_count" {
  description = "Shards of the events stream (provisioned mode); each takes 1 MB/s or 1,000 records/s of writes."
  type        = number
  default     = 2

  validation {
    condition     = var.shard_count >= 1 && floor(var.shard_count) == var.shard_count
    error_message = "shard_count must be a whole number of at least 1."
  }
}

variable "log_level" {
  description = "Log level of the functions (Powertools' POWERTOOLS_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps each log group (functions, Firehose, API access log): a year by default, for audit."
  type        = number
  default     = 365

  validation {
    condition = contains(
      [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653],
      var.log_retention_days,
    )
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, …)."
  }
}

variable "lambda_runtime" {
  description = "Lambda runtime of the functions and the dependency layer (the layer is built for its Python version)."
  type        = string
  default     = "python3.12"
}

variable "lambda_build_dir" {
  description = "Directory holding the zips built by infra/build_lambdas.py; null means build/lambda at the repository root."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Whether the invoices table refuses deletion (DeletionProtectionEnabled) until this is set to false and applied. Null: on for AWS, off for the emulator (whose stack is thrown away)."
  type        = bool
  default     = null
}

variable "point_in_time_recovery" {
  description = "Whether the invoices table keeps continuous backups (point-in-time recovery)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource, on top of Project = shopstream."
  type        = map(string)
  default     = {}
}

variable "archive_batch_size" {
  description = "Most Kinesis records per archive-writer invocation (Lambda also cuts a batch at its 6 MB payload)."
  type        = number
  default     = 10000

  validation {
    condition     = var.archive_batch_size >= 1 && var.archive_batch_size <= 10000
    error_message = "archive_batch_size must be between 1 and 10000 (Lambda's limit for Kinesis)."
  }
}

variable "archive_batching_window_seconds" {
  description = "How long the archive writer's mapping gathers records before invoking (larger objects, later archive)."
  type        = number
  default     = 60

  validation {
    condition     = var.archive_batching_window_seconds >= 0 && var.archive_batching_window_seconds <= 300
    error_message = "archive_batching_window_seconds must be between 0 and 300."
  }
}

variable "force_destroy_buckets" {
  description = "Whether terraform destroy may delete buckets that still hold objects (the archive, Firehose's delivery bucket)."
  type        = bool
  default     = false
}

variable "redshift_deployment" {
  description = "Redshift on AWS: \"serverless\" (a namespace and a workgroup) or \"provisioned\" (a cluster). The emulator always uses a cluster."
  type        = string
  default     = "serverless"

  validation {
    condition     = contains(["serverless", "provisioned"], var.redshift_deployment)
    error_message = "redshift_deployment must be \"serverless\" or \"provisioned\"."
  }
}

variable "redshift_database" {
  description = "Name of the warehouse database."
  type        = string
  default     = "shopstream"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,63}$", var.redshift_database))
    error_message = "redshift_database must be lower-case letters, digits and underscores, starting with a letter."
  }
}

variable "redshift_admin_username" {
  description = "Admin user of the warehouse (its password is generated and rotated by Redshift, in Secrets Manager only)."
  type        = string
  default     = "shopstream_admin"
}

variable "redshift_node_type" {
  description = "Node type of the provisioned cluster."
  type        = string
  default     = "ra3.large"
}

variable "redshift_number_of_nodes" {
  description = "Nodes of the provisioned cluster."
  type        = number
  default     = 1
}

variable "redshift_serverless_base_capacity" {
  description = "Base capacity (RPUs) of the Redshift Serverless workgroup."
  type        = number
  default     = 8
}

variable "redshift_skip_final_snapshot" {
  description = "Whether destroying the provisioned cluster skips its final snapshot."
  type        = bool
  default     = false
}

variable "warehouse_ingress_cidr_blocks" {
  description = "CIDR blocks allowed to connect to Redshift on 5439: the region's Firehose range (see warehouse.tf) and analysts' tools such as Tableau. Empty: not publicly accessible."
  type        = list(string)
  default     = []
}

variable "merge_schedule_expression" {
  description = "When the warehouse merge runs (EventBridge schedule expression; at most once a minute). The local runtime runs rate schedules more often (shopstream up: every 5 s)."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^(rate\\([0-9]+ (minute|minutes|hour|hours|day|days)\\)|cron\\(.+\\))$", var.merge_schedule_expression))
    error_message = "merge_schedule_expression must be rate(N unit) or cron(...)."
  }
}

variable "size_class_medium_from" {
  description = "Line amount (absolute, shop currency) from which a line is Medium rather than Small."
  type        = string
  default     = "10"

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?$", var.size_class_medium_from)) && try(tonumber(var.size_class_medium_from) > 0, false)
    error_message = "size_class_medium_from must be a positive decimal amount such as \"10\" or \"12.50\"."
  }
}

variable "size_class_large_from" {
  description = "Line amount (absolute, shop currency) from which a line is Large."
  type        = string
  default     = "100"

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?$", var.size_class_large_from)) && try(tonumber(var.size_class_large_from) > tonumber(var.size_class_medium_from), false)
    error_message = "size_class_large_from must be a decimal amount above size_class_medium_from."
  }
}

variable "firehose_buffering_size_mb" {
  description = "Firehose's S3 buffer before each staging object and COPY (1-128 MB)."
  type        = number
  default     = 5

  validation {
    condition     = var.firehose_buffering_size_mb >= 1 && var.firehose_buffering_size_mb <= 128
    error_message = "firehose_buffering_size_mb must be between 1 and 128."
  }
}

variable "firehose_buffering_interval_seconds" {
  description = "Firehose's longest wait before a staging object and COPY (0-900 s; AWS's default is 300, the local stack uses a short one)."
  type        = number
  default     = 60

  validation {
    condition     = var.firehose_buffering_interval_seconds >= 0 && var.firehose_buffering_interval_seconds <= 900
    error_message = "firehose_buffering_interval_seconds must be between 0 and 900."
  }
}

variable "firehose_processor_buffer_size_mb" {
  description = "Records per transformation call, in MB of source data (0.2-1.5: an invoice's rows are up to ~2.5x its event, ~3.2x base64-encoded, and a response is capped at 6 MB)."
  type        = number
  default     = 1

  validation {
    condition     = var.firehose_processor_buffer_size_mb >= 0.2 && var.firehose_processor_buffer_size_mb <= 1.5
    error_message = "firehose_processor_buffer_size_mb must be between 0.2 and 1.5 (the transformation's response must stay under 6 MB)."
  }
}

variable "firehose_processor_buffer_interval_seconds" {
  description = "Longest wait before a transformation call (0-900 s)."
  type        = number
  default     = 60

  validation {
    condition     = var.firehose_processor_buffer_interval_seconds >= 0 && var.firehose_processor_buffer_interval_seconds <= 900
    error_message = "firehose_processor_buffer_interval_seconds must be between 0 and 900."
  }
}

variable "firehose_retry_duration_seconds" {
  description = "How long Firehose retries a failed COPY before it writes the batch's manifest under the error prefix (0-7200 s)."
  type        = number
  default     = 3600

  validation {
    condition     = var.firehose_retry_duration_seconds >= 0 && var.firehose_retry_duration_seconds <= 7200
    error_message = "firehose_retry_duration_seconds must be between 0 and 7200."
  }
}

variable "firehose_staging_retention_days" {
  description = "Days the delivery bucket keeps staging objects (the warehouse holds the data once merged)."
  type        = number
  default     = 7
}

# ── limits ─────────────────────────────────────────────────────────────────────

variable "api_throttling_rate_limit" {
  description = "Steady requests per second the HTTP API's stage lets through across all routes (token bucket refill); above it, 429 without invoking."
  type        = number
  default     = 1000

  validation {
    condition     = var.api_throttling_rate_limit > 0
    error_message = "api_throttling_rate_limit must be positive."
  }
}

variable "api_throttling_burst_limit" {
  description = "Requests the HTTP API's stage lets through at once (token bucket size)."
  type        = number
  default     = 500

  validation {
    condition     = var.api_throttling_burst_limit >= 1 && floor(var.api_throttling_burst_limit) == var.api_throttling_burst_limit
    error_message = "api_throttling_burst_limit must be a whole number of at least 1."
  }
}

variable "ingest_reserved_concurrency" {
  description = "Concurrent executions reserved for the ingest function (its ceiling too). Null: none reserved (new accounts cannot reserve: their pool is too small)."
  type        = number
  default     = null

  validation {
    condition     = var.ingest_reserved_concurrency == null || try(var.ingest_reserved_concurrency >= 1 && floor(var.ingest_reserved_concurrency) == var.ingest_reserved_concurrency, false)
    error_message = "ingest_reserved_concurrency must be null or a whole number of at least 1."
  }
}

# ── data protection ────────────────────────────────────────────────────────────

variable "kms_key_arn" {
  description = "ARN of a customer-managed KMS key for everything at rest (stream, queues, buckets, table, log groups, functions' environment, Redshift and its secret). Null: AWS-managed keys. Its key policy must allow logs.<region>.amazonaws.com."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>), not an alias."
  }
}

# ── planning without AWS ───────────────────────────────────────────────────────

variable "account_id" {
  description = "AWS account ID of the deployment (bucket names, Firehose's external ID). Null: asked of STS."
  type        = string
  default     = null

  validation {
    condition     = var.account_id == null || can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "skip_aws_checks" {
  description = "Whether the provider skips every call it makes before planning (credential validation, the account ID lookup, the instance metadata): with account_id and the warehouse network set, AWS mode plans with fake credentials and no network."
  type        = bool
  default     = false
}

variable "warehouse_vpc_id" {
  description = "VPC of Redshift's security group. Null: the region's default VPC."
  type        = string
  default     = null
}

variable "warehouse_subnet_ids" {
  description = "Subnets of the Redshift Serverless workgroup (at least three, in three zones). Null: the default VPC's subnets."
  type        = list(string)
  default     = null
}

# ── alerts (alerts.tf, alarms.tf) ───────────────────────────────────────────────

variable "large_order_threshold" {
  description = "Invoice total (shop currency) from which an order is announced on the large-orders topic, once per invoice. Cancellations and adjustments never are."
  type        = string
  default     = "5000" # pipeline/settings.py DEFAULT_LARGE_ORDER_FROM

  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?$", var.large_order_threshold)) && try(tonumber(var.large_order_threshold) > 0, false)
    error_message = "large_order_threshold must be a positive decimal amount."
  }
}

variable "large_order_emails" {
  description = "Email addresses subscribed to the large-orders topic (each confirms its subscription by email). Empty: subscribe what you use to the large_orders_topic_arn output."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for address in var.large_order_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))])
    error_message = "large_order_emails must be email addresses."
  }
}

variable "file_outcome_emails" {
  description = "Email addresses subscribed to the file-outcomes topic: one message per dropped file, its counts or its failure (each confirms its subscription by email). Empty: subscribe what you use to the file_outcomes_topic_arn output."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for address in var.file_outcome_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))])
    error_message = "file_outcome_emails must be email addresses."
  }
}

variable "alert_emails" {
  description = "Email addresses subscribed to the alerts topic (each confirms its subscription by email). Empty: subscribe whatever you use (chat, paging) to the alerts_topic_arn output."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for address in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))])
    error_message = "alert_emails must be email addresses."
  }
}

variable "alarm_iterator_age_seconds" {
  description = "Age of the newest record read from the stream at which consumers are behind (GetRecords.IteratorAgeMilliseconds, and each consumer's IteratorAge plus its batching window)."
  type        = number
  default     = 60

  validation {
    condition     = var.alarm_iterator_age_seconds > 0
    error_message = "alarm_iterator_age_seconds must be positive."
  }
}

variable "alarm_throughput_exceeded_ratio" {
  description = "Share of the stream's reads or writes refused for its provisioned throughput (Read/WriteProvisionedThroughputExceeded, Average) at which it needs more shards."
  type        = number
  default     = 0.01

  validation {
    condition     = var.alarm_throughput_exceeded_ratio > 0 && var.alarm_throughput_exceeded_ratio <= 1
    error_message = "alarm_throughput_exceeded_ratio must be in (0, 1]."
  }
}

variable "alarm_put_records_success_ratio" {
  description = "Share of successful PutRecords calls (PutRecords.Success, Average) at or below which the stream is failing its producers."
  type        = number
  default     = 0.95

  validation {
    condition     = var.alarm_put_records_success_ratio > 0 && var.alarm_put_records_success_ratio <= 1
    error_message = "alarm_put_records_success_ratio must be in (0, 1]."
  }
}

variable "alarm_get_records_success_ratio" {
  description = "Share of successful GetRecords calls (GetRecords.Success, Average) at or below which the stream is failing its consumers."
  type        = number
  default     = 0.98

  validation {
    condition     = var.alarm_get_records_success_ratio > 0 && var.alarm_get_records_success_ratio <= 1
    error_message = "alarm_get_records_success_ratio must be in (0, 1]."
  }
}

variable "alarm_api_5xx_percent" {
  description = "Percentage of the HTTP API's requests answered 5xx over 5 minutes at which it alarms (503s while the stream refuses records count too)."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_api_5xx_percent > 0 && var.alarm_api_5xx_percent <= 100
    error_message = "alarm_api_5xx_percent must be in (0, 100]."
  }
}

variable "alarm_firehose_freshness_seconds" {
  description = "Age of the oldest record Firehose has not yet staged (DeliveryToS3.DataFreshness) at which delivery to the warehouse is behind. 900 s: Firehose's most buffering, as AWS's guidance sets it."
  type        = number
  default     = 900

  validation {
    condition     = var.alarm_firehose_freshness_seconds >= 60
    error_message = "alarm_firehose_freshness_seconds must be at least 60."
  }
}

variable "api_auth" {
  description = "Whether the HTTP API requires tokens (a JWT authorizer on every route but GET /openapi.json). Only the local emulator may turn it off (shopstream up --no-auth)."
  type        = bool
  default     = true

  validation {
    condition     = var.api_auth || var.emulator_endpoint != null
    error_message = "api_auth = false is for the local emulator only: on AWS every route but the OpenAPI document needs a token."
  }
}

variable "jwt_issuer" {
  description = "OIDC issuer whose access tokens the API accepts (its iss claim; its JWKS is found through <issuer>/.well-known/openid-configuration). Null: a Cognito user pool created here issues them (on the emulator: the local stack's issuer at http://127.0.0.1:8080)."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_issuer == null || can(regex("^https?://", var.jwt_issuer))
    error_message = "jwt_issuer must be an http(s) URL (https on AWS), or null for the Cognito user pool."
  }
}

variable "jwt_audience" {
  description = "Audiences the API accepts (a token's aud, or its client_id when it has no aud). Used with jwt_issuer; with the Cognito user pool, its app clients' ids."
  type        = list(string)
  default     = []

  validation {
    condition     = var.jwt_issuer == null || length(var.jwt_audience) > 0
    error_message = "jwt_audience must name at least one audience when jwt_issuer is given."
  }
}

variable "producers" {
  description = "Trusted producers of POST /events: one Cognito app client each (client-credentials grant, scope shopstream/events.write). Only with the Cognito user pool."
  type        = list(string)
  default     = ["replay"]

  validation {
    condition     = alltrue([for p in var.producers : can(regex("^[A-Za-z0-9_-]{1,64}$", p))])
    error_message = "Each producer name is 1-64 letters, digits, '-' or '_'."
  }
}

variable "customer_callback_urls" {
  description = "Where the Cognito hosted sign-in returns customers (authorization code grant) with the customers' app client. Only with the Cognito user pool."
  type        = list(string)
  default     = ["http://localhost:8000/callback"]
}

variable "cognito_domain_prefix" {
  description = "Prefix of the Cognito user pool's domain (<prefix>.auth.<region>.amazoncognito.com, serving the token endpoint). Null: <name_prefix>-<account id>."
  type        = string
  default     = null
}
