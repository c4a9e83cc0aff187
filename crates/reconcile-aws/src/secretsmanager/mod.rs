//! Secrets Manager: secrets whose values reconcile generates, reads from the environment or leaves to a person.

pub mod secret;
pub mod secret_target_attachment;
