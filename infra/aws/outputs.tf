output "bucket" {
  description = "Where records, manifests and claims land."
  value       = "s3://${aws_s3_bucket.data.id}/${var.prefix}"
}

output "function" {
  description = "The Lambda function's name (the same in every region), for `aws lambda invoke --region R`."
  value       = var.name
}

output "functions" {
  description = "Each region's function ARN."
  value       = { for r, f in aws_lambda_function.llmpulse : r => f.arn }
}

output "secret" {
  description = "Put the provider keys here (a JSON object)."
  value       = aws_secretsmanager_secret.api_keys.arn
}

output "dead_letters" {
  description = "Failed invocations end up here: each region's queue."
  value       = { for r, q in aws_sqs_queue.dead_letters : r => q.url }
}
