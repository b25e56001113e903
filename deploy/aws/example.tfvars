# Copy and edit: terraform plan -var-file=example.tfvars
region          = "eu-west-2"
source_bucket   = "my-landing-bucket"
source_prefix   = "new_data/"
output_prefix   = "obfuscated/"
pii_fields      = ["name", "email_address"]
artifact_bucket = "my-artifacts-bucket"
