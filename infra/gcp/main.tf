# llmpulse on Google Cloud: a GCS bucket, a Cloud Run service that runs one campaign slot per
# authenticated request (and a Cloud Run Job that runs it sharded), Cloud Scheduler with an OIDC
# token, API keys in Secret Manager, least-privilege service accounts.

locals {
  prefix = "llmpulse"
  # Where the campaign runs from: every region gets its service (or job) and its scheduler, all
  # writing to the one bucket; with several, the config's campaign says `per_origin = true`, so
  # each region claims and runs every slot (records say `origin = "cloudrun:REGION:SERVICE"`).
  regions = toset(length(var.regions) > 0 ? var.regions : [var.region])
  # Cloud Run's deterministic URL per region: the OIDC audience the scheduler's tokens are
  # minted for and the service checks, known before the service exists.
  service_url = { for r in local.regions : r => "https://${var.name}-${data.google_project.this.number}.${r}.run.app" }
}

resource "google_project_service" "apis" {
  for_each           = toset(["run.googleapis.com", "cloudscheduler.googleapis.com", "secretmanager.googleapis.com", "storage.googleapis.com"])
  service            = each.value
  disable_on_destroy = false
}

# ------------------------------------------------------------------------------------ data --

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:Access logs would need a second bucket; every write is accounted for by the run manifests, and Data Access audit logs can be enabled per project.
  name                        = var.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age            = 90
      matches_prefix = ["${local.prefix}/records/"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 3
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "config" {
  name   = "${local.prefix}/config/llmpulse.toml"
  bucket = google_storage_bucket.data.name
  source = var.config_file
}

# ------------------------------------------------------------------------------- identities --

resource "google_service_account" "runner" {
  account_id   = "${var.name}-runner"
  display_name = "llmpulse runs: writes records, reads its config and API keys"
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.name}-scheduler"
  display_name = "llmpulse trigger: may invoke the service or run the job, nothing else"
}

# Objects only, in this bucket only (the prefix is enforced by the config; GCS IAM has no
# per-prefix grants without managed folders).
resource "google_storage_bucket_iam_member" "runner_objects" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.runner.email}"
}

# ----------------------------------------------------------------------------------- secrets --

# A JSON object of environment variables: the provider keys, and the alert receivers the
# config's [[notify]] tables name (SLACK_WEBHOOK_URL, LLMPULSE_WEBHOOK_URL, GITHUB_TOKEN, …).
resource "google_secret_manager_secret" "api_keys" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption; a CMEK adds a key ring to manage for a handful of API keys.
  secret_id = "${var.name}-api-keys"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "runner_reads_keys" {
  secret_id = google_secret_manager_secret.api_keys.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runner.email}"
}

# -------------------------------------------------------------------------------- service --

resource "google_cloud_run_v2_service" "llmpulse" {
  for_each = local.regions
  name     = var.name
  location = each.value
  ingress  = "INGRESS_TRAFFIC_ALL"

  template {
    service_account                  = google_service_account.runner.email
    timeout                          = "1800s"
    max_instance_request_concurrency = 1
    scaling {
      max_instance_count = 3
    }
    containers {
      image = var.image
      env {
        name  = "LLMPULSE_CONFIG"
        value = "gs://${google_storage_bucket.data.name}/${google_storage_bucket_object.config.name}"
      }
      env {
        name  = "LLMPULSE_REGION"
        value = each.value
      }
      env {
        name  = "LLMPULSE_DEADLINE"
        value = "25m"
      }
      env {
        name  = "LLMPULSE_OIDC_EMAIL"
        value = google_service_account.scheduler.email
      }
      env {
        name  = "LLMPULSE_OIDC_AUDIENCE"
        value = local.service_url[each.value]
      }
      env {
        name = "LLMPULSE_SECRETS"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.api_keys.secret_id
            version = "latest"
          }
        }
      }
      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
      }
    }
  }
  depends_on = [google_project_service.apis, google_secret_manager_secret_iam_member.runner_reads_keys]
}

data "google_project" "this" {}

# Only the scheduler's identity may call the service (and the service checks the token again).
resource "google_cloud_run_v2_service_iam_member" "scheduler_invokes" {
  for_each = local.regions
  name     = google_cloud_run_v2_service.llmpulse[each.value].name
  location = each.value
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# ------------------------------------------------------------------------------------ job --

resource "google_cloud_run_v2_job" "llmpulse" {
  for_each = local.regions
  name     = "${var.name}-job"
  location = each.value

  template {
    task_count = var.task_count
    template {
      service_account = google_service_account.runner.email
      timeout         = "1800s"
      max_retries     = 1
      containers {
        image = var.image
        env {
          name  = "LLMPULSE_CONFIG"
          value = "gs://${google_storage_bucket.data.name}/${google_storage_bucket_object.config.name}"
        }
        env {
          name  = "LLMPULSE_REGION"
          value = each.value
        }
        env {
          name = "LLMPULSE_SECRETS"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.api_keys.secret_id
              version = "latest"
            }
          }
        }
      }
    }
  }
  depends_on = [google_project_service.apis, google_secret_manager_secret_iam_member.runner_reads_keys]
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_job" {
  for_each = local.regions
  name     = google_cloud_run_v2_job.llmpulse[each.value].name
  location = each.value
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# ------------------------------------------------------------------------------- schedule --

resource "google_cloud_scheduler_job" "service" {
  for_each         = var.use_job ? toset([]) : local.regions
  name             = var.name
  region           = each.value
  schedule         = var.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "1800s"

  retry_config {
    retry_count          = 2
    min_backoff_duration = "30s"
  }

  http_target {
    http_method = "POST"
    uri         = "${local.service_url[each.value]}/run"
    body        = base64encode(jsonencode({ slot = "auto" }))
    headers     = { "Content-Type" = "application/json" }
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.service_url[each.value]
    }
  }
}

resource "google_cloud_scheduler_job" "job" {
  for_each         = var.use_job ? local.regions : toset([])
  name             = "${var.name}-job"
  region           = each.value
  schedule         = var.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "180s"

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project}/locations/${each.value}/jobs/${google_cloud_run_v2_job.llmpulse[each.value].name}:run"
    oauth_token {
      service_account_email = google_service_account.scheduler.email
    }
  }
}
