//! Shared ECS plumbing for `ecs_cluster`, `ecs_task_definition` and `ecs_service`:
//! error typing, tags, ARN parsing, batched describes, the `timeouts` setting,
//! a status poller for waits (steady state, deletes) and field-map building.

pub mod ecs_cluster;
pub mod ecs_service;
pub mod ecs_task_definition;

use crate::kit::wait::{Backoff, Progress, Timeouts, Wait};
use crate::kit::{Cx, Desired, ProviderError};
use aws_sdk_ecs::types::{Cluster, ClusterField, Service, ServiceField, Tag};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Ty};
use reconcile_core::model::Value;
use reconcile_core::plan::Observed;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// DescribeClusters takes at most this many clusters per call.
pub const CLUSTERS_PER_CALL: usize = 100;
/// DescribeServices takes at most this many services per call (one cluster each).
pub const SERVICES_PER_CALL: usize = 10;

// ---------------------------------------------------------------------------
// Errors.

/// Types an ECS error. ECS names its not-found errors `...NotFoundException`,
/// and answers a missing task definition with a plain `ClientException`; both
/// must read as "gone".
pub fn ecs_error<E, R>(e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    classify(ProviderError::from_sdk(e))
}

fn classify(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::Aws { code, message }
            if code.ends_with("NotFoundException")
                || code == "ServiceNotActiveException"
                || (code == "ClientException"
                    && (message.contains("Unable to describe task definition")
                        || message.contains("does not exist"))) =>
        {
            ProviderError::NotFound(format!("{code}: {message}"))
        }
        other => other,
    }
}

/// Whether an error carries this AWS error code.
pub fn is_code(e: &ProviderError, code: &str) -> bool {
    matches!(e, ProviderError::Aws { code: c, .. } if c == code)
        || e.to_string().starts_with(&format!("{code}:"))
}

/// What to do about an ECS error, for the person reading it.
fn hint(e: &ProviderError) -> &'static str {
    let text = e.to_string();
    let has = |c: &str| text.contains(c);
    if has("ClusterContainsServices") || has("ClusterContainsTasks") {
        "the cluster still runs services or tasks: delete them first (reconcile deletes the stack's own services before their cluster)"
    } else if has("ClusterNotFound") {
        "the cluster does not exist: check `cluster`, or create the ecs_cluster in this stack"
    } else if has("not idempotent") || has("DRAINING") {
        "a service of this name is still draining after a delete: wait a minute and apply again"
    } else if has("AccessDenied") {
        "the credentials lack an ECS permission: see AWS's message for which one"
    } else if matches!(e, ProviderError::InvalidInput(_)) || has("ClientException") {
        "AWS refused a field value: fix the field AWS names and apply again"
    } else if matches!(e, ProviderError::Throttled(_)) {
        "AWS throttled the call after the SDK's retries: apply again in a minute"
    } else {
        "see AWS's message; fix the declaration and apply again"
    }
}

/// Names the resource and what to do in an error, keeping its type.
pub fn named(address: &str, doing: &str, e: ProviderError) -> ProviderError {
    let h = hint(&e);
    crate::kit::error::at_with_hint(address, doing, h, e)
}

/// For a create that looked its name up first and found `existing`: takes it
/// over when an interrupted apply of this address made it, else refuses, as
/// [`crate::kit::adopt::take_over`] does after AWS refused a create.
pub fn claim(
    cx: &Cx,
    want: &Desired<'_>,
    what: &str,
    name: &str,
    existing: Observed,
) -> Result<Observed, ProviderError> {
    let taken = ProviderError::InvalidInput(format!("{}: {name} exists", want.address));
    crate::kit::adopt::take_over(cx, want, what, name, Some(existing), taken)
}

pub use crate::kit::fields::{diagnostics, fields_of, some_fields_of};
pub use crate::kit::tags::tagged;

// ---------------------------------------------------------------------------
// Tags.

pub fn to_tags(tags: &IndexMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags as a map, leaving out the ones AWS owns (`aws:*`).
pub fn tags_of(tags: &[Tag]) -> IndexMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}

/// Makes the resource's tags exactly `want` (AWS-owned tags untouched).
pub async fn sync_tags(
    cx: &Cx,
    arn: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Result<(), ProviderError> {
    let stale = crate::kit::tags::tag_keys_to_remove(have, want);
    let changed = crate::kit::tags::tags_to_set(have, want);
    if !stale.is_empty() {
        cx.ecs
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(ecs_error)?;
    }
    if !changed.is_empty() {
        cx.ecs
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(to_tags(&changed)))
            .send()
            .await
            .map_err(ecs_error)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// ARNs.

/// The last path segment of an ARN (a cluster's name), or the text itself
/// when it is a plain name already.
pub fn name_of(arn_or_name: &str) -> &str {
    if arn_or_name.starts_with("arn:") {
        arn_or_name.rsplit('/').next().unwrap_or(arn_or_name)
    } else {
        arn_or_name
    }
}

/// The cluster and service names in a service ARN. The long format
/// (`service/CLUSTER/NAME`) names its cluster; the short one (`service/NAME`),
/// which only accounts that never opted in still have, means the `default` cluster.
pub fn service_arn_parts(arn: &str) -> Option<(String, String)> {
    let (_, path) = arn.split_once(":service/")?;
    match path.split_once('/') {
        Some((cluster, name)) if !cluster.is_empty() && !name.is_empty() => {
            Some((cluster.to_string(), name.to_string()))
        }
        None if !path.is_empty() => Some(("default".to_string(), path.to_string())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Batched describes.

/// Clusters by name or ARN, with their tags: one call per 100. Clusters AWS
/// reports INACTIVE (deleted) are left out.
pub async fn describe_clusters(cx: &Cx, ids: &[String]) -> Result<Vec<Cluster>, ProviderError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(CLUSTERS_PER_CALL) {
        let page = cx
            .ecs
            .describe_clusters()
            .set_clusters(Some(chunk.to_vec()))
            .include(ClusterField::Tags)
            .include(ClusterField::Settings)
            .send()
            .await
            .map_err(ecs_error)?;
        out.extend(
            page.clusters()
                .iter()
                .filter(|c| c.status() != Some("INACTIVE"))
                .cloned(),
        );
    }
    Ok(out)
}

/// Every cluster ARN in the region, every page.
pub async fn list_clusters(cx: &Cx) -> Result<Vec<String>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx.ecs.list_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(ecs_error)?.cluster_arns().iter().cloned());
    }
    Ok(out)
}

/// Services by ARN, with their tags: grouped by the cluster their ARN names,
/// one call per 10 services of a cluster. Services AWS reports INACTIVE
/// (deleted) are left out; so are ids that are not service ARNs.
pub async fn describe_services_by_arn(
    cx: &Cx,
    arns: &[String],
) -> Result<Vec<Service>, ProviderError> {
    let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for arn in arns {
        if let Some((cluster, _)) = service_arn_parts(arn) {
            by_cluster.entry(cluster).or_default().push(arn.clone());
        }
    }
    let mut out = Vec::new();
    for (cluster, arns) in by_cluster {
        match describe_services(cx, &cluster, &arns).await {
            Ok(found) => out.extend(found),
            // A deleted cluster takes its services with it.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Services of one cluster by name or ARN, with their tags, 10 per call;
/// INACTIVE ones left out.
pub async fn describe_services(
    cx: &Cx,
    cluster: &str,
    services: &[String],
) -> Result<Vec<Service>, ProviderError> {
    let mut out = Vec::new();
    for chunk in services.chunks(SERVICES_PER_CALL) {
        let page = cx
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(ecs_error)?;
        out.extend(
            page.services()
                .iter()
                .filter(|s| s.status() != Some("INACTIVE"))
                .cloned(),
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Reconcile settings.

/// Terraform's defaults for aws_ecs_service, which users know.
pub const DEFAULT_CREATE: Duration = Duration::from_secs(20 * 60);
pub const DEFAULT_UPDATE: Duration = Duration::from_secs(20 * 60);
pub const DEFAULT_DELETE: Duration = Duration::from_secs(20 * 60);

pub const TIMEOUT_FIELDS: &[Field] = &[
    Field::new(
        "create",
        Ty::Pattern(crate::kit::duration::check_duration),
        "How long a create may wait for a steady state (default \"20m\").",
    ),
    Field::new(
        "update",
        Ty::Pattern(crate::kit::duration::check_duration),
        "How long an update may wait for a steady state (default \"20m\").",
    ),
    Field::new(
        "delete",
        Ty::Pattern(crate::kit::duration::check_duration),
        "How long a delete may wait until the resource is gone (default \"20m\").",
    ),
];

pub const TIMEOUTS: Field = Field::new(
    "timeouts",
    Ty::Object(TIMEOUT_FIELDS),
    "Reconcile setting: how long to wait for ECS, like `{ create = \"20m\", update = \"20m\", \
     delete = \"20m\" }` (Terraform's defaults); units s, m, h.",
)
.local();

pub const DEFAULTS: Timeouts = Timeouts {
    create: DEFAULT_CREATE,
    update: DEFAULT_UPDATE,
    delete: DEFAULT_DELETE,
};

// ---------------------------------------------------------------------------
// Waiting.

/// ECS deployments take a minute or more; faster polling only spends API budget.
pub const BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(3),
    max: Duration::from_secs(15),
};

pub const WHEN_FAILED: &str = "the resource still exists: look at its events in the ECS console, \
     fix the cause (image, health check, network, roles), then apply again";
pub const WHEN_TIMED_OUT: &str = "ECS carries on with it";

/// The kit's waiter, with ECS errors named after the resource being waited on.
pub async fn wait<F, Fut>(w: &Wait<'_>, mut look: F) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Progress, ProviderError>>,
{
    let address = w.address;
    crate::kit::wait::wait(w, || {
        let fut = look();
        async move { fut.await.map_err(|e| named(address, "waiting", e)) }
    })
    .await
}

// ---------------------------------------------------------------------------
// Field helpers.

/// A map value of strings (environment, log options) as string pairs, sorted.
pub fn str_map(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub fn int_value(i: Option<i32>) -> Option<Value> {
    i.map(|i| Value::Int(i.into()))
}

/// String pairs as a map value.
pub fn map_value(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
    pairs.sort();
    Value::Map(pairs.into_iter().map(|(k, v)| (k, Value::Str(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcile_core::model::Fields;

    #[test]
    fn service_arns_name_their_cluster() {
        assert_eq!(
            service_arn_parts("arn:aws:ecs:us-east-1:123456789012:service/main/api"),
            Some(("main".into(), "api".into()))
        );
        assert_eq!(
            service_arn_parts("arn:aws:ecs:us-east-1:123456789012:service/api"),
            Some(("default".into(), "api".into()))
        );
        assert_eq!(service_arn_parts("api"), None);
        assert_eq!(name_of("arn:aws:ecs:us-east-1:1:cluster/main"), "main");
        assert_eq!(name_of("main"), "main");
    }

    #[test]
    fn task_definition_not_found_is_typed_as_gone() {
        let e = classify(ProviderError::Aws {
            code: "ClientException".into(),
            message: "Unable to describe task definition.".into(),
        });
        assert!(e.is_not_found());
        let e = classify(ProviderError::Aws {
            code: "ClusterNotFoundException".into(),
            message: "Cluster not found.".into(),
        });
        assert!(e.is_not_found());
        let e = classify(ProviderError::Aws {
            code: "ClientException".into(),
            message: "Container.image should not be null or empty.".into(),
        });
        assert!(!e.is_not_found());
    }

    #[test]
    fn timeouts_default_to_terraform() {
        let t = Timeouts::of("a", None, DEFAULTS).unwrap();
        assert_eq!(t.create, DEFAULT_CREATE);
        let mut f = Fields::new();
        let mut m = IndexMap::new();
        m.insert("delete".to_string(), Value::str("5m"));
        f.insert("timeouts".into(), Value::Map(m));
        assert_eq!(
            Timeouts::of("a", Some(&f), DEFAULTS).unwrap().delete,
            Duration::from_secs(300)
        );
    }
}
