output "bucket" {
  description = "Where records, manifests and claims land."
  value       = "gs://${google_storage_bucket.data.name}/${local.prefix}"
}

output "service_url" {
  description = "Each region's service URL: the OIDC audience the scheduler's tokens are minted for there."
  value       = local.service_url
}

output "secret" {
  description = "Put the provider keys here, as a JSON object."
  value       = google_secret_manager_secret.api_keys.id
}
