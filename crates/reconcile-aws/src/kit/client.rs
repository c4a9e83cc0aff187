//! Shared AWS clients for one region: the standard credential chain, the SDK's
//! retry policy, and an interceptor that counts every attempt by service and operation.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// AWS API calls made by this process, by service and operation. Retries count:
/// each attempt is a request AWS bills and throttles.
#[derive(Clone, Default, Debug)]
pub struct CallCounter(Arc<Mutex<BTreeMap<(String, String), u64>>>);

impl CallCounter {
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.0.lock().unwrap().clone()
    }
    pub fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }
    fn record(&self, service: &str, op: &str) {
        *self
            .0
            .lock()
            .unwrap()
            .entry((service.to_string(), op.to_string()))
            .or_default() += 1;
    }
}

#[derive(Debug)]
struct CountCalls(CallCounter);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "reconcile::CountCalls"
    }
    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            self.0.record(m.service(), m.name());
        }
        Ok(())
    }
}

/// Shared AWS clients for one region, every call counted.
#[derive(Clone)]
pub struct Cx {
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub wafv2: aws_sdk_wafv2::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub acm: aws_sdk_acm::Client,
    pub stack: String,
    pub region: String,
    pub calls: CallCounter,
    /// Where long waits report what AWS says meanwhile ("modifying", ...).
    pub status: StatusSink,
}

/// Receives `(address, status)` while a provider waits on AWS; a no-op by default.
#[derive(Clone)]
pub struct StatusSink(Arc<StatusFn>);

type StatusFn = dyn Fn(&str, &str) + Send + Sync;

impl StatusSink {
    pub fn new(f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        StatusSink(Arc::new(f))
    }
    pub fn report(&self, address: &str, status: &str) {
        (self.0)(address, status)
    }
}

impl std::default::Default for StatusSink {
    fn default() -> Self {
        StatusSink::new(|_, _| {})
    }
}

/// Where and how to reach AWS.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    pub region: String,
    pub endpoint_url: Option<String>,
}

impl Cx {
    /// Builds clients from the standard AWS chain (env, profile, SSO, IMDS). Throttling
    /// and transient errors are retried by the SDK in adaptive mode.
    pub async fn connect(opts: &AwsOptions, stack: &str, calls: CallCounter) -> Cx {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(opts.region.clone()))
            .retry_config(retry_config());
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        let shared = loader.load().await;
        // Every client counts its calls; clients are cheap and share one HTTP pool.
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&shared)
                        .interceptor(CountCalls(calls.clone()))
                        .build(),
                )
            };
        }
        Cx {
            ec2: client!(aws_sdk_ec2),
            rds: client!(aws_sdk_rds),
            secrets: client!(aws_sdk_secretsmanager),
            ecs: client!(aws_sdk_ecs),
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
            wafv2: client!(aws_sdk_wafv2),
            iam: client!(aws_sdk_iam),
            logs: client!(aws_sdk_cloudwatchlogs),
            ecr: client!(aws_sdk_ecr),
            acm: client!(aws_sdk_acm),
            stack: stack.to_string(),
            region: opts.region.clone(),
            calls,
            status: StatusSink::default(),
        }
    }
}

pub fn retry_config() -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(20))
}
