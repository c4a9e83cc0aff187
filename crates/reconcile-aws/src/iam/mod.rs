//! IAM: the roles ECS tasks run as.

pub mod iam_role;
