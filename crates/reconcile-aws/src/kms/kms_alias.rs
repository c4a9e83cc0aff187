//! `kms_alias`: a friendly name (`alias/...`) pointing at a KMS key.
//!
//! Aliases carry no tags, so they are observed for the whole stack with one
//! paginated ListAliases, and an alias is taken over on create only when it
//! already points at one of this stack's keys (an interrupted create).

use crate::kit::error::{at, gone_is_done};
use crate::kit::fields::{fields_of, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_kms::types::AliasListEntry;
use reconcile_core::model::schema::{Field, Norm, Schema, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed, TAG_STACK};
use std::collections::HashMap;

pub struct KmsAlias;

/// ListAliases answers at most 100 aliases a page.
const PAGE: i32 = 100;

pub static SCHEMA: Schema = Schema {
    kind: "kms_alias",
    doc: "An alias of a KMS key, such as \"alias/carebow-data\", by which applications and \
          AWS services name the key. Aliases have no tags: all of a stack's aliases are observed \
          with one ListAliases listing (100 a page). A create that finds the name taken adopts \
          the alias only when it already points at a key of this stack; otherwise it fails \
          naming the owner's key.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The alias, \"alias/\" then letters, digits, `/`, `_` and `-`; names under \
             \"alias/aws/\" are AWS's own. Changing it replaces the alias.",
        )
        .required()
        .force_new(),
        Field::new(
            "target_key_id",
            Ty::Str,
            "The key it points at, as `${kms_key.NAME.arn}` or `${kms_key.NAME.key_id}` (ARN or \
             id compare the same). Pointed elsewhere in place.",
        )
        .required()
        .norm(Norm::With(key_id_norm)),
    ],
    attributes: &[
        ("id", "The alias name, which is its id."),
        ("name", "The alias name."),
        ("arn", "The alias's ARN."),
        ("target_key_id", "The id of the key it points at."),
    ],
    taggable: false,
};

/// Alias names as KMS accepts them.
pub fn check_name(s: &str) -> Result<(), String> {
    let Some(rest) = s.strip_prefix("alias/") else {
        return Err(format!("\"{s}\": an alias name starts with \"alias/\""));
    };
    if rest.is_empty() || s.len() > 256 {
        return Err(format!(
            "\"{s}\": an alias name has 1 to 250 characters after \"alias/\""
        ));
    }
    if rest.starts_with("aws/") {
        return Err(format!("\"{s}\": aliases under alias/aws/ are AWS's own"));
    }
    if let Some(c) = rest
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_-".contains(*c)))
    {
        return Err(format!(
            "\"{s}\" contains {c:?}; use letters, digits, /, _ and - only"
        ));
    }
    Ok(())
}

/// A key ARN names the same key as its id.
fn key_id_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::Str(s) => Value::str(key_id(s)),
        other => other.clone(),
    }
}

fn key_id(s: &str) -> &str {
    s.rsplit_once(":key/").map(|(_, id)| id).unwrap_or(s)
}

/// Every alias of the region, all pages (AWS's own included: ListAliases
/// cannot filter by name).
async fn list(cx: &Cx) -> Result<Vec<AliasListEntry>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx.kms.list_aliases().limit(PAGE).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(ProviderError::from)?.aliases().iter().cloned());
    }
    Ok(out)
}

fn observed(a: &AliasListEntry) -> Option<Observed> {
    let name = a.alias_name()?.to_string();
    let target = a.target_key_id().unwrap_or_default();
    Some(Observed {
        id: name.clone(),
        fields: fields_of([
            ("name", Value::str(&name)),
            ("target_key_id", Value::str(target)),
        ]),
        attributes: fields_of([
            ("id", Value::str(&name)),
            ("name", Value::str(&name)),
            ("arn", Value::str(a.alias_arn().unwrap_or_default())),
            ("target_key_id", Value::str(target)),
        ]),
        tags: Default::default(),
    })
}

async fn read_one(cx: &Cx, name: &str) -> Result<Option<Observed>, ProviderError> {
    Ok(list(cx)
        .await?
        .iter()
        .filter(|a| a.alias_name() == Some(name))
        .find_map(observed))
}

#[async_trait]
impl Provider for KmsAlias {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(list(cx)
            .await?
            .iter()
            .filter(|a| a.alias_name().is_some_and(|n| ids.iter().any(|i| i == n)))
            .filter_map(observed)
            .map(|o| (o.id.clone(), o))
            .collect())
    }

    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let a = want.address;
        let (Some(name), Some(target)) = (
            str_of(want.fields, "name"),
            str_of(want.fields, "target_key_id"),
        ) else {
            return Err(ProviderError::InvalidInput(format!(
                "{a}: `name` and `target_key_id` must be known strings"
            )));
        };
        let made = cx
            .kms
            .create_alias()
            .alias_name(name)
            .target_key_id(target)
            .send()
            .await;
        if let Err(e) = made {
            let e = ProviderError::from(e);
            if e.code() != Some("AlreadyExistsException") {
                return Err(at(a, "CreateAlias", e));
            }
            // Taken: ours only if it points at a key of this stack (a create
            // interrupted before state recorded it, or a replacement's old copy).
            let live = read_one(cx, name).await?.ok_or(e)?;
            let current = str_of(&live.fields, "target_key_id").unwrap_or_default();
            let tags = cx
                .kms
                .list_resource_tags()
                .key_id(current)
                .send()
                .await
                .map_err(|e| at(a, "ListResourceTags", e.into()))?;
            let ours = tags
                .tags()
                .iter()
                .any(|t| t.tag_key() == TAG_STACK && t.tag_value() == cx.stack);
            if !ours {
                return Err(ProviderError::InvalidInput(format!(
                    "{a}: the alias `{name}` already exists and points at key {current}, which \
                     this stack does not manage; choose another name, or delete that alias first"
                )));
            }
            if key_id(current) != key_id(target) {
                cx.kms
                    .update_alias()
                    .alias_name(name)
                    .target_key_id(target)
                    .send()
                    .await
                    .map_err(|e| at(a, "UpdateAlias", e.into()))?;
            }
        }
        let live = read_one(cx, name).await?.ok_or_else(|| {
            ProviderError::Other(format!(
                "{a}: the alias `{name}` is not listed right after its creation; run plan again"
            ))
        })?;
        Ok(Observed {
            fields: want.fields.clone(),
            ..live
        })
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let a = want.address;
        let target = str_of(want.fields, "target_key_id").unwrap_or_default();
        cx.kms
            .update_alias()
            .alias_name(&live.id)
            .target_key_id(target)
            .send()
            .await
            .map_err(|e| at(a, "UpdateAlias", e.into()))?;
        let mut attributes = live.attributes.clone();
        attributes.insert("target_key_id".into(), Value::str(key_id(target)));
        Ok(Observed {
            id: live.id.clone(),
            fields: want.fields.clone(),
            attributes,
            tags: Default::default(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        gone_is_done(cx.kms.delete_alias().alias_name(id).send().await).map_err(|e| {
            at(
                &format!("kms_alias {id} (stack {})", cx.stack),
                "DeleteAlias",
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    #[test]
    fn names() {
        assert!(check_name("alias/carebow-data").is_ok());
        assert!(check_name("alias/team/app_1").is_ok());
        assert!(check_name("carebow-data").is_err());
        assert!(check_name("alias/").is_err());
        assert!(check_name("alias/aws/s3").is_err());
        assert!(check_name("alias/has space").is_err());
    }

    #[test]
    fn a_key_arn_and_its_id_are_the_same_target() {
        let f = |t: &str| -> Fields {
            [
                ("name".to_string(), Value::str("alias/x")),
                ("target_key_id".to_string(), Value::str(t)),
            ]
            .into_iter()
            .collect()
        };
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert!(KmsAlias.diff(&f(arn), &f(id)).is_empty());
        assert_eq!(KmsAlias.diff(&f(arn), &f("other")).len(), 1);
    }
}
