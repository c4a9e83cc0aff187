//! ECR: image repositories with scanning and a lifecycle policy.

pub mod ecr_repository;
