# llmpulse on AWS: an S3 bucket for the data, a Lambda that runs one campaign slot per
# invocation, EventBridge Scheduler to invoke it, API keys in Secrets Manager, least-privilege
# IAM. See infra/README.md for the steps around it.
#
# Vantage points: `regions` lists where the campaign runs. Each region gets its own function,
# schedule, log group, dead-letter queue and (outside `region`) KMS key, through the AWS
# provider's per-resource `region` (6.0 and later); the bucket, the secret and the IAM roles are
# one, in `region`. With several regions the campaign says `per_origin = true`, so that each
# region claims and runs every slot.

data "aws_caller_identity" "me" {}
data "aws_partition" "current" {}

locals {
  account = data.aws_caller_identity.me.account_id
  regions = toset(length(var.regions) > 0 ? var.regions : [var.region])
  # Each region's key: the stack's own in `region`, one of the region's elsewhere (a log group,
  # a function's environment, a queue and a schedule take keys of their own region only).
  key_arn = { for r in local.regions : r => r == var.region ? aws_kms_key.llmpulse.arn : aws_kms_key.regional[r].arn }
  # Every key: the account administers it, and the region's CloudWatch Logs may use it.
  key_policy = { for r in setunion(local.regions, [var.region]) : r => jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdmin"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${r}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
      }
    ]
  }) }
}

# ------------------------------------------------------------------------------ encryption --

resource "aws_kms_key" "llmpulse" {
  description             = "${var.name}: records, logs, secrets, queue"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.key_policy[var.region]
}

resource "aws_kms_key" "regional" {
  for_each                = setsubtract(local.regions, [var.region])
  region                  = each.key
  description             = "${var.name}: logs, function environment, queue in ${each.key}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.key_policy[each.key]
}

# ------------------------------------------------------------------------------------ data --

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_18:Access logging would need a second bucket; every write is already accounted for by the run manifests and CloudTrail data events can be enabled per account.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a per-organisation choice; the functions of every region in `regions` write to this one bucket.
  #checkov:skip=CKV2_AWS_62:No consumer needs S3 event notifications; readers go through run manifests.
  bucket = var.bucket_name
}

resource "aws_s3_bucket_versioning" "data" {
  bucket = aws_s3_bucket.data.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.llmpulse.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  rule {
    id     = "records-to-infrequent-access"
    status = "Enabled"
    filter {
      prefix = "${var.prefix}/records/"
    }
    transition {
      days          = 90
      storage_class = "STANDARD_IA"
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  rule {
    id     = "old-claims"
    status = "Enabled"
    filter {
      prefix = "${var.prefix}/claims/"
    }
    expiration {
      days = 400
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_object" "config" {
  bucket     = aws_s3_bucket.data.id
  key        = "${var.prefix}/config/llmpulse.toml"
  source     = var.config_file
  etag       = filemd5(var.config_file)
  kms_key_id = aws_kms_key.llmpulse.arn
}

# ----------------------------------------------------------------------------------- secrets --

resource "aws_secretsmanager_secret" "api_keys" {
  #checkov:skip=CKV2_AWS_57:Provider API keys are rotated at the provider; rotate by putting a new secret version.
  name        = "${var.name}/api-keys"
  description = "JSON object of provider keys and alert receivers, e.g. {\"GROQ_API_KEY\": \"…\", \"OPENROUTER_API_KEY\": \"…\", \"SLACK_WEBHOOK_URL\": \"…\"}: every key is an environment variable the config names (api_key_env, [[notify]] url_env/secret_env/token_env). Set the value out of band: aws secretsmanager put-secret-value."
  kms_key_id  = aws_kms_key.llmpulse.arn
}

# -------------------------------------------------------------------------------- function --

resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.regions
  region            = each.key
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.key_arn[each.key]
}

resource "aws_sqs_queue" "dead_letters" {
  for_each                  = local.regions
  region                    = each.key
  name                      = "${var.name}-dead-letters"
  message_retention_seconds = 1209600
  kms_master_key_id         = local.key_arn[each.key]
}

resource "aws_iam_role" "function" {
  name = "${var.name}-function"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "function" {
  name = "${var.name}-function"
  role = aws_iam_role.function.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "WriteOnlyUnderThePrefix"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:GetObject"]
        Resource = "${aws_s3_bucket.data.arn}/${var.prefix}/*"
      },
      {
        Sid       = "ListOnlyThePrefix"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = aws_s3_bucket.data.arn
        Condition = { StringLike = { "s3:prefix" = ["${var.prefix}/*"] } }
      },
      {
        Sid      = "ReadTheApiKeys"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = aws_secretsmanager_secret.api_keys.arn
      },
      {
        Sid      = "UseTheKeys"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = distinct(concat([aws_kms_key.llmpulse.arn], values(local.key_arn)))
      },
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = [for g in aws_cloudwatch_log_group.function : "${g.arn}:*"]
      },
      {
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = "sqs:SendMessage"
        Resource = [for q in aws_sqs_queue.dead_letters : q.arn]
      },
      {
        Sid      = "Tracing"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = "*"
      }
    ]
  })
}

resource "aws_lambda_function" "llmpulse" {
  #checkov:skip=CKV_AWS_117:The function calls public LLM APIs and S3; a VPC would only add a NAT gateway.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile per organisation; the package is built from a pinned commit in CI.
  for_each                       = local.regions
  region                         = each.key
  function_name                  = var.name
  role                           = aws_iam_role.function.arn
  filename                       = var.lambda_zip
  source_code_hash               = filebase64sha256(var.lambda_zip)
  runtime                        = "provided.al2023"
  architectures                  = ["arm64"]
  handler                        = "bootstrap"
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = 5
  kms_key_arn                    = local.key_arn[each.key]

  environment {
    variables = {
      LLMPULSE_CONFIG = "s3://${aws_s3_bucket.data.id}/${aws_s3_object.config.key}"
      # The bucket's region, for a function in another one.
      LLMPULSE_S3_REGION = var.region
      # An ARN: read in its own region (`region`) from every function.
      LLMPULSE_SECRET_ID = aws_secretsmanager_secret.api_keys.arn
      RUST_LOG           = "info"
    }
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letters[each.key].arn
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }
}

# ------------------------------------------------------------------------------- schedule --

resource "aws_iam_role" "scheduler" {
  name = "${var.name}-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
}

resource "aws_iam_role_policy" "scheduler" {
  name = "${var.name}-scheduler"
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = "lambda:InvokeFunction"
        Resource = [for f in aws_lambda_function.llmpulse : f.arn]
      },
      {
        Effect   = "Allow"
        Action   = "sqs:SendMessage"
        Resource = [for q in aws_sqs_queue.dead_letters : q.arn]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = values(local.key_arn)
      }
    ]
  })
}

resource "aws_scheduler_schedule" "llmpulse" {
  for_each            = local.regions
  region              = each.key
  name                = var.name
  schedule_expression = var.schedule_expression
  kms_key_arn         = local.key_arn[each.key]

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.llmpulse[each.key].arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ slot = "auto" })

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 600
    }

    dead_letter_config {
      arn = aws_sqs_queue.dead_letters[each.key].arn
    }
  }
}
