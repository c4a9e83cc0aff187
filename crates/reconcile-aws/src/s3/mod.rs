//! Amazon S3: buckets and their policies.

pub mod s3_bucket;
pub mod s3_bucket_policy;
