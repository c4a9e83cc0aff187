//! Shared EC2 plumbing for the network kinds: filters, tags, and the retry policy
//! for EC2's eventual consistency right after a create.

use super::{Cx, ProviderError};
use crate::plan::{TAG_ADDRESS, TAG_STACK};
use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use indexmap::IndexMap;

/// Error codes EC2 returns for an id it created a moment ago but has not yet
/// propagated. Retried with the SDK's backoff; any other error fails at once.
pub const EVENTUAL_CONSISTENCY: &[&str] = &[
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidGroupId.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidNatGatewayID.NotFound",
    "InvalidGatewayID.NotFound",
    "NatGatewayNotFound",
];

/// Per-operation config that also retries eventual-consistency errors. Use on
/// mutations that take an id created earlier in the same apply.
pub fn eventual<E>() -> aws_sdk_ec2::config::Builder
where
    E: std::error::Error
        + aws_smithy_types::error::metadata::ProvideErrorMetadata
        + Send
        + Sync
        + 'static,
{
    aws_sdk_ec2::config::Builder::default().retry_classifier(
        AwsErrorCodeClassifier::<E>::builder()
            .transient_errors(EVENTUAL_CONSISTENCY)
            .build(),
    )
}

/// As [`eventual`], and also retries `DependencyViolation`, which AWS returns
/// for a while after a dependent (an ENI, an attachment) is released.
pub fn eventual_delete<E>() -> aws_sdk_ec2::config::Builder
where
    E: std::error::Error
        + aws_smithy_types::error::metadata::ProvideErrorMetadata
        + Send
        + Sync
        + 'static,
{
    const CODES: &[&str] = &["DependencyViolation", "InvalidGroup.InUse"];
    aws_sdk_ec2::config::Builder::default().retry_classifier(
        AwsErrorCodeClassifier::<E>::builder()
            .transient_errors(CODES)
            .build(),
    )
}

pub fn filter<S: Into<String>>(name: &str, values: impl IntoIterator<Item = S>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

/// Filters selecting the stack's resources, optionally only some addresses.
pub fn tagged_filters(cx: &Cx, addresses: &[String]) -> Vec<Filter> {
    let mut f = vec![filter(&format!("tag:{TAG_STACK}"), [cx.stack.clone()])];
    if !addresses.is_empty() {
        f.push(filter(
            &format!("tag:{TAG_ADDRESS}"),
            addresses.iter().cloned(),
        ));
    }
    f
}

pub fn tag_spec(rt: ResourceType, tags: &IndexMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(to_tags(tags)))
        .build()
}

pub fn to_tags(tags: &IndexMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags as a map, leaving out the ones AWS owns (`aws:*`).
pub fn tags_of(tags: Option<&[Tag]>) -> IndexMap<String, String> {
    tags.unwrap_or_default()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}

/// The `reconcile:address` tag, if any.
pub fn address_of(tags: &IndexMap<String, String>) -> Option<String> {
    tags.get(TAG_ADDRESS).cloned()
}

/// Makes the resource's tags exactly `want` (AWS-owned tags untouched).
pub async fn sync_tags(
    cx: &Cx,
    id: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Result<(), ProviderError> {
    let stale: Vec<Tag> = have
        .keys()
        .filter(|k| !want.contains_key(*k) && !k.starts_with("aws:"))
        .map(|k| Tag::builder().key(k).build())
        .collect();
    let changed: IndexMap<String, String> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !stale.is_empty() {
        cx.ec2
            .delete_tags()
            .resources(id)
            .set_tags(Some(stale))
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
    }
    if !changed.is_empty() {
        cx.ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(to_tags(&changed)))
            .customize()
            .config_override(eventual::<
                aws_sdk_ec2::operation::create_tags::CreateTagsError,
            >())
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
    }
    Ok(())
}

/// Whether `changes` touch `field`.
pub fn changes_field(changes: &[crate::plan::FieldChange], field: &str) -> bool {
    changes.iter().any(|c| c.field == field)
}
