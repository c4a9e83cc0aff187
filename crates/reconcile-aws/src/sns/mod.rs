//! Amazon SNS: topics, with their subscriptions inline.

pub mod sns_topic;
