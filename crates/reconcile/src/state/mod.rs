//! State backends: the local directory and S3, both behind
//! [`StateStore`], with the lease every writer takes first.

pub mod lease;
pub mod local;
pub mod s3;

pub use lease::{LeaseGuard, LeaseOptions};
pub use local::LocalStore;
pub use s3::S3Store;

use reconcile_core::state::{StateLocation, StateStore};
use std::sync::Arc;

/// How to reach the S3 backend: the endpoint and region AWS calls use.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    pub endpoint_url: Option<String>,
    pub region: String,
}

/// The store of `stack` at `location`.
pub fn open_store(location: &StateLocation, stack: &str, reach: &Reach) -> Arc<dyn StateStore> {
    match location {
        StateLocation::Local(dir) => Arc::new(LocalStore::new(dir, stack)),
        StateLocation::S3 { bucket, prefix } => {
            Arc::new(S3Store::new(bucket, prefix, stack, reach))
        }
    }
}
