variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "The stack's home region: the bucket, and the one region that runs the campaign unless `regions` names several."
  type        = string
  default     = "europe-west1"
}

variable "regions" {
  description = "Vantage points: the regions that each run every slot of the campaign (a service or job and a scheduler per region, one bucket). Empty: `region` alone. With several, the campaign must say `per_origin = true` (else the first region to claim a slot runs it for all); records name their region in `origin`, and reports and watch compare them."
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

variable "image" {
  description = "The container image built from the repository's Dockerfile, e.g. europe-west1-docker.pkg.dev/PROJECT/llmpulse/llmpulse:TAG."
  type        = string
}

variable "config_file" {
  description = "The llmpulse config (with a [campaign]); its `output` must be gs://<bucket_name>/llmpulse."
  type        = string
  default     = "../../examples/seed-campaign.toml"
}

variable "schedule" {
  description = "Cloud Scheduler cron (UTC). It must fire at least once inside every slot: check it with `llmpulse plan --trigger`."
  type        = string
  default     = "*/10 * * * *"
}

variable "use_job" {
  description = "Trigger the Cloud Run Job (sharded over task_count tasks) instead of the service."
  type        = bool
  default     = false
}

variable "task_count" {
  description = "Tasks (shards) per job execution."
  type        = number
  default     = 3
}
