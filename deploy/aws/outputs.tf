output "function_name" {
  description = "Invoke it directly with a JSON request: aws lambda invoke --function-name NAME --payload file://request.json out.json"
  value       = aws_lambda_function.obfuscator.function_name
}

output "function_arn" {
  description = "For Step Functions, EventBridge or Airflow's LambdaInvokeFunctionOperator."
  value       = aws_lambda_function.obfuscator.arn
}

output "dead_letter_queue_url" {
  description = "S3 events that failed after their retries land here."
  value       = aws_sqs_queue.dead_letter.url
}

output "log_group" {
  description = "One JSON line per object: obfuscated, ignored or failed (with the reason)."
  value       = aws_cloudwatch_log_group.obfuscator.name
}
