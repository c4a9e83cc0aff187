//! WAFv2: regional web ACLs and their association with load balancers.

pub mod web_acl;
pub mod web_acl_association;

use crate::kit::ProviderError;
use futures::{StreamExt, TryStreamExt};
use std::future::Future;

/// How many reads run at once where the API answers one resource a call.
pub const CONCURRENCY: usize = 8;

/// Runs `calls` (one read each) a few at a time, keeping the answers of the
/// resources still there. Callers collect the calls first: a lazy iterator's
/// closure would not be Send for every lifetime.
pub async fn each<T>(
    calls: Vec<impl Future<Output = Result<Option<T>, ProviderError>>>,
) -> Result<Vec<T>, ProviderError> {
    let found: Vec<Option<T>> = futures::stream::iter(calls)
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// An answer about one resource, `None` when AWS says it is gone.
pub fn found<T>(answer: Result<T, ProviderError>) -> Result<Option<T>, ProviderError> {
    match answer {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
