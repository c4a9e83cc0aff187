//! Providers: one module per AWS resource kind behind the [`Provider`] trait, plus
//! the shared AWS clients, call counting, retry policy and error typing.

pub mod certificate;
pub mod db_cluster;
pub mod db_instance;
pub mod db_subnet_group;
pub mod ec2;
pub mod ecr_repository;
pub mod ecs;
pub mod ecs_cluster;
pub mod ecs_service;
pub mod ecs_task_definition;
pub mod elastic_ip;
pub mod elbv2;
pub mod iam_role;
pub mod internet_gateway;
pub mod listener;
pub mod listener_rule;
pub mod load_balancer;
pub mod log_group;
pub mod nat_gateway;
pub mod observe;
pub mod rds;
pub mod route_table;
pub mod secret;
pub mod security_group;
pub mod security_group_rule;
pub mod subnet;
pub mod target_group;
pub mod vpc;
pub mod web_acl;
pub mod web_acl_association;

use crate::model::{Fields, Schema};
use crate::plan::{FieldChange, KindCatalog, Observed};
use async_trait::async_trait;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use indexmap::IndexMap;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every kind this build knows, in documentation order.
pub const KINDS: &[&str] = &[
    "vpc",
    "subnet",
    "internet_gateway",
    "elastic_ip",
    "nat_gateway",
    "route_table",
    "security_group",
    "security_group_rule",
    "db_subnet_group",
    "db_instance",
    "db_cluster",
    "secret",
    "ecs_cluster",
    "ecs_task_definition",
    "ecs_service",
    "load_balancer",
    "target_group",
    "listener",
    "listener_rule",
    "web_acl",
    "web_acl_association",
    "iam_role",
    "log_group",
    "ecr_repository",
    "certificate",
];

/// What a create or update is asked to make real. Fields are fully resolved.
pub struct Desired<'a> {
    pub address: &'a str,
    pub fields: &'a Fields,
    /// The full tag set, `reconcile:stack` and `reconcile:address` included.
    pub tags: &'a IndexMap<String, String>,
    /// Idempotency token for APIs that take one (stable across a retried create).
    pub token: &'a str,
}

/// One AWS resource kind: observe in batches, diff, create, update, delete.
#[async_trait]
pub trait Provider: Send + Sync {
    fn schema(&self) -> &'static Schema;

    /// Observes many resources by id in as few calls as the API allows (one
    /// describe per page). Ids that no longer exist are absent from the answer.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError>;

    /// Resources of this kind tagged with the stack and one of `addresses`
    /// (all of the stack's when empty), each with its `reconcile:address` tag.
    /// One address may have several: an old and a new copy, say.
    /// This is how a create interrupted before state recorded it is found again.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError>;

    /// Fills in live fields that can only be judged against the desired
    /// configuration, for resources that state tracks and the stack declares:
    /// whether a secret's value still matches its environment variable, say.
    /// Compared in memory; only the verdict lands in `Observed`. Batched per kind.
    async fn observe_against_desired(
        &self,
        _cx: &Cx,
        _items: &mut [(&crate::model::Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Pure: field differences between desired and live.
    fn diff(&self, desired: &Fields, live: &Fields) -> Vec<FieldChange> {
        crate::plan::diff_fields(self.schema(), desired, live)
    }

    /// Pure: problems only visible with the whole stack at hand (two resources
    /// that would undo each other, say). Reported with the other validation errors.
    fn validate(
        &self,
        _stack: &crate::model::Stack,
        _r: &crate::model::Resource,
    ) -> Vec<crate::model::Diagnostic> {
        vec![]
    }

    /// Pure: whether a replacement with these changes can create the new
    /// resource while the old one still exists.
    fn create_before_destroy(&self, _changes: &[FieldChange]) -> bool {
        true
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError>;

    /// Applies `changes` (none of them replace-forcing) to the live resource.
    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError>;

    /// Deletes; a resource that is already gone is success.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError>;

    /// Deletes with the last applied inputs at hand (`None` for a copy state
    /// never recorded), for kinds whose delete takes options such as a final
    /// snapshot or a recovery window.
    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        _applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        self.delete(cx, id).await
    }
}

/// Tag keys to remove so that `have` becomes `want`. AWS's own `aws:` tags are
/// never touched: AWS refuses to remove them.
pub fn tag_keys_to_remove(
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Vec<String> {
    have.keys()
        .filter(|k| !want.contains_key(*k) && !k.starts_with("aws:"))
        .cloned()
        .collect()
}

/// Tags to add or overwrite so that `have` becomes `want`.
pub fn tags_to_set(
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> IndexMap<String, String> {
    want.iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Typed provider errors: callers tell these apart (retry, report, skip).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("throttled by AWS: {0}")]
    Throttled(String),
    #[error("dependency violation: {0}")]
    DependencyViolation(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{code}: {message}")]
    Aws { code: String, message: String },
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    /// Types an SDK error by its AWS error code, keeping AWS's own message.
    pub fn from_sdk<E, R>(e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        let (code, message) = match e.as_service_error() {
            Some(se) => (
                se.code().unwrap_or("Unknown").to_string(),
                se.message().unwrap_or("").to_string(),
            ),
            None => return ProviderError::Other(transport_message(&e)),
        };
        let text = if message.is_empty() {
            code.clone()
        } else {
            format!("{code}: {message}")
        };
        if code.ends_with(".NotFound")
            || code.ends_with("NotFound")
            || code == "ResourceNotFoundException"
        {
            ProviderError::NotFound(text)
        } else if code.contains("Throttl") || code == "RequestLimitExceeded" {
            ProviderError::Throttled(text)
        } else if code == "DependencyViolation" {
            ProviderError::DependencyViolation(text)
        } else if code.starts_with("InvalidParameter")
            || code == "ValidationException"
            || code.ends_with(".Malformed")
        {
            ProviderError::InvalidInput(text)
        } else {
            ProviderError::Aws { code, message }
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ProviderError::NotFound(_))
    }
}

/// A short account of a request that never got an AWS answer: the innermost
/// cause, and what to do when it is the usual one (no credentials).
fn transport_message(e: &(dyn std::error::Error + 'static)) -> String {
    let full = DisplayErrorContext(e).to_string();
    if full.contains("loading credentials") || full.contains("no providers in chain") {
        return "no AWS credentials: the standard chain (environment, profile, SSO, IMDS) found none; \
                set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            .into();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("cannot reach AWS: {e}: {cause}")
}

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

/// All providers, by kind.
pub struct Registry {
    providers: HashMap<&'static str, Arc<dyn Provider>>,
}

impl Default for Registry {
    fn default() -> Self {
        let list: Vec<Arc<dyn Provider>> = vec![
            Arc::new(vpc::Vpc),
            Arc::new(subnet::Subnet),
            Arc::new(internet_gateway::InternetGateway),
            Arc::new(elastic_ip::ElasticIp),
            Arc::new(nat_gateway::NatGateway),
            Arc::new(route_table::RouteTable),
            Arc::new(security_group::SecurityGroup),
            Arc::new(security_group_rule::SecurityGroupRule),
            Arc::new(db_subnet_group::DbSubnetGroup),
            Arc::new(db_cluster::DbCluster),
            Arc::new(db_instance::DbInstance),
            Arc::new(secret::Secret),
            Arc::new(web_acl::WebAcl),
            Arc::new(web_acl_association::WebAclAssociation),
            Arc::new(certificate::Certificate),
            Arc::new(ecs_cluster::EcsCluster),
            Arc::new(ecs_task_definition::EcsTaskDefinition),
            Arc::new(ecs_service::EcsService),
            Arc::new(load_balancer::LoadBalancer),
            Arc::new(target_group::TargetGroup),
            Arc::new(listener::Listener),
            Arc::new(listener_rule::ListenerRule),
            Arc::new(iam_role::IamRole),
            Arc::new(log_group::LogGroup),
            Arc::new(ecr_repository::EcrRepository),
        ];
        Registry {
            providers: list.into_iter().map(|p| (p.schema().kind, p)).collect(),
        }
    }
}

impl Registry {
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(kind)
    }
    pub fn schemas(&self) -> Vec<&'static Schema> {
        KINDS
            .iter()
            .filter_map(|k| self.get(k))
            .map(|p| p.schema())
            .collect()
    }
    /// Every kind's whole-stack checks.
    pub fn validate(&self, stack: &crate::model::Stack) -> Vec<crate::model::Diagnostic> {
        stack
            .resources
            .values()
            .filter_map(|r| self.get(&r.kind).map(|p| p.validate(stack, r)))
            .flatten()
            .collect()
    }

    /// Schema lookup for the model loader.
    pub fn schema_of(&self, kind: &str) -> Option<&'static Schema> {
        self.get(kind).map(|p| p.schema())
    }
}

impl KindCatalog for Registry {
    fn schema(&self, kind: &str) -> Option<&'static Schema> {
        self.schema_of(kind)
    }
    fn diff(&self, kind: &str, desired: &Fields, live: &Fields) -> Vec<FieldChange> {
        self.get(kind)
            .map(|p| p.diff(desired, live))
            .unwrap_or_default()
    }
    fn create_before_destroy(&self, kind: &str, changes: &[FieldChange]) -> bool {
        self.get(kind)
            .is_some_and(|p| p.create_before_destroy(changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tag_changes_leave_aws_tags_and_equal_values_alone() {
        let have = tags(&[("a", "1"), ("b", "2"), ("aws:cloudformation:stack", "x")]);
        let want = tags(&[("a", "1"), ("b", "3"), ("c", "4")]);
        assert!(tag_keys_to_remove(&have, &want).is_empty());
        assert_eq!(tags_to_set(&have, &want), tags(&[("b", "3"), ("c", "4")]));
        let want = tags(&[("b", "2")]);
        assert_eq!(tag_keys_to_remove(&have, &want), ["a"]);
        assert!(tags_to_set(&have, &want).is_empty());
    }
}
