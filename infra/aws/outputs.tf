output "bucket" {
  description = "Where records, manifests and claims land."
  value       = "s3://${aws_s3_bucket.data.id}/${var.prefix}"
}

output "function" {
  description = "The Lambda function's name, for `aws lambda invoke`."
  value       = aws_lambda_function.llmpulse.function_name
}

output "secret" {
  description = "Put the provider keys here (a JSON object)."
  value       = aws_secretsmanager_secret.api_keys.arn
}

output "dead_letters" {
  description = "Failed invocations end up here."
  value       = aws_sqs_queue.dead_letters.url
}
