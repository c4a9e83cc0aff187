//! Amazon EventBridge: rules, on a schedule or an event pattern, with their targets.

pub mod eventbridge_rule;
