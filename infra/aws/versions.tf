terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      # 6.0: the per-resource `region` that puts one function in each of `regions`.
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  region = var.region
}
