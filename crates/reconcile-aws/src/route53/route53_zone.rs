//! `route53_zone`: a Route 53 hosted zone, public or private (associated with
//! VPCs), its comment and tags.
//!
//! Route 53 lets several zones share one name, so a zone is never found by
//! its name alone: state tracks it by id, and a create interrupted before
//! state recorded it is found again by its caller reference, which carries a
//! hash of the stack and the address, or by its `reconcile:*` tags.

use super::{bare_zone_id, norm_name};
use crate::kit::error::{at, unless_gone};
use crate::kit::fields::{changes_field, fields_of, str_of};
use crate::kit::tags::{own_tags, stack_address, sync as sync_tags};
use crate::kit::{by_id, each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_route53::operation::get_hosted_zone::GetHostedZoneOutput;
use aws_sdk_route53::types::{HostedZoneConfig, Tag, TagResourceType, Vpc, VpcRegion};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeSet, HashMap};

pub struct Route53Zone;

/// ListTagsForResources answers for at most 10 zones a call.
const TAGS_PER_CALL: usize = 10;

pub static SCHEMA: Schema = Schema {
    kind: "route53_zone",
    doc: "A Route 53 hosted zone: public, or private to the VPCs in `vpc_ids`. A zone holds \
          every record of its domain: `protect = true` keeps reconcile from ever deleting or \
          replacing it, and Route 53 itself refuses to delete a zone that still holds records \
          besides its NS and SOA (reconcile deletes the stack's own `route53_record`s first, \
          and never records it does not manage). Route 53 allows several zones with one name, \
          so a zone is never found by name: state tracks it by id, and a create interrupted \
          before state recorded it is found again by its caller reference (a hash of the stack \
          and the address, then the apply's token) or its `reconcile:*` tags. A zone made \
          outside the stack is not declared here: give its id to records as a literal or an \
          input. Observing costs one GetHostedZone per zone (concurrently) and one \
          ListTagsForResources per 10 zones. The emulator makes changes INSYNC at once, does \
          not check that a private zone's VPC exists, and answers the same four name servers \
          for every zone.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_zone_name),
            "The domain, like \"maxhealth.tech\" (trailing dot and case as you like: Route 53 \
             compares names without them). Changing it replaces the zone.",
        )
        .required()
        .norm(Norm::With(name_norm))
        .force_new(),
        Field::new(
            "comment",
            Ty::Str,
            "A note about the zone, up to 256 characters. Updated in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "vpc_ids",
            Ty::List(&Ty::Str),
            "Makes the zone private to these VPCs of the stack's region (`[\"${vpc.main.id}\"]`), \
             compared as a set; associations are added and removed in place. Left out or empty, \
             the zone is public. A public zone cannot become private or the reverse: declare a \
             new zone.",
        )
        .set(),
    ],
    attributes: &[
        (
            "id",
            "The zone id (like Z0123456789ABC), what records' `zone_id` takes.",
        ),
        ("zone_id", "The zone id, as `id`."),
        ("arn", "The zone's ARN."),
        ("name", "The domain, without a trailing dot."),
        (
            "name_servers",
            "The zone's four name servers, to enter at the domain's registrar (public zones).",
        ),
        ("private_zone", "Whether the zone is private to VPCs."),
    ],
    taggable: true,
};

/// A zone name: dot-separated labels of up to 63 characters, 255 in all.
pub fn check_zone_name(s: &str) -> Result<(), String> {
    let n = norm_name(s);
    let ok = n.contains('.')
        && n.len() <= 255
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not a domain name for a hosted zone; write it like \"example.com\""
        ))
    }
}

fn name_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::Str(s) => Value::str(norm_name(s)),
        other => other.clone(),
    }
}

pub fn arn_of(id: &str) -> String {
    format!("arn:aws:route53:::hostedzone/{id}")
}

/// The caller reference's prefix for this stack's zone at `address`: an
/// FNV-1a hash, so that any stack and address fit Route 53's 128 characters.
pub fn reference_prefix(stack: &str, address: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in stack.bytes().chain([0]).chain(address.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("reconcile-{h:016x}-")
}

fn aws_tags(tags: &IndexMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags of many zones, ten a call; zones that are gone are absent.
async fn tags_of(
    cx: &Cx,
    ids: &[String],
) -> Result<HashMap<String, IndexMap<String, String>>, ProviderError> {
    let calls = ids
        .chunks(TAGS_PER_CALL)
        .map(|chunk| async move {
            let out = cx
                .route53
                .list_tags_for_resources()
                .resource_type(TagResourceType::Hostedzone)
                .set_resource_ids(Some(chunk.to_vec()))
                .send()
                .await;
            let Some(out) = unless_gone(out)? else {
                // One zone of the chunk is gone: ask for each on its own.
                let one = chunk.iter().map(|id| async move {
                    let out = cx
                        .route53
                        .list_tags_for_resource()
                        .resource_type(TagResourceType::Hostedzone)
                        .resource_id(id)
                        .send()
                        .await;
                    Ok(unless_gone(out)?.map(|o| {
                        let tags = o.resource_tag_set().map(|s| s.tags()).unwrap_or_default();
                        vec![(id.clone(), own(tags))]
                    }))
                });
                return Ok(Some(each(one.collect()).await?.concat()));
            };
            Ok(Some(
                out.resource_tag_sets()
                    .iter()
                    .filter_map(|s| {
                        Some((bare_zone_id(s.resource_id()?).to_string(), own(s.tags())))
                    })
                    .collect::<Vec<_>>(),
            ))
        })
        .collect();
    Ok(each(calls).await?.into_iter().flatten().collect())
}

fn own(tags: &[Tag]) -> IndexMap<String, String> {
    own_tags(
        tags.iter()
            .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
    )
}

/// What GetHostedZone answers, as fields and attributes.
pub fn observed(out: &GetHostedZoneOutput, tags: IndexMap<String, String>) -> Option<Observed> {
    let z = out.hosted_zone()?;
    let id = bare_zone_id(z.id()).to_string();
    let private = z.config().is_some_and(|c| c.private_zone());
    let mut fields = fields_of([
        ("name", Value::str(norm_name(z.name()))),
        (
            "comment",
            Value::str(z.config().and_then(|c| c.comment()).unwrap_or_default()),
        ),
    ]);
    let mut vpcs: Vec<String> = out
        .vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    vpcs.sort();
    fields.insert(
        "vpc_ids".into(),
        Value::List(vpcs.into_iter().map(Value::Str).collect()),
    );
    let ns: Vec<Value> = out
        .delegation_set()
        .map(|d| d.name_servers().iter().map(Value::str).collect())
        .unwrap_or_default();
    Some(Observed {
        id: id.clone(),
        fields,
        attributes: fields_of([
            ("id", Value::str(&id)),
            ("zone_id", Value::str(&id)),
            ("arn", Value::str(arn_of(&id))),
            ("name", Value::str(norm_name(z.name()))),
            ("name_servers", Value::List(ns)),
            ("private_zone", Value::Bool(private)),
        ]),
        tags,
    })
}

async fn get(cx: &Cx, id: &str) -> Result<Option<GetHostedZoneOutput>, ProviderError> {
    unless_gone(cx.route53.get_hosted_zone().id(id).send().await)
}

/// One zone with its tags (two calls); `None` when it is gone.
async fn read(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(out) = get(cx, id).await? else {
        return Ok(None);
    };
    let tags = tags_of(cx, &[id.to_string()]).await?;
    let Some(t) = tags.get(id) else {
        return Ok(None);
    };
    Ok(observed(&out, t.clone()))
}

/// Every zone as (id, name, caller reference): ListHostedZones, 100 a page.
async fn list_zones(cx: &Cx) -> Result<Vec<(String, String, String)>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx.route53.list_hosted_zones().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProviderError::from_sdk)?;
        out.extend(page.hosted_zones().iter().map(|z| {
            (
                bare_zone_id(z.id()).to_string(),
                norm_name(z.name()),
                z.caller_reference().to_string(),
            )
        }));
    }
    Ok(out)
}

fn vpc_ids(f: &Fields) -> BTreeSet<String> {
    f.get("vpc_ids")
        .map(Value::str_list)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn vpc(cx: &Cx, id: &str) -> Vpc {
    Vpc::builder()
        .vpc_id(id)
        .vpc_region(VpcRegion::from(cx.region.as_str()))
        .build()
}

pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    if str_of(f, "comment").is_some_and(|c| c.chars().count() > 256) {
        out.push((
            "comment",
            "the comment is longer than 256 characters".into(),
            "shorten it".into(),
        ));
    }
    out
}

impl Route53Zone {
    async fn sync(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(), ProviderError> {
        let (a, id, f) = (want.address, live.id.as_str(), want.fields);
        if changes_field(changes, "comment") {
            cx.route53
                .update_hosted_zone_comment()
                .id(id)
                .comment(str_of(f, "comment").unwrap_or_default())
                .send()
                .await
                .map_err(|e| at(a, "UpdateHostedZoneComment", e.into()))?;
        }
        if changes_field(changes, "vpc_ids") && f.contains_key("vpc_ids") {
            let want_vpcs = vpc_ids(f);
            let have = vpc_ids(&live.fields);
            let private = live.attributes.get("private_zone") == Some(&Value::Bool(true));
            if !private && !want_vpcs.is_empty() {
                return Err(ProviderError::InvalidInput(format!(
                    "{a}: the zone is public and cannot be associated with VPCs; declare a new \
                     private zone instead"
                )));
            }
            if private && want_vpcs.is_empty() {
                return Err(ProviderError::InvalidInput(format!(
                    "{a}: a private zone keeps at least one VPC; declare a new public zone instead"
                )));
            }
            // Associate first: a private zone must keep one VPC at every moment.
            for v in want_vpcs.difference(&have) {
                cx.route53
                    .associate_vpc_with_hosted_zone()
                    .hosted_zone_id(id)
                    .vpc(vpc(cx, v))
                    .send()
                    .await
                    .map_err(|e| at(a, "AssociateVPCWithHostedZone", e.into()))?;
            }
            for v in have.difference(&want_vpcs) {
                cx.route53
                    .disassociate_vpc_from_hosted_zone()
                    .hosted_zone_id(id)
                    .vpc(vpc(cx, v))
                    .send()
                    .await
                    .map_err(|e| at(a, "DisassociateVPCFromHostedZone", e.into()))?;
            }
        }
        if changes_field(changes, "tags") {
            let untag = |stale: Vec<String>| async move {
                cx.route53
                    .change_tags_for_resource()
                    .resource_type(TagResourceType::Hostedzone)
                    .resource_id(id)
                    .set_remove_tag_keys(Some(stale))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| at(a, "ChangeTagsForResource", e.into()))
            };
            let tag = |set: IndexMap<String, String>| async move {
                cx.route53
                    .change_tags_for_resource()
                    .resource_type(TagResourceType::Hostedzone)
                    .resource_id(id)
                    .set_add_tags(Some(aws_tags(&set)))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| at(a, "ChangeTagsForResource", e.into()))
            };
            sync_tags(&live.tags, want.tags, untag, tag).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for Route53Zone {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    /// Route 53 allows two zones of one name: the new one is made first, and
    /// records move to it with their own replacement.
    fn create_before_destroy(&self, _changes: &[FieldChange]) -> bool {
        true
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let ids: Vec<String> = ids.iter().map(|i| bare_zone_id(i).to_string()).collect();
        let gets = ids
            .iter()
            .map(|id| async move { Ok(get(cx, id).await?.map(|o| (id.clone(), o))) })
            .collect();
        let found = each(gets).await?;
        if found.is_empty() {
            return Ok(HashMap::new());
        }
        let present: Vec<String> = found.iter().map(|(id, _)| id.clone()).collect();
        let tags = tags_of(cx, &present).await?;
        Ok(by_id(
            found
                .iter()
                .filter_map(|(id, out)| observed(out, tags.get(id)?.clone()))
                .collect(),
        ))
    }

    /// ListHostedZones (Route 53 cannot search by tag), then the tags of every
    /// zone ten a call, then GetHostedZone for this stack's.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let ids: Vec<String> = list_zones(cx).await?.into_iter().map(|z| z.0).collect();
        let tags = tags_of(cx, &ids).await?;
        let ours: Vec<(String, String)> = tags
            .iter()
            .filter_map(|(id, t)| Some((id.clone(), stack_address(cx, t)?)))
            .filter(|(_, a)| addresses.is_empty() || addresses.contains(a))
            .collect();
        let reads = ours
            .into_iter()
            .map(|(id, a)| async move { Ok(read(cx, &id).await?.map(|o| (a, o))) })
            .collect();
        each(reads).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let (a, f) = (want.address, want.fields);
        crate::kit::fields::refuse(a, problems(f))?;
        let name = str_of(f, "name").map(norm_name).ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `name` must be a known string"))
        })?;
        let prefix = reference_prefix(&cx.stack, a);
        // A zone an interrupted create made: its caller reference says so even
        // when the crash came before its tags.
        let leftover = list_zones(cx).await?.into_iter().find(|(id, n, r)| {
            *n == name && r.starts_with(&prefix) && Some(id.as_str()) != want.replacing
        });
        let id = match leftover {
            Some((id, _, _)) => {
                tracing::info!(address = a, %id, "adopting the zone an interrupted apply created");
                id
            }
            None => {
                let vpcs = vpc_ids(f);
                let mut req = cx
                    .route53
                    .create_hosted_zone()
                    .name(&name)
                    .caller_reference(format!("{prefix}{}", want.token))
                    .hosted_zone_config(
                        HostedZoneConfig::builder()
                            .comment(str_of(f, "comment").unwrap_or_default())
                            .private_zone(!vpcs.is_empty())
                            .build(),
                    );
                if let Some(first) = vpcs.iter().next() {
                    req = req.vpc(vpc(cx, first));
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| at(a, "CreateHostedZone", e.into()))?;
                let z = out.hosted_zone().ok_or_else(|| {
                    ProviderError::Other(format!("{a}: CreateHostedZone answered no zone"))
                })?;
                bare_zone_id(z.id()).to_string()
            }
        };
        let live = read(cx, &id).await?.ok_or_else(|| {
            ProviderError::Other(format!(
                "{a}: zone {id} is not described right after its creation; run plan again"
            ))
        })?;
        let changes = crate::kit::adopt::changes_to(self, want, &live);
        self.sync(cx, &live, want, &changes).await?;
        let back = read(cx, &id).await?.unwrap_or(live);
        Ok(Observed {
            id,
            fields: f.clone(),
            attributes: back.attributes,
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
        let id = bare_zone_id(id);
        match unless_gone(cx.route53.delete_hosted_zone().id(id).send().await) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("HostedZoneNotEmpty") => {
                Err(ProviderError::DependencyViolation(format!(
                    "DeleteHostedZone {id}: the zone still holds records besides its NS and SOA; \
                     reconcile deletes only the records it manages: delete the others (or \
                     declare them) first, then apply again"
                )))
            }
            Err(e) => Err(at(
                &format!("route53_zone {id} (stack {})", cx.stack),
                "DeleteHostedZone",
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
    fn names_compare_as_route53_does() {
        let want = fields_of([("name", Value::str("MaxHealth.tech"))]);
        let live = fields_of([("name", Value::str("maxhealth.tech"))]);
        assert!(Route53Zone.diff(&want, &live).is_empty());
        assert!(check_zone_name("maxhealth.tech.").is_ok());
        assert!(check_zone_name("localhost").is_err());
        assert!(check_zone_name("a..b").is_err());
    }

    #[test]
    fn caller_references_are_stable_and_per_address() {
        let a = reference_prefix("proxy-smart", "route53_zone.main");
        assert_eq!(a, reference_prefix("proxy-smart", "route53_zone.main"));
        assert_ne!(a, reference_prefix("proxy-smart", "route53_zone.other"));
        assert_ne!(a, reference_prefix("proxy-smartroute53_zone.main", ""));
        // With a UUID token it stays far below Route 53's 128 characters.
        assert!(a.len() + 36 < 128);
    }
}
