//! `listener`: a load balancer's HTTP or HTTPS listener with its default
//! certificate, TLS policy and default action.
//!
//! Observing costs one DescribeListeners per 20 listeners; tags come from the
//! observe pass's stack tag index, or cost one DescribeTags per 20 listeners
//! the index does not list.
//! A certificate swapped outside reconcile reads as drift on `certificate_arn`.

use crate::elbv2::{self, elb_error, named, vanished, Problem, ACTION_FIELDS};
use crate::kit::fields::{changes_field, i32_of, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Certificate, Listener as AwsListener, ProtocolEnum};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct Listener;

pub static SCHEMA: Schema = Schema {
    kind: "listener",
    doc: "A load balancer listener: a port and protocol, for HTTPS a default certificate and TLS \
          policy, and the default action for requests no rule matches (forward to a target \
          group, redirect, or a fixed response). Everything but the load balancer changes in \
          place (ModifyListener). A create looks for a listener on the same port first. \
          Observing costs one DescribeListeners per 20 listeners; tags come from the plan's \
          one Resource Groups Tagging API read of the whole stack (GetResources, 100 resources \
          a page, shared by every kind), or cost one DescribeTags per 20 listeners that read \
          does not list.",
    fields: &[
        Field::new(
            "load_balancer_arn",
            Ty::Str,
            "The load balancer, like \"${load_balancer.web.arn}\". Changing it replaces the listener.",
        )
        .required()
        .force_new(),
        Field::new(
            "port",
            Ty::Int,
            "The port the listener takes connections on, 1-65535. Changed in place.",
        )
        .required()
        .range(1, 65535),
        Field::new(
            "protocol",
            Ty::Enum(&["HTTP", "HTTPS"]),
            "HTTP or HTTPS (which needs certificate_arn). Changed in place.",
        )
        .required(),
        Field::new(
            "ssl_policy",
            Ty::Str,
            "HTTPS only: the TLS negotiation policy, like \"ELBSecurityPolicy-TLS13-1-2-2021-06\" \
             (TLS 1.3 and 1.2 only). Changed in place; left out, AWS's default applies and is \
             not managed.",
        ),
        Field::new(
            "certificate_arn",
            Ty::Str,
            "HTTPS only, and required there: the default certificate's ARN (ACM), like \
             \"${input.cert_arn}\". Changed in place; a certificate swapped outside reconcile \
             is drift.",
        ),
        Field::new(
            "default_action",
            Ty::Object(ACTION_FIELDS),
            "What requests no rule matches get: `{ type = \"forward\", target_group_arn = ... }`, \
             `{ type = \"redirect\", protocol = \"HTTPS\", port = \"443\", status_code = \
             \"HTTP_301\" }` (parts left out keep the request's: \"#{host}\", \"/#{path}\", \
             \"#{query}\"), or `{ type = \"fixed-response\", status_code = \"503\", content_type \
             = \"text/plain\", message_body = \"...\" }`. Changed in place.",
        )
        .norm(Norm::With(elbv2::action_norm))
        .required(),
    ],
    attributes: &[
        ("id", "The listener's ARN."),
        ("arn", "The listener's ARN."),
    ],
    taggable: true,
};

pub fn observed(l: &AwsListener, tags: IndexMap<String, String>) -> Option<Observed> {
    let arn = l.listener_arn()?.to_string();
    let protocol = l.protocol().map(|p| p.as_str()).unwrap_or_default();
    let mut f = Fields::new();
    f.insert(
        "load_balancer_arn".into(),
        Value::str(l.load_balancer_arn().unwrap_or_default()),
    );
    f.insert("port".into(), Value::Int(l.port().unwrap_or(0).into()));
    f.insert("protocol".into(), Value::str(protocol));
    // AWS has a policy and a certificate only for HTTPS (moto reports a policy
    // for HTTP listeners too, which means nothing there).
    if protocol == "HTTPS" {
        if let Some(p) = l.ssl_policy() {
            f.insert("ssl_policy".into(), Value::str(p));
        }
    }
    if let Some(c) = l.certificates().first().and_then(|c| c.certificate_arn()) {
        f.insert("certificate_arn".into(), Value::str(c));
    }
    f.insert(
        "default_action".into(),
        elbv2::action_from_sdk(l.default_actions()),
    );
    elbv2::observation(&arn, f, [], tags)
}

async fn complete(cx: &Cx, ls: Vec<AwsListener>) -> Result<Vec<Observed>, ProviderError> {
    let arn = AwsListener::listener_arn;
    elbv2::complete(
        cx,
        SCHEMA.kind,
        ls,
        arn,
        elbv2::no_attributes,
        |l, _, tags| observed(l, tags),
    )
    .await
}

pub async fn observe_one(cx: &Cx, arn: &str) -> Result<Option<Observed>, ProviderError> {
    let ls = elbv2::describe_listeners(cx, &[arn.to_string()]).await?;
    Ok(complete(cx, ls).await?.into_iter().next())
}

/// Problems visible in the declaration alone.
fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    let protocol = str_of(f, "protocol").unwrap_or("HTTP");
    if protocol == "HTTPS" && !f.contains_key("certificate_arn") {
        out.push((
            "",
            "an HTTPS listener needs `certificate_arn`".into(),
            "add `certificate_arn = \"arn:aws:acm:...\"` (an issued ACM certificate in the stack's region)".into(),
        ));
    }
    if str_of(f, "certificate_arn") == Some("") {
        out.push((
            "certificate_arn",
            "`certificate_arn` is empty".into(),
            "give the ACM certificate's ARN (an empty --input value, say, leaves it empty)".into(),
        ));
    }
    if protocol == "HTTP" {
        for k in ["certificate_arn", "ssl_policy"] {
            if f.contains_key(k) {
                out.push((
                    k,
                    format!("an HTTP listener has no `{k}`"),
                    format!("remove `{k}`, or use protocol = \"HTTPS\""),
                ));
            }
        }
    }
    if let Some(m) = f.get("default_action").and_then(Value::as_map) {
        for (_, msg, help) in elbv2::action_problems(m) {
            out.push(("default_action", format!("default_action: {msg}"), help));
        }
    }
    out
}

fn action_of(
    f: &Fields,
    address: &str,
) -> Result<aws_sdk_elasticloadbalancingv2::types::Action, ProviderError> {
    let m = f
        .get("default_action")
        .and_then(Value::as_map)
        .ok_or_else(|| {
            ProviderError::InvalidInput(format!("{address}: `default_action` must be a table"))
        })?;
    elbv2::action_to_sdk(m, &format!("{address}.default_action"))
}

fn certificates(f: &Fields) -> Option<Vec<Certificate>> {
    str_of(f, "certificate_arn").map(|c| vec![Certificate::builder().certificate_arn(c).build()])
}

#[async_trait]
impl Provider for Listener {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        elbv2::diagnostics(r, problems(&r.fields))
    }

    /// One port, one listener: a new copy can only be made beside the old one
    /// on another load balancer.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "load_balancer_arn")
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ls = elbv2::describe_listeners(cx, ids).await?;
        Ok(elbv2::by_id(complete(cx, ls).await?))
    }

    /// Every load balancer's listeners are read: listeners have no name to
    /// search by (one DescribeListeners per load balancer in the region).
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
        let mut all = Vec::new();
        for lb in elbv2::describe_load_balancers(cx, None).await? {
            if let Some(arn) = lb.load_balancer_arn() {
                all.extend(elbv2::listeners_of(cx, arn).await?);
            }
        }
        Ok(elbv2::by_address(cx, complete(cx, all).await?, addresses))
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        elbv2::refuse(addr, problems(f))?;
        let action = action_of(f, addr)?;
        let lb = str_of(f, "load_balancer_arn").unwrap_or_default();
        let port = i32_of(f, "port").unwrap_or_default();
        // moto accepts a second listener on the same port: look first.
        let existing = elbv2::listeners_of(cx, lb)
            .await
            .map_err(|e| named(addr, "looking for a listener on the port", e))?
            .into_iter()
            .find(|l| l.port() == Some(port));
        if let Some(l) = existing {
            let what = format!("a listener on port {port} of {lb}");
            let live = complete(cx, vec![l]).await?.pop();
            let live = live.ok_or_else(|| vanished(addr, &what, "while adopting it"))?;
            return elbv2::adopt(self, cx, want, &what, live, false).await;
        }
        let out = cx
            .elbv2
            .create_listener()
            .load_balancer_arn(lb)
            .port(port)
            .set_protocol(str_of(f, "protocol").map(ProtocolEnum::from))
            .set_ssl_policy(str_of(f, "ssl_policy").map(str::to_string))
            .set_certificates(certificates(f))
            .default_actions(action)
            .set_tags(Some(elbv2::to_tags(want.tags)))
            .send()
            .await
            .map_err(|e| named(addr, "creating", elb_error(e)))?;
        let created = out.listeners().first().ok_or_else(|| {
            ProviderError::Other(format!("{addr}: CreateListener returned no listener"))
        })?;
        let arn = created.listener_arn().unwrap_or_default().to_string();
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
        let https = str_of(f, "protocol") == Some("HTTPS");
        let mut req = cx.elbv2.modify_listener().listener_arn(arn);
        let mut any = false;
        if ch("port") {
            any = true;
            req = req.set_port(i32_of(f, "port"));
        }
        if ch("protocol") {
            any = true;
            req = req.set_protocol(str_of(f, "protocol").map(ProtocolEnum::from));
        }
        // Turning a listener into HTTPS takes its certificate and policy in the same call.
        if https && (ch("ssl_policy") || ch("protocol")) && f.contains_key("ssl_policy") {
            any = true;
            req = req.set_ssl_policy(str_of(f, "ssl_policy").map(str::to_string));
        }
        if https && (ch("certificate_arn") || ch("protocol")) {
            any = true;
            req = req.set_certificates(certificates(f));
        }
        if ch("default_action") {
            any = true;
            req = req.default_actions(action_of(f, addr)?);
        }
        if any {
            req.send()
                .await
                .map_err(|e| named(addr, "modifying", elb_error(e)))?;
        }
        elbv2::retag_and_read(cx, live, want, changes, observe_one(cx, arn)).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let answer = cx.elbv2.delete_listener().listener_arn(id).send().await;
        elbv2::deleted(answer.map_err(elb_error), &format!("listener {id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn m(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn https_needs_a_certificate_and_http_has_none() {
        let forward = Value::Map(m(&[
            ("type", Value::str("forward")),
            ("target_group_arn", Value::str("arn:tg")),
        ]));
        let f = m(&[
            ("protocol", Value::str("HTTPS")),
            ("port", Value::Int(443)),
            ("default_action", forward.clone()),
        ]);
        assert!(problems(&f)[0].1.contains("certificate_arn"));
        let mut empty = f.clone();
        empty.insert("certificate_arn".into(), Value::str(""));
        assert!(problems(&empty)[0].1.contains("empty"));
        let f = m(&[
            ("protocol", Value::str("HTTP")),
            ("port", Value::Int(80)),
            (
                "ssl_policy",
                Value::str("ELBSecurityPolicy-TLS13-1-2-2021-06"),
            ),
            ("default_action", forward),
        ]);
        let p = problems(&f);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "ssl_policy");
    }

    #[test]
    fn port_range_is_the_schemas() {
        assert_eq!(SCHEMA.field("port").unwrap().range, Some((1, 65535)));
    }

    #[test]
    fn observed_listener_maps_certificate_policy_and_action() {
        use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum};
        let l = AwsListener::builder()
            .listener_arn("arn:l")
            .load_balancer_arn("arn:lb")
            .port(443)
            .protocol(ProtocolEnum::Https)
            .ssl_policy("ELBSecurityPolicy-TLS13-1-2-2021-06")
            .certificates(Certificate::builder().certificate_arn("arn:cert").build())
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn("arn:tg")
                    .build(),
            )
            .build();
        let o = observed(&l, IndexMap::new()).unwrap();
        let want = m(&[
            ("load_balancer_arn", Value::str("arn:lb")),
            ("port", Value::Int(443)),
            ("protocol", Value::str("HTTPS")),
            (
                "ssl_policy",
                Value::str("ELBSecurityPolicy-TLS13-1-2-2021-06"),
            ),
            ("certificate_arn", Value::str("arn:cert")),
            (
                "default_action",
                Value::Map(m(&[
                    ("type", Value::str("forward")),
                    ("target_group_arn", Value::str("arn:tg")),
                ])),
            ),
        ]);
        assert!(Listener.diff(&want, &o.fields).is_empty());
        let mut other = want.clone();
        other.insert("certificate_arn".into(), Value::str("arn:other"));
        let d = Listener.diff(&other, &o.fields);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "certificate_arn");
        assert!(!d[0].forces_replace);
    }
}
