//! `db_subnet_group`: the subnets (in at least two availability zones) an RDS
//! instance or Aurora cluster may place its network interfaces in.
//!
//! DescribeDBSubnetGroups takes no filters and answers without tags, so observe
//! lists every group (paginated) and keeps the wanted ones; their tags come from
//! the observe pass's stack tag index, or cost one ListTagsForResource per
//! group the index does not list, concurrently. Stacks hold one or two groups,
//! so this stays far below the per-resource cost of the other kinds' describes.

use crate::kit::fields::{changes_field, str_list, str_of, strs_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use crate::rds::{self, named, rds_error, unless_gone};
use async_trait::async_trait;
use aws_sdk_rds::types::DbSubnetGroup as AwsGroup;
use futures::future::join_all;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::Value;
use reconcile_core::plan::Observed;
use std::collections::HashMap;

pub struct DbSubnetGroup;

pub static SCHEMA: Schema = Schema {
    kind: "db_subnet_group",
    doc: "A DB subnet group: the VPC subnets an RDS instance or Aurora cluster may use. \
          AWS requires subnets in at least two availability zones.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The group's name, lowercase (AWS lowercases it). Changing it replaces the group.",
        )
        .required()
        .force_new(),
        Field::new(
            "description",
            Ty::Str,
            "What the group is for; updated in place.",
        )
        .default(Default::Str("Managed by reconcile")),
        Field::new(
            "subnet_ids",
            Ty::List(&Ty::Str),
            "The subnets, compared as a set; updated in place (the databases stay where they are).",
        )
        .required()
        .set(),
    ],
    attributes: &[
        ("id", "The group's name, which is its id."),
        ("arn", "The group's ARN."),
        ("name", "The group's name."),
        ("vpc_id", "The VPC of the subnets."),
    ],
    taggable: true,
};

/// 1-255 lowercase letters, digits, spaces, `.`, `_`, `-`; not "default".
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 255 {
        return Err(format!(
            "\"{s}\": a DB subnet group name has 1 to 255 characters"
        ));
    }
    if s.eq_ignore_ascii_case("default") {
        return Err("\"default\" is reserved by AWS; choose another name".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || " ._-".contains(c))
    {
        return Err(format!(
            "\"{s}\": use lowercase letters, digits, spaces, `.`, `_` and `-` (AWS lowercases the name)"
        ));
    }
    Ok(())
}

fn address_of(cx: &Cx, name: &str) -> String {
    // Deletes only know the id; the address is for messages and status.
    format!("db_subnet_group {name} (stack {})", cx.stack)
}

/// Every group of the region, all pages.
async fn list_groups(cx: &Cx) -> Result<Vec<AwsGroup>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx.rds.describe_db_subnet_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(rds_error)?.db_subnet_groups().iter().cloned());
    }
    Ok(out)
}

fn observed(g: &AwsGroup, tags: indexmap::IndexMap<String, String>) -> Option<Observed> {
    let name = g.db_subnet_group_name()?.to_string();
    let subnets = g.subnets().iter().filter_map(|s| s.subnet_identifier());
    let fields = rds::fields([
        ("name", Value::str(&name)),
        (
            "description",
            rds::str_value(g.db_subnet_group_description()),
        ),
        ("subnet_ids", str_list(subnets)),
    ]);
    let a = rds::fields([
        ("id", Value::str(&name)),
        ("arn", rds::str_value(g.db_subnet_group_arn())),
        ("name", Value::str(&name)),
        ("vpc_id", rds::str_value(g.vpc_id())),
    ]);
    Some(Observed {
        id: name,
        fields,
        attributes: a,
        tags,
    })
}

/// A group's tags by its ARN, with RDS's own call; `None` when it is gone.
async fn list_tags(
    cx: &Cx,
    arn: &str,
) -> Result<Option<indexmap::IndexMap<String, String>>, ProviderError> {
    let out = cx
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await;
    Ok(unless_gone(out.map_err(rds_error))?.map(|o| rds::tags_of(o.tag_list())))
}

/// The groups with their tags: from the observe pass's stack tag index where
/// it lists them, else one ListTagsForResource each, concurrently. A group
/// deleted between the list and its tag call is left out, as if the list had
/// missed it.
async fn with_tags(cx: &Cx, groups: Vec<AwsGroup>) -> Result<Vec<Observed>, ProviderError> {
    let calls = groups.iter().map(|g| async move {
        let arn = g.db_subnet_group_arn().unwrap_or_default();
        let name = g.db_subnet_group_name().unwrap_or_default();
        let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, name, arn).await {
            Some(t) => Some(t),
            None => list_tags(cx, arn).await?,
        };
        Ok::<_, ProviderError>(tags.and_then(|t| observed(g, t)))
    });
    let mut out = Vec::new();
    for r in join_all(calls).await {
        out.extend(r?);
    }
    Ok(out)
}

#[async_trait]
impl Provider for DbSubnetGroup {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    /// The name is the identity: a renamed group can exist beside the old one.
    fn create_before_destroy(&self, _changes: &[reconcile_core::plan::FieldChange]) -> bool {
        true
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let wanted: Vec<AwsGroup> = list_groups(cx)
            .await?
            .into_iter()
            .filter(|g| {
                g.db_subnet_group_name()
                    .is_some_and(|n| ids.iter().any(|i| i.eq_ignore_ascii_case(n)))
            })
            .collect();
        Ok(with_tags(cx, wanted)
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
        let mut out = crate::kit::tags::TagsByArn::new();
        for r in join_all(calls).await {
            out.extend(r?);
        }
        Ok(Some(out))
    }

    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let all = with_tags(cx, list_groups(cx).await?).await?;
        Ok(all
            .into_iter()
            .filter_map(|o| crate::kit::tags::stack_address(cx, &o.tags).map(|a| (a, o)))
            .filter(|(a, _)| addresses.is_empty() || addresses.contains(a))
            .collect())
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let name = str_of(f, "name").unwrap_or_default();
        let out = cx
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(name)
            .db_subnet_group_description(str_of(f, "description").unwrap_or("Managed by reconcile"))
            .set_subnet_ids(strs_of(f, "subnet_ids"))
            .set_tags(Some(rds::to_tags(want.tags)))
            .send()
            .await
            .map_err(|e| named(want.address, "creating", rds_error(e)))?;
        let g = out.db_subnet_group().ok_or_else(|| {
            ProviderError::Other(format!(
                "{}: CreateDBSubnetGroup answered without the group",
                want.address
            ))
        })?;
        let mut o = observed(g, want.tags.clone()).ok_or_else(|| {
            ProviderError::Other(format!(
                "{}: CreateDBSubnetGroup answered a group without a name",
                want.address
            ))
        })?;
        o.fields = f.clone();
        Ok(o)
    }

    /// ModifyDBSubnetGroup takes the description and the whole subnet list at once.
    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[reconcile_core::plan::FieldChange],
    ) -> Result<Observed, ProviderError> {
        let f = want.fields;
        if changes_field(changes, "description") || changes_field(changes, "subnet_ids") {
            let subnets = strs_of(f, "subnet_ids")
                .or_else(|| strs_of(&live.fields, "subnet_ids"))
                .unwrap_or_default();
            cx.rds
                .modify_db_subnet_group()
                .db_subnet_group_name(&live.id)
                .db_subnet_group_description(
                    str_of(f, "description")
                        .or_else(|| str_of(&live.fields, "description"))
                        .unwrap_or("Managed by reconcile"),
                )
                .set_subnet_ids(Some(subnets))
                .send()
                .await
                .map_err(|e| named(want.address, "updating", rds_error(e)))?;
        }
        rds::retag(cx, live, want, changes).await?;
        let mut fields = live.fields.clone();
        fields.extend(f.clone());
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: live.attributes.clone(),
            tags: want.tags.clone(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let out = cx
            .rds
            .delete_db_subnet_group()
            .db_subnet_group_name(id)
            .send()
            .await;
        unless_gone(out.map_err(rds_error))
            .map(|_| ())
            .map_err(|e| named(&address_of(cx, id), "deleting", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("carebow-db").is_ok());
        assert!(check_name("my group_1.a").is_ok());
        assert!(check_name("Default").is_err());
        assert!(check_name("CareBow").unwrap_err().contains("lowercase"));
        assert!(check_name("").is_err());
    }
}
