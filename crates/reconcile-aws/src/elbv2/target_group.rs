//! `target_group`: an ELBv2 target group with its health check and
//! deregistration delay.
//!
//! Observing costs one DescribeTargetGroups per 20 target groups plus one
//! DescribeTargetGroupAttributes per target group (AWS answers attributes for
//! one target group a call); tags come from the observe pass's stack tag index,
//! or cost one DescribeTags per 20 target groups the index does not list.

use crate::elbv2::{self, attribute_map, elb_error, named, vanished, Problem};
use crate::kit::fields::{bool_of, changes_field, i32_of, str_of};
use crate::kit::wait::{poll_until, Backoff, Poll};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Matcher, ProtocolEnum, TargetGroup as AwsTargetGroup, TargetGroupAttribute, TargetTypeEnum,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;
use std::time::Duration;

pub struct TargetGroup;

const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// The fields of `health_check`, with AWS's defaults for an HTTP(S) target group.
pub const HEALTH_CHECK_FIELDS: &[Field] = &[
    Field::new(
        "enabled",
        Ty::Bool,
        "Whether health checks run (default true).",
    )
    .default(Default::Bool(true)),
    Field::new(
        "path",
        Ty::Str,
        "HTTP(S) checks: the path requested (default \"/\").",
    )
    .default(Default::Str("/")),
    Field::new(
        "matcher",
        Ty::Str,
        "HTTP(S) checks: the HTTP codes meaning healthy, like \"200\" (the default), \"200-399\" \
         or \"200,302\".",
    )
    .default(Default::Str("200")),
    Field::new(
        "interval_seconds",
        Ty::Int,
        "Seconds between checks, 5-300 (default 30).",
    )
    .default(Default::Int(30)),
    Field::new(
        "timeout_seconds",
        Ty::Int,
        "Seconds without an answer that fail a check, 2-120, below the interval (default 5).",
    )
    .default(Default::Int(5)),
    Field::new(
        "healthy_threshold",
        Ty::Int,
        "Consecutive successes that make a target healthy, 2-10 (default 5).",
    )
    .default(Default::Int(5)),
    Field::new(
        "unhealthy_threshold",
        Ty::Int,
        "Consecutive failures that make a target unhealthy, 2-10 (default 2).",
    )
    .default(Default::Int(2)),
    Field::new(
        "protocol",
        Ty::Enum(&["HTTP", "HTTPS", "TCP"]),
        "The checks' protocol (default: the target group's own). With TCP, path and matcher do \
         not apply.",
    ),
    Field::new(
        "port",
        Ty::Str,
        "The port checked, as a string like \"8080\", or \"traffic-port\" (the default: each \
         target's own port).",
    )
    .default(Default::Str("traffic-port")),
];

pub static SCHEMA: Schema = Schema {
    kind: "target_group",
    doc: "An Elastic Load Balancing v2 target group: where a listener or rule forwards \
          requests (for Fargate services, target_type \"ip\"). The health check and the \
          deregistration delay change in place. A create looks the name up first; a delete \
          waits (briefly) for the load balancers that used it to be gone. Observing costs one \
          DescribeTargetGroups per 20 target groups plus one DescribeTargetGroupAttributes per \
          target group (AWS answers attributes one target group a call); tags come from the \
          plan's one Resource Groups Tagging API read of the whole stack (GetResources, 100 \
          resources a page, shared by every kind), or cost one DescribeTags per 20 target \
          groups that read does not list.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(elbv2::check_elb_name),
            "The target group's name, unique in the region: 1-32 letters, digits and hyphens. \
             Changing it replaces the target group.",
        )
        .required()
        .force_new(),
        Field::new(
            "port",
            Ty::Int,
            "The port targets receive traffic on, 1-65535. Changing it replaces the target group.",
        )
        .required()
        .range(1, 65535)
        .force_new(),
        Field::new(
            "protocol",
            Ty::Enum(&["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"]),
            "The protocol to the targets (HTTP or HTTPS behind an application load balancer). \
             Changing it replaces the target group.",
        )
        .required()
        .force_new(),
        Field::new(
            "vpc_id",
            Ty::Str,
            "The VPC of the targets. Changing it replaces the target group.",
        )
        .required()
        .force_new(),
        Field::new(
            "target_type",
            Ty::Enum(&["ip", "instance", "alb"]),
            "How targets are registered: ip (the default; Fargate tasks), instance or alb. \
             Changing it replaces the target group.",
        )
        .default(Default::Str("ip"))
        .force_new(),
        Field::new(
            "protocol_version",
            Ty::Enum(&["HTTP1", "HTTP2", "GRPC"]),
            "HTTP(S) target groups: the protocol version to the targets (AWS's default HTTP1). \
             Changing it replaces the target group.",
        )
        .force_new(),
        Field::new(
            "health_check",
            Ty::Object(HEALTH_CHECK_FIELDS),
            "The health check, like `{ path = \"/health\", matcher = \"200-399\" }`; parts left \
             out take AWS's defaults. Changed in place (ModifyTargetGroup); left out entirely, \
             not managed.",
        )
        .norm(Norm::With(health_check_norm)),
        Field::new(
            "deregistration_delay",
            Ty::Int,
            "Seconds a deregistering target keeps its connections, 0-3600 (attribute \
             deregistration_delay.timeout_seconds; default 300). Changed in place.",
        )
        .default(Default::Int(300))
        .range(0, 3600),
    ],
    attributes: &[
        ("id", "The target group's ARN."),
        ("arn", "The target group's ARN."),
        (
            "arn_suffix",
            "The ARN's last part (targetgroup/NAME/ID), as CloudWatch metrics name the target group.",
        ),
        ("name", "The target group's name."),
    ],
    taggable: true,
};

/// The health check's protocol when none is declared: the target group's own,
/// as AWS decides (TLS, UDP and TCP_UDP groups are checked over TCP).
fn default_check_protocol(tg_protocol: &str) -> &'static str {
    match tg_protocol {
        "HTTP" => "HTTP",
        "HTTPS" => "HTTPS",
        _ => "TCP",
    }
}

/// The health check's normal form, given the target group's fields.
fn health_check_norm(v: &Value, group: &Fields) -> Value {
    match v {
        Value::Map(hc) => Value::Map(canonical_health_check(
            hc,
            str_of(group, "protocol").unwrap_or("HTTP"),
        )),
        other => other.clone(),
    }
}

/// A health check table the way AWS reports it: the protocol filled in, and
/// without path and matcher when the check is plain TCP.
pub fn canonical_health_check(hc: &Fields, tg_protocol: &str) -> Fields {
    let mut m = hc.clone();
    if !m.contains_key("protocol") {
        m.insert(
            "protocol".into(),
            Value::str(default_check_protocol(tg_protocol)),
        );
    }
    if str_of(&m, "protocol") == Some("TCP") {
        m.shift_remove("path");
        m.shift_remove("matcher");
    }
    m
}

pub fn observed(
    tg: &AwsTargetGroup,
    attrs: &HashMap<String, String>,
    tags: IndexMap<String, String>,
) -> Option<Observed> {
    let arn = tg.target_group_arn()?.to_string();
    let name = tg.target_group_name().unwrap_or_default();
    let protocol = tg.protocol().map(|p| p.as_str()).unwrap_or_default();
    let mut f = elbv2::fields([
        ("name", Value::str(name)),
        ("port", Value::Int(tg.port().unwrap_or(0).into())),
        ("protocol", Value::str(protocol)),
        ("vpc_id", Value::str(tg.vpc_id().unwrap_or_default())),
        (
            "target_type",
            Value::str(tg.target_type().map_or("instance", |t| t.as_str())),
        ),
    ]);
    if let Some(v) = tg.protocol_version() {
        f.insert("protocol_version".into(), Value::str(v));
    }
    let mut hc = Fields::new();
    hc.insert(
        "enabled".into(),
        Value::Bool(tg.health_check_enabled().unwrap_or(true)),
    );
    if let Some(p) = tg.health_check_path() {
        hc.insert("path".into(), Value::str(p));
    }
    if let Some(m) = tg.matcher().and_then(|m| m.http_code()) {
        hc.insert("matcher".into(), Value::str(m));
    }
    for (k, v) in [
        ("interval_seconds", tg.health_check_interval_seconds()),
        ("timeout_seconds", tg.health_check_timeout_seconds()),
        ("healthy_threshold", tg.healthy_threshold_count()),
        ("unhealthy_threshold", tg.unhealthy_threshold_count()),
    ] {
        hc.insert(k.into(), Value::Int(v.unwrap_or(0).into()));
    }
    hc.insert(
        "protocol".into(),
        Value::str(
            tg.health_check_protocol()
                .map(|p| p.as_str())
                .unwrap_or(default_check_protocol(protocol)),
        ),
    );
    hc.insert(
        "port".into(),
        Value::str(tg.health_check_port().unwrap_or("traffic-port")),
    );
    f.insert(
        "health_check".into(),
        Value::Map(canonical_health_check(&hc, protocol)),
    );
    f.insert(
        "deregistration_delay".into(),
        Value::Int(
            attrs
                .get(DEREGISTRATION_DELAY)
                .and_then(|v| v.parse().ok())
                .unwrap_or(300),
        ),
    );
    let more = [
        ("arn_suffix", Value::str(elbv2::arn_suffix(&arn))),
        ("name", Value::str(name)),
    ];
    elbv2::observation(&arn, f, more, tags)
}

async fn attributes_of(cx: &Cx, arn: String) -> Result<HashMap<String, String>, ProviderError> {
    let r = cx
        .elbv2
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(elb_error)?;
    Ok(attribute_map(
        r.attributes().iter().map(|a| (a.key(), a.value())),
    ))
}

async fn complete(cx: &Cx, tgs: Vec<AwsTargetGroup>) -> Result<Vec<Observed>, ProviderError> {
    let arn = AwsTargetGroup::target_group_arn;
    elbv2::complete(
        cx,
        SCHEMA.kind,
        tgs,
        arn,
        |a| attributes_of(cx, a),
        observed,
    )
    .await
}

pub async fn observe_one(cx: &Cx, arn: &str) -> Result<Option<Observed>, ProviderError> {
    let tgs = elbv2::describe_target_groups(cx, Some(&[arn.to_string()])).await?;
    Ok(complete(cx, tgs).await?.into_iter().next())
}

/// Problems visible in the declaration alone.
fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    let protocol = str_of(f, "protocol").unwrap_or("HTTP");
    let http = protocol == "HTTP" || protocol == "HTTPS";
    if f.contains_key("protocol_version") && !http {
        out.push((
            "protocol_version",
            format!("protocol_version applies to HTTP and HTTPS target groups, not {protocol}"),
            "remove it".into(),
        ));
    }
    if let Some(hc) = f.get("health_check").and_then(Value::as_map) {
        let hc = canonical_health_check(hc, protocol);
        let int = |k: &str| hc.get(k).and_then(Value::as_int);
        for (k, lo, hi) in [
            ("interval_seconds", 5, 300),
            ("timeout_seconds", 2, 120),
            ("healthy_threshold", 2, 10),
            ("unhealthy_threshold", 2, 10),
        ] {
            if let Some(v) = int(k) {
                if !(lo..=hi).contains(&v) {
                    out.push((
                        "health_check",
                        format!("health_check.{k} = {v} is outside {lo}-{hi}"),
                        format!("use a value from {lo} to {hi}"),
                    ));
                }
            }
        }
        if let (Some(t), Some(i)) = (int("timeout_seconds"), int("interval_seconds")) {
            if t >= i {
                out.push((
                    "health_check",
                    format!(
                        "health_check.timeout_seconds ({t}) must be below interval_seconds ({i})"
                    ),
                    "shorten the timeout or lengthen the interval".into(),
                ));
            }
        }
        if let Some(p) = str_of(&hc, "path") {
            if !p.starts_with('/') || p.chars().count() > 1024 {
                out.push((
                    "health_check",
                    format!("health_check.path \"{}\" must start with `/` and be at most 1024 characters", shorten(p)),
                    "write it like \"/health\"".into(),
                ));
            }
        }
        if let Some(m) = str_of(&hc, "matcher") {
            let ok = !m.is_empty()
                && m.split(',').all(|part| {
                    let mut ends = part.splitn(2, '-');
                    ends.all(|n| n.len() == 3 && n.chars().all(|c| c.is_ascii_digit()))
                });
            if !ok {
                out.push((
                    "health_check",
                    format!("health_check.matcher \"{m}\" is not a list of HTTP codes"),
                    "write it like \"200\", \"200-399\" or \"200,302\"".into(),
                ));
            }
        }
        if let Some(p) = str_of(&hc, "port") {
            let ok =
                p == "traffic-port" || p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
            if !ok {
                out.push((
                    "health_check",
                    format!("health_check.port \"{p}\" is neither a port nor \"traffic-port\""),
                    "write it like \"8080\", or leave it out for each target's own port".into(),
                ));
            }
        }
    }
    out
}

/// A long value cut to a readable length for a message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// The declared health check as AWS reports it, if declared.
fn check_of(f: &Fields) -> Option<Fields> {
    let hc = f.get("health_check")?.as_map()?;
    Some(canonical_health_check(
        hc,
        str_of(f, "protocol").unwrap_or("HTTP"),
    ))
}

/// Sets a health check's parameters on a CreateTargetGroup or ModifyTargetGroup
/// request (two builder types with the same setters).
macro_rules! with_check {
    ($req:expr, $hc:expr) => {{
        let hc: &Fields = $hc;
        let s = |k: &str| str_of(hc, k).map(str::to_string);
        $req.set_health_check_enabled(bool_of(hc, "enabled"))
            .set_health_check_path(s("path"))
            .set_matcher(s("matcher").map(|m| Matcher::builder().http_code(m).build()))
            .set_health_check_interval_seconds(i32_of(hc, "interval_seconds"))
            .set_health_check_timeout_seconds(i32_of(hc, "timeout_seconds"))
            .set_healthy_threshold_count(i32_of(hc, "healthy_threshold"))
            .set_unhealthy_threshold_count(i32_of(hc, "unhealthy_threshold"))
            .set_health_check_protocol(str_of(hc, "protocol").map(ProtocolEnum::from))
            .set_health_check_port(s("port"))
    }};
}

async fn set_deregistration_delay(cx: &Cx, arn: &str, seconds: i32) -> Result<(), ProviderError> {
    cx.elbv2
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key(DEREGISTRATION_DELAY)
                .value(seconds.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(elb_error)?;
    Ok(())
}

#[async_trait]
impl Provider for TargetGroup {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        elbv2::diagnostics(r, problems(&r.fields))
    }

    /// A name is unique in the region: only a renamed target group can exist
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
        let tgs = elbv2::describe_target_groups(cx, Some(ids)).await?;
        Ok(elbv2::by_id(complete(cx, tgs).await?))
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
        let all = elbv2::describe_target_groups(cx, None).await?;
        let arn = AwsTargetGroup::target_group_arn;
        let ours = elbv2::tagged(cx, all, arn, addresses).await?;
        Ok(elbv2::by_address(cx, complete(cx, ours).await?, addresses))
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        elbv2::refuse(addr, problems(f))?;
        let name = str_of(f, "name").unwrap_or_default();
        if let Some(tg) = elbv2::target_group_named(cx, name)
            .await
            .map_err(|e| named(addr, "looking up the name", e))?
        {
            let what = format!("a target group named \"{name}\"");
            let live = complete(cx, vec![tg]).await?.pop();
            let live = live.ok_or_else(|| vanished(addr, name, "while adopting it"))?;
            return elbv2::adopt(self, cx, want, &what, live, true).await;
        }
        let s = |k: &str| str_of(f, k).map(str::to_string);
        let mut req = cx
            .elbv2
            .create_target_group()
            .name(name)
            .set_port(i32_of(f, "port"))
            .set_protocol(s("protocol").map(|p| ProtocolEnum::from(p.as_str())))
            .set_vpc_id(s("vpc_id"))
            .set_target_type(s("target_type").map(|t| TargetTypeEnum::from(t.as_str())))
            .set_protocol_version(s("protocol_version"))
            .set_tags(Some(elbv2::to_tags(want.tags)));
        if let Some(hc) = check_of(f) {
            req = with_check!(req, &hc);
        }
        let out = req
            .send()
            .await
            .map_err(|e| named(addr, "creating", elb_error(e)))?;
        let arn = out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .ok_or_else(|| {
                ProviderError::Other(format!("{addr}: CreateTargetGroup returned no ARN"))
            })?
            .to_string();
        // CreateTargetGroup takes no attributes; AWS's default is 300.
        if let Some(d) = i32_of(f, "deregistration_delay").filter(|d| *d != 300) {
            set_deregistration_delay(cx, &arn, d)
                .await
                .map_err(|e| named(addr, "setting deregistration_delay", e))?;
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
        if changes_field(changes, "health_check") {
            if let Some(hc) = check_of(f) {
                let req = cx.elbv2.modify_target_group().target_group_arn(arn);
                with_check!(req, &hc)
                    .send()
                    .await
                    .map_err(|e| named(addr, "changing the health check", elb_error(e)))?;
            }
        }
        if changes_field(changes, "deregistration_delay") {
            if let Some(d) = i32_of(f, "deregistration_delay") {
                set_deregistration_delay(cx, arn, d)
                    .await
                    .map_err(|e| named(addr, "setting deregistration_delay", e))?;
            }
        }
        elbv2::retag_and_read(cx, live, want, changes, observe_one(cx, arn)).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let what = format!("target_group {id}");
        let Some(tg) = elbv2::describe_target_groups(cx, Some(&[id.to_string()]))
            .await
            .map_err(|e| named(&what, "reading it", e))?
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        // AWS refuses the delete while a load balancer routes to the group. Its
        // load balancers, when being deleted in the same apply, go first; the
        // wait is short because moto keeps listing load balancers that no
        // longer route here.
        let lbs: Vec<String> = tg.load_balancer_arns().to_vec();
        if !lbs.is_empty() {
            let grace = Poll {
                backoff: Backoff {
                    first: Duration::from_millis(500),
                    max: Duration::from_secs(5),
                },
                timeout: Duration::from_secs(20),
            };
            poll_until(&grace, || async {
                Ok(elbv2::describe_load_balancers(cx, Some(&lbs))
                    .await?
                    .is_empty())
            })
            .await
            .map_err(|e| named(&what, "waiting for its load balancers", e))?;
        }
        // A listener deleted a moment ago may still hold it for a while.
        let in_use = Poll {
            backoff: Backoff {
                first: Duration::from_secs(1),
                max: Duration::from_secs(10),
            },
            timeout: Duration::from_secs(120),
        };
        let last: std::sync::Mutex<Option<ProviderError>> = std::sync::Mutex::new(None);
        let done = poll_until(&in_use, || async {
            match cx
                .elbv2
                .delete_target_group()
                .target_group_arn(id)
                .send()
                .await
                .map_err(elb_error)
            {
                Ok(_) => Ok(true),
                Err(e) if e.is_not_found() => Ok(true),
                Err(e @ ProviderError::DependencyViolation(_)) => {
                    *last.lock().unwrap() = Some(e);
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| named(&what, "deleting", e))?;
        match (done, last.into_inner().unwrap()) {
            (true, _) => Ok(()),
            (false, Some(e)) => Err(named(&what, "deleting (still in use after 2 minutes)", e)),
            (false, None) => Err(ProviderError::Other(format!(
                "{what}: could not be deleted within 2 minutes; apply again"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn hc(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn health_checks_compare_as_aws_reports_them() {
        let declared = hc(&[
            ("path", Value::str("/health")),
            ("matcher", Value::str("200")),
            ("port", Value::str("traffic-port")),
        ]);
        let c = canonical_health_check(&declared, "HTTPS");
        assert_eq!(c["protocol"], Value::str("HTTPS"));
        let tcp = canonical_health_check(&declared, "TCP");
        assert_eq!(tcp["protocol"], Value::str("TCP"));
        assert!(!tcp.contains_key("path") && !tcp.contains_key("matcher"));
    }

    #[test]
    fn observed_fields_map_from_describe() {
        let tg = AwsTargetGroup::builder()
            .target_group_arn("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/app/abc")
            .target_group_name("app")
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id("vpc-1")
            .target_type(TargetTypeEnum::Ip)
            .health_check_enabled(true)
            .health_check_path("/health")
            .matcher(Matcher::builder().http_code("200-399").build())
            .health_check_interval_seconds(30)
            .health_check_timeout_seconds(5)
            .healthy_threshold_count(5)
            .unhealthy_threshold_count(2)
            .health_check_protocol(ProtocolEnum::Http)
            .health_check_port("traffic-port")
            .build();
        let o = observed(&tg, &HashMap::new(), IndexMap::new()).unwrap();
        assert_eq!(o.fields["deregistration_delay"], Value::Int(300));
        assert_eq!(
            o.attributes["arn_suffix"],
            Value::str("targetgroup/app/abc")
        );
        // A declaration with the path and matcher only, defaults filled as the model does.
        let mut want = Fields::new();
        for (k, v) in [
            ("name", Value::str("app")),
            ("port", Value::Int(8080)),
            ("protocol", Value::str("HTTP")),
            ("vpc_id", Value::str("vpc-1")),
            ("target_type", Value::str("ip")),
            ("deregistration_delay", Value::Int(300)),
        ] {
            want.insert(k.into(), v);
        }
        let mut check = hc(&[
            ("path", Value::str("/health")),
            ("matcher", Value::str("200-399")),
        ]);
        for f in HEALTH_CHECK_FIELDS {
            if let Some(d) = f.default {
                check.entry(f.name.to_string()).or_insert(d.value());
            }
        }
        want.insert("health_check".into(), Value::Map(check));
        let d = TargetGroup.diff(&want, &o.fields);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn declarations_are_checked() {
        let mut f = Fields::new();
        f.insert("protocol".into(), Value::str("TCP"));
        f.insert("protocol_version".into(), Value::str("HTTP2"));
        f.insert(
            "health_check".into(),
            Value::Map(hc(&[
                ("interval_seconds", Value::Int(5)),
                ("timeout_seconds", Value::Int(5)),
                ("matcher", Value::str("2xx")),
                ("protocol", Value::str("HTTP")),
            ])),
        );
        let p: Vec<String> = problems(&f).into_iter().map(|p| p.1).collect();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("protocol_version"));
        assert!(p[1].contains("below"));
        assert!(p[2].contains("matcher"));
    }

    #[test]
    fn port_and_deregistration_delay_ranges_are_the_schemas() {
        assert_eq!(SCHEMA.field("port").unwrap().range, Some((1, 65535)));
        let delay = SCHEMA.field("deregistration_delay").unwrap();
        assert_eq!(delay.range, Some((0, 3600)));
    }

    #[test]
    fn health_check_paths_are_absolute_and_short() {
        let with_path = |path: &str| {
            let mut f = Fields::new();
            f.insert("protocol".into(), Value::str("HTTP"));
            f.insert(
                "health_check".into(),
                Value::Map(hc(&[("path", Value::str(path))])),
            );
            problems(&f)
                .into_iter()
                .map(|p| p.1)
                .collect::<Vec<String>>()
        };
        assert!(with_path("/health").is_empty());
        assert_eq!(
            with_path("health"),
            ["health_check.path \"health\" must start with `/` and be at most 1024 characters"]
        );
        assert!(with_path(&format!("/{}", "a".repeat(1023))).is_empty());
        assert_eq!(with_path(&format!("/{}", "a".repeat(1024))).len(), 1);
    }
}
