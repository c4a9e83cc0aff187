//! Cognito: user pools where patients and clinicians sign in, and the app clients that use them.

pub mod user_pool;
pub mod user_pool_client;
