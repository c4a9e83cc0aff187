//! reconcile-aws: every AWS kind reconcile knows, one folder per AWS service and
//! one file per kind, written on the provider kit beside them (`kit`). Kinds are
//! registered in one place, [`registry`].

pub mod kit;
pub mod observe;
pub mod registry;

pub mod acm;
pub mod apigateway;
pub mod appautoscaling;
pub mod cloudfront;
pub mod cloudwatch;
pub mod cognito;
pub mod dynamodb;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod events;
pub mod iam;
pub mod kms;
pub mod lambda;
pub mod logs;
pub mod rds;
pub mod route53;
pub mod s3;
pub mod secretsmanager;
pub mod sns;
pub mod wafv2;

pub use kit::{AwsOptions, CallCounter, Cx, Desired, Provider, ProviderError, StatusSink};
pub use registry::Registry;
