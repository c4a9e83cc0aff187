//! CloudWatch Logs: log groups with retention.

pub mod log_group;
