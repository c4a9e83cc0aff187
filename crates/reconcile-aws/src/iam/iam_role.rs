//! `iam_role`: an IAM role with its trust policy, attached managed policies and
//! inline policies, plus the policy-document model (parse, normalise, compare)
//! that other kinds with JSON policies can share.
//!
//! Observing costs two paginated calls for the whole account, whatever the
//! number of roles the stack holds: ListRoles (description, session length,
//! trust policy; 1,000 roles a page) and GetAccountAuthorizationDetails filtered
//! to roles (inline policy documents, attached managed policies, tags). IAM has
//! no batch get by name. Without `iam:GetAccountAuthorizationDetails` it falls
//! back to GetRole + ListAttachedRolePolicies + ListRolePolicies + one
//! GetRolePolicy per inline policy, for each role.
//!
//! IAM is eventually consistent: a role just created may not be assumable by
//! ECS for a few seconds. reconcile does not sleep for it; the kinds that hand
//! the role to a service retry what AWS refuses for that reason.

use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{changes_field, str_of, strs_of};
use crate::kit::policy::{
    canonical_policy, document_problem, normalise_policy, parse_policy, policy_norm, url_decode,
};
use crate::kit::tags::stack_address;
use crate::kit::{adopt, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_iam::types::{EntityType, Role, Tag};
use futures::stream::{self, StreamExt, TryStreamExt};
use indexmap::IndexMap;
use reconcile_core::diff::normal_form;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashMap};

pub struct IamRole;

/// ListRoles and GetAccountAuthorizationDetails answer at most 1,000 items a page.
const PAGE: i32 = 1000;
/// Concurrent per-role calls in the fallback path.
const CONCURRENCY: usize = 8;
const DEFAULT_SESSION: i64 = 3600;

pub static SCHEMA: Schema = Schema {
    kind: "iam_role",
    doc: "An IAM role, such as an ECS task execution role. Its trust policy is either \
          `assume_role_policy` (a JSON document) or `trusted_services` (the services allowed \
          to assume it; reconcile writes the standard trust policy); give exactly one. \
          Policy documents are compared by meaning, not text: key order, whitespace and a \
          single value written as a one-element list do not count as changes. References \
          work inside documents (`\"Resource\": \"${secret.db.arn}\"`); write an IAM policy \
          variable as `$${aws:username}`. Observing costs two paginated calls for the whole \
          account (ListRoles and GetAccountAuthorizationDetails), not calls per role. A role \
          just created may take a few seconds before ECS can assume it (IAM is eventually \
          consistent).",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_role_name),
            "The role name, unique in the account. Changing it replaces the role.",
        )
        .required()
        .force_new(),
        Field::new(
            "path",
            Ty::Pattern(check_path),
            "The role's path, such as \"/\" or \"/ecs/\". Changing it replaces the role.",
        )
        .default(Default::Str("/"))
        .force_new(),
        Field::new(
            "description",
            Ty::Str,
            "What the role is for; updated in place.",
        ),
        Field::new(
            "assume_role_policy",
            Ty::Str,
            "The trust policy as a JSON document (a TOML multi-line literal reads best); \
             updated in place. Exclusive with `trusted_services`.",
        )
        .norm(Norm::With(policy_norm)),
        Field::new(
            "trusted_services",
            Ty::List(&Ty::Str),
            "Services allowed to assume the role, such as [\"ecs-tasks.amazonaws.com\"]: \
             shorthand for the standard sts:AssumeRole trust policy; updated in place. \
             Exclusive with `assume_role_policy`.",
        )
        .set(),
        Field::new(
            "managed_policy_arns",
            Ty::List(&Ty::Str),
            "ARNs of the managed policies attached to the role, compared as a set; attached \
             and detached in place. Left out, attachments are not managed.",
        )
        .set(),
        Field::new(
            "inline_policies",
            Ty::Map(&Ty::Str),
            "Inline policies: policy name = JSON policy document. Declared, it is the role's \
             exact set of inline policies; each is put or deleted in place.",
        )
        .norm(Norm::With(policy_norm)),
        Field::new(
            "max_session_duration",
            Ty::Int,
            "Longest session, in seconds, for someone assuming the role; updated in place.",
        )
        .range(3600, 43200)
        .default(Default::Int(DEFAULT_SESSION)),
    ],
    attributes: &[
        ("id", "The role name, which is its id."),
        (
            "arn",
            "The role's ARN, for a task definition's execution_role_arn.",
        ),
        ("name", "The role name."),
        ("unique_id", "The stable id AWS gives the role (AROA...)."),
    ],
    taggable: true,
};

/// Role names: 1 to 64 of letters, digits and `+=,.@_-`.
pub fn check_role_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!("\"{s}\": a role name has 1 to 64 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        return Err(format!(
            "\"{s}\" contains {c:?}; use letters, digits and +=,.@_- only"
        ));
    }
    Ok(())
}

/// IAM paths: begin and end with `/`, up to 512 printable ASCII characters.
pub fn check_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') || !s.ends_with('/') || s.len() > 512 {
        return Err(format!(
            "\"{s}\" is not an IAM path; it begins and ends with \"/\", like \"/\" or \"/ecs/\""
        ));
    }
    if !s.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c)) {
        return Err(format!(
            "\"{s}\": an IAM path holds printable ASCII characters without spaces"
        ));
    }
    Ok(())
}

/// The standard trust policy letting `services` assume a role.
pub fn trust_policy(services: &[String]) -> String {
    let principal = match services {
        [one] => Json::String(one.clone()),
        many => Json::Array(many.iter().cloned().map(Json::String).collect()),
    };
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": principal },
            "Action": "sts:AssumeRole"
        }]
    })
    .to_string()
}

/// The services a trust policy lets assume the role, when it is the standard
/// policy `trusted_services` writes (a Sid aside); `None` for anything else.
pub fn trusted_services_of(text: &str) -> Option<Vec<String>> {
    let v = normalise_policy(&parse_policy(text).ok()?);
    let top = v.as_object()?;
    if top.get("Version")?.as_str()? != "2012-10-17" || top.len() != 2 {
        return None;
    }
    let [stmt] = top.get("Statement")?.as_array()?.as_slice() else {
        return None;
    };
    let s = stmt.as_object()?;
    let keys: BTreeSet<&str> = s
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "Sid")
        .collect();
    if keys != BTreeSet::from(["Action", "Effect", "Principal"])
        || s.get("Effect")?.as_str()? != "Allow"
        || s.get("Action")? != &serde_json::json!(["sts:AssumeRole"])
    {
        return None;
    }
    let p = s.get("Principal")?.as_object()?;
    if p.len() != 1 {
        return None;
    }
    p.get("Service")?
        .as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// Problems with a role's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    match (f.get("assume_role_policy"), f.get("trusted_services")) {
        (Some(_), Some(_)) => out.push((
            "trusted_services".into(),
            "`assume_role_policy` and `trusted_services` are both set; a role has one trust policy".into(),
            "keep `trusted_services` for the standard policy, or `assume_role_policy` for a document of your own; remove the other".into(),
        )),
        (None, None) => out.push((
            "name".into(),
            "the role has no trust policy".into(),
            "add `trusted_services = [\"ecs-tasks.amazonaws.com\"]`, or `assume_role_policy` with a JSON document".into(),
        )),
        _ => {}
    }
    if let Some(Value::List(l)) = f.get("trusted_services") {
        if l.is_empty() {
            out.push((
                "trusted_services".into(),
                "`trusted_services` is empty".into(),
                "name at least one service, such as \"ecs-tasks.amazonaws.com\"".into(),
            ));
        }
    }
    let doc = |field: &str, what: String, v: &Value| -> Option<(String, String, String)> {
        let (msg, help) = document_problem(v.as_str()?, &what)?;
        Some((field.into(), msg, help))
    };
    if let Some(v) = f.get("assume_role_policy") {
        out.extend(doc("assume_role_policy", "`assume_role_policy`".into(), v));
    }
    if let Some(Value::Map(m)) = f.get("inline_policies") {
        for (name, v) in m {
            out.extend(doc("inline_policies", format!("inline policy `{name}`"), v));
            if name.is_empty()
                || name.len() > 128
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
            {
                out.push((
                    "inline_policies".into(),
                    format!("inline policy name `{name}` is not a valid IAM policy name"),
                    "use 1 to 128 letters, digits and +=,.@_-".into(),
                ));
            }
        }
    }
    if let Some(Value::List(l)) = f.get("managed_policy_arns") {
        for a in l.iter().filter_map(Value::as_str) {
            let looks_like_arn = a.starts_with("arn:") && a.contains(":policy/");
            if !looks_like_arn && !a.contains("${") {
                out.push((
                    "managed_policy_arns".into(),
                    format!("\"{a}\" is not a managed policy ARN"),
                    "write it like \"arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy\"".into(),
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Live roles
// ---------------------------------------------------------------------------

/// A role as IAM reports it, documents decoded but not normalised.
#[derive(Debug, Clone, std::default::Default)]
struct Live {
    name: String,
    path: String,
    arn: String,
    role_id: String,
    description: String,
    max_session: i64,
    trust: String,
    managed: Vec<String>,
    inline: Vec<(String, String)>,
    tags: IndexMap<String, String>,
}

impl Live {
    /// The role's own settings, from GetRole or ListRoles.
    fn with_role(self, r: &Role) -> Live {
        Live {
            name: r.role_name().to_string(),
            path: r.path().to_string(),
            arn: r.arn().to_string(),
            role_id: r.role_id().to_string(),
            description: r.description().unwrap_or_default().to_string(),
            max_session: r.max_session_duration().map_or(DEFAULT_SESSION, i64::from),
            trust: r
                .assume_role_policy_document()
                .unwrap_or_default()
                .to_string(),
            ..self
        }
    }

    fn observed(&self) -> Observed {
        let mut f = Fields::new();
        f.insert("name".into(), Value::str(&self.name));
        f.insert("path".into(), Value::str(&self.path));
        f.insert("description".into(), Value::str(&self.description));
        let trust = canonical_policy(&self.trust).unwrap_or_else(|_| self.trust.clone());
        f.insert("assume_role_policy".into(), Value::str(trust));
        if let Some(services) = trusted_services_of(&self.trust) {
            f.insert(
                "trusted_services".into(),
                Value::List(services.into_iter().map(Value::Str).collect()),
            );
        }
        let mut managed = self.managed.clone();
        managed.sort();
        f.insert(
            "managed_policy_arns".into(),
            Value::List(managed.into_iter().map(Value::Str).collect()),
        );
        f.insert(
            "inline_policies".into(),
            Value::Map(
                self.inline
                    .iter()
                    .map(|(n, d)| {
                        let c = canonical_policy(d).unwrap_or_else(|_| url_decode(d));
                        (n.clone(), Value::Str(c))
                    })
                    .collect(),
            ),
        );
        f.insert("max_session_duration".into(), Value::Int(self.max_session));
        Observed {
            id: self.name.clone(),
            fields: f,
            attributes: attributes(&self.name, &self.arn, &self.role_id),
            tags: self.tags.clone(),
        }
    }
}

fn attributes(name: &str, arn: &str, role_id: &str) -> Fields {
    let mut a = Fields::new();
    a.insert("id".into(), Value::str(name));
    a.insert("arn".into(), Value::str(arn));
    a.insert("name".into(), Value::str(name));
    a.insert("unique_id".into(), Value::str(role_id));
    a
}

fn tag_map(tags: &[Tag]) -> IndexMap<String, String> {
    crate::kit::tags::own_tags(tags.iter().map(|t| (t.key(), t.value())))
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

/// The ARNs of the managed policies attached to `role`, all pages.
async fn attached_policies(cx: &Cx, role: &str) -> Result<Vec<String>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(ProviderError::from_sdk)?;
        out.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
    }
    Ok(out)
}

/// The names of `role`'s inline policies, all pages.
async fn inline_policy_names(cx: &Cx, role: &str) -> Result<Vec<String>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx
        .iam
        .list_role_policies()
        .role_name(role)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        out.extend_from_slice(page.map_err(ProviderError::from_sdk)?.policy_names());
    }
    Ok(out)
}

/// Detaches a managed policy; one already detached is success.
async fn detach(cx: &Cx, role: &str, arn: &str) -> Result<(), ProviderError> {
    let r = cx
        .iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await;
    gone_is_done(r)
}

/// Every role of the account from the two list calls, by name. `None` when the
/// caller may not call GetAccountAuthorizationDetails.
async fn list_all(cx: &Cx) -> Result<Option<Vec<Live>>, ProviderError> {
    let mut details: HashMap<String, Live> = HashMap::new();
    let mut pages = cx
        .iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .max_items(PAGE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page.map_err(ProviderError::from_sdk) {
            Ok(p) => p,
            Err(ProviderError::AccessDenied(_)) => {
                tracing::debug!("GetAccountAuthorizationDetails denied; reading roles one by one");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        for d in page.role_detail_list() {
            let Some(name) = d.role_name() else { continue };
            details.insert(
                name.to_string(),
                Live {
                    managed: d
                        .attached_managed_policies()
                        .iter()
                        .filter_map(|p| p.policy_arn().map(str::to_string))
                        .collect(),
                    inline: d
                        .role_policy_list()
                        .iter()
                        .filter_map(|p| {
                            Some((
                                p.policy_name()?.to_string(),
                                p.policy_document().unwrap_or_default().to_string(),
                            ))
                        })
                        .collect(),
                    tags: tag_map(d.tags()),
                    ..Live::default()
                },
            );
        }
    }
    // A role made between the two calls is seen by the next observe.
    let roles = list_roles(cx).await?.into_iter();
    Ok(Some(
        roles
            .filter_map(|r| Some(details.remove(r.role_name())?.with_role(&r)))
            .collect(),
    ))
}

/// Every role of the account, ListRoles' view (no policies, no tags).
async fn list_roles(cx: &Cx) -> Result<Vec<Role>, ProviderError> {
    let mut out = Vec::new();
    let mut pages = cx.iam.list_roles().max_items(PAGE).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend_from_slice(page.map_err(ProviderError::from_sdk)?.roles());
    }
    Ok(out)
}

/// One role by name with per-role calls; `None` when it does not exist.
async fn read_role(cx: &Cx, name: &str) -> Result<Option<Live>, ProviderError> {
    let got = cx.iam.get_role().role_name(name).send().await;
    let Some(role) = unless_gone(got)?.and_then(|o| o.role) else {
        return Ok(None);
    };
    let managed = attached_policies(cx, name).await?;
    let names = inline_policy_names(cx, name).await?;
    let mut inline = Vec::new();
    for p in names {
        let doc = cx
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&p)
            .send()
            .await
            .map_err(ProviderError::from_sdk)?;
        inline.push((p, doc.policy_document().to_string()));
    }
    let tags = tag_map(role.tags());
    Ok(Some(
        Live {
            managed,
            inline,
            tags,
            ..Live::default()
        }
        .with_role(&role),
    ))
}

/// Roles by name one by one, concurrently (the fallback path).
async fn read_roles(cx: &Cx, names: &[String]) -> Result<Vec<Live>, ProviderError> {
    // Collected first: a lazy iterator's closure would not be Send for every lifetime.
    let calls: Vec<_> = names.iter().map(|n| read_role(cx, n)).collect();
    let found: Vec<Option<Live>> = stream::iter(calls)
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Every role in the account, by whichever path the caller's permissions allow.
async fn all_roles(cx: &Cx) -> Result<Vec<Live>, ProviderError> {
    if let Some(all) = list_all(cx).await? {
        return Ok(all);
    }
    let names: Vec<String> = list_roles(cx)
        .await?
        .iter()
        // Service-linked roles are AWS's; no stack can have made them.
        .filter(|r| !r.path().starts_with("/aws-service-role/"))
        .map(|r| r.role_name().to_string())
        .collect();
    read_roles(cx, &names).await
}

/// The trust policy to send: the declared document, or the standard one.
fn desired_trust(f: &Fields, address: &str) -> Result<String, ProviderError> {
    if let Some(doc) = str_of(f, "assume_role_policy") {
        checked_doc(doc, address, "assume_role_policy")?;
        return Ok(doc.to_string());
    }
    match f.get("trusted_services") {
        Some(v @ Value::List(_)) if !v.str_list().is_empty() => Ok(trust_policy(&v.str_list())),
        _ => Err(ProviderError::InvalidInput(format!(
            "{address}: give `trusted_services` or `assume_role_policy`"
        ))),
    }
}

/// A document that must parse before it is sent.
fn checked_doc(doc: &str, address: &str, what: &str) -> Result<(), ProviderError> {
    serde_json::from_str::<Json>(doc).map(|_| ()).map_err(|e| {
        ProviderError::InvalidInput(format!(
            "{address}: {what} is not valid JSON after references were filled in: {e}"
        ))
    })
}

/// The `inline_policies` table: policy name -> document.
fn inline_of(f: &Fields) -> Option<IndexMap<String, String>> {
    f.get("inline_policies").and_then(Value::as_map).map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    })
}

impl IamRole {
    /// Makes `live` match `want` for the changed fields.
    async fn sync(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(), ProviderError> {
        let f = want.fields;
        let name = live.id.as_str();
        let a = want.address;
        // UpdateRole is sent with both settings whenever either changes: an
        // omitted one may be reset (moto blanks the description and resets the
        // session length), and sending the wanted value is right either way.
        let ch = |k: &str| changes_field(changes, k);
        if ch("description") || ch("max_session_duration") {
            let description =
                str_of(f, "description").or_else(|| str_of(&live.fields, "description"));
            let session = f
                .get("max_session_duration")
                .or_else(|| live.fields.get("max_session_duration"))
                .and_then(Value::as_int);
            cx.iam
                .update_role()
                .role_name(name)
                .set_description(description.map(str::to_string))
                .set_max_session_duration(session.map(|s| s as i32))
                .send()
                .await
                .map_err(|e| at(a, "UpdateRole", ProviderError::from_sdk(e)))?;
        }
        if ch("assume_role_policy") || ch("trusted_services") {
            cx.iam
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(desired_trust(f, a)?)
                .send()
                .await
                .map_err(|e| at(a, "UpdateAssumeRolePolicy", ProviderError::from_sdk(e)))?;
        }
        let arns = |f: &Fields| -> BTreeSet<String> {
            strs_of(f, "managed_policy_arns")
                .unwrap_or_default()
                .into_iter()
                .collect()
        };
        if ch("managed_policy_arns") && f.contains_key("managed_policy_arns") {
            let (want_set, have) = (arns(f), arns(&live.fields));
            for arn in have.difference(&want_set) {
                detach(cx, name, arn)
                    .await
                    .map_err(|e| at(a, &format!("DetachRolePolicy {arn}"), e))?;
            }
            for arn in want_set.difference(&have) {
                cx.iam
                    .attach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| {
                        at(
                            a,
                            &format!("AttachRolePolicy {arn}"),
                            ProviderError::from_sdk(e),
                        )
                    })?;
            }
        }
        if ch("inline_policies") {
            if let Some(wanted) = inline_of(f) {
                let have = inline_of(&live.fields).unwrap_or_default();
                for (p, doc) in &wanted {
                    checked_doc(doc, a, &format!("inline policy `{p}`"))?;
                    let same = have
                        .get(p)
                        .is_some_and(|h| canonical_policy(doc).ok().as_deref() == Some(h));
                    if same {
                        continue;
                    }
                    cx.iam
                        .put_role_policy()
                        .role_name(name)
                        .policy_name(p)
                        .policy_document(doc)
                        .send()
                        .await
                        .map_err(|e| {
                            at(a, &format!("PutRolePolicy {p}"), ProviderError::from_sdk(e))
                        })?;
                }
                for p in have.keys().filter(|p| !wanted.contains_key(*p)) {
                    delete_inline(cx, name, p)
                        .await
                        .map_err(|e| at(a, &format!("DeleteRolePolicy {p}"), e))?;
                }
            }
        }
        if ch("tags") {
            sync_tags(cx, a, name, &live.tags, want.tags).await?;
        }
        Ok(())
    }

    /// A create found the name taken: adopt the role if this stack made it for
    /// this address (an interrupted create) and bring it in line, else refuse.
    async fn take_over(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
        name: &str,
        refused: ProviderError,
    ) -> Result<Observed, ProviderError> {
        let found = read_role(cx, name).await?.map(|l| l.observed());
        let refused = at(want.address, "CreateRole", refused);
        let obs = adopt::take_over(cx, want, "an IAM role", name, found, refused)?;
        let changes = adopt::changes_to(self, want, &obs);
        if let Some(c) = changes.iter().find(|c| c.forces_replace) {
            return Err(ProviderError::InvalidInput(format!(
                "{}: the role `{name}` this stack made differs in `{}`, which needs a replacement; \
                 delete it or choose another name",
                want.address, c.field
            )));
        }
        self.sync(cx, &obs, want, &changes).await?;
        Ok(Observed {
            fields: created_fields(want.fields),
            tags: want.tags.clone(),
            ..obs
        })
    }
}

/// What a create or update made true: the desired fields, documents canonical.
fn created_fields(f: &Fields) -> Fields {
    normal_form(&SCHEMA, f)
}

async fn delete_inline(cx: &Cx, role: &str, policy: &str) -> Result<(), ProviderError> {
    let r = cx
        .iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await;
    gone_is_done(r)
}

/// Makes the role's tags exactly `want` (AWS's own `aws:` tags aside).
async fn sync_tags(
    cx: &Cx,
    address: &str,
    role: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Result<(), ProviderError> {
    let stale = crate::kit::tags::tag_keys_to_remove(have, want);
    if !stale.is_empty() {
        cx.iam
            .untag_role()
            .role_name(role)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(|e| at(address, "UntagRole", ProviderError::from_sdk(e)))?;
    }
    let changed = crate::kit::tags::tags_to_set(have, want);
    if !changed.is_empty() {
        cx.iam
            .tag_role()
            .role_name(role)
            .set_tags(Some(sdk_tags(&changed)?))
            .send()
            .await
            .map_err(|e| at(address, "TagRole", ProviderError::from_sdk(e)))?;
    }
    Ok(())
}

#[async_trait]
impl Provider for IamRole {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        problems(&r.fields)
            .into_iter()
            .map(|(field, message, help)| crate::kit::fields::diagnostic(r, &field, message, help))
            .collect()
    }

    /// Role names are unique in the account, whatever the path.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "name")
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let roles = match list_all(cx).await? {
            Some(all) => all,
            None => read_roles(cx, ids).await?,
        };
        Ok(roles
            .into_iter()
            .filter(|l| ids.contains(&l.name))
            .map(|l| (l.name.clone(), l.observed()))
            .collect())
    }

    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(all_roles(cx)
            .await?
            .into_iter()
            .filter_map(|l| stack_address(cx, &l.tags).map(|a| (a, l.observed())))
            .filter(|(a, _)| addresses.is_empty() || addresses.contains(a))
            .collect())
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        let name = str_of(f, "name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `name` must be a known string"))
        })?;
        let trust = desired_trust(f, a)?;
        // Every document is checked before anything is created.
        for (p, doc) in inline_of(f).unwrap_or_default() {
            checked_doc(&doc, a, &format!("inline policy `{p}`"))?;
        }
        let out = cx
            .iam
            .create_role()
            .role_name(name)
            .path(str_of(f, "path").unwrap_or("/"))
            .assume_role_policy_document(&trust)
            .set_description(str_of(f, "description").map(str::to_string))
            .max_session_duration(
                f.get("max_session_duration")
                    .and_then(Value::as_int)
                    .unwrap_or(DEFAULT_SESSION) as i32,
            )
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(sdk_tags(want.tags)?))
            .send()
            .await;
        let role = match out {
            Ok(o) => o.role.ok_or_else(|| {
                ProviderError::Other(format!(
                    "{a}: CreateRole answered without the role; run plan to see whether it exists"
                ))
            })?,
            Err(e) => {
                let e = ProviderError::from_sdk(e);
                if e.code() == Some("EntityAlreadyExists") {
                    return self.take_over(cx, want, name, e).await;
                }
                return Err(at(a, "CreateRole", e));
            }
        };
        let fresh = Observed {
            id: name.to_string(),
            fields: Fields::new(),
            attributes: attributes(name, role.arn(), role.role_id()),
            tags: want.tags.clone(),
        };
        // Policies are separate calls: attach and put what is declared.
        let mut changes = Vec::new();
        for k in ["managed_policy_arns", "inline_policies"] {
            if f.contains_key(k) {
                changes.push(FieldChange::new(k, None, f.get(k).cloned(), false));
            }
        }
        self.sync(cx, &fresh, want, &changes).await?;
        Ok(Observed {
            fields: created_fields(f),
            ..fresh
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
        fields.extend(created_fields(want.fields));
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: live.attributes.clone(),
            tags: want.tags.clone(),
        })
    }

    /// Detaches managed policies, deletes inline ones and leaves instance
    /// profiles first: IAM refuses to delete a role that still has any.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let what = &format!("iam_role {id} (stack {})", cx.stack);
        let on = |op: &'static str| move |e| at(what, op, e);
        let attached = unless_gone(attached_policies(cx, id).await);
        let Some(attached) = attached.map_err(on("ListAttachedRolePolicies"))? else {
            return Ok(());
        };
        for arn in attached {
            detach(cx, id, &arn).await.map_err(on("DetachRolePolicy"))?;
        }
        let inline = unless_gone(inline_policy_names(cx, id).await);
        let Some(inline) = inline.map_err(on("ListRolePolicies"))? else {
            return Ok(());
        };
        for p in inline {
            delete_inline(cx, id, &p)
                .await
                .map_err(on("DeleteRolePolicy"))?;
        }
        let profiles = cx
            .iam
            .list_instance_profiles_for_role()
            .role_name(id)
            .send()
            .await;
        let profiles = unless_gone(profiles);
        let Some(profiles) = profiles.map_err(on("ListInstanceProfilesForRole"))? else {
            return Ok(());
        };
        for ip in profiles.instance_profiles() {
            let r = cx
                .iam
                .remove_role_from_instance_profile()
                .role_name(id)
                .instance_profile_name(ip.instance_profile_name())
                .send()
                .await;
            unless_gone(r).map_err(on("RemoveRoleFromInstanceProfile"))?;
        }
        let r = cx.iam.delete_role().role_name(id).send().await;
        unless_gone(r).map(|_| ()).map_err(|e| {
            let code = e.code().unwrap_or("Error").to_string();
            let message = format!(
                "{e}; something outside this stack still uses the role (a policy attached \
                     meanwhile, a permissions boundary?); remove that, then apply again"
            );
            at(what, "DeleteRole", ProviderError::Aws { code, message })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn trusted_services_round_trip() {
        let one = trust_policy(&["ecs-tasks.amazonaws.com".into()]);
        assert_eq!(
            trusted_services_of(&one),
            Some(vec!["ecs-tasks.amazonaws.com".to_string()])
        );
        let hand = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "ecs-tasks.amazonaws.com"]},
            "Action": ["sts:AssumeRole"]}]}"#;
        assert_eq!(
            trusted_services_of(hand),
            Some(vec![
                "ecs-tasks.amazonaws.com".to_string(),
                "lambda.amazonaws.com".to_string()
            ])
        );
        let conditioned = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}"#;
        assert_eq!(trusted_services_of(conditioned), None);
    }

    #[test]
    fn validation() {
        let ok = map(&[
            ("name", Value::str("exec")),
            (
                "trusted_services",
                Value::List(vec![Value::str("ecs-tasks.amazonaws.com")]),
            ),
            (
                "inline_policies",
                Value::Map(map(&[(
                    "read",
                    Value::str(
                        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"${secret.db.arn}"}]}"#,
                    ),
                )])),
            ),
            ("max_session_duration", Value::Int(3600)),
        ]);
        assert!(problems(&ok).is_empty(), "{:?}", problems(&ok));

        let neither = map(&[("name", Value::str("x"))]);
        assert!(problems(&neither)[0].1.contains("no trust policy"));

        let both = map(&[
            ("assume_role_policy", Value::str("{\"Statement\":[]}")),
            ("trusted_services", Value::List(vec![Value::str("a")])),
        ]);
        assert!(problems(&both)[0].1.contains("both"));

        let bad = map(&[
            ("trusted_services", Value::List(vec![Value::str("a")])),
            (
                "inline_policies",
                Value::Map(map(&[("p", Value::str("{\n  \"Statement\": [\n  }"))])),
            ),
        ]);
        let p = problems(&bad);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("not valid JSON"), "{p:?}");
        assert!(p[0].1.contains("line 3"), "{p:?}");

        let whole_ref = map(&[("assume_role_policy", Value::str("${input.trust}"))]);
        assert!(problems(&whole_ref).is_empty());

        // The session's bounds are the schema's, checked where the TOML says it.
        assert_eq!(
            SCHEMA.field("max_session_duration").and_then(|f| f.range),
            Some((3600, 43200))
        );
    }

    #[test]
    fn names_and_paths() {
        assert!(check_role_name("proxy-smart-exec").is_ok());
        assert!(check_role_name("a b").is_err());
        assert!(check_role_name(&"x".repeat(65)).is_err());
        assert!(check_path("/").is_ok());
        assert!(check_path("/ecs/").is_ok());
        assert!(check_path("ecs").is_err());
        assert!(check_path("/ecs").is_err());
    }
}
