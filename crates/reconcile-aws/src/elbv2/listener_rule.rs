//! `listener_rule`: a rule of a listener: conditions on the request (host,
//! path, header, method, source address) and the action for requests that
//! match them.
//!
//! Observing costs one DescribeRules per 20 rules; tags come from the observe
//! pass's stack tag index, or cost one DescribeTags per 20 rules the index does
//! not list.

use crate::elbv2::{self, elb_error, named, vanished, Problem, ACTION_FIELDS};
use crate::kit::fields::{changes_field, i32_of, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    HostHeaderConditionConfig as HostConfig, HttpHeaderConditionConfig,
    HttpRequestMethodConditionConfig as MethodConfig, PathPatternConditionConfig as PathConfig,
    Rule as AwsRule, RuleCondition, RulePriorityPair, SourceIpConditionConfig as SourceIpConfig,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct ListenerRule;

const HTTP_HEADER_FIELDS: &[Field] = &[
    Field::new(
        "name",
        Ty::Str,
        "The header's name, like \"X-Environment\".",
    )
    .required(),
    Field::new(
        "values",
        Ty::List(&Ty::Str),
        "Values that match (any of them; * and ? are wildcards).",
    )
    .required(),
];

pub const CONDITION_FIELDS: &[Field] = &[
    Field::new(
        "host_header",
        Ty::List(&Ty::Str),
        "Host names that match, like [\"auth.example.com\"] (* and ? are wildcards).",
    ),
    Field::new(
        "path_pattern",
        Ty::List(&Ty::Str),
        "Paths that match, like [\"/api/*\"] (case-sensitive; * and ? are wildcards).",
    ),
    Field::new(
        "http_header",
        Ty::List(&Ty::Object(HTTP_HEADER_FIELDS)),
        "Header conditions, like [{ name = \"X-Env\", values = [\"blue\"] }].",
    ),
    Field::new(
        "http_request_method",
        Ty::List(&Ty::Str),
        "Request methods that match, like [\"GET\", \"HEAD\"].",
    ),
    Field::new(
        "source_ip",
        Ty::List(&Ty::Str),
        "Client address ranges that match, as CIDR blocks.",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "listener_rule",
    doc: "A listener rule: requests matching all its conditions get its action instead of the \
          listener's default one; rules are evaluated by priority, lowest first. The priority \
          (SetRulePriorities), conditions and action (ModifyRule) change in place. A create \
          looks for a rule with the same priority on the listener first. Observing costs one \
          DescribeRules per 20 rules; tags come from the plan's one Resource Groups Tagging \
          API read of the whole stack (GetResources, 100 resources a page, shared by every \
          kind), or cost one DescribeTags per 20 rules that read does not list.",
    fields: &[
        Field::new(
            "listener_arn",
            Ty::Str,
            "The listener, like \"${listener.https.arn}\". Changing it replaces the rule.",
        )
        .required()
        .force_new(),
        Field::new(
            "priority",
            Ty::Int,
            "1-50000, unique on the listener; lower is evaluated first. Changed in place.",
        )
        .required()
        .range(1, 50000),
        Field::new(
            "conditions",
            Ty::Object(CONDITION_FIELDS),
            "What a request must match, all of it: `{ host_header = [\"auth.example.com\"], \
             path_pattern = [\"/admin/*\"] }`; also http_header, http_request_method, source_ip. \
             Changed in place.",
        )
        .required(),
        Field::new(
            "action",
            Ty::Object(ACTION_FIELDS),
            "What matching requests get; the same table as a listener's default_action \
             (forward, redirect or fixed-response). Changed in place.",
        )
        .norm(Norm::With(elbv2::action_norm))
        .required(),
    ],
    attributes: &[("id", "The rule's ARN."), ("arn", "The rule's ARN.")],
    taggable: true,
};

fn strs(v: &[String]) -> Vec<Value> {
    v.iter().map(Value::str).collect()
}

/// A rule's conditions as the `conditions` table: one key per condition type.
pub fn conditions_value(conds: &[RuleCondition]) -> Value {
    let mut by_key: IndexMap<&str, Vec<Value>> =
        CONDITION_FIELDS.iter().map(|f| (f.name, vec![])).collect();
    for c in conds {
        // AWS answers both the config and the older `Values` for host and path.
        let or_values = |config: Option<&[String]>| match config {
            Some(v) if !v.is_empty() => strs(v),
            _ => strs(c.values()),
        };
        let (key, values) = match c.field().unwrap_or_default() {
            "host-header" => (
                "host_header",
                or_values(c.host_header_config().map(|h| h.values())),
            ),
            "path-pattern" => (
                "path_pattern",
                or_values(c.path_pattern_config().map(|p| p.values())),
            ),
            "http-header" => {
                let Some(h) = c.http_header_config() else {
                    continue;
                };
                let mut m = Fields::new();
                let name = h.http_header_name().unwrap_or_default();
                m.insert("name".into(), Value::str(name));
                m.insert("values".into(), Value::List(strs(h.values())));
                ("http_header", vec![Value::Map(m)])
            }
            "http-request-method" => match c.http_request_method_config() {
                Some(h) => ("http_request_method", strs(h.values())),
                None => continue,
            },
            "source-ip" => match c.source_ip_config() {
                Some(s) => ("source_ip", strs(s.values())),
                None => continue,
            },
            _ => continue,
        };
        by_key[key].extend(values);
    }
    let present = by_key.into_iter().filter(|(_, v)| !v.is_empty());
    Value::Map(
        present
            .map(|(k, v)| (k.to_string(), Value::List(v)))
            .collect(),
    )
}

/// The `conditions` table as the API's conditions.
pub fn conditions_to_sdk(m: &Fields, what: &str) -> Result<Vec<RuleCondition>, ProviderError> {
    if m.values().any(Value::is_unknown) {
        return Err(ProviderError::InvalidInput(format!(
            "{what}: a condition value is not known yet"
        )));
    }
    let list = |k: &str| m.get(k).map(Value::str_list).filter(|l| !l.is_empty());
    let mut out = Vec::new();
    // Each condition type has its own config type, all with the same `values`.
    macro_rules! condition {
        ($key:literal, $setter:ident, $config:ident) => {
            if let Some(v) = list($key) {
                let config = $config::builder().set_values(Some(v)).build();
                let c = RuleCondition::builder().field($key.replace('_', "-"));
                out.push(c.$setter(config).build());
            }
        };
    }
    condition!("host_header", host_header_config, HostConfig);
    condition!("path_pattern", path_pattern_config, PathConfig);
    if let Some(headers) = m.get("http_header").and_then(Value::as_list) {
        for h in headers.iter().filter_map(Value::as_map) {
            let config = HttpHeaderConditionConfig::builder()
                .set_http_header_name(str_of(h, "name").map(str::to_string))
                .set_values(h.get("values").map(Value::str_list))
                .build();
            let c = RuleCondition::builder().field("http-header");
            out.push(c.http_header_config(config).build());
        }
    }
    condition!(
        "http_request_method",
        http_request_method_config,
        MethodConfig
    );
    condition!("source_ip", source_ip_config, SourceIpConfig);
    if out.is_empty() {
        return Err(ProviderError::InvalidInput(format!(
            "{what}: a rule needs at least one condition"
        )));
    }
    Ok(out)
}

pub fn observed(r: &AwsRule, tags: IndexMap<String, String>) -> Option<Observed> {
    if r.is_default() == Some(true) {
        return None;
    }
    let arn = r.rule_arn()?;
    let listener = elbv2::listener_of_rule(arn).unwrap_or_default();
    let priority = r.priority().and_then(|p| p.parse().ok()).unwrap_or(0);
    let f = elbv2::fields([
        ("listener_arn", Value::str(listener)),
        ("priority", Value::Int(priority)),
        ("conditions", conditions_value(r.conditions())),
        ("action", elbv2::action_from_sdk(r.actions())),
    ]);
    elbv2::observation(arn, f, [], tags)
}

async fn complete(cx: &Cx, rules: Vec<AwsRule>) -> Result<Vec<Observed>, ProviderError> {
    // A listener's default rule is the listener's own default_action.
    let rules = rules.into_iter().filter(|r| r.is_default() != Some(true));
    elbv2::complete(
        cx,
        SCHEMA.kind,
        rules.collect(),
        AwsRule::rule_arn,
        elbv2::no_attributes,
        |r, _, tags| observed(r, tags),
    )
    .await
}

pub async fn observe_one(cx: &Cx, arn: &str) -> Result<Option<Observed>, ProviderError> {
    let rules = elbv2::describe_rules(cx, &[arn.to_string()]).await?;
    Ok(complete(cx, rules).await?.into_iter().next())
}

/// Problems visible in the declaration alone.
fn problems(f: &Fields) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(c) = f.get("conditions").and_then(Value::as_map) {
        let any = c
            .values()
            .any(|v| v.as_list().is_none_or(|l| !l.is_empty()));
        if !any {
            out.push((
                "conditions",
                "a rule needs at least one condition".into(),
                "add `host_header = [...]` or `path_pattern = [...]` to conditions".into(),
            ));
        }
    }
    if let Some(m) = f.get("action").and_then(Value::as_map) {
        for (_, msg, help) in elbv2::action_problems(m) {
            out.push(("action", format!("action: {msg}"), help));
        }
    }
    out
}

fn conditions_of(f: &Fields, address: &str) -> Result<Vec<RuleCondition>, ProviderError> {
    let m = f.get("conditions").and_then(Value::as_map).ok_or_else(|| {
        ProviderError::InvalidInput(format!("{address}: `conditions` must be a table"))
    })?;
    conditions_to_sdk(m, &format!("{address}.conditions"))
}

fn action_of(
    f: &Fields,
    address: &str,
) -> Result<aws_sdk_elasticloadbalancingv2::types::Action, ProviderError> {
    let m = f.get("action").and_then(Value::as_map).ok_or_else(|| {
        ProviderError::InvalidInput(format!("{address}: `action` must be a table"))
    })?;
    elbv2::action_to_sdk(m, &format!("{address}.action"))
}

#[async_trait]
impl Provider for ListenerRule {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        elbv2::diagnostics(r, problems(&r.fields))
    }

    /// A priority is unique on its listener: a new copy can only be made
    /// beside the old one on another listener or at another priority.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "listener_arn") || changes_field(changes, "priority")
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rules = elbv2::describe_rules(cx, ids).await?;
        Ok(elbv2::by_id(complete(cx, rules).await?))
    }

    /// Every listener's rules are read: rules have no name to search by (one
    /// DescribeListeners per load balancer and one DescribeRules per listener).
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
            let Some(lb) = lb.load_balancer_arn() else {
                continue;
            };
            for l in elbv2::listeners_of(cx, lb).await? {
                if let Some(arn) = l.listener_arn() {
                    all.extend(elbv2::rules_of(cx, arn).await?);
                }
            }
        }
        Ok(elbv2::by_address(cx, complete(cx, all).await?, addresses))
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        elbv2::refuse(addr, problems(f))?;
        let conditions = conditions_of(f, addr)?;
        let action = action_of(f, addr)?;
        let listener = str_of(f, "listener_arn").unwrap_or_default();
        let priority = i32_of(f, "priority").unwrap_or_default();
        let existing = elbv2::rules_of(cx, listener)
            .await
            .map_err(|e| named(addr, "looking for a rule with the priority", e))?
            .into_iter()
            .find(|r| r.priority() == Some(priority.to_string().as_str()));
        if let Some(r) = existing {
            let what = format!("a rule with priority {priority} on {listener}");
            let live = complete(cx, vec![r]).await?.pop();
            let live = live.ok_or_else(|| vanished(addr, &what, "while adopting it"))?;
            return elbv2::adopt(self, cx, want, &what, live, false).await;
        }
        let out = cx
            .elbv2
            .create_rule()
            .listener_arn(listener)
            .priority(priority)
            .set_conditions(Some(conditions))
            .actions(action)
            .set_tags(Some(elbv2::to_tags(want.tags)))
            .send()
            .await
            .map_err(|e| named(addr, "creating", elb_error(e)))?;
        let arn = out
            .rules()
            .first()
            .and_then(|r| r.rule_arn())
            .ok_or_else(|| ProviderError::Other(format!("{addr}: CreateRule returned no rule")))?
            .to_string();
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
        if ch("priority") {
            cx.elbv2
                .set_rule_priorities()
                .rule_priorities(
                    RulePriorityPair::builder()
                        .rule_arn(arn)
                        .set_priority(i32_of(f, "priority"))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| named(addr, "setting the priority", elb_error(e)))?;
        }
        if ch("conditions") || ch("action") {
            cx.elbv2
                .modify_rule()
                .rule_arn(arn)
                .set_conditions(Some(conditions_of(f, addr)?))
                .actions(action_of(f, addr)?)
                .send()
                .await
                .map_err(|e| named(addr, "modifying", elb_error(e)))?;
        }
        elbv2::retag_and_read(cx, live, want, changes, observe_one(cx, arn)).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let answer = cx.elbv2.delete_rule().rule_arn(id).send().await;
        elbv2::deleted(answer.map_err(elb_error), &format!("listener_rule {id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_round_trip() {
        let mut m = Fields::new();
        m.insert(
            "host_header".into(),
            crate::kit::fields::str_list(["auth.example.com".to_string()]),
        );
        m.insert(
            "path_pattern".into(),
            crate::kit::fields::str_list(["/admin/*".to_string()]),
        );
        let mut h = Fields::new();
        h.insert("name".into(), Value::str("X-Env"));
        h.insert(
            "values".into(),
            crate::kit::fields::str_list(["blue".to_string()]),
        );
        m.insert("http_header".into(), Value::List(vec![Value::Map(h)]));
        let sdk = conditions_to_sdk(&m, "r").unwrap();
        assert_eq!(sdk.len(), 3);
        assert_eq!(conditions_value(&sdk), Value::Map(m));
        // The older `Values` form reads the same.
        let old = RuleCondition::builder()
            .field("path-pattern")
            .values("/api/*")
            .build();
        let v = conditions_value(&[old]);
        assert_eq!(
            v.as_map().unwrap()["path_pattern"],
            crate::kit::fields::str_list(["/api/*".to_string()])
        );
        assert!(conditions_to_sdk(&Fields::new(), "r").is_err());
    }

    #[test]
    fn priorities_and_empty_conditions_are_refused() {
        assert_eq!(SCHEMA.field("priority").unwrap().range, Some((1, 50000)));
        let mut f = Fields::new();
        f.insert("conditions".into(), Value::Map(Fields::new()));
        let p = problems(&f);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "conditions");
    }
}
