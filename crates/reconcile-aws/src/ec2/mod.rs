//! Shared EC2 plumbing for the network kinds: observing by id and by tag, filters,
//! tags, and the retry policy for EC2's eventual consistency right after a create.

pub mod elastic_ip;
pub mod internet_gateway;
pub mod nat_gateway;
pub mod route_table;
pub mod security_group;
pub mod security_group_rule;
pub mod subnet;
pub mod vpc;

use crate::kit::fields::changes_field;
use crate::kit::{Cx, Desired, ProviderError};
use async_trait::async_trait;
use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use indexmap::IndexMap;
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed, TAG_ADDRESS, TAG_STACK};
use std::collections::HashMap;

/// What the kinds' calls answer: failures are [`ProviderError`]s.
pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

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

/// EC2 refuses more than this many values in one call's filters.
pub const FILTER_VALUES_MAX: usize = 200;

/// An EC2 kind observed with one Describe call per page and per
/// [`FILTER_VALUES_MAX`] filter values.
#[async_trait]
pub trait Describe: Send + Sync {
    /// The filter selecting the kind by id ("vpc-id", "group-id", ...).
    const ID_FILTER: &'static str;

    /// Every resource of the kind matching `filters`, all pages.
    async fn describe(&self, cx: &Cx, filters: Vec<Filter>) -> Result<Vec<Observed>>;
}

/// Every item a paginated describe answers, all pages: `$req` is the request
/// (`cx.ec2.describe_vpcs().set_filters(..)`). A macro because the SDK's
/// paginators share no trait.
macro_rules! all_items {
    ($req:expr) => {
        $req.into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(crate::kit::ProviderError::from_sdk)
    };
}
pub(crate) use all_items;

/// One filter list per call, selecting `ids` by the filter `name`. A filter
/// rather than the call's id list, because one missing id would fail the call.
pub fn id_filters<'a>(
    name: &'a str,
    ids: &'a [String],
) -> impl Iterator<Item = Vec<Filter>> + Send + 'a {
    ids.chunks(FILTER_VALUES_MAX)
        .map(move |chunk| vec![filter(name, chunk.iter().cloned())])
}

/// [`super::Provider::observe`] for an EC2 kind: the resources still there, by id.
pub async fn observe_by_id<K: Describe>(
    kind: &K,
    cx: &Cx,
    ids: &[String],
) -> Result<HashMap<String, Observed>> {
    let mut out = HashMap::new();
    for filters in id_filters(K::ID_FILTER, ids) {
        let found = kind.describe(cx, filters).await?;
        out.extend(found.into_iter().map(|o| (o.id.clone(), o)));
    }
    Ok(out)
}

/// [`super::Provider::find_tagged`] for an EC2 kind: the stack's resources
/// tagged with one of `addresses` (any address when empty), by address.
///
/// The tags are checked here too, not only by the filters: moto ignores tag
/// filters on some calls (DescribeNatGateways), and adopting another stack's
/// resource would be far worse than one more comparison.
pub async fn find_by_tags<K: Describe>(
    kind: &K,
    cx: &Cx,
    addresses: &[String],
) -> Result<Vec<(String, Observed)>> {
    let mut out = Vec::new();
    for filters in tagged_filters(&cx.stack, addresses) {
        let found = kind.describe(cx, filters).await?;
        out.extend(
            found
                .into_iter()
                .filter_map(|o| crate::kit::tags::stack_address(cx, &o.tags).map(|a| (a, o)))
                .filter(|(a, _)| addresses.is_empty() || addresses.contains(a)),
        );
    }
    Ok(out)
}

/// One filter list per call selecting the stack's resources, optionally only
/// some addresses: at most [`FILTER_VALUES_MAX`] values a call, the stack's included.
fn tagged_filters(stack: &str, addresses: &[String]) -> Vec<Vec<Filter>> {
    let stack = filter(&format!("tag:{TAG_STACK}"), [stack]);
    if addresses.is_empty() {
        return vec![vec![stack]];
    }
    addresses
        .chunks(FILTER_VALUES_MAX - 1)
        .map(|chunk| {
            vec![
                stack.clone(),
                filter(&format!("tag:{TAG_ADDRESS}"), chunk.iter().cloned()),
            ]
        })
        .collect()
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

/// The `id`, `arn` and `owner_id` attributes: the ARN as AWS gave it, else
/// built from `rtype`, the resource type in EC2 ARNs (`vpc`, `route-table`).
pub fn arn_attributes(cx: &Cx, rtype: &str, id: &str, owner: &str, arn: Option<&str>) -> Fields {
    let arn = match arn.filter(|a| !a.is_empty()) {
        Some(a) => a.to_string(),
        None => format!("arn:aws:ec2:{}:{owner}:{rtype}/{id}", cx.region),
    };
    Fields::from([
        ("id".into(), Value::str(id)),
        ("arn".into(), Value::str(arn)),
        ("owner_id".into(), Value::str(owner)),
    ])
}

pub use crate::kit::error::gone_is_done;

/// The end of every EC2 update: the tags made exactly the wanted ones when they
/// changed, and the live copy with the wanted fields.
pub async fn finish_update(
    cx: &Cx,
    live: &Observed,
    want: &Desired<'_>,
    changes: &[FieldChange],
) -> Result<Observed> {
    if changes_field(changes, "tags") {
        sync_tags(cx, &live.id, &live.tags, want.tags).await?;
    }
    let mut fields = live.fields.clone();
    fields.extend(want.fields.clone());
    Ok(Observed {
        id: live.id.clone(),
        fields,
        attributes: live.attributes.clone(),
        tags: want.tags.clone(),
    })
}

pub use crate::kit::fields::referenced;

/// A string field AWS answered, "" when it left it out.
pub fn text(v: Option<&str>) -> Value {
    Value::str(v.unwrap_or_default())
}

/// A string field that must be known by the time the resource is created.
pub fn known_str<'a>(f: &'a Fields, key: &str, address: &str) -> Result<&'a str> {
    crate::kit::fields::str_of(f, key).ok_or_else(|| {
        ProviderError::InvalidInput(format!("{address}: `{key}` must be a known string"))
    })
}

pub use crate::kit::fields::diagnostic;

/// A declared IPv4 range, when it is literal rather than a reference.
pub fn literal_cidr(v: Option<&Value>) -> Option<ipnet::Ipv4Net> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// AWS accepts VPC and subnet ranges from /16 to /28 only.
pub fn prefix_problem(net: &ipnet::Ipv4Net) -> Option<(String, String)> {
    let len = net.prefix_len();
    (!(16..=28).contains(&len)).then(|| {
        (
            format!("\"{net}\" is a /{len}; AWS accepts /16 to /28"),
            if len < 16 {
                "split it into ranges of /16 or smaller".to_string()
            } else {
                "choose a range of /28 or larger".to_string()
            },
        )
    })
}

/// Makes the resource's tags exactly `want` (AWS-owned tags untouched).
pub async fn sync_tags(
    cx: &Cx,
    id: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Result<()> {
    let stale: Vec<Tag> = crate::kit::tags::tag_keys_to_remove(have, want)
        .into_iter()
        .map(|k| Tag::builder().key(k).build())
        .collect();
    let changed = crate::kit::tags::tags_to_set(have, want);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("x{i}")).collect()
    }

    /// Values in each call's filters, all filters together.
    fn values(calls: &[Vec<Filter>]) -> Vec<usize> {
        calls
            .iter()
            .map(|f| f.iter().map(|f| f.values().len()).sum())
            .collect()
    }

    #[test]
    fn ids_are_asked_for_200_a_call() {
        let calls: Vec<_> = id_filters("vpc-id", &names(401)).collect();
        assert_eq!(values(&calls), [200, 200, 1]);
        assert_eq!(calls[0][0].name(), Some("vpc-id"));
        assert_eq!(id_filters("vpc-id", &[]).count(), 0);
    }

    #[test]
    fn addresses_share_the_200_with_the_stack() {
        assert_eq!(values(&tagged_filters("s", &[])), [1]);
        assert_eq!(values(&tagged_filters("s", &names(199))), [200]);
        assert_eq!(values(&tagged_filters("s", &names(200))), [200, 2]);
    }
}
