variable "region" {
  description = "The stack's home region: the bucket, the secret, and the one region that runs the campaign unless `regions` names several."
  type        = string
  default     = "eu-west-1"
}

variable "regions" {
  description = "Vantage points: the regions that each run every slot of the campaign (a function, a schedule, a log group, a dead-letter queue and a KMS key per region; one bucket and one secret, in `region`). Empty: `region` alone. With several, the campaign must say `per_origin = true` (else the first region to claim a slot runs it for all); records name their region in `origin`, and reports and watch compare them."
  type        = list(string)
  default     = []
}

variable "name" {
  description = "Prefix for every resource name."
  type        = string
  default     = "llmpulse"
}

variable "bucket_name" {
  description = "Bucket for records, manifests and claims (globally unique)."
  type        = string
}

variable "prefix" {
  description = "Key prefix for this deployment inside the bucket; the function may write only below it."
  type        = string
  default     = "llmpulse"
}

variable "lambda_zip" {
  description = "The function package built by `cargo lambda build --release --arm64 --output-format zip --bin lambda` (target/lambda/lambda/bootstrap.zip)."
  type        = string
  default     = "../../target/lambda/lambda/bootstrap.zip"
}

variable "config_file" {
  description = "The llmpulse config (with a [campaign]) uploaded next to the data; its `output` must be s3://<bucket_name>/<prefix>."
  type        = string
  default     = "../../examples/seed-campaign.toml"
}

variable "schedule_expression" {
  description = "How often the scheduler invokes the function. It must fire at least once inside every slot: check it with `llmpulse plan --trigger`. The slot claim makes extra fires no-ops."
  type        = string
  default     = "rate(10 minutes)"
}

variable "memory_mb" {
  description = "Lambda memory (MB); network-bound work needs little."
  type        = number
  default     = 512
}

variable "timeout_seconds" {
  description = "Lambda timeout, at most 900. The run stops starting calls before it and records the rest as skipped_deadline."
  type        = number
  default     = 900
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the function's logs."
  type        = number
  default     = 365
}
