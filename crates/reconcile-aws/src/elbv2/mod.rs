//! Shared ELBv2 plumbing for `load_balancer`, `target_group`, `listener` and
//! `listener_rule`: batched describes that survive missing ARNs, tags, the
//! action model shared by listeners and rules, ARN arithmetic, waiting, and
//! error typing.
//!
//! ELBv2 describes fail as a whole when one ARN of the list is gone (AWS answers
//! `LoadBalancerNotFound` and the like), so a batch that fails that way is
//! described again through something that still exists: the whole region for
//! load balancers and target groups, the parent load balancer or listener for
//! listeners and rules.

pub mod listener;
pub mod listener_rule;
pub mod load_balancer;
pub mod target_group;

use crate::kit::adopt::{changes_to, is_ours};
use crate::kit::fields::str_of;
use crate::kit::tags::stack_address;
use crate::kit::wait::{Backoff, Poll};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, Listener, LoadBalancer,
    RedirectActionConfig, RedirectActionStatusCodeEnum, Rule, Tag, TargetGroup,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::try_join_all;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

/// ARNs per describe call: AWS's documented limit for DescribeLoadBalancers and
/// DescribeTags, used for every ELBv2 list of ARNs to stay on the safe side.
pub const ARNS_MAX: usize = 20;

// ---------------------------------------------------------------------------
// Errors.

/// Types an ELBv2 error: `ResourceInUse` (a target group a listener still
/// forwards to) is a dependency violation; `...NotFound` codes read as gone.
pub fn elb_error<E, R>(e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match ProviderError::from_sdk(e) {
        ProviderError::Aws { code, message } if code == "ResourceInUse" => {
            ProviderError::DependencyViolation(format!("{code}: {message}"))
        }
        other => other,
    }
}

fn hint(e: &ProviderError) -> &'static str {
    let text = e.to_string();
    let has = |c: &str| text.contains(c);
    if has("DuplicateLoadBalancerName")
        || has("DuplicateTargetGroupName")
        || has("DuplicateListener")
        || has("PriorityInUse")
    {
        "something with this name, port or priority exists already outside this stack's state: choose another, or adopt it with `reconcile import`"
    } else if has("CertificateNotFound") {
        "check certificate_arn: the certificate must exist in ACM (or IAM) in the stack's region and be issued"
    } else if has("SSLPolicyNotFound") {
        "check ssl_policy: `aws elbv2 describe-ssl-policies` lists the names, like \"ELBSecurityPolicy-TLS13-1-2-2021-06\""
    } else if has("SubnetNotFound") || has("InvalidSubnet") {
        "check subnets: give at least two existing subnets in different availability zones of one VPC"
    } else if has("InvalidSecurityGroup") {
        "check security_groups: the groups must exist in the load balancer's VPC"
    } else if has("OperationNotPermitted") || has("deletion protection") {
        "deletion protection is on in AWS: apply `deletion_protection = false` first if you really mean it"
    } else if matches!(e, ProviderError::DependencyViolation(_)) {
        "something still uses it (a listener or rule forwarding to a target group): delete or change that first"
    } else if matches!(e, ProviderError::Throttled(_)) {
        "AWS throttled the call after the SDK's retries: apply again in a minute"
    } else if matches!(e, ProviderError::InvalidInput(_)) || has("ValidationError") {
        "AWS refused a field value: fix the field AWS names and apply again"
    } else {
        "see AWS's message; fix the declaration and apply again"
    }
}

/// Names the resource and what to do in an error, keeping its type.
pub fn named(address: &str, doing: &str, e: ProviderError) -> ProviderError {
    let h = hint(&e);
    crate::kit::error::at_with_hint(address, doing, h, e)
}

/// The refusal when a name (or port, or priority) is taken by something this
/// stack did not make at this address.
pub fn taken(address: &str, what: &str, arn: &str) -> ProviderError {
    ProviderError::Aws {
        code: "AlreadyExists".into(),
        message: format!(
            "{address}: {what} exists already ({arn}) and is not this stack's {address}: \
             choose another, or adopt it with `reconcile import {address} {arn}`"
        ),
    }
}

// ---------------------------------------------------------------------------
// Tags.

pub fn to_tags(tags: &IndexMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags as a map, leaving out the ones AWS owns (`aws:*`).
pub fn tags_of(tags: &[Tag]) -> IndexMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}

/// Tags of many resources of any ELBv2 kind: one DescribeTags per 20 ARNs.
/// Only pass ARNs that exist: AWS fails the whole call for a missing one.
pub async fn describe_tags(
    cx: &Cx,
    arns: &[String],
) -> Result<HashMap<String, IndexMap<String, String>>, ProviderError> {
    let mut out = HashMap::new();
    for chunk in arns.chunks(ARNS_MAX) {
        let resp = cx
            .elbv2
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(elb_error)?;
        for d in resp.tag_descriptions() {
            if let Some(arn) = d.resource_arn() {
                out.insert(arn.to_string(), tags_of(d.tags()));
            }
        }
    }
    Ok(out)
}

/// Tags of existing resources of one ELBv2 kind, by ARN: from the observe
/// pass's stack tag index where it lists them, the rest with DescribeTags.
pub async fn observe_tags(
    cx: &Cx,
    kind: &str,
    arns: &[String],
) -> Result<HashMap<String, IndexMap<String, String>>, ProviderError> {
    let mut out = HashMap::new();
    let mut rest = Vec::new();
    for arn in arns {
        match crate::kit::tags::indexed(cx, kind, arn, arn).await {
            Some(t) => {
                out.insert(arn.clone(), t);
            }
            None => rest.push(arn.clone()),
        }
    }
    out.extend(describe_tags(cx, &rest).await?);
    Ok(out)
}

/// Makes the resource's tags exactly `want` (AWS-owned tags untouched).
pub async fn sync_tags(
    cx: &Cx,
    arn: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Result<(), ProviderError> {
    let stale = crate::kit::tags::tag_keys_to_remove(have, want);
    let changed = crate::kit::tags::tags_to_set(have, want);
    if !stale.is_empty() {
        cx.elbv2
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(elb_error)?;
    }
    if !changed.is_empty() {
        cx.elbv2
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(to_tags(&changed)))
            .send()
            .await
            .map_err(elb_error)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// ARNs.

/// `app/name/id` of a load balancer ARN, `targetgroup/name/id` of a target
/// group's: what CloudWatch dimensions and WAF take.
pub fn arn_suffix(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    match resource.strip_prefix("loadbalancer/") {
        Some(rest) => rest.to_string(),
        None => resource.to_string(),
    }
}

/// The load balancer a listener ARN belongs to
/// (`...:listener/app/n/lb/l` -> `...:loadbalancer/app/n/lb`).
pub fn load_balancer_of_listener(listener_arn: &str) -> Option<String> {
    let (base, _) = listener_arn.rsplit_once('/')?;
    base.contains(":listener/")
        .then(|| base.replacen(":listener/", ":loadbalancer/", 1))
}

/// The listener a rule ARN belongs to
/// (`...:listener-rule/app/n/lb/l/r` -> `...:listener/app/n/lb/l`).
pub fn listener_of_rule(rule_arn: &str) -> Option<String> {
    let (base, _) = rule_arn.rsplit_once('/')?;
    base.contains(":listener-rule/")
        .then(|| base.replacen(":listener-rule/", ":listener/", 1))
}

// ---------------------------------------------------------------------------
// Batched describes.

/// Items by ARN, 20 a call through `batch`. AWS fails a whole batch for one
/// deleted ARN: such a batch is read again through `fallback` (the region, or
/// the parents its ARNs name). Only what was asked is kept, once each (moto
/// answers a batch with a stale ARN loosely).
async fn by_arns<T, B, F>(
    arns: &[String],
    arn: fn(&T) -> Option<&str>,
    batch: impl Fn(Vec<String>) -> B,
    fallback: impl Fn(Vec<String>) -> F,
) -> Result<Vec<T>, ProviderError>
where
    B: Future<Output = Result<Vec<T>, ProviderError>>,
    F: Future<Output = Result<Vec<T>, ProviderError>>,
{
    let mut out = Vec::new();
    for chunk in arns.chunks(ARNS_MAX) {
        match batch(chunk.to_vec()).await {
            Ok(found) => out.extend(found),
            Err(e) if e.is_not_found() => out.extend(fallback(chunk.to_vec()).await?),
            Err(e) => return Err(e),
        }
    }
    let want: HashSet<&str> = arns.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    out.retain(|x| arn(x).is_some_and(|a| want.contains(a) && seen.insert(a.to_string())));
    Ok(out)
}

/// The parents (load balancers of listeners, listeners of rules) `arns` name, once each.
fn parents(arns: &[String], parent: fn(&str) -> Option<String>) -> Vec<String> {
    let mut out: Vec<String> = arns.iter().filter_map(|a| parent(a)).collect();
    out.sort();
    out.dedup();
    out
}

/// The one item a describe by name answers, if it exists (names are unique in
/// AWS; moto accepts duplicates, so the first is taken).
fn first_named<T>(
    found: Result<Vec<T>, ProviderError>,
    name: &str,
    name_of: fn(&T) -> Option<&str>,
) -> Result<Option<T>, ProviderError> {
    match found {
        Ok(items) => Ok(items.into_iter().find(|x| name_of(x) == Some(name))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Load balancers by ARN; every load balancer of the region when `arns` is `None`.
pub async fn describe_load_balancers(
    cx: &Cx,
    arns: Option<&[String]>,
) -> Result<Vec<LoadBalancer>, ProviderError> {
    let Some(arns) = arns else {
        return all_load_balancers(cx).await;
    };
    let batch = |chunk| async move {
        let r = cx
            .elbv2
            .describe_load_balancers()
            .set_load_balancer_arns(Some(chunk));
        Ok(r.send().await.map_err(elb_error)?.load_balancers().to_vec())
    };
    by_arns(arns, LoadBalancer::load_balancer_arn, batch, |_| {
        all_load_balancers(cx)
    })
    .await
}

async fn all_load_balancers(cx: &Cx) -> Result<Vec<LoadBalancer>, ProviderError> {
    let items = cx.elbv2.describe_load_balancers().into_paginator().items();
    items
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(elb_error)
}

pub async fn load_balancer_named(
    cx: &Cx,
    name: &str,
) -> Result<Option<LoadBalancer>, ProviderError> {
    let r = cx.elbv2.describe_load_balancers().names(name).send().await;
    let found = r.map(|r| r.load_balancers().to_vec()).map_err(elb_error);
    first_named(found, name, LoadBalancer::load_balancer_name)
}

/// Target groups by ARN; every target group of the region when `arns` is `None`.
pub async fn describe_target_groups(
    cx: &Cx,
    arns: Option<&[String]>,
) -> Result<Vec<TargetGroup>, ProviderError> {
    let Some(arns) = arns else {
        return all_target_groups(cx).await;
    };
    let batch = |chunk| async move {
        let r = cx
            .elbv2
            .describe_target_groups()
            .set_target_group_arns(Some(chunk));
        Ok(r.send().await.map_err(elb_error)?.target_groups().to_vec())
    };
    by_arns(arns, TargetGroup::target_group_arn, batch, |_| {
        all_target_groups(cx)
    })
    .await
}

async fn all_target_groups(cx: &Cx) -> Result<Vec<TargetGroup>, ProviderError> {
    let items = cx.elbv2.describe_target_groups().into_paginator().items();
    items
        .send()
        .collect::<Result<_, _>>()
        .await
        .map_err(elb_error)
}

pub async fn target_group_named(cx: &Cx, name: &str) -> Result<Option<TargetGroup>, ProviderError> {
    let r = cx.elbv2.describe_target_groups().names(name).send().await;
    let found = r.map(|r| r.target_groups().to_vec()).map_err(elb_error);
    first_named(found, name, TargetGroup::target_group_name)
}

/// The listeners of one load balancer, all pages; none when it is gone.
pub async fn listeners_of(cx: &Cx, lb_arn: &str) -> Result<Vec<Listener>, ProviderError> {
    let req = cx.elbv2.describe_listeners().load_balancer_arn(lb_arn);
    let all = req
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>();
    none_when_gone(all.await.map_err(elb_error))
}

fn none_when_gone<T>(all: Result<Vec<T>, ProviderError>) -> Result<Vec<T>, ProviderError> {
    match all {
        Err(e) if e.is_not_found() => Ok(vec![]),
        other => other,
    }
}

/// Listeners by ARN; a batch AWS fails is read again through the load
/// balancers its ARNs name, one call each.
pub async fn describe_listeners(cx: &Cx, arns: &[String]) -> Result<Vec<Listener>, ProviderError> {
    let batch = |chunk| async move {
        let r = cx.elbv2.describe_listeners().set_listener_arns(Some(chunk));
        Ok(r.send().await.map_err(elb_error)?.listeners().to_vec())
    };
    let fallback = |chunk: Vec<String>| async move {
        let mut out = Vec::new();
        for lb in parents(&chunk, load_balancer_of_listener) {
            out.extend(listeners_of(cx, &lb).await?);
        }
        Ok(out)
    };
    by_arns(arns, Listener::listener_arn, batch, fallback).await
}

/// The rules of one listener (its default rule included), all pages; none when
/// the listener is gone.
pub async fn rules_of(cx: &Cx, listener_arn: &str) -> Result<Vec<Rule>, ProviderError> {
    let req = cx.elbv2.describe_rules().listener_arn(listener_arn);
    let all = req
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>();
    none_when_gone(all.await.map_err(elb_error))
}

/// Rules by ARN; a batch AWS fails is read again through the listeners its
/// ARNs name, one call each.
pub async fn describe_rules(cx: &Cx, arns: &[String]) -> Result<Vec<Rule>, ProviderError> {
    let batch = |chunk| async move {
        let r = cx.elbv2.describe_rules().set_rule_arns(Some(chunk));
        Ok(r.send().await.map_err(elb_error)?.rules().to_vec())
    };
    let fallback = |chunk: Vec<String>| async move {
        let mut out = Vec::new();
        for l in parents(&chunk, listener_of_rule) {
            out.extend(rules_of(cx, &l).await?);
        }
        Ok(out)
    };
    by_arns(arns, Rule::rule_arn, batch, fallback).await
}

/// A load balancer's or target group's attributes, key -> value.
pub type Attributes = HashMap<String, String>;

pub fn attribute_map<'a>(
    pairs: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> Attributes {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

// ---------------------------------------------------------------------------
// What every kind does alike: observing described items, finding this
// stack's, taking over a copy, validating.

/// Full observations of described items: their tags (the stack tag index, or
/// one DescribeTags per 20) and `attributes` (one call each, in parallel; an
/// item deleted meanwhile is left out).
pub async fn complete<T, A>(
    cx: &Cx,
    kind: &str,
    items: Vec<T>,
    arn: fn(&T) -> Option<&str>,
    attributes: impl Fn(String) -> A,
    observed: fn(&T, &Attributes, IndexMap<String, String>) -> Option<Observed>,
) -> Result<Vec<Observed>, ProviderError>
where
    A: Future<Output = Result<Attributes, ProviderError>>,
{
    let arns: Vec<String> = items
        .iter()
        .filter_map(|x| arn(x).map(str::to_string))
        .collect();
    if arns.is_empty() {
        return Ok(vec![]);
    }
    let mut tags = observe_tags(cx, kind, &arns).await?;
    let attrs = try_join_all(items.iter().map(|x| {
        let a = attributes(arn(x).unwrap_or_default().to_string());
        async move {
            match a.await {
                Ok(a) => Ok(Some(a)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        }
    }))
    .await?;
    Ok(items
        .iter()
        .zip(attrs)
        .filter_map(|(x, a)| observed(x, &a?, tags.remove(arn(x)?).unwrap_or_default()))
        .collect())
}

/// For kinds without attributes to read.
pub async fn no_attributes(_arn: String) -> Result<Attributes, ProviderError> {
    Ok(HashMap::new())
}

pub fn by_id(found: Vec<Observed>) -> HashMap<String, Observed> {
    found.into_iter().map(|o| (o.id.clone(), o)).collect()
}

/// Those of `items` tagged with this stack and one of `addresses` (any when
/// empty): one DescribeTags per 20, before anything else is read about them.
pub async fn tagged<T>(
    cx: &Cx,
    items: Vec<T>,
    arn: fn(&T) -> Option<&str>,
    addresses: &[String],
) -> Result<Vec<T>, ProviderError> {
    let arns: Vec<String> = items
        .iter()
        .filter_map(|x| arn(x).map(str::to_string))
        .collect();
    let tags = describe_tags(cx, &arns).await?;
    Ok(items
        .into_iter()
        .filter(|x| {
            arn(x)
                .and_then(|a| tags.get(a))
                .and_then(|t| stack_address(cx, t))
                .is_some_and(|a| addresses.is_empty() || addresses.contains(&a))
        })
        .collect())
}

/// Observations of this stack's copies of `addresses` (all its copies when
/// empty), each with its address.
pub fn by_address(cx: &Cx, found: Vec<Observed>, addresses: &[String]) -> Vec<(String, Observed)> {
    found
        .into_iter()
        .filter_map(|o| stack_address(cx, &o.tags).map(|a| (a, o)))
        .filter(|(a, _)| addresses.is_empty() || addresses.contains(a))
        .collect()
}

/// What a create that looked first does with `live`, the copy holding the
/// name (port, priority): taken over when an interrupted create of this
/// address made it, and brought to the declaration; refused otherwise, and,
/// when `strict`, also when only a replacement would bring it there.
pub async fn adopt(
    kind: &dyn Provider,
    cx: &Cx,
    want: &Desired<'_>,
    what: &str,
    live: Observed,
    strict: bool,
) -> Result<Observed, ProviderError> {
    let addr = want.address;
    if !is_ours(cx, &live.tags, addr) || want.replacing == Some(live.id.as_str()) {
        return Err(taken(addr, what, &live.id));
    }
    let changes = changes_to(kind, want, &live);
    if changes.is_empty() {
        return Ok(live);
    }
    if strict && changes.iter().any(|c| c.forces_replace) {
        return Err(taken(
            addr,
            &format!("{what} (declared differently)"),
            &live.id,
        ));
    }
    kind.update(cx, &live, want, &changes).await
}

/// The end of every update: the tags, when they changed, then the resource
/// read back through `read`, with the tags just set.
pub async fn retag_and_read(
    cx: &Cx,
    live: &Observed,
    want: &Desired<'_>,
    changes: &[FieldChange],
    read: impl Future<Output = Result<Option<Observed>, ProviderError>>,
) -> Result<Observed, ProviderError> {
    let addr = want.address;
    if changes.iter().any(|c| c.field == "tags") {
        sync_tags(cx, &live.id, &live.tags, want.tags)
            .await
            .map_err(|e| named(addr, "tagging", e))?;
    }
    let mut o = read
        .await?
        .ok_or_else(|| vanished(addr, &live.id, "during its update"))?;
    o.tags = want.tags.clone();
    Ok(o)
}

/// A delete's answer: a resource already gone is deleted too.
pub fn deleted<T>(answer: Result<T, ProviderError>, what: &str) -> Result<(), ProviderError> {
    match answer {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(named(what, "deleting", e)),
    }
}

pub use crate::kit::fields::{fields_of as fields, observation, refuse};

/// A resource gone on reading it back `when` (right after its creation, ...).
pub fn vanished(address: &str, arn: &str, when: &str) -> ProviderError {
    ProviderError::NotFound(format!("{address}: {arn} vanished {when}"))
}

/// A declaration problem: the field it is about ("" for the resource as a
/// whole), what is wrong, and what to do.
pub type Problem = (&'static str, String, String);

pub use crate::kit::fields::diagnostics;

// ---------------------------------------------------------------------------
// Actions: a listener's default action and a rule's action.

pub const ACTION_TYPES: &[&str] = &["forward", "redirect", "fixed-response"];

pub const FIXED_RESPONSE_CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

/// The fields of an action table.
pub const ACTION_FIELDS: &[Field] = &[
    Field::new(
        "type",
        Ty::Enum(ACTION_TYPES),
        "forward (to `target_group_arn`), redirect, or fixed-response.",
    )
    .required(),
    Field::new(
        "target_group_arn",
        Ty::Str,
        "forward: the target group, like \"${target_group.app.arn}\".",
    ),
    Field::new(
        "protocol",
        Ty::Str,
        "redirect: HTTP, HTTPS, or \"#{protocol}\" to keep the request's (the default).",
    ),
    Field::new(
        "port",
        Ty::Str,
        "redirect: the port as a string, like \"443\", or \"#{port}\" (the default).",
    ),
    Field::new(
        "host",
        Ty::Str,
        "redirect: the host name, or \"#{host}\" (the default).",
    ),
    Field::new(
        "path",
        Ty::Str,
        "redirect: the path, starting with /, or \"/#{path}\" (the default).",
    ),
    Field::new(
        "query",
        Ty::Str,
        "redirect: the query string without ?, or \"#{query}\" (the default).",
    ),
    Field::new(
        "status_code",
        Ty::Str,
        "redirect: HTTP_301 (permanent) or HTTP_302 (temporary); fixed-response: the HTTP \
         status, like \"503\". Required for both.",
    ),
    Field::new(
        "content_type",
        Ty::Enum(FIXED_RESPONSE_CONTENT_TYPES),
        "fixed-response: the body's content type.",
    ),
    Field::new(
        "message_body",
        Ty::Str,
        "fixed-response: the body, up to 1024 characters.",
    ),
];

/// AWS's values for the redirect parts left out: keep the request's own.
const REDIRECT_DEFAULTS: &[(&str, &str)] = &[
    ("protocol", "#{protocol}"),
    ("port", "#{port}"),
    ("host", "#{host}"),
    ("path", "/#{path}"),
    ("query", "#{query}"),
];

/// Which keys of an action table each type takes.
fn keys_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "forward" => &["target_group_arn"],
        "redirect" => &["protocol", "port", "host", "path", "query", "status_code"],
        "fixed-response" => &["status_code", "content_type", "message_body"],
        _ => &[],
    }
}

/// Problems in one declared action: `(key, message, help)`. Values not yet
/// known (references) are not judged.
pub fn action_problems(m: &Fields) -> Vec<(Option<String>, String, String)> {
    let mut out = Vec::new();
    let Some(kind) = str_of(m, "type") else {
        return out;
    };
    let allowed = keys_of(kind);
    for k in m.keys().filter(|k| *k != "type") {
        if !allowed.contains(&k.as_str()) {
            out.push((
                Some(k.clone()),
                format!("`{k}` does not apply to a {kind} action"),
                format!(
                    "a {kind} action takes {}; remove `{k}`",
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let status = m.get("status_code");
    match kind {
        "forward" if !m.contains_key("target_group_arn") => out.push((
            None,
            "a forward action needs `target_group_arn`".into(),
            "add `target_group_arn = \"${target_group.NAME.arn}\"`".into(),
        )),
        "redirect" => {
            match status.and_then(Value::as_str) {
                None if status.is_none() => out.push((
                    None,
                    "a redirect action needs `status_code`".into(),
                    "add `status_code = \"HTTP_301\"` (permanent) or \"HTTP_302\" (temporary)"
                        .into(),
                )),
                Some(s) if s != "HTTP_301" && s != "HTTP_302" => out.push((
                    Some("status_code".into()),
                    format!("a redirect's status_code is HTTP_301 or HTTP_302, not \"{s}\""),
                    "use \"HTTP_301\" (permanent) or \"HTTP_302\" (temporary)".into(),
                )),
                _ => {}
            }
            if let Some(p) = str_of(m, "protocol") {
                if !["HTTP", "HTTPS", "#{protocol}"].contains(&p) {
                    out.push((
                        Some("protocol".into()),
                        format!("a redirect's protocol is HTTP, HTTPS or \"#{{protocol}}\", not \"{p}\""),
                        "use uppercase HTTP or HTTPS".into(),
                    ));
                }
            }
            if let Some(p) = str_of(m, "path") {
                if !p.starts_with('/') && !p.contains("#{") {
                    out.push((
                        Some("path".into()),
                        format!("a redirect's path starts with /, not \"{p}\""),
                        format!("write \"/{p}\""),
                    ));
                }
            }
            if !["protocol", "port", "host", "path", "query"]
                .iter()
                .any(|k| m.contains_key(*k))
            {
                out.push((
                    None,
                    "a redirect that changes nothing would loop: AWS refuses it".into(),
                    "set at least one of protocol, port, host, path, query (like `protocol = \"HTTPS\", port = \"443\"`)".into(),
                ));
            }
        }
        "fixed-response" => match status.and_then(Value::as_str) {
            None if status.is_none() => out.push((
                None,
                "a fixed-response action needs `status_code`".into(),
                "add `status_code = \"503\"` (a 2XX, 4XX or 5XX code)".into(),
            )),
            Some(s)
                if !(s.len() == 3
                    && s.chars().all(|c| c.is_ascii_digit())
                    && matches!(s.as_bytes()[0], b'2' | b'4' | b'5')) =>
            {
                out.push((
                    Some("status_code".into()),
                    format!(
                        "a fixed response's status_code is a 2XX, 4XX or 5XX code, not \"{s}\""
                    ),
                    "use a code like \"200\", \"404\" or \"503\"".into(),
                ))
            }
            _ => {}
        },
        _ => {}
    }
    if let Some(body) = str_of(m, "message_body") {
        if body.len() > 1024 {
            out.push((
                Some("message_body".into()),
                format!("message_body has {} characters; AWS takes 1024", body.len()),
                "shorten it".into(),
            ));
        }
    }
    out
}

/// A declared action the way AWS reports it: only the keys its type takes,
/// redirect parts left out filled with AWS's defaults.
pub fn canonical_action(m: &Fields) -> Fields {
    let kind = str_of(m, "type").unwrap_or_default().to_string();
    let mut out = Fields::new();
    out.insert("type".into(), Value::str(&kind));
    for k in keys_of(&kind) {
        if let Some(v) = m.get(*k) {
            out.insert(k.to_string(), v.clone());
        }
    }
    if kind == "redirect" {
        for (k, d) in REDIRECT_DEFAULTS {
            out.entry(k.to_string()).or_insert_with(|| Value::str(*d));
        }
    }
    out
}

/// An action field's normal form (see [`canonical_action`]).
pub fn action_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::Map(m) => Value::Map(canonical_action(m)),
        other => other.clone(),
    }
}

/// An action table as an SDK action. `what` names the table in errors.
pub fn action_to_sdk(m: &Fields, what: &str) -> Result<Action, ProviderError> {
    let bad = |msg: String| ProviderError::InvalidInput(format!("{what}: {msg}"));
    if let Some(k) = m.iter().find(|(_, v)| v.is_unknown()).map(|(k, _)| k) {
        return Err(bad(format!("`{k}` is not known yet")));
    }
    if let Some((_, msg, help)) = action_problems(m).into_iter().next() {
        return Err(bad(format!("{msg}; {help}")));
    }
    let s = |k: &str| str_of(m, k).map(str::to_string);
    let kind = s("type").unwrap_or_default();
    let b = Action::builder().r#type(ActionTypeEnum::from(kind.as_str()));
    Ok(match kind.as_str() {
        "forward" => b.set_target_group_arn(s("target_group_arn")).build(),
        "redirect" => b
            .redirect_config(
                RedirectActionConfig::builder()
                    .set_protocol(s("protocol"))
                    .set_port(s("port"))
                    .set_host(s("host"))
                    .set_path(s("path"))
                    .set_query(s("query"))
                    .set_status_code(
                        s("status_code").map(|c| RedirectActionStatusCodeEnum::from(c.as_str())),
                    )
                    .build(),
            )
            .build(),
        "fixed-response" => b
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .set_status_code(s("status_code"))
                    .set_content_type(s("content_type"))
                    .set_message_body(s("message_body"))
                    .build(),
            )
            .build(),
        other => return Err(bad(format!("unknown action type \"{other}\""))),
    })
}

/// The terminal action of a list (the one that answers the request) as an
/// action table; authentication steps before it are not modelled.
pub fn action_from_sdk(actions: &[Action]) -> Value {
    let mut sorted: Vec<&Action> = actions.iter().collect();
    sorted.sort_by_key(|a| a.order().unwrap_or(i32::MAX));
    let Some(a) = sorted.last() else {
        return Value::Map(Fields::new());
    };
    let mut m = Fields::new();
    let kind = a
        .r#type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    m.insert("type".into(), Value::str(&kind));
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            m.insert(k.into(), Value::str(v));
        }
    };
    match kind.as_str() {
        "forward" => {
            let tg = a.target_group_arn().or_else(|| {
                a.forward_config()
                    .and_then(|f| f.target_groups().first())
                    .and_then(|t| t.target_group_arn())
            });
            put("target_group_arn", tg);
        }
        "redirect" => {
            if let Some(r) = a.redirect_config() {
                put("protocol", r.protocol());
                put("port", r.port());
                put("host", r.host());
                put("path", r.path());
                put("query", r.query());
                put("status_code", r.status_code().map(|c| c.as_str()));
            }
            // A part AWS leaves out keeps the request's (moto leaves them out).
            for (k, d) in REDIRECT_DEFAULTS {
                m.entry(k.to_string()).or_insert_with(|| Value::str(*d));
            }
        }
        "fixed-response" => {
            if let Some(r) = a.fixed_response_config() {
                put("status_code", r.status_code());
                put("content_type", r.content_type());
                put("message_body", r.message_body().filter(|b| !b.is_empty()));
            }
        }
        _ => {}
    }
    Value::Map(m)
}

// ---------------------------------------------------------------------------
// Names.

/// Load balancer and target group names: 1-32 letters, digits and hyphens, not
/// starting or ending with a hyphen.
pub fn check_elb_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 32 {
        return Err(format!("\"{s}\": the name has 1 to 32 characters"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("\"{s}\": use letters, digits and hyphens only"));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(format!(
            "\"{s}\": the name may not start or end with a hyphen"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Waiting.

/// Load balancers go in seconds to a few minutes.
pub const DELETE_POLL: Poll = Poll {
    backoff: Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(10),
    },
    timeout: Duration::from_secs(10 * 60),
};

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::str(*v)))
            .collect()
    }

    #[test]
    fn arns() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
        let l = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
        let r = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
        let tg =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app/73e2d6bc24d8a067";
        assert_eq!(arn_suffix(lb), "app/web/50dc6c495c0c9188");
        assert_eq!(arn_suffix(tg), "targetgroup/app/73e2d6bc24d8a067");
        assert_eq!(load_balancer_of_listener(l).as_deref(), Some(lb));
        assert_eq!(listener_of_rule(r).as_deref(), Some(l));
        assert_eq!(load_balancer_of_listener(lb), None);
    }

    #[test]
    fn names() {
        assert!(check_elb_name("proxy-smart-alb").is_ok());
        for bad in ["", "-a", "a-", "a_b", &"a".repeat(33)] {
            assert!(check_elb_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn actions_are_checked_by_type() {
        let ok = fields(&[("type", "forward"), ("target_group_arn", "arn:tg")]);
        assert!(action_problems(&ok).is_empty());
        let bad = fields(&[("type", "forward"), ("status_code", "HTTP_301")]);
        let p = action_problems(&bad);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].1.contains("does not apply"));
        let loop_ = fields(&[("type", "redirect"), ("status_code", "HTTP_301")]);
        assert!(action_problems(&loop_)[0].1.contains("loop"));
        let bad = fields(&[
            ("type", "redirect"),
            ("status_code", "301"),
            ("protocol", "https"),
        ]);
        assert_eq!(action_problems(&bad).len(), 2);
        let fixed = fields(&[("type", "fixed-response"), ("status_code", "302")]);
        assert!(action_problems(&fixed)[0].1.contains("2XX"));
        let fixed = fields(&[("type", "fixed-response"), ("status_code", "503")]);
        assert!(action_problems(&fixed).is_empty());
    }

    #[test]
    fn redirects_compare_with_aws_defaults_filled_in() {
        let want = fields(&[
            ("type", "redirect"),
            ("protocol", "HTTPS"),
            ("port", "443"),
            ("status_code", "HTTP_301"),
        ]);
        let a = action_to_sdk(&want, "listener.http.default_action").unwrap();
        let live = action_from_sdk(&[Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .host("#{host}")
                    .path("/#{path}")
                    .query("#{query}")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build()]);
        assert_eq!(
            reconcile_core::diff::normalise(&Value::Map(canonical_action(&want)), false),
            reconcile_core::diff::normalise(&live, false)
        );
        assert_eq!(a.redirect_config().unwrap().port(), Some("443"));
        assert_eq!(a.redirect_config().unwrap().host(), None);
    }

    #[test]
    fn forward_reads_the_forward_config_too() {
        use aws_sdk_elasticloadbalancingv2::types::{ForwardActionConfig, TargetGroupTuple};
        let a = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn("arn:tg")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let m = action_from_sdk(&[a]);
        assert_eq!(
            m.as_map().unwrap()["target_group_arn"],
            Value::str("arn:tg")
        );
    }
}
