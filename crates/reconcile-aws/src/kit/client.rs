//! Shared AWS clients for one region: the standard credential chain, the SDK's
//! retry policy, and an interceptor that counts every attempt by service and
//! operation, and every throttled answer by service.

use super::tags::StackTags;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// AWS API calls made by this process, by service and operation. Retries count:
/// each attempt is a request AWS bills and throttles. Throttled answers are
/// counted by service too: the executor narrows that service's concurrency.
#[derive(Clone, Default, Debug)]
pub struct CallCounter {
    calls: Arc<Mutex<BTreeMap<(String, String), u64>>>,
    throttled: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.calls.lock().unwrap().clone()
    }
    pub fn total(&self) -> u64 {
        self.calls.lock().unwrap().values().sum()
    }
    /// Throttled answers from `service` (as the SDK names it: "EC2", "RDS", ...)
    /// since the process started.
    pub fn throttled(&self, service: &str) -> u64 {
        self.throttled
            .lock()
            .unwrap()
            .get(service)
            .copied()
            .unwrap_or(0)
    }
    /// Throttled answers by service.
    pub fn throttled_all(&self) -> BTreeMap<String, u64> {
        self.throttled.lock().unwrap().clone()
    }
    fn record(&self, service: &str, op: &str) {
        *self
            .calls
            .lock()
            .unwrap()
            .entry((service.to_string(), op.to_string()))
            .or_default() += 1;
    }
    fn record_throttle(&self, service: &str) {
        *self
            .throttled
            .lock()
            .unwrap()
            .entry(service.to_string())
            .or_default() += 1;
    }
}

/// Whether an HTTP answer is AWS refusing for rate: 429, or a 400/503 whose
/// error code says so. The codes differ by protocol and service and the error
/// is type-erased by then, so this looks for the codes in the body itself.
pub fn is_throttling_answer(status: u16, body: &[u8]) -> bool {
    const CODES: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
        "BandwidthLimitExceeded",
        "LimitExceededException",
    ];
    if status == 429 {
        return true;
    }
    if status != 400 && status != 503 {
        return false;
    }
    let text = String::from_utf8_lossy(body);
    CODES.iter().any(|c| text.contains(c))
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
    // After deserialization the body of a non-streaming answer is in memory.
    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let r = ctx.response();
        let body = r.body().bytes().unwrap_or_default();
        if is_throttling_answer(r.status().as_u16(), body) {
            if let Some(m) = cfg.load::<Metadata>() {
                self.0.record_throttle(m.service());
            }
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
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub route53: aws_sdk_route53::Client,
    pub cognito_idp: aws_sdk_cognitoidentityprovider::Client,
    pub cognito_identity: aws_sdk_cognitoidentity::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    /// The Resource Groups Tagging API: tags of many resources, of several services, in one call.
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    /// CloudFront: a global service, served from us-east-1 whatever the stack's region.
    pub cloudfront: aws_sdk_cloudfront::Client,
    pub stack: String,
    pub region: String,
    pub calls: CallCounter,
    /// Where long waits report what AWS says meanwhile ("modifying", ...).
    pub status: StatusSink,
    /// The stack's tags read at once, inside an observe pass only: creates and
    /// updates read back what they wrote with the services' own calls, which
    /// the eventually consistent Tagging API may not show yet.
    pub stack_tags: Option<Arc<StackTags>>,
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
    /// and transient errors are retried by the SDK in standard mode; how many
    /// calls run at once is the executor's business (it narrows a throttled service).
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
            // An endpoint of its own (an emulator, a VPC endpoint) serves
            // buckets by path: its name is no DNS zone with a name per bucket.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(opts.endpoint_url.is_some())
                    .interceptor(CountCalls(calls.clone()))
                    .build(),
            ),
            kms: client!(aws_sdk_kms),
            dynamodb: client!(aws_sdk_dynamodb),
            autoscaling: client!(aws_sdk_applicationautoscaling),
            sns: client!(aws_sdk_sns),
            cloudwatch: client!(aws_sdk_cloudwatch),
            lambda: client!(aws_sdk_lambda),
            events: client!(aws_sdk_eventbridge),
            route53: client!(aws_sdk_route53),
            cognito_idp: client!(aws_sdk_cognitoidentityprovider),
            cognito_identity: client!(aws_sdk_cognitoidentity),
            apigateway: client!(aws_sdk_apigateway),
            tagging: client!(aws_sdk_resourcegroupstagging),
            cloudfront: aws_sdk_cloudfront::Client::from_conf(
                aws_sdk_cloudfront::config::Builder::from(&shared)
                    .region(aws_config::Region::new("us-east-1"))
                    .interceptor(CountCalls(calls.clone()))
                    .build(),
            ),
            stack: stack.to_string(),
            region: opts.region.clone(),
            calls,
            status: StatusSink::default(),
            stack_tags: None,
        }
    }

    /// These clients for one observe pass, with a stack tag index of their
    /// own, read on first use. Each pass makes a new one, so nothing read in
    /// an earlier pass is answered again.
    pub fn for_observe_pass(&self) -> Cx {
        Cx {
            stack_tags: Some(Arc::new(StackTags::new(self.tagging.clone(), &self.stack))),
            ..self.clone()
        }
    }
}

/// The SDK's standard mode: exponential backoff with jitter on throttling and
/// transient errors. Not adaptive mode, whose client-side rate limiter, under
/// sustained throttling, falls to about half a request a second for the whole
/// client; the executor narrows the one service that throttles instead.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_answers_are_told_from_other_errors() {
        assert!(is_throttling_answer(429, b""));
        assert!(is_throttling_answer(
            400,
            br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#
        ));
        assert!(is_throttling_answer(
            503,
            b"<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>"
        ));
        assert!(!is_throttling_answer(
            400,
            b"<Error><Code>InvalidParameterValue</Code></Error>"
        ));
        assert!(!is_throttling_answer(500, b"Throttling"));
        assert!(!is_throttling_answer(200, b"Throttling"));
    }
}
