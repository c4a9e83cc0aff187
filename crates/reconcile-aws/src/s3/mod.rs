//! Amazon S3: buckets.

pub mod s3_bucket;
