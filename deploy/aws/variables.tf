variable "region" {
  description = "AWS region of the function, its queue and its logs (the buckets' region)."
  type        = string
}

variable "function_name" {
  description = "Name of the Lambda function; also names its role, queue, key and log group."
  type        = string
  default     = "headwater-obfuscator"
}

variable "source_bucket" {
  description = "Existing bucket where new files land; its ObjectCreated events trigger the function."
  type        = string
}

variable "source_prefix" {
  description = "Key prefix watched in the source bucket, e.g. new_data/ (the function reads only here)."
  type        = string
  validation {
    condition     = length(var.source_prefix) > 0 && !startswith(var.source_prefix, "/")
    error_message = "source_prefix must be a non-empty key prefix such as new_data/ (no leading slash)."
  }
}

variable "output_bucket" {
  description = "Existing bucket for the obfuscated copies; empty means the source bucket."
  type        = string
  default     = ""
}

variable "output_prefix" {
  description = "Key prefix the obfuscated copies are written under, e.g. obfuscated/ (the function writes only here)."
  type        = string
  validation {
    condition     = length(var.output_prefix) > 0 && !startswith(var.output_prefix, "/")
    error_message = "output_prefix must be a non-empty key prefix such as obfuscated/ (no leading slash)."
  }
}

variable "pii_fields" {
  description = "Fields obfuscated in every new file (a dotted path reaches into JSON objects)."
  type        = list(string)
  validation {
    condition     = length(var.pii_fields) > 0
    error_message = "Name at least one PII field."
  }
}

variable "mode" {
  description = "What is done to each PII field: mask, pseudonym, drop or generalise."
  type        = string
  default     = "mask"
  validation {
    condition     = contains(["mask", "pseudonym", "drop", "generalise"], var.mode)
    error_message = "mode must be one of mask, pseudonym, drop, generalise."
  }
}

variable "pseudonym_key" {
  description = "HMAC key for mode = pseudonym (kept in the function's environment, encrypted with the function's KMS key)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "source_kms_key_arn" {
  description = "KMS key of the source bucket when it uses SSE-KMS (the function may then decrypt with it); empty when not."
  type        = string
  default     = ""
}

variable "output_kms_key_arn" {
  description = "KMS key of the output bucket when it uses SSE-KMS (the function may then encrypt with it); empty when not."
  type        = string
  default     = ""
}

variable "artifact_bucket" {
  description = "Existing bucket the deployment zip is uploaded to (the zip is over the 50 MB direct-upload limit)."
  type        = string
}

variable "package_path" {
  description = "The zip built by `make lambda`."
  type        = string
  default     = "../../build/lambda/headwater-obfuscator.zip"
}

variable "memory_mb" {
  description = "Function memory (MB); CPU grows with it. See the README's cost table."
  type        = number
  default     = 2048
}

variable "timeout_s" {
  description = "Function timeout in seconds (Lambda's maximum is 900)."
  type        = number
  default     = 900
}

variable "ephemeral_storage_mb" {
  description = "/tmp size (MB): output past 64 MiB is spooled there before its upload, so at least the largest output."
  type        = number
  default     = 2048
}

variable "reserved_concurrency" {
  description = "At most this many copies run at once (bounds cost and the load on the buckets)."
  type        = number
  default     = 10
}

variable "max_retries" {
  description = "Retries of a failed S3 event (0-2) before it goes to the dead-letter queue."
  type        = number
  default     = 1
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { project = "headwater", component = "obfuscator" }
}
