//! `load_balancer`: an Application (or Network) Load Balancer, with its
//! attributes (deletion protection, idle timeout, invalid header handling)
//! managed as plain fields.
//!
//! Observing costs one DescribeLoadBalancers per 20 load balancers plus one
//! DescribeLoadBalancerAttributes per load balancer (AWS answers attributes for
//! one load balancer a call); tags come from the observe pass's stack tag
//! index, or cost one DescribeTags per 20 load balancers the index does not list.

use crate::elbv2::{self, attribute_map, elb_error, named, vanished, Problem};
use crate::kit::fields::{bool_of, changes_field, i32_of, str_list, str_of, strs_of};
use crate::kit::wait::poll_until;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType, LoadBalancer as AwsLoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct LoadBalancer;

const DELETION_PROTECTION: &str = "deletion_protection.enabled";
const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
const DROP_INVALID_HEADERS: &str = "routing.http.drop_invalid_header_fields.enabled";

/// Fields that only an application load balancer has.
const APPLICATION_ONLY: &[&str] = &["idle_timeout", "drop_invalid_header_fields"];

pub static SCHEMA: Schema = Schema {
    kind: "load_balancer",
    doc: "An Elastic Load Balancing v2 load balancer (an Application Load Balancer unless \
          `load_balancer_type` says otherwise). Its attributes are plain fields. A create looks \
          the name up first (moto accepts duplicate names); a delete waits until the load \
          balancer is gone, so the target groups it used can go next. Observing costs one \
          DescribeLoadBalancers per 20 load balancers plus one DescribeLoadBalancerAttributes \
          per load balancer (AWS answers attributes one load balancer a call); tags come from \
          the plan's one Resource Groups Tagging API read of the whole stack (GetResources, \
          100 resources a page, shared by every kind), or cost one DescribeTags per 20 load \
          balancers that read does not list.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(elbv2::check_elb_name),
            "The load balancer's name, unique in the region: 1-32 letters, digits and hyphens. \
             Changing it replaces the load balancer.",
        )
        .required()
        .force_new(),
        Field::new(
            "load_balancer_type",
            Ty::Enum(&["application", "network"]),
            "application (HTTP/HTTPS, the default) or network. Changing it replaces the load balancer.",
        )
        .default(Default::Str("application"))
        .force_new(),
        Field::new(
            "scheme",
            Ty::Enum(&["internet-facing", "internal"]),
            "internet-facing (public addresses, the default) or internal. Changing it replaces \
             the load balancer.",
        )
        .default(Default::Str("internet-facing"))
        .force_new(),
        Field::new(
            "subnets",
            Ty::List(&Ty::Str),
            "The subnets, at least two in different availability zones of one VPC, compared as a \
             set. Changed in place (SetSubnets).",
        )
        .required()
        .set(),
        Field::new(
            "security_groups",
            Ty::List(&Ty::Str),
            "Security group ids, compared as a set. Changed in place (SetSecurityGroups); left \
             out, not managed.",
        )
        .set(),
        Field::new(
            "ip_address_type",
            Ty::Enum(&["ipv4", "dualstack"]),
            "ipv4 (the default) or dualstack. Changed in place.",
        )
        .default(Default::Str("ipv4")),
        Field::new(
            "deletion_protection",
            Ty::Bool,
            "AWS refuses to delete the load balancer while on (attribute \
             deletion_protection.enabled; default false). Changed in place; reconcile refuses \
             plans that would delete or replace it while it is on.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "idle_timeout",
            Ty::Int,
            "Application only: seconds a connection may idle, 1-4000 (attribute \
             idle_timeout.timeout_seconds; default 60). Changed in place.",
        )
        .default(Default::Int(60))
        .range(1, 4000),
        Field::new(
            "drop_invalid_header_fields",
            Ty::Bool,
            "Application only: drop HTTP headers with invalid names instead of passing them on \
             (attribute routing.http.drop_invalid_header_fields.enabled; default false). \
             Changed in place.",
        )
        .default(Default::Bool(false)),
    ],
    attributes: &[
        ("id", "The load balancer's ARN."),
        ("arn", "The load balancer's ARN."),
        (
            "arn_suffix",
            "The ARN's last part (app/NAME/ID), as CloudWatch metrics name the load balancer.",
        ),
        ("dns_name", "The DNS name to point records at."),
        (
            "zone_id",
            "The Route 53 hosted zone id of the DNS name, for alias records.",
        ),
        ("name", "The load balancer's name."),
        ("vpc_id", "The VPC of its subnets."),
    ],
    taggable: true,
};

/// The load balancer as the schema sees it, from its description, its
/// attributes and its tags.
pub fn observed(
    lb: &AwsLoadBalancer,
    attrs: &HashMap<String, String>,
    tags: IndexMap<String, String>,
) -> Option<Observed> {
    let arn = lb.load_balancer_arn()?.to_string();
    let name = lb.load_balancer_name().unwrap_or_default();
    let kind = lb
        .r#type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "application".into());
    let subnets = lb.availability_zones().iter().filter_map(|z| z.subnet_id());
    let flag = |k: &str| Value::Bool(attrs.get(k).is_some_and(|v| v == "true"));
    // A network load balancer has no idle timeout: it reads as the default,
    // so declaring nothing shows no change (and likewise for the header flag).
    let idle = attrs.get(IDLE_TIMEOUT).and_then(|v| v.parse().ok());
    let f = elbv2::fields([
        ("name", Value::str(name)),
        ("load_balancer_type", Value::str(&kind)),
        (
            "scheme",
            Value::str(lb.scheme().map_or("internet-facing", |s| s.as_str())),
        ),
        ("subnets", str_list(subnets)),
        ("security_groups", str_list(lb.security_groups())),
        (
            "ip_address_type",
            Value::str(lb.ip_address_type().map_or("ipv4", |t| t.as_str())),
        ),
        // Always observed: the planner refuses deletes while it is on.
        ("deletion_protection", flag(DELETION_PROTECTION)),
        ("idle_timeout", Value::Int(idle.unwrap_or(60))),
        ("drop_invalid_header_fields", flag(DROP_INVALID_HEADERS)),
    ]);
    let more = [
        ("arn_suffix", Value::str(elbv2::arn_suffix(&arn))),
        ("dns_name", Value::str(lb.dns_name().unwrap_or_default())),
        (
            "zone_id",
            Value::str(lb.canonical_hosted_zone_id().unwrap_or_default()),
        ),
        ("name", Value::str(name)),
        ("vpc_id", Value::str(lb.vpc_id().unwrap_or_default())),
    ];
    elbv2::observation(&arn, f, more, tags)
}

async fn attributes_of(cx: &Cx, arn: String) -> Result<HashMap<String, String>, ProviderError> {
    let r = cx
        .elbv2
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(elb_error)?;
    Ok(attribute_map(
        r.attributes().iter().map(|a| (a.key(), a.value())),
    ))
}

async fn complete(cx: &Cx, lbs: Vec<AwsLoadBalancer>) -> Result<Vec<Observed>, ProviderError> {
    let arn = AwsLoadBalancer::load_balancer_arn;
    elbv2::complete(
        cx,
        SCHEMA.kind,
        lbs,
        arn,
        |a| attributes_of(cx, a),
        observed,
    )
    .await
}

pub async fn observe_one(cx: &Cx, arn: &str) -> Result<Option<Observed>, ProviderError> {
    let lbs = elbv2::describe_load_balancers(cx, Some(&[arn.to_string()])).await?;
    Ok(complete(cx, lbs).await?.into_iter().next())
}

/// Problems visible in the declaration alone.
fn problems(f: &Fields, declared: &dyn Fn(&str) -> bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let kind = str_of(f, "load_balancer_type").unwrap_or("application");
    if kind != "application" {
        for k in APPLICATION_ONLY {
            if declared(k) {
                out.push((
                    *k,
                    format!(
                        "`{k}` is an application load balancer's attribute, not a {kind} one's"
                    ),
                    "remove it, or use load_balancer_type = \"application\"".into(),
                ));
            }
        }
    }
    if kind == "application" {
        if let Some(n) = f.get("subnets").and_then(Value::as_list) {
            if n.len() < 2 {
                out.push((
                    "subnets",
                    format!(
                        "an application load balancer needs subnets in at least two availability zones, {} given",
                        n.len()
                    ),
                    "add a second subnet in another availability zone".into(),
                ));
            }
        }
    }
    if let Some(n) = str_of(f, "name") {
        if n.starts_with("internal-") {
            out.push((
                "name",
                format!("\"{n}\": a load balancer name may not start with \"internal-\""),
                "choose another name".into(),
            ));
        }
    }
    out
}

/// The attribute changes to send for `changes` (all three when `all`).
fn attribute_updates(f: &Fields, changes: &[FieldChange], all: bool) -> Vec<LoadBalancerAttribute> {
    let application = str_of(f, "load_balancer_type").unwrap_or("application") == "application";
    let mut out = Vec::new();
    let mut put = |field: &str, key: &str, value: Option<String>| {
        if let Some(v) = value {
            if all || changes_field(changes, field) {
                out.push(LoadBalancerAttribute::builder().key(key).value(v).build());
            }
        }
    };
    put(
        "deletion_protection",
        DELETION_PROTECTION,
        bool_of(f, "deletion_protection").map(|b| b.to_string()),
    );
    if application {
        put(
            "idle_timeout",
            IDLE_TIMEOUT,
            i32_of(f, "idle_timeout").map(|i| i.to_string()),
        );
        put(
            "drop_invalid_header_fields",
            DROP_INVALID_HEADERS,
            bool_of(f, "drop_invalid_header_fields").map(|b| b.to_string()),
        );
    }
    out
}

async fn modify_attributes(
    cx: &Cx,
    arn: &str,
    attrs: Vec<LoadBalancerAttribute>,
) -> Result<(), ProviderError> {
    if attrs.is_empty() {
        return Ok(());
    }
    cx.elbv2
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .set_attributes(Some(attrs))
        .send()
        .await
        .map_err(elb_error)?;
    Ok(())
}

#[async_trait]
impl Provider for LoadBalancer {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn deletion_guard(&self) -> Option<&'static str> {
        Some("deletion_protection")
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        let declared = |k: &str| r.field_pos.contains_key(k);
        elbv2::diagnostics(r, problems(&r.fields, &declared))
    }

    /// A name is unique in the region: only a renamed load balancer can exist
    /// beside the old one.
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
        let lbs = elbv2::describe_load_balancers(cx, Some(ids)).await?;
        Ok(elbv2::by_id(complete(cx, lbs).await?))
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        elbv2::describe_tags(cx, arns).await.map(Some)
    }

    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let all = elbv2::describe_load_balancers(cx, None).await?;
        let arn = AwsLoadBalancer::load_balancer_arn;
        let ours = elbv2::tagged(cx, all, arn, addresses).await?;
        Ok(elbv2::by_address(cx, complete(cx, ours).await?, addresses))
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        // Defaults fill in the application-only fields of any load balancer.
        let all = problems(f, &|k| f.contains_key(k));
        elbv2::refuse(
            addr,
            all.into_iter()
                .filter(|p| !APPLICATION_ONLY.contains(&p.0))
                .collect(),
        )?;
        let name = str_of(f, "name").unwrap_or_default();
        // moto accepts a second load balancer of the same name: look first.
        if let Some(lb) = elbv2::load_balancer_named(cx, name)
            .await
            .map_err(|e| named(addr, "looking up the name", e))?
        {
            let what = format!("a load balancer named \"{name}\"");
            let live = complete(cx, vec![lb]).await?.pop();
            let live = live.ok_or_else(|| vanished(addr, name, "while adopting it"))?;
            return elbv2::adopt(self, cx, want, &what, live, false).await;
        }
        let s = |k: &str| str_of(f, k).map(str::to_string);
        let out = cx
            .elbv2
            .create_load_balancer()
            .name(name)
            .set_subnets(strs_of(f, "subnets"))
            .set_security_groups(strs_of(f, "security_groups"))
            .set_scheme(s("scheme").map(|v| LoadBalancerSchemeEnum::from(v.as_str())))
            .set_type(s("load_balancer_type").map(|v| LoadBalancerTypeEnum::from(v.as_str())))
            .set_ip_address_type(s("ip_address_type").map(|v| IpAddressType::from(v.as_str())))
            .set_tags(Some(elbv2::to_tags(want.tags)))
            .send()
            .await
            .map_err(|e| named(addr, "creating", elb_error(e)))?;
        let arn = out
            .load_balancers()
            .first()
            .and_then(|lb| lb.load_balancer_arn())
            .ok_or_else(|| {
                ProviderError::Other(format!("{addr}: CreateLoadBalancer returned no ARN"))
            })?
            .to_string();
        // CreateLoadBalancer takes no attributes: they follow in one call.
        modify_attributes(cx, &arn, attribute_updates(f, &[], true))
            .await
            .map_err(|e| named(addr, "setting attributes", e))?;
        let state = std::sync::Mutex::new(String::new());
        let active = poll_until(&elbv2::DELETE_POLL, || async {
            let lbs = elbv2::describe_load_balancers(cx, Some(std::slice::from_ref(&arn))).await?;
            let s = lbs
                .first()
                .and_then(|lb| lb.state())
                .and_then(|s| s.code())
                .map(|c| c.as_str().to_string())
                .unwrap_or_else(|| "gone".into());
            if s == "failed" || s == "gone" {
                return Err(ProviderError::Other(format!(
                    "{addr}: the new load balancer is {s} in AWS; look at it in the console, then apply again"
                )));
            }
            let mut last = state.lock().unwrap();
            if *last != s {
                cx.status.report(addr, &s);
                *last = s.clone();
            }
            Ok(s == "active" || s == "active_impaired")
        })
        .await?;
        let state = state.into_inner().unwrap();
        if !active {
            return Err(ProviderError::Other(format!(
                "{addr}: {arn} is still `{state}` after 10 minutes; it is tagged with its address, \
                 so the next apply adopts it instead of creating another"
            )));
        }
        observe_one(cx, &arn)
            .await?
            .ok_or_else(|| vanished(addr, &arn, "right after its creation"))
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        let arn = live.id.as_str();
        let ch = |k: &str| changes_field(changes, k);
        if ch("subnets") {
            cx.elbv2
                .set_subnets()
                .load_balancer_arn(arn)
                .set_subnets(strs_of(f, "subnets"))
                .send()
                .await
                .map_err(|e| named(addr, "setting subnets", elb_error(e)))?;
        }
        if ch("security_groups") {
            cx.elbv2
                .set_security_groups()
                .load_balancer_arn(arn)
                .set_security_groups(Some(strs_of(f, "security_groups").unwrap_or_default()))
                .send()
                .await
                .map_err(|e| named(addr, "setting security groups", elb_error(e)))?;
        }
        if ch("ip_address_type") {
            cx.elbv2
                .set_ip_address_type()
                .load_balancer_arn(arn)
                .set_ip_address_type(str_of(f, "ip_address_type").map(IpAddressType::from))
                .send()
                .await
                .map_err(|e| named(addr, "setting ip_address_type", elb_error(e)))?;
        }
        modify_attributes(cx, arn, attribute_updates(f, changes, false))
            .await
            .map_err(|e| named(addr, "setting attributes", e))?;
        elbv2::retag_and_read(cx, live, want, changes, observe_one(cx, arn)).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let what = format!("load_balancer {id}");
        // AWS refuses this itself; moto does not, so reconcile checks first.
        let attrs = match attributes_of(cx, id.to_string()).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(named(&what, "reading attributes", e)),
        };
        if attrs.get(DELETION_PROTECTION).is_some_and(|v| v == "true") {
            return Err(named(
                &what,
                "deleting",
                ProviderError::Aws {
                    code: "OperationNotPermitted".into(),
                    message:
                        "the load balancer cannot be deleted because deletion protection is enabled"
                            .into(),
                },
            ));
        }
        match cx
            .elbv2
            .delete_load_balancer()
            .load_balancer_arn(id)
            .send()
            .await
            .map_err(elb_error)
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(named(&what, "deleting", e)),
        }
        // Its target groups can only go once it is gone.
        let gone = poll_until(&elbv2::DELETE_POLL, || async {
            Ok(elbv2::describe_load_balancers(cx, Some(&[id.to_string()]))
                .await?
                .is_empty())
        })
        .await
        .map_err(|e| named(&what, "waiting for the delete", e))?;
        if gone {
            Ok(())
        } else {
            Err(ProviderError::Other(format!(
                "{what}: still there 10 minutes after DeleteLoadBalancer; the next apply deletes it \
                 if it is still there"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::types::AvailabilityZone;

    #[test]
    fn observed_fields_map_from_describe_and_attributes() {
        let lb = AwsLoadBalancer::builder()
            .load_balancer_arn("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/abc")
            .load_balancer_name("web")
            .r#type(LoadBalancerTypeEnum::Application)
            .scheme(LoadBalancerSchemeEnum::Internal)
            .availability_zones(AvailabilityZone::builder().subnet_id("subnet-1").build())
            .availability_zones(AvailabilityZone::builder().subnet_id("subnet-2").build())
            .security_groups("sg-1")
            .dns_name("web-1.elb")
            .canonical_hosted_zone_id("Z1")
            .build();
        let mut attrs = HashMap::new();
        attrs.insert(DELETION_PROTECTION.to_string(), "true".to_string());
        let o = observed(&lb, &attrs, IndexMap::new()).unwrap();
        assert_eq!(o.fields["scheme"], Value::str("internal"));
        assert_eq!(o.fields["deletion_protection"], Value::Bool(true));
        // moto leaves these out until set: AWS's defaults.
        assert_eq!(o.fields["idle_timeout"], Value::Int(60));
        assert_eq!(o.fields["drop_invalid_header_fields"], Value::Bool(false));
        assert_eq!(o.attributes["arn_suffix"], Value::str("app/web/abc"));
        assert_eq!(o.attributes["zone_id"], Value::str("Z1"));
        for f in SCHEMA.fields {
            assert!(o.fields.contains_key(f.name), "{} not observed", f.name);
        }
    }

    #[test]
    fn network_load_balancers_refuse_application_attributes() {
        let mut f = Fields::new();
        f.insert("load_balancer_type".into(), Value::str("network"));
        f.insert("idle_timeout".into(), Value::Int(60));
        f.insert("subnets".into(), Value::List(vec![Value::str("subnet-1")]));
        let p = problems(&f, &|k| k == "idle_timeout");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "idle_timeout");
        // Defaults alone are no problem.
        assert!(problems(&f, &|_| false).is_empty());
        f.insert("load_balancer_type".into(), Value::str("application"));
        assert!(problems(&f, &|_| false)[0]
            .1
            .contains("two availability zones"));
    }

    #[test]
    fn idle_timeout_range_is_the_schemas() {
        let idle = SCHEMA.field("idle_timeout").unwrap();
        assert_eq!(idle.range, Some((1, 4000)));
    }

    #[test]
    fn attributes_sent_are_the_changed_ones() {
        let mut f = Fields::new();
        f.insert("deletion_protection".into(), Value::Bool(true));
        f.insert("idle_timeout".into(), Value::Int(120));
        f.insert("drop_invalid_header_fields".into(), Value::Bool(false));
        assert_eq!(attribute_updates(&f, &[], true).len(), 3);
        let ch = [FieldChange::new(
            "idle_timeout",
            Some(Value::Int(60)),
            Some(Value::Int(120)),
            false,
        )];
        let a = attribute_updates(&f, &ch, false);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].key(), Some(IDLE_TIMEOUT));
        assert_eq!(a[0].value(), Some("120"));
    }
}
