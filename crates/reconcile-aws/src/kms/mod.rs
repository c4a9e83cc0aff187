//! AWS KMS: customer managed keys and their aliases.

pub mod kms_alias;
pub mod kms_key;
