//! Tags: the difference between the tags a resource has and the ones it should
//! have, reading reconcile's own `reconcile:*` tags back, and the stack tag
//! index that reads the tags of a whole stack at once.

use super::{Cx, ProviderError};
use aws_sdk_resourcegroupstagging::types::TagFilter;
use indexmap::IndexMap;
use reconcile_core::plan::{TAG_ADDRESS, TAG_STACK};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::OnceCell;

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

/// A resource's tags as reconcile compares them: AWS's own `aws:` tags (an
/// owning service's, say) left out, since nobody can set them, and keys
/// sorted, so equal sets read back alike in plans and state.
pub fn own_tags<K: Into<String>, V: Into<String>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> IndexMap<String, String> {
    let mut t: IndexMap<String, String> = pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect();
    t.sort_keys();
    t
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

/// Brings a resource's tags from `have` to `want` with the kind's own two
/// calls: `untag` with the keys to drop, then `tag` with the pairs to add or
/// change, each only when it has something to do.
pub async fn sync<U, UF, T, TF>(
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
    untag: U,
    tag: T,
) -> Result<(), ProviderError>
where
    U: FnOnce(Vec<String>) -> UF,
    UF: std::future::Future<Output = Result<(), ProviderError>>,
    T: FnOnce(IndexMap<String, String>) -> TF,
    TF: std::future::Future<Output = Result<(), ProviderError>>,
{
    let stale = tag_keys_to_remove(have, want);
    if !stale.is_empty() {
        untag(stale).await?;
    }
    let set = tags_to_set(have, want);
    if !set.is_empty() {
        tag(set).await?;
    }
    Ok(())
}

/// [`sync`] with a service's UntagResource and TagResource, the shape most
/// services share: `untag` and `tag` are the two requests with the resource
/// already set, `tags` turns the pairs to set into what TagResource takes
/// (answering a `Result`, for services that refuse some tags up front).
#[macro_export]
macro_rules! sync_tags_by {
    ($have:expr, $want:expr, $address:expr, untag: $untag:expr, tag: $tag:expr, tags: $tags:expr $(,)?) => {
        $crate::kit::tags::sync(
            $have,
            $want,
            |stale: Vec<String>| async move {
                $untag
                    .set_tag_keys(Some(stale))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| $crate::kit::error::at($address, "UntagResource", e.into()))
            },
            |set: indexmap::IndexMap<String, String>| async move {
                $tag.set_tags(Some(($tags)(&set)?))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| $crate::kit::error::at($address, "TagResource", e.into()))
            },
        )
    };
}

/// The `reconcile:address` of a resource tagged with this stack, if any.
pub fn stack_address(cx: &Cx, tags: &IndexMap<String, String>) -> Option<String> {
    (tags.get(TAG_STACK) == Some(&cx.stack))
        .then(|| tags.get(TAG_ADDRESS).cloned())
        .flatten()
}

/// The copies tagged with this stack and one of `addresses` (all of the
/// stack's when empty), each with its address: what `find_tagged` answers.
pub fn tagged(
    cx: &Cx,
    addresses: &[String],
    found: impl IntoIterator<Item = reconcile_core::plan::Observed>,
) -> Vec<(String, reconcile_core::plan::Observed)> {
    found
        .into_iter()
        .filter_map(|o| Some((stack_address(cx, &o.tags)?, o)))
        .filter(|(a, _)| addresses.is_empty() || addresses.contains(a))
        .collect()
}

/// ResourcesPerPage's upper bound for GetResources.
const RESOURCES_PER_PAGE: i32 = 100;

/// ARN -> tags, AWS's own `aws:` tags left out and keys sorted.
pub type TagsByArn = HashMap<String, IndexMap<String, String>>;

/// The tags of everything tagged with one stack, read through the Resource
/// Groups Tagging API once for a whole observe pass: one paginated
/// GetResources, whatever the number of kinds and resources, instead of a tag
/// read per resource or per kind. Made by [`Cx::for_observe_pass`] and dropped
/// with the pass, so a long-running daemon never answers from an old index.
///
/// The index may miss a resource (a type the Tagging API does not list, a
/// stack tag removed by hand, a resource too new for the eventually
/// consistent Tagging API): kinds read those with their own call. It may also
/// be stale: the observe pass re-reads, with the kind's own call, every tag
/// set that came from here and differs from the declared one, so staleness
/// never shows as drift.
pub struct StackTags {
    client: aws_sdk_resourcegroupstagging::Client,
    stack: String,
    /// `None` once the read failed: every kind then reads its own tags.
    index: OnceCell<Option<TagsByArn>>,
    /// (kind, id) -> ARN of every resource whose tags were answered from the index.
    served: Mutex<HashMap<(String, String), String>>,
}

impl StackTags {
    pub fn new(client: aws_sdk_resourcegroupstagging::Client, stack: &str) -> StackTags {
        StackTags {
            client,
            stack: stack.to_string(),
            index: OnceCell::new(),
            served: Mutex::new(HashMap::new()),
        }
    }

    /// The tags of `arn`, read on first use for the whole stack; `None` when
    /// the index does not list it or could not be read. `kind` and `id` name
    /// the resource for [`StackTags::served_arn`].
    pub async fn get(&self, kind: &str, id: &str, arn: &str) -> Option<IndexMap<String, String>> {
        let index = self
            .index
            .get_or_init(|| fetch(&self.client, &self.stack))
            .await
            .as_ref()?;
        let tags = index.get(arn)?.clone();
        self.served
            .lock()
            .expect("served lock")
            .insert((kind.to_string(), id.to_string()), arn.to_string());
        Some(tags)
    }

    /// The ARN of a resource whose tags [`StackTags::get`] answered, if it did.
    pub fn served_arn(&self, kind: &str, id: &str) -> Option<String> {
        self.served
            .lock()
            .expect("served lock")
            .get(&(kind.to_string(), id.to_string()))
            .cloned()
    }
}

/// The tags of the resource `id` of `kind` at `arn` from the observe pass's
/// stack index; `None` outside an observe pass, or when the index does not
/// list the ARN: the kind then reads them with its own call.
pub async fn indexed(cx: &Cx, kind: &str, id: &str, arn: &str) -> Option<IndexMap<String, String>> {
    cx.stack_tags.as_ref()?.get(kind, id, arn).await
}

/// Reads the index; a failure is no failure of the plan, only the loss of the
/// shortcut: every kind still has its own way to read tags.
async fn fetch(client: &aws_sdk_resourcegroupstagging::Client, stack: &str) -> Option<TagsByArn> {
    match read_stack(client, stack).await {
        Ok(index) => Some(index),
        // Denied by a policy that allows the services' own tag reads, or a
        // partition or emulator without the Tagging API.
        Err(e @ ProviderError::AccessDenied(_)) | Err(e @ ProviderError::Aws { .. }) => {
            tracing::debug!(error = %e, "no stack tag index; kinds read their own tags");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "no stack tag index; kinds read their own tags");
            None
        }
    }
}

/// Every resource tagged `reconcile:stack = <stack>`, all pages.
async fn read_stack(
    client: &aws_sdk_resourcegroupstagging::Client,
    stack: &str,
) -> Result<TagsByArn, ProviderError> {
    read_tagged(client, stack, None).await
}

/// The resources of one type (`"kms:key"`, as the Tagging API names types)
/// tagged with this stack, with their tags: how a kind whose own API lists
/// without tags finds an interrupted create's copy in one paginated call
/// instead of a tag read per resource of the account.
pub async fn stack_resources_of_type(
    cx: &Cx,
    resource_type: &str,
) -> Result<TagsByArn, ProviderError> {
    read_tagged(&cx.tagging, &cx.stack, Some(resource_type)).await
}

async fn read_tagged(
    client: &aws_sdk_resourcegroupstagging::Client,
    stack: &str,
    resource_type: Option<&str>,
) -> Result<TagsByArn, ProviderError> {
    let filter = TagFilter::builder().key(TAG_STACK).values(stack).build();
    let mut pages = client
        .get_resources()
        .tag_filters(filter)
        .set_resource_type_filters(resource_type.map(|t| vec![t.to_string()]))
        .resources_per_page(RESOURCES_PER_PAGE)
        .into_paginator()
        .send();
    let mut out = TagsByArn::new();
    while let Some(page) = pages.next().await {
        for m in page
            .map_err(ProviderError::from_sdk)?
            .resource_tag_mapping_list()
        {
            let Some(arn) = m.resource_arn() else {
                continue;
            };
            let mut tags: IndexMap<String, String> = m
                .tags()
                .iter()
                .filter(|t| !t.key().starts_with("aws:"))
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            tags.sort_keys();
            out.insert(arn.to_string(), tags);
        }
    }
    Ok(out)
}

/// The tags of each ARN, read one resource a call a few at a time with the
/// kind's own `list` (`None` for a resource that is gone): a kind's
/// [`crate::kit::Provider::read_tags`] where its API has no batch read.
pub async fn read_each<F, Fut>(arns: &[String], list: F) -> Result<Option<TagsByArn>, ProviderError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<IndexMap<String, String>>, ProviderError>>,
{
    let calls = arns
        .iter()
        .map(|arn| {
            let arn = arn.clone();
            let answer = list(arn.clone());
            async move { Ok(answer.await?.map(|t| (arn, t))) }
        })
        .collect();
    Ok(Some(crate::kit::each(calls).await?.into_iter().collect()))
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

    mod index {
        use super::super::StackTags;
        use aws_sdk_resourcegroupstagging::operation::get_resources::{
            GetResourcesError, GetResourcesOutput,
        };
        use aws_sdk_resourcegroupstagging::types::error::InternalServiceException;
        use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, Tag};
        use aws_sdk_resourcegroupstagging::Client;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        use aws_smithy_types::error::ErrorMetadata;

        fn mapping(arn: &str, tags: &[(&str, &str)]) -> ResourceTagMapping {
            ResourceTagMapping::builder()
                .resource_arn(arn)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
                        .collect(),
                ))
                .build()
        }

        fn page(token: &str, mappings: Vec<ResourceTagMapping>) -> GetResourcesOutput {
            GetResourcesOutput::builder()
                .pagination_token(token)
                .set_resource_tag_mapping_list(Some(mappings))
                .build()
        }

        /// Asks for the whole stack by its tag, 100 resources a page, no type filter.
        fn asks_for_stack(
            r: &aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesInput,
        ) -> bool {
            let f = r.tag_filters();
            f.len() == 1
                && f[0].key() == Some("reconcile:stack")
                && f[0].values() == ["s"]
                && r.resources_per_page() == Some(100)
                && r.resource_type_filters().is_empty()
                && r.resource_arn_list().is_empty()
        }

        #[tokio::test]
        async fn one_read_of_all_pages_serves_every_lookup_of_the_pass() {
            let first = mock!(Client::get_resources)
                .match_requests(|r| asks_for_stack(r) && r.pagination_token().is_none())
                .then_output(|| {
                    page(
                        "next",
                        vec![mapping(
                            "arn:aws:logs:::log-group:a",
                            &[
                                ("reconcile:stack", "s"),
                                ("b", "2"),
                                ("aws:cloudformation:stack-name", "x"),
                                ("a", "1"),
                            ],
                        )],
                    )
                });
            // The last page answers with an empty token, not without one.
            let second = mock!(Client::get_resources)
                .match_requests(|r| asks_for_stack(r) && r.pagination_token() == Some("next"))
                .then_output(|| {
                    page(
                        "",
                        vec![mapping(
                            "arn:aws:acm:::certificate/c",
                            &[("reconcile:stack", "s")],
                        )],
                    )
                });
            let client = mock_client!(
                aws_sdk_resourcegroupstagging,
                RuleMode::Sequential,
                [&first, &second]
            );
            let index = StackTags::new(client, "s");
            let a = index
                .get("log_group", "a", "arn:aws:logs:::log-group:a")
                .await
                .expect("listed on the first page");
            assert_eq!(
                a.iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>(),
                [("a", "1"), ("b", "2"), ("reconcile:stack", "s")],
                "aws: tags dropped, keys sorted"
            );
            let c = index
                .get(
                    "certificate",
                    "arn:aws:acm:::certificate/c",
                    "arn:aws:acm:::certificate/c",
                )
                .await;
            assert!(c.is_some(), "listed on the second page");
            assert!(index
                .get("log_group", "z", "arn:aws:logs:::log-group:z")
                .await
                .is_none());
            assert_eq!((first.num_calls(), second.num_calls()), (1, 1));

            assert_eq!(
                index.served_arn("log_group", "a").as_deref(),
                Some("arn:aws:logs:::log-group:a")
            );
            assert!(
                index.served_arn("log_group", "z").is_none(),
                "a miss is read by the kind"
            );
            assert!(
                index.served_arn("certificate", "a").is_none(),
                "served per kind"
            );
        }

        #[tokio::test]
        async fn a_failed_read_leaves_every_kind_to_its_own_call_and_is_not_repeated() {
            let denied = mock!(Client::get_resources).then_error(|| {
                GetResourcesError::generic(
                    ErrorMetadata::builder()
                        .code("AccessDeniedException")
                        .message("not allowed: tag:GetResources")
                        .build(),
                )
            });
            let client = mock_client!(aws_sdk_resourcegroupstagging, [&denied]);
            let index = StackTags::new(client, "s");
            assert!(index.get("log_group", "a", "arn:a").await.is_none());
            assert!(index.get("certificate", "arn:b", "arn:b").await.is_none());
            assert_eq!(denied.num_calls(), 1);
            assert!(index.served_arn("log_group", "a").is_none());

            // Any other failure (after the SDK's own retries) falls back the same way.
            let broken = mock!(Client::get_resources).then_error(|| {
                GetResourcesError::InternalServiceException(
                    InternalServiceException::builder().message("boom").build(),
                )
            });
            let client = mock_client!(aws_sdk_resourcegroupstagging, [&broken]);
            let index = StackTags::new(client, "s");
            assert!(index.get("log_group", "a", "arn:a").await.is_none());
            assert_eq!(broken.num_calls(), 1);
        }
    }
}
