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
  description = "Days CloudWatch keeps each function's logs."
  type        = number
  default     = 14

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
