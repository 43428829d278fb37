terraform {
  # 1.11: write-only attributes (the local warehouse's generated password)
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100" # write-only secret attributes (master_password_wo, secret_string_wo)
    }
  }
}
