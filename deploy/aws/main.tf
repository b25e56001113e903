# The obfuscator as a Lambda function: new objects under source_prefix are obfuscated into
# output_prefix. Build the zip first with `make lambda`. Checked offline by `make iac-check`
# (checkov) and tests/deploy/test_terraform.py (no "*" action or resource in the role).

locals {
  output_bucket = var.output_bucket != "" ? var.output_bucket : var.source_bucket
  arn           = "arn:${data.aws_partition.current.partition}"
  account       = data.aws_caller_identity.current.account_id
  log_group     = "/aws/lambda/${var.function_name}"
  environment = merge(
    {
      HEADWATER_LAMBDA_SOURCE_PREFIX = var.source_prefix
      HEADWATER_LAMBDA_OUTPUT_PREFIX = var.output_prefix
      HEADWATER_LAMBDA_OUTPUT_BUCKET = local.output_bucket
      HEADWATER_LAMBDA_PII_FIELDS    = join(",", var.pii_fields)
      HEADWATER_LAMBDA_MODE          = var.mode
    },
    var.pseudonym_key != "" ? { HEADWATER_PSEUDONYM_KEY = var.pseudonym_key } : {}
  )
}

# --- encryption at rest: one customer-managed key for the queue, the logs and the environment

resource "aws_kms_key" "obfuscator" {
  description             = "${var.function_name}: dead-letter queue, logs, environment"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key_policy.json
}

resource "aws_kms_alias" "obfuscator" {
  name          = "alias/${var.function_name}"
  target_key_id = aws_kms_key.obfuscator.key_id
}

# In a key policy, Resource "*" means this key and nothing else.
data "aws_iam_policy_document" "key_policy" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is this key alone; its admin actions go to the account root, as AWS's default key policy does.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" is this key alone; write actions go to the account, the logs service (for this log group only) and the function's role.
  #checkov:skip=CKV_AWS_356:A key policy cannot name another resource: "*" is this key.
  statement {
    sid = "AccountAdministersTheKey"
    actions = [
      "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:DeleteAlias",
      "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey",
      "kms:EnableKeyRotation", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases",
      "kms:ListGrants", "kms:ListKeyPolicies", "kms:ListResourceTags", "kms:PutKeyPolicy",
      "kms:RevokeGrant", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
      "kms:UpdateAlias", "kms:UpdateKeyDescription",
    ]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["${local.arn}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "LogsEncryptTheFunctionsLogGroup"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["${local.arn}:logs:${var.region}:${local.account}:log-group:${local.log_group}"]
    }
  }
  statement {
    sid       = "TheFunctionUsesTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.obfuscator.arn]
    }
  }
}

# --- the function's role: read the source prefix, write the output prefix, nothing more

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "obfuscator" {
  name               = var.function_name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "ReadTheSourcePrefix"
    actions   = ["s3:GetObject"]
    resources = ["${local.arn}:s3:::${var.source_bucket}/${var.source_prefix}*"]
  }
  statement {
    sid       = "WriteTheOutputPrefix"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${local.arn}:s3:::${local.output_bucket}/${var.output_prefix}*"]
  }
  statement {
    sid       = "WriteItsOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.obfuscator.arn}:log-stream:*"]
  }
  statement {
    sid       = "DeadLetterFailedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }
  statement {
    sid       = "UseItsOwnKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.obfuscator.arn]
  }
  dynamic "statement" {
    for_each = var.source_kms_key_arn != "" ? [var.source_kms_key_arn] : []
    content {
      sid       = "DecryptTheSourceBucket"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
  dynamic "statement" {
    for_each = var.output_kms_key_arn != "" ? [var.output_kms_key_arn] : []
    content {
      sid       = "EncryptTheOutputBucket"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "obfuscator" {
  name   = "${var.function_name}-least-privilege"
  role   = aws_iam_role.obfuscator.id
  policy = data.aws_iam_policy_document.function.json
}

# --- logs, dead letters, the code

resource "aws_cloudwatch_log_group" "obfuscator" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.obfuscator.arn
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.function_name}-dead-letter"
  message_retention_seconds = 1209600 # 14 days, SQS's maximum
  kms_master_key_id         = aws_kms_key.obfuscator.arn
}

resource "aws_s3_object" "package" {
  bucket                 = var.artifact_bucket
  key                    = "${var.function_name}/${filemd5(var.package_path)}.zip"
  source                 = var.package_path
  server_side_encryption = "aws:kms"
  kms_key_id             = aws_kms_key.obfuscator.arn
}

resource "aws_lambda_function" "obfuscator" {
  #checkov:skip=CKV_AWS_117:The function talks only to S3, SQS, KMS and CloudWatch over AWS endpoints; a VPC would add NAT or endpoints and no control.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the team may not have; the zip is built from the repository by `make lambda` and pinned by source_code_hash.
  #checkov:skip=CKV_AWS_50:X-Ray's write actions accept only Resource "*", which the role's least-privilege test forbids; every invocation logs its duration and peak memory as JSON.
  function_name                  = var.function_name
  description                    = "Headwater obfuscator: s3://${var.source_bucket}/${var.source_prefix} -> s3://${local.output_bucket}/${var.output_prefix}"
  role                           = aws_iam_role.obfuscator.arn
  runtime                        = "python3.12"
  architectures                  = ["x86_64"]
  handler                        = "headwater.privacy.aws_lambda.handler"
  s3_bucket                      = aws_s3_object.package.bucket
  s3_key                         = aws_s3_object.package.key
  source_code_hash               = filebase64sha256(var.package_path)
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_s
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.obfuscator.arn

  ephemeral_storage {
    size = var.ephemeral_storage_mb
  }
  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letter.arn
  }
  environment {
    variables = local.environment
  }
  logging_config {
    log_format = "Text" # each line the handler prints is already one JSON object
    log_group  = aws_cloudwatch_log_group.obfuscator.name
  }

  lifecycle {
    precondition {
      condition     = !startswith(var.output_prefix, var.source_prefix) && !startswith(var.source_prefix, var.output_prefix)
      error_message = "source_prefix and output_prefix overlap: the output would trigger the function again."
    }
  }

  depends_on = [aws_iam_role_policy.obfuscator]
}

resource "aws_lambda_function_event_invoke_config" "obfuscator" {
  function_name                = aws_lambda_function.obfuscator.function_name
  maximum_retry_attempts       = var.max_retries
  maximum_event_age_in_seconds = 21600
}

# --- the trigger: ObjectCreated under the source prefix only

resource "aws_lambda_permission" "s3_invokes" {
  statement_id   = "AllowSourceBucketNotifications"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.obfuscator.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = "${local.arn}:s3:::${var.source_bucket}"
  source_account = local.account
}

# Note: a bucket has one notification configuration; this resource replaces any other.
resource "aws_s3_bucket_notification" "source" {
  bucket = var.source_bucket
  lambda_function {
    lambda_function_arn = aws_lambda_function.obfuscator.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.source_prefix
  }
  depends_on = [aws_lambda_permission.s3_invokes]
}
