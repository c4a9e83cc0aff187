//! Secrets Manager: secrets whose values reconcile generates, reads from the environment or leaves to a person.

pub mod secret;

use crate::kit::ProviderError;

/// An SDK answer with "not found" as `None`. (A kit candidate: every kind
/// writes this match for describes and deletes.)
pub fn unless_gone<T, E, R>(
    r: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
) -> Result<Option<T>, ProviderError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + 'static,
{
    match r.map_err(ProviderError::from_sdk) {
        Ok(v) => Ok(Some(v)),
        Err(ProviderError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
