//! API Gateway: REST APIs with their tree, authorizers and stage, and the account-wide settings they log through.

pub mod account;
pub mod rest_api;
