//! Tags: the difference between the tags a resource has and the ones it should
//! have, reading reconcile's own `reconcile:*` tags back, and reading the tags
//! of many resources at once.

use super::{Cx, ProviderError};
use indexmap::IndexMap;
use reconcile_core::plan::{TAG_ADDRESS, TAG_STACK};
use std::collections::HashMap;

/// The most ARNs GetResources takes in its ResourceARNList.
const ARNS_PER_CALL: usize = 100;

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

/// The `reconcile:address` of a resource tagged with this stack, if any.
pub fn stack_address(cx: &Cx, tags: &IndexMap<String, String>) -> Option<String> {
    (tags.get(TAG_STACK) == Some(&cx.stack))
        .then(|| tags.get(TAG_ADDRESS).cloned())
        .flatten()
}

/// The tags of many resources, of any services the Resource Groups Tagging API
/// covers: one GetResources per 100 ARNs (plus its further pages) instead of a
/// tag read per resource. AWS's own `aws:` tags are left out and keys sorted, so
/// the answer does not depend on which API read them. The Tagging API leaves
/// out resources that have no tags, so every ARN asked about gets an entry, empty
/// when the answer did not mention it. Existence is not checked: the caller
/// learnt it from the service's own describe.
pub async fn read_tags(
    cx: &Cx,
    arns: &[String],
) -> Result<HashMap<String, IndexMap<String, String>>, ProviderError> {
    read_tags_with(&cx.tagging, arns).await
}

async fn read_tags_with(
    client: &aws_sdk_resourcegroupstagging::Client,
    arns: &[String],
) -> Result<HashMap<String, IndexMap<String, String>>, ProviderError> {
    let mut out: HashMap<String, IndexMap<String, String>> =
        arns.iter().map(|a| (a.clone(), IndexMap::new())).collect();
    for chunk in arns.chunks(ARNS_PER_CALL) {
        let mut token: Option<String> = None;
        loop {
            let page = client
                .get_resources()
                .set_resource_arn_list(Some(chunk.to_vec()))
                .set_pagination_token(token.take())
                .send()
                .await
                .map_err(ProviderError::from_sdk)?;
            for m in page.resource_tag_mapping_list() {
                let Some(arn) = m.resource_arn() else {
                    continue;
                };
                let tags = out.entry(arn.to_string()).or_default();
                tags.extend(
                    m.tags()
                        .iter()
                        .filter(|t| !t.key().starts_with("aws:"))
                        .map(|t| (t.key().to_string(), t.value().to_string())),
                );
            }
            // The last page answers with an empty token, not without one.
            match page.pagination_token().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
    }
    for tags in out.values_mut() {
        tags.sort_keys();
    }
    Ok(out)
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

    mod read {
        use super::super::read_tags_with;
        use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
        use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, Tag};
        use aws_sdk_resourcegroupstagging::Client;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};

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

        #[tokio::test]
        async fn asks_per_hundred_arns_follows_pages_and_fills_in_untagged_ones() {
            let arns: Vec<String> = (0..150).map(|i| format!("arn:aws:x:::r/{i:03}")).collect();
            // First hundred: two pages; the rest: one page, which leaves r/149 out.
            let first = mock!(Client::get_resources)
                .match_requests(|r| {
                    r.resource_arn_list().len() == 100 && r.pagination_token().is_none()
                })
                .then_output(|| {
                    page(
                        "next",
                        vec![mapping(
                            "arn:aws:x:::r/000",
                            &[("b", "2"), ("aws:cloudformation:stack-name", "s")],
                        )],
                    )
                });
            let second = mock!(Client::get_resources)
                .match_requests(|r| {
                    r.resource_arn_list().len() == 100 && r.pagination_token() == Some("next")
                })
                .then_output(|| page("", vec![mapping("arn:aws:x:::r/099", &[("a", "1")])]));
            let third = mock!(Client::get_resources)
                .match_requests(|r| {
                    r.resource_arn_list().len() == 50
                        && r.resource_arn_list()[0] == "arn:aws:x:::r/100"
                })
                .then_output(|| {
                    page(
                        "",
                        vec![mapping("arn:aws:x:::r/100", &[("z", "9"), ("a", "1")])],
                    )
                });
            let client = mock_client!(
                aws_sdk_resourcegroupstagging,
                RuleMode::Sequential,
                [&first, &second, &third]
            );
            let tags = read_tags_with(&client, &arns).await.unwrap();
            assert_eq!(tags.len(), 150);
            assert_eq!(
                tags["arn:aws:x:::r/000"].iter().collect::<Vec<_>>(),
                [(&"b".to_string(), &"2".to_string())]
            );
            assert_eq!(tags["arn:aws:x:::r/099"]["a"], "1");
            assert_eq!(
                tags["arn:aws:x:::r/100"].keys().collect::<Vec<_>>(),
                ["a", "z"]
            );
            assert!(tags["arn:aws:x:::r/149"].is_empty());
            assert_eq!(first.num_calls(), 1);
            assert_eq!(second.num_calls(), 1);
            assert_eq!(third.num_calls(), 1);
        }

        #[tokio::test]
        async fn no_arns_make_no_call() {
            let rule = mock!(Client::get_resources).then_output(|| page("", vec![]));
            let client = mock_client!(aws_sdk_resourcegroupstagging, [&rule]);
            assert!(read_tags_with(&client, &[]).await.unwrap().is_empty());
            assert_eq!(rule.num_calls(), 0);
        }
    }
}
