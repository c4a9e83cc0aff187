//! `ecr_repository`: an ECR repository with tag mutability, scan on push,
//! encryption, a "keep the last N images" lifecycle policy and tags.
//!
//! DescribeRepositories takes up to 100 names a call but fails whole when one
//! is missing; observe then lists the registry (1,000 a page) instead. The
//! lifecycle policy has no batch read: one GetLifecyclePolicy per repository,
//! concurrently. Tags come from the observe pass's stack tag index, or cost one
//! ListTagsForResource per repository the index does not list.

use crate::kit::adopt::{changes_to, take_over};
use crate::kit::error::at;
use crate::kit::fields::{bool_of, changes_field, str_of};
use crate::kit::tags::stack_address;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    Repository, Tag,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use serde_json::Value as Json;
use std::collections::HashMap;

pub struct EcrRepository;

/// DescribeRepositories takes at most 100 names, and answers 1,000 repositories a page.
const NAMES_PER_CALL: usize = 100;
const PAGE: i32 = 1000;
const CONCURRENCY: usize = 8;

pub static SCHEMA: Schema = Schema {
    kind: "ecr_repository",
    doc: "An ECR repository for a service's container images. `keep_last_images = N` writes \
          the lifecycle policy \"expire all but the N most recent images\" (compared by \
          meaning with the live policy); `0` removes any lifecycle policy; left out, the \
          lifecycle policy is not managed. Deleting a repository that still holds images \
          fails unless `force_delete = true` was applied. Observing costs one \
          DescribeRepositories per 100 repositories plus one GetLifecyclePolicy per repository \
          (ECR has no batch read for it); tags come from the plan's one Resource Groups Tagging \
          API read of the whole stack (GetResources, 100 resources a page, shared by every \
          kind), or cost one ListTagsForResource per repository that read does not list.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The repository name, such as \"proxy-smart/keycloak\". Changing it replaces the repository (and its images).",
        )
        .required()
        .force_new(),
        Field::new(
            "image_tag_mutability",
            Ty::Enum(&["MUTABLE", "IMMUTABLE"]),
            "IMMUTABLE refuses to move a tag to another image; updated in place.",
        )
        .default(Default::Str("MUTABLE")),
        Field::new(
            "scan_on_push",
            Ty::Bool,
            "Scan every pushed image for vulnerabilities; updated in place.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "encryption_type",
            Ty::Enum(&["AES256", "KMS"]),
            "How images are encrypted at rest. AWS cannot change it: a change replaces the repository.",
        )
        .default(Default::Str("AES256"))
        .force_new(),
        Field::new(
            "kms_key",
            Ty::Str,
            "With encryption_type = \"KMS\": the key's ARN (left out, AWS's aws/ecr key). A change replaces the repository.",
        )
        .force_new(),
        Field::new(
            "keep_last_images",
            Ty::Int,
            "Keep only this many most recent images (a lifecycle policy expiring the rest); \
             0 removes the lifecycle policy. Updated in place.",
        ),
        Field::new(
            "force_delete",
            Ty::Bool,
            "Let reconcile delete the repository with the images it still holds. A reconcile \
             setting: apply it before a destroy for it to count.",
        )
        .default(Default::Bool(false))
        .local(),
    ],
    attributes: &[
        ("id", "The repository name, which is its id."),
        ("name", "The repository name."),
        ("arn", "The repository's ARN."),
        (
            "repository_url",
            "Where to push and pull: ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME.",
        ),
        ("registry_id", "The account id of the registry."),
    ],
    taggable: true,
};

/// ECR names: 2 to 256 lowercase characters, path segments of letters and
/// digits joined by `.`, `_` or `-`, separated by `/`.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.len() < 2 || s.len() > 256 {
        return Err(format!(
            "\"{s}\": a repository name has 2 to 256 characters"
        ));
    }
    let segment_ok = |seg: &str| {
        !seg.is_empty()
            && seg.split(['.', '_', '-']).all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            })
    };
    if !s.split('/').all(segment_ok) {
        return Err(format!(
            "\"{s}\": use lowercase letters and digits, joined by single `.`, `_` or `-`, in `/`-separated parts (\"team/app\")"
        ));
    }
    Ok(())
}

/// Problems with a repository's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if let Some(Value::Int(n)) = f.get("keep_last_images") {
        if *n < 0 {
            out.push((
                "keep_last_images",
                format!("`keep_last_images` is {n}"),
                "give how many images to keep (10, say), or 0 for no lifecycle policy".into(),
            ));
        }
    }
    if f.contains_key("kms_key") && f.get("encryption_type").and_then(Value::as_str) != Some("KMS")
    {
        out.push((
            "kms_key",
            "`kms_key` is set but `encryption_type` is not \"KMS\"".into(),
            "add encryption_type = \"KMS\", or remove `kms_key`".into(),
        ));
    }
    out
}

/// The lifecycle policy `keep_last_images = n` stands for.
pub fn keep_last_policy(n: i64) -> String {
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("Keep the last {n} images"),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": n
            },
            "action": { "type": "expire" }
        }]
    })
    .to_string()
}

/// N when a live policy means "keep the last N images, expire the rest",
/// whatever its description, priority or key order.
pub fn keep_last_of(text: &str) -> Option<i64> {
    let v: Json = serde_json::from_str(text).ok()?;
    let [rule] = v.get("rules")?.as_array()?.as_slice() else {
        return None;
    };
    let sel = rule.get("selection")?.as_object()?;
    let plain = sel.len() == 3
        && sel.get("tagStatus")?.as_str()? == "any"
        && sel.get("countType")?.as_str()? == "imageCountMoreThan"
        && rule.get("action")?.get("type")?.as_str()? == "expire";
    plain.then(|| sel.get("countNumber")?.as_i64()).flatten()
}

/// What a live policy looks like in `keep_last_images`: its N, 0 for none, or
/// a note for a policy that says something else (so the plan shows it).
fn keep_last_value(policy: Option<&str>) -> Value {
    match policy {
        None => Value::Int(0),
        Some(p) => match keep_last_of(p) {
            Some(n) => Value::Int(n),
            None => Value::str(format!(
                "(another lifecycle policy: {})",
                serde_json::from_str::<Json>(p)
                    .map(|j| j.to_string())
                    .unwrap_or_else(|_| p.to_string())
            )),
        },
    }
}

/// ECR's "no such repository" and "no lifecycle policy" are typed as not found.
fn is_missing(e: &ProviderError) -> bool {
    e.is_not_found()
        || matches!(
            e.code(),
            Some("RepositoryNotFoundException") | Some("LifecyclePolicyNotFoundException")
        )
}

/// Repositories by name: one call per 100 names; when one is missing (the
/// call then fails whole), the registry is listed instead.
async fn describe(cx: &Cx, names: &[String]) -> Result<Vec<Repository>, ProviderError> {
    let mut out = Vec::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        match cx
            .ecr
            .describe_repositories()
            .set_repository_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(ProviderError::from_sdk)
        {
            Ok(o) => out.extend(o.repositories().iter().cloned()),
            Err(e) if is_missing(&e) => {
                return Ok(list_all(cx)
                    .await?
                    .into_iter()
                    .filter(|r| {
                        r.repository_name()
                            .is_some_and(|n| names.iter().any(|x| x == n))
                    })
                    .collect())
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Every repository of the registry, all pages.
async fn list_all(cx: &Cx) -> Result<Vec<Repository>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx
        .ecr
        .describe_repositories()
        .max_results(PAGE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        out.extend(
            page.map_err(ProviderError::from_sdk)?
                .repositories()
                .iter()
                .cloned(),
        );
    }
    Ok(out)
}

fn observed(
    r: &Repository,
    policy: Option<&str>,
    tags: IndexMap<String, String>,
) -> Option<Observed> {
    let name = r.repository_name()?.to_string();
    let mut f = Fields::new();
    f.insert("name".into(), Value::str(&name));
    f.insert(
        "image_tag_mutability".into(),
        Value::str(
            r.image_tag_mutability()
                .map(|m| m.as_str())
                .unwrap_or("MUTABLE"),
        ),
    );
    f.insert(
        "scan_on_push".into(),
        Value::Bool(
            r.image_scanning_configuration()
                .is_some_and(|c| c.scan_on_push()),
        ),
    );
    let enc = r.encryption_configuration();
    f.insert(
        "encryption_type".into(),
        Value::str(
            enc.map(|e| e.encryption_type().as_str())
                .unwrap_or("AES256"),
        ),
    );
    if let Some(k) = enc.and_then(|e| e.kms_key()) {
        f.insert("kms_key".into(), Value::str(k));
    }
    f.insert("keep_last_images".into(), keep_last_value(policy));
    let a = [
        ("id", name.as_str()),
        ("name", &name),
        ("arn", r.repository_arn().unwrap_or_default()),
        ("repository_url", r.repository_uri().unwrap_or_default()),
        ("registry_id", r.registry_id().unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Value::str(v)))
    .collect();
    Some(Observed {
        id: name,
        fields: f,
        attributes: a,
        tags,
    })
}

/// A repository's tags by its ARN, with ECR's own call; `None` when it is gone.
async fn list_tags(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    match cx
        .ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(ProviderError::from_sdk)
    {
        Ok(t) => {
            let mut m: IndexMap<String, String> = t
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            m.sort_keys();
            Ok(Some(m))
        }
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Lifecycle policy and tags of each repository, concurrently: the tags from
/// the observe pass's stack tag index where it lists the repository. A
/// repository deleted meanwhile is left out.
async fn complete(cx: &Cx, repos: Vec<Repository>) -> Result<Vec<Observed>, ProviderError> {
    let calls = repos.into_iter().map(|r| async move {
        let name = r.repository_name().unwrap_or_default().to_string();
        let arn = r.repository_arn().unwrap_or_default().to_string();
        let policy = match cx
            .ecr
            .get_lifecycle_policy()
            .repository_name(&name)
            .send()
            .await
            .map_err(ProviderError::from_sdk)
        {
            Ok(p) => p.lifecycle_policy_text().map(str::to_string),
            Err(e) if e.code() == Some("RepositoryNotFoundException") => return Ok(None),
            Err(e) if is_missing(&e) => None,
            Err(e) => return Err(e),
        };
        let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, &name, &arn).await {
            Some(t) => t,
            None => match list_tags(cx, &arn).await? {
                Some(t) => t,
                None => return Ok(None),
            },
        };
        Ok(observed(&r, policy.as_deref(), tags))
    });
    let found: Vec<Option<Observed>> = stream::iter(calls.collect::<Vec<_>>())
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

fn sdk_tags(t: &IndexMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    t.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ProviderError::Other(e.to_string()))
        })
        .collect()
}

/// The declared settings that CreateRepository takes and update calls set again.
fn mutability(f: &Fields) -> ImageTagMutability {
    ImageTagMutability::from(str_of(f, "image_tag_mutability").unwrap_or("MUTABLE"))
}

fn scanning(f: &Fields) -> ImageScanningConfiguration {
    let on = bool_of(f, "scan_on_push").unwrap_or(false);
    ImageScanningConfiguration::builder()
        .scan_on_push(on)
        .build()
}

impl EcrRepository {
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
        if changes_field(changes, "image_tag_mutability") {
            cx.ecr
                .put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(mutability(f))
                .send()
                .await
                .map_err(|e| at(a, "PutImageTagMutability", ProviderError::from_sdk(e)))?;
        }
        if changes_field(changes, "scan_on_push") {
            let op = "PutImageScanningConfiguration";
            cx.ecr
                .put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(scanning(f))
                .send()
                .await
                .map_err(|e| at(a, op, ProviderError::from_sdk(e)))?;
        }
        if changes_field(changes, "keep_last_images") {
            match f.get("keep_last_images").and_then(Value::as_int) {
                Some(n) if n > 0 => {
                    cx.ecr
                        .put_lifecycle_policy()
                        .repository_name(name)
                        .lifecycle_policy_text(keep_last_policy(n))
                        .send()
                        .await
                        .map_err(|e| at(a, "PutLifecyclePolicy", ProviderError::from_sdk(e)))?;
                }
                Some(_) => {
                    match cx
                        .ecr
                        .delete_lifecycle_policy()
                        .repository_name(name)
                        .send()
                        .await
                        .map_err(ProviderError::from_sdk)
                    {
                        Err(e) if e.code() != Some("LifecyclePolicyNotFoundException") => {
                            return Err(at(a, "DeleteLifecyclePolicy", e))
                        }
                        _ => {}
                    }
                }
                None => {}
            }
        }
        if changes_field(changes, "tags") {
            let arn = str_of(&live.attributes, "arn").unwrap_or_default();
            let stale = crate::kit::tags::tag_keys_to_remove(&live.tags, want.tags);
            if !stale.is_empty() {
                cx.ecr
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(stale))
                    .send()
                    .await
                    .map_err(|e| at(a, "UntagResource", ProviderError::from_sdk(e)))?;
            }
            let changed = crate::kit::tags::tags_to_set(&live.tags, want.tags);
            if !changed.is_empty() {
                cx.ecr
                    .tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(sdk_tags(&changed)?))
                    .send()
                    .await
                    .map_err(|e| at(a, "TagResource", ProviderError::from_sdk(e)))?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for EcrRepository {
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
        Ok(complete(cx, describe(cx, ids).await?)
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
        let calls: Vec<_> = arns
            .iter()
            .map(|arn| async move {
                Ok::<_, ProviderError>(list_tags(cx, arn).await?.map(|t| (arn.clone(), t)))
            })
            .collect();
        let found: Vec<Option<(String, IndexMap<String, String>)>> = stream::iter(calls)
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(Some(found.into_iter().flatten().collect()))
    }

    /// Lists the registry and reads each repository's tags: only run when a
    /// declared repository is missing from state.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let all = complete(cx, list_all(cx).await?).await?;
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
        let enc = EncryptionConfiguration::builder()
            .encryption_type(EncryptionType::from(
                str_of(f, "encryption_type").unwrap_or("AES256"),
            ))
            .set_kms_key(str_of(f, "kms_key").map(str::to_string))
            .build()
            .map_err(|e| ProviderError::Other(format!("{a}: {e}")))?;
        let res = cx
            .ecr
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(mutability(f))
            .image_scanning_configuration(scanning(f))
            .encryption_configuration(enc)
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(sdk_tags(want.tags)?))
            .send()
            .await
            .map_err(ProviderError::from_sdk);
        let live = match res {
            Ok(out) => {
                let r = out.repository().ok_or_else(|| {
                    ProviderError::Other(format!(
                        "{a}: CreateRepository answered without the repository; run plan to see whether it exists"
                    ))
                })?;
                observed(r, None, want.tags.clone()).ok_or_else(|| {
                    ProviderError::Other(format!("{a}: CreateRepository answered no name"))
                })?
            }
            Err(e) if e.code() == Some("RepositoryAlreadyExistsException") => {
                let found = complete(cx, describe(cx, &[name.to_string()]).await?).await?;
                let refused = at(a, "CreateRepository", e);
                take_over(
                    cx,
                    want,
                    "an ECR repository",
                    name,
                    found.into_iter().next(),
                    refused,
                )?
            }
            Err(e) => return Err(at(a, "CreateRepository", e)),
        };
        // The lifecycle policy is its own call; an adopted copy is brought in line too.
        let mut changes: Vec<FieldChange> = changes_to(self, want, &live)
            .into_iter()
            .filter(|c| c.field != "force_delete")
            .collect();
        if let Some(c) = changes.iter().find(|c| c.forces_replace) {
            return Err(ProviderError::InvalidInput(format!(
                "{a}: the repository `{name}` this stack made differs in `{}`, which needs a replacement; \
                 delete it or choose another name",
                c.field
            )));
        }
        // A fresh repository has no lifecycle policy: 0 needs no call.
        changes.retain(|c| !(c.field == "keep_last_images" && c.new == Some(Value::Int(0))));
        self.sync(cx, &live, want, &changes).await?;
        Ok(Observed {
            id: live.id.clone(),
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
        let mut fields = live.fields.clone();
        fields.extend(want.fields.clone());
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: live.attributes.clone(),
            tags: want.tags.clone(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        self.delete_applied(cx, id, None).await
    }

    /// Deletes with the images only when `force_delete = true` was applied.
    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        let force = applied
            .and_then(|f| bool_of(f, "force_delete"))
            .unwrap_or(false);
        match cx
            .ecr
            .delete_repository()
            .repository_name(id)
            .force(force)
            .send()
            .await
            .map_err(ProviderError::from_sdk)
        {
            Ok(_) => Ok(()),
            Err(e) if is_missing(&e) => Ok(()),
            Err(e) if e.code() == Some("RepositoryNotEmptyException") => Err(ProviderError::Aws {
                code: "RepositoryNotEmptyException".into(),
                message: format!(
                    "ecr_repository {id} (stack {}): the repository still holds images, and \
                     reconcile does not delete images unless told to: apply `force_delete = true` \
                     on it first (then destroy or remove it again), or delete the images yourself",
                    cx.stack
                ),
            }),
            Err(e) => Err(at(
                &format!("ecr_repository {id} (stack {})", cx.stack),
                "DeleteRepository",
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_last_round_trip() {
        assert_eq!(keep_last_of(&keep_last_policy(10)), Some(10));
        let hand = r#"{"rules":[{"action":{"type":"expire"},"rulePriority":5,
            "selection":{"countNumber":3,"countType":"imageCountMoreThan","tagStatus":"any"}}]}"#;
        assert_eq!(keep_last_of(hand), Some(3));
        let tagged = r#"{"rules":[{"rulePriority":1,"action":{"type":"expire"},
            "selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":3}}]}"#;
        assert_eq!(keep_last_of(tagged), None);
        assert_eq!(keep_last_value(None), Value::Int(0));
        assert!(keep_last_value(Some(tagged))
            .as_str()
            .unwrap()
            .starts_with("(another lifecycle policy"));
    }

    #[test]
    fn names() {
        assert!(check_name("proxy-smart/keycloak").is_ok());
        assert!(check_name("a.b_c-d/e1").is_ok());
        assert!(check_name("Upper").is_err());
        assert!(check_name("a--b").is_err());
        assert!(check_name("/a").is_err());
        assert!(check_name("a").is_err());
    }

    #[test]
    fn validation() {
        let f: Fields = [("keep_last_images".to_string(), Value::Int(-1))]
            .into_iter()
            .collect();
        assert_eq!(problems(&f).len(), 1);
        let f: Fields = [("kms_key".to_string(), Value::str("arn:aws:kms:x"))]
            .into_iter()
            .collect();
        assert_eq!(problems(&f).len(), 1);
    }
}
