//! CloudWatch: metric alarms.

pub mod cloudwatch_alarm;
