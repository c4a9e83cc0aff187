//! Cognito: user pools where patients and clinicians sign in, the app clients
//! that use them, and identity pools that trade a sign-in for AWS credentials.

pub mod identity_pool;
pub mod identity_pool_roles;
pub mod user_pool;
pub mod user_pool_client;
