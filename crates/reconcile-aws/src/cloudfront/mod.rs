//! Amazon CloudFront: distributions and the origin access controls through
//! which they read S3 buckets.

pub mod cloudfront_distribution;
pub mod cloudfront_origin_access_control;
