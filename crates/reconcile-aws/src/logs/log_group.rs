//! `log_group`: a CloudWatch Logs log group, with its retention, KMS key and tags.
//!
//! DescribeLogGroups filters by name prefix only, so observe asks once (50
//! groups a page) for the longest prefix all wanted names share and keeps the
//! exact names; it answers without tags, which come from the observe pass's
//! stack tag index (one Tagging API read for the whole stack), or cost one
//! ListTagsForResource per group the index does not list (concurrently).
//! Retention and KMS key left out mean "never expire" and "no customer key", as
//! in Terraform: a retention set outside reconcile is drift.

use crate::kit::adopt::{changes_to, take_over};
use crate::kit::error::at;
use crate::kit::fields::{changes_field, str_of};
use crate::kit::tags::stack_address;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::LogGroup as AwsGroup;
use futures::stream::{self, StreamExt, TryStreamExt};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct LogGroup;

/// DescribeLogGroups answers at most 50 groups a page.
const PAGE: i32 = 50;
const CONCURRENCY: usize = 8;

/// The retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

pub static SCHEMA: Schema = Schema {
    kind: "log_group",
    doc: "A CloudWatch Logs log group, such as the one an ECS task's awslogs driver writes \
          to. Left out, `retention_in_days` means never expire and `kms_key_id` means no \
          customer key: a retention or key set outside reconcile is drift. Observing costs \
          one DescribeLogGroups per 50 groups sharing the stack's name prefix; the describe \
          answers without tags, which come from the plan's one Resource Groups Tagging API \
          read of the whole stack (GetResources, 100 resources a page, shared by every kind), \
          or cost one ListTagsForResource per group that read does not list.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The log group name, such as \"/ecs/keycloak\". Changing it replaces the group (and its logs).",
        )
        .required()
        .force_new(),
        Field::new(
            "retention_in_days",
            Ty::Int,
            "Days events are kept: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, \
             1096, 1827, 2192, 2557, 2922, 3288 or 3653; left out, events never expire. Updated in place.",
        )
        .absent_clears(),
        Field::new(
            "kms_key_id",
            Ty::Str,
            "ARN of the KMS key that encrypts the group's events; left out, CloudWatch's own \
             encryption. Associated or disassociated in place (the key policy must let \
             logs.REGION.amazonaws.com use it).",
        )
        .absent_clears(),
    ],
    attributes: &[
        ("id", "The log group name, which is its id."),
        ("name", "The log group name."),
        (
            "arn",
            "The log group's ARN, without the \":*\" that DescribeLogGroups appends.",
        ),
    ],
    taggable: true,
};

/// Log group names: 1 to 512 of letters, digits and `._-/#`.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 512 {
        return Err(format!("\"{s}\": a log group name has 1 to 512 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-/#".contains(*c)))
    {
        return Err(format!(
            "\"{s}\" contains {c:?}; use letters, digits and ._-/# only"
        ));
    }
    if s.starts_with("aws/") {
        return Err(format!("\"{s}\": names beginning with aws/ are AWS's own"));
    }
    Ok(())
}

/// Problems with a log group's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if let Some(Value::Int(d)) = f.get("retention_in_days") {
        if !RETENTION_DAYS.contains(d) {
            let nearest = RETENTION_DAYS
                .iter()
                .min_by_key(|x| (*x - d).abs())
                .copied()
                .unwrap_or(30);
            out.push((
                "retention_in_days",
                format!("`retention_in_days` is {d}, which CloudWatch Logs does not offer"),
                format!(
                    "choose one of {} (nearest: {nearest}), or leave it out to keep events forever",
                    RETENTION_DAYS
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    if let Some(Value::Str(k)) = f.get("kms_key_id") {
        if !k.contains("${") && !k.starts_with("arn:") {
            out.push((
                "kms_key_id",
                format!("`kms_key_id` is \"{k}\"; CloudWatch Logs takes the key's full ARN"),
                "write it like \"arn:aws:kms:us-east-1:123456789012:key/...\", or reference `${kms_key.NAME.arn}`".into(),
            ));
        }
    }
    out
}

/// The ARN without the `:*` DescribeLogGroups' `arn` carries (AWS and moto alike);
/// `logGroupArn` already has none.
pub fn clean_arn(g: &AwsGroup) -> String {
    g.log_group_arn()
        .map(str::to_string)
        .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .unwrap_or_default()
}

/// The longest prefix all names share.
pub fn common_prefix(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut len = first.len();
    for n in &names[1..] {
        len = len.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    // Names are ASCII (validated), so any byte length is a char boundary.
    first[..len].to_string()
}

/// Every group whose name starts with `prefix`, all pages.
async fn describe(cx: &Cx, prefix: &str) -> Result<Vec<AwsGroup>, ProviderError> {
    let mut out = Vec::new();
    let mut req = cx.logs.describe_log_groups().limit(PAGE);
    if !prefix.is_empty() {
        req = req.log_group_name_prefix(prefix);
    }
    let mut pages = req.into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(
            page.map_err(ProviderError::from_sdk)?
                .log_groups()
                .iter()
                .cloned(),
        );
    }
    Ok(out)
}

fn observed(g: &AwsGroup, tags: IndexMap<String, String>) -> Option<Observed> {
    let name = g.log_group_name()?.to_string();
    let mut f = Fields::new();
    f.insert("name".into(), Value::str(&name));
    if let Some(d) = g.retention_in_days() {
        f.insert("retention_in_days".into(), Value::Int(i64::from(d)));
    }
    if let Some(k) = g.kms_key_id().filter(|k| !k.is_empty()) {
        f.insert("kms_key_id".into(), Value::str(k));
    }
    let attributes = [("id", &name), ("name", &name), ("arn", &clean_arn(g))]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::str(v)))
        .collect();
    Some(Observed {
        id: name.clone(),
        fields: f,
        attributes,
        tags,
    })
}

/// A group's tags by its ARN, with this service's own call; `None` when it is gone.
async fn list_tags(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    match cx
        .logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(ProviderError::from_sdk)
    {
        Ok(out) => {
            let mut t: IndexMap<String, String> = out
                .tags()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            t.sort_keys();
            Ok(Some(t))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The groups with their tags: from the observe pass's stack tag index where
/// it lists them, else one ListTagsForResource each, concurrently. A group
/// deleted between the two calls is left out.
async fn with_tags(cx: &Cx, groups: Vec<AwsGroup>) -> Result<Vec<Observed>, ProviderError> {
    let calls = groups.into_iter().map(|g| async move {
        let arn = clean_arn(&g);
        let name = g.log_group_name().unwrap_or_default();
        let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, name, &arn).await {
            Some(t) => Some(t),
            None => list_tags(cx, &arn).await?,
        };
        Ok::<_, ProviderError>(tags.and_then(|t| observed(&g, t)))
    });
    let found: Vec<Option<Observed>> = stream::iter(calls.collect::<Vec<_>>())
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// One group by exact name, tags included.
async fn read_one(cx: &Cx, name: &str) -> Result<Option<Observed>, ProviderError> {
    let groups: Vec<AwsGroup> = describe(cx, name)
        .await?
        .into_iter()
        .filter(|g| g.log_group_name() == Some(name))
        .collect();
    Ok(with_tags(cx, groups).await?.into_iter().next())
}

impl LogGroup {
    async fn sync(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(), ProviderError> {
        let f = want.fields;
        let a = want.address;
        let name = live.id.as_str();
        if changes_field(changes, "retention_in_days") {
            match f.get("retention_in_days").and_then(Value::as_int) {
                Some(d) => {
                    cx.logs
                        .put_retention_policy()
                        .log_group_name(name)
                        .retention_in_days(d as i32)
                        .send()
                        .await
                        .map_err(|e| at(a, "PutRetentionPolicy", ProviderError::from_sdk(e)))?;
                }
                None => {
                    cx.logs
                        .delete_retention_policy()
                        .log_group_name(name)
                        .send()
                        .await
                        .map_err(|e| at(a, "DeleteRetentionPolicy", ProviderError::from_sdk(e)))?;
                }
            }
        }
        if changes_field(changes, "kms_key_id") {
            match str_of(f, "kms_key_id").filter(|k| !k.is_empty()) {
                Some(k) => {
                    cx.logs
                        .associate_kms_key()
                        .log_group_name(name)
                        .kms_key_id(k)
                        .send()
                        .await
                        .map_err(|e| at(a, "AssociateKmsKey", ProviderError::from_sdk(e)))?;
                }
                None => {
                    cx.logs
                        .disassociate_kms_key()
                        .log_group_name(name)
                        .send()
                        .await
                        .map_err(|e| at(a, "DisassociateKmsKey", ProviderError::from_sdk(e)))?;
                }
            }
        }
        if changes_field(changes, "tags") {
            let arn = str_of(&live.attributes, "arn").unwrap_or_default();
            let stale = crate::kit::tags::tag_keys_to_remove(&live.tags, want.tags);
            if !stale.is_empty() {
                cx.logs
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(stale))
                    .send()
                    .await
                    .map_err(|e| at(a, "UntagResource", ProviderError::from_sdk(e)))?;
            }
            let changed: HashMap<String, String> =
                crate::kit::tags::tags_to_set(&live.tags, want.tags)
                    .into_iter()
                    .collect();
            if !changed.is_empty() {
                cx.logs
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(changed))
                    .send()
                    .await
                    .map_err(|e| at(a, "TagResource", ProviderError::from_sdk(e)))?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for LogGroup {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let groups: Vec<AwsGroup> = describe(cx, &common_prefix(ids))
            .await?
            .into_iter()
            .filter(|g| {
                g.log_group_name()
                    .is_some_and(|n| ids.iter().any(|i| i == n))
            })
            .collect();
        Ok(with_tags(cx, groups)
            .await?
            .into_iter()
            .map(|o| (o.id.clone(), o))
            .collect())
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        let calls = arns.iter().map(|arn| async move {
            Ok::<_, ProviderError>(list_tags(cx, arn).await?.map(|t| (arn.clone(), t)))
        });
        let found: Vec<_> = stream::iter(calls.collect::<Vec<_>>())
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(Some(found.into_iter().flatten().collect()))
    }

    /// Lists every group of the region and reads each one's tags: costly in a
    /// busy account, but only run when a declared group is missing from state.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let all = with_tags(cx, describe(cx, "").await?).await?;
        Ok(all
            .into_iter()
            .filter_map(|o| Some((stack_address(cx, &o.tags)?, o)))
            .filter(|(a, _)| addresses.is_empty() || addresses.contains(a))
            .collect())
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        let name = str_of(f, "name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `name` must be a known string"))
        })?;
        let kms = str_of(f, "kms_key_id").filter(|k| !k.is_empty());
        let res = cx
            .logs
            .create_log_group()
            .log_group_name(name)
            .set_kms_key_id(kms.map(str::to_string))
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(want.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(ProviderError::from_sdk);
        let (live, changes) = match res {
            // Name, key and tags are set: only a retention still needs its own call.
            Ok(_) => {
                let made = Observed {
                    id: name.to_string(),
                    fields: Fields::new(),
                    attributes: Fields::new(),
                    tags: want.tags.clone(),
                };
                let retention = f.get("retention_in_days").filter(|d| d.as_int().is_some());
                let set = retention
                    .map(|d| FieldChange::new("retention_in_days", None, Some(d.clone()), false));
                (made, set.into_iter().collect())
            }
            Err(e) if matches!(&e, ProviderError::Aws { code, .. } if code == "ResourceAlreadyExistsException") =>
            {
                let found = read_one(cx, name).await?;
                let refused = at(a, "CreateLogGroup", e);
                let live = take_over(cx, want, "a log group", name, found, refused)?;
                let changes = changes_to(self, want, &live);
                (live, changes)
            }
            Err(e) => return Err(at(a, "CreateLogGroup", e)),
        };
        self.sync(cx, &live, want, &changes).await?;
        // Read back for the ARN (CreateLogGroup answers nothing) and to confirm what AWS kept.
        let live = read_one(cx, name).await?.ok_or_else(|| {
            ProviderError::Other(format!(
                "{a}: the log group `{name}` is not described right after its creation; run plan again"
            ))
        })?;
        Ok(Observed {
            id: name.to_string(),
            fields: f.clone(),
            attributes: live.attributes,
            tags: want.tags.clone(),
        })
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        self.sync(cx, live, want, changes).await?;
        Ok(crate::kit::updated(&SCHEMA, live, want))
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        match cx
            .logs
            .delete_log_group()
            .log_group_name(id)
            .send()
            .await
            .map_err(ProviderError::from_sdk)
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(at(
                &format!("log_group {id} (stack {})", cx.stack),
                "DeleteLogGroup",
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    #[test]
    fn prefixes() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(common_prefix(&n(&["/ecs/a", "/ecs/b"])), "/ecs/");
        assert_eq!(common_prefix(&n(&["/ecs/app"])), "/ecs/app");
        assert_eq!(common_prefix(&n(&["/ecs/a", "x"])), "");
        assert_eq!(common_prefix(&[]), "");
    }

    #[test]
    fn validation() {
        let f = |d: i64| -> Fields {
            [("retention_in_days".to_string(), Value::Int(d))]
                .into_iter()
                .collect()
        };
        assert!(problems(&f(30)).is_empty());
        let p = problems(&f(31));
        assert_eq!(p.len(), 1);
        assert!(p[0].2.contains("nearest: 30"), "{p:?}");
        assert!(check_name("/ecs/keycloak").is_ok());
        assert!(check_name("has space").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn absent_retention_is_never_expire() {
        let want: Fields = [("name".to_string(), Value::str("/a"))]
            .into_iter()
            .collect();
        let mut live = want.clone();
        assert!(LogGroup.diff(&want, &live).is_empty());
        live.insert("retention_in_days".into(), Value::Int(7));
        let c = LogGroup.diff(&want, &live);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "retention_in_days");
        assert_eq!(c[0].new, None);
    }
}
