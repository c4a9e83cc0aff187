//! `web_acl`: a WAFv2 web ACL (AWS managed rule groups and rate limits), plus the
//! WAF helpers `web_acl_association` shares (error typing, ARN parsing).
//!
//! WAF has no batch read: observing costs one `ListWebACLs` per page (which tells
//! which ACLs still exist), then one `GetWebACL` (the rules) per ACL; tags come
//! from the observe pass's stack tag index, or cost one `ListTagsForResource`
//! per ACL the index does not list. Updates replace the ACL's whole configuration
//! with `UpdateWebACL`, guarded by the lock token read just before; a
//! `WAFOptimisticLockException` (someone else wrote in between) re-reads and
//! retries twice.

use crate::elbv2::{diagnostics, fields, Problem};
use crate::kit::adopt::take_over;
use crate::kit::each;
use crate::kit::error::at;
use crate::kit::error::unless_gone as found;
use crate::kit::fields::str_of;
use crate::kit::tags::stack_address;
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_wafv2::types::{
    AllowAction, BlockAction, CountAction, DefaultAction, ExcludedRule, ManagedRuleGroupStatement,
    NoneAction, OverrideAction, RateBasedStatement, RateBasedStatementAggregateKeyType, Rule,
    RuleAction, Scope, Statement, Tag, VisibilityConfig, WebAcl as AwsWebAcl,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use indexmap::IndexMap;
use reconcile_core::diff::normal_form;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeSet, HashMap};

pub struct WebAcl;

/// How many times an update or delete re-reads the lock token after losing a race.
const LOCK_RETRIES: usize = 2;

const VISIBILITY_FIELDS: &[Field] = &[
    Field::new(
        "cloudwatch_metrics_enabled",
        Ty::Bool,
        "Publish CloudWatch metrics (the API's CloudWatchMetricsEnabled).",
    )
    .default(Default::Bool(true)),
    Field::new(
        "sampled_requests_enabled",
        Ty::Bool,
        "Keep samples of the requests that matched.",
    )
    .default(Default::Bool(true)),
    Field::new(
        "metric_name",
        Ty::Str,
        "The CloudWatch metric name; default: the rule's (or the ACL's) name.",
    ),
];

const MANAGED_FIELDS: &[Field] = &[
    Field::new(
        "vendor",
        Ty::Str,
        "Who publishes the rule group (the API's VendorName).",
    )
    .default(Default::Str("AWS")),
    Field::new(
        "name",
        Ty::Str,
        "The rule group, like \"AWSManagedRulesCommonRuleSet\".",
    )
    .required(),
    Field::new(
        "version",
        Ty::Str,
        "A pinned version of the rule group; left out, the vendor's default version.",
    ),
    Field::new(
        "excluded_rules",
        Ty::List(&Ty::Str),
        "Rules of the group that only count instead of acting (default none), compared as a set.",
    )
    .set(),
];

const RATE_FIELDS: &[Field] = &[
    Field::new(
        "limit",
        Ty::Int,
        "Requests allowed per client in the evaluation window (10 to 2,000,000,000).",
    )
    .required()
    .range(10, 2_000_000_000),
    Field::new(
        "aggregate_key_type",
        Ty::Enum(&["IP"]),
        "What a client is: \"IP\" (its source address).",
    )
    .default(Default::Str("IP")),
    Field::new(
        "evaluation_window_sec",
        Ty::Int,
        "The window the limit is counted over: 60, 120, 300 or 600 seconds.",
    )
    .default(Default::Int(300)),
];

const RULE_FIELDS: &[Field] = &[
    Field::new("name", Ty::Str, "The rule's name, unique within the ACL.").required(),
    Field::new(
        "priority",
        Ty::Int,
        "Evaluation order, lowest first (from 0); unique within the ACL.",
    )
    .required()
    .range(0, i32::MAX as i64),
    Field::new(
        "managed_rule_group",
        Ty::Object(MANAGED_FIELDS),
        "A managed rule group statement; exclusive with rate_limit.",
    ),
    Field::new(
        "override_action",
        Ty::Enum(&["none", "count"]),
        "Managed rule groups only: \"none\" lets the group act (default), \"count\" only counts.",
    ),
    Field::new(
        "rate_limit",
        Ty::Object(RATE_FIELDS),
        "A rate-based statement; exclusive with managed_rule_group.",
    ),
    Field::new(
        "action",
        Ty::Enum(&["block", "count"]),
        "Rate limits only: what happens over the limit, \"block\" (default) or \"count\".",
    ),
    Field::new(
        "visibility",
        Ty::Object(VISIBILITY_FIELDS),
        "Metrics and sampling for the rule (default: both on, metric named after the rule).",
    ),
];

pub static SCHEMA: Schema = Schema {
    kind: "web_acl",
    doc: "A WAFv2 web ACL with AWS managed rule groups and rate limits. Updated in place with \
          UpdateWebACL and its lock token (re-read and retried when someone else wrote meanwhile); \
          a rule changed outside reconcile is drift on `rules`. Observing costs one ListWebACLs \
          per page plus one GetWebACL per ACL (WAF has no batch read); tags come from the \
          plan's one Resource Groups Tagging API read of the whole stack (GetResources, 100 \
          resources a page, shared by every kind), or cost one ListTagsForResource per ACL \
          that read does not list. State tracks the ACL by its ARN (import it with the ARN).",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The ACL's name (letters, digits, _ and -). Changing it replaces the ACL.",
        )
        .required()
        .force_new(),
        Field::new(
            "scope",
            Ty::Enum(&["REGIONAL", "CLOUDFRONT"]),
            "REGIONAL (load balancers, API Gateway) or CLOUDFRONT (only in us-east-1). \
             Changing it replaces the ACL.",
        )
        .default(Default::Str("REGIONAL"))
        .force_new(),
        Field::new(
            "description",
            Ty::Str,
            "What the ACL is for; updated in place.",
        ),
        Field::new(
            "default_action",
            Ty::Enum(&["allow", "block"]),
            "What happens to a request no rule acts on; updated in place.",
        )
        .default(Default::Str("allow")),
        Field::new(
            "rules",
            Ty::List(&Ty::Object(RULE_FIELDS)),
            "The ACL's rules, each with a name, a priority and exactly one statement \
             (managed_rule_group or rate_limit); compared as a set, updated in place. \
             Left out, the live rules are not managed.",
        )
        .norm(Norm::With(rules_norm))
        .set(),
        Field::new(
            "visibility",
            Ty::Object(VISIBILITY_FIELDS),
            "Metrics and sampling for the ACL (default: both on, metric named after the ACL); \
             updated in place.",
        )
        .norm(Norm::With(acl_visibility_norm))
        .default(Default::Table),
    ],
    attributes: &[
        ("id", "The ACL's WAF id (a UUID)."),
        ("arn", "The ACL's ARN, as web_acl_association takes it."),
        ("name", "The ACL's name."),
        ("capacity", "The web ACL capacity units its rules use."),
    ],
    taggable: true,
};

/// WAF names: 1 to 128 letters, digits, `_` and `-`.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 128 {
        return Err(format!("\"{s}\": a web ACL name has 1 to 128 characters"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "\"{s}\": use letters, digits, _ and - only in a web ACL name"
        ));
    }
    Ok(())
}

/// CloudWatch metric names as WAF takes them: no spaces, 1 to 255 characters.
fn check_metric_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 255 {
        return Err(format!("metric name \"{s}\" must have 1 to 255 characters"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-#:./".contains(c))
    {
        return Err(format!(
            "metric name \"{s}\" may hold letters, digits and _-#:./ only (no spaces)"
        ));
    }
    Ok(())
}

/// Types a WAF SDK error: WAF says `WAFNonexistentItemException` for "not found".
pub fn waf_error<E, R>(e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match ProviderError::from_sdk(e) {
        ProviderError::Aws { code, message } if code == "WAFNonexistentItemException" => {
            ProviderError::NotFound(format!("{code}: {message}"))
        }
        ProviderError::Aws { code, message } if code == "WAFInvalidParameterException" => {
            ProviderError::InvalidInput(format!("{code}: {message}"))
        }
        other => other,
    }
}

/// Whether `e` is AWS's `code` (WAF and moto spell some codes differently: pass both).
pub fn is_code(e: &ProviderError, codes: &[&str]) -> bool {
    matches!(e, ProviderError::Aws { code, .. } if codes.contains(&code.as_str()))
}

/// A web ACL's coordinates, read from its ARN
/// (`arn:aws:wafv2:REGION:ACCOUNT:regional/webacl/NAME/ID`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclArn {
    pub arn: String,
    pub scope: &'static str,
    pub name: String,
    pub id: String,
}

impl AclArn {
    pub fn parse(arn: &str) -> Option<AclArn> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "wafv2" {
            return None;
        }
        let path: Vec<&str> = parts[5].split('/').collect();
        let [scope, "webacl", name, id] = path.as_slice() else {
            return None;
        };
        let scope = match *scope {
            "regional" => "REGIONAL",
            "global" => "CLOUDFRONT",
            _ => return None,
        };
        Some(AclArn {
            arn: arn.to_string(),
            scope,
            name: name.to_string(),
            id: id.to_string(),
        })
    }

    fn sdk_scope(&self) -> Scope {
        Scope::from(self.scope)
    }
}

fn bad_id(id: &str) -> ProviderError {
    ProviderError::InvalidInput(format!(
        "`{id}` is not a web ACL ARN (arn:aws:wafv2:REGION:ACCOUNT:regional/webacl/NAME/ID)"
    ))
}

// ---------------------------------------------------------------------------
// The canonical shape of rules and visibility, shared by desired and observed.

/// A visibility table with WAF's defaults filled in.
fn canonical_visibility(v: Option<&Value>, default_metric: Option<&Value>) -> Value {
    let given = v.and_then(Value::as_map).cloned().unwrap_or_default();
    let mut out = Fields::new();
    for k in ["cloudwatch_metrics_enabled", "sampled_requests_enabled"] {
        out.insert(k.into(), given.get(k).cloned().unwrap_or(Value::Bool(true)));
    }
    let metric = given
        .get("metric_name")
        .cloned()
        .or_else(|| default_metric.cloned())
        .unwrap_or(Value::Unknown);
    out.insert("metric_name".into(), metric);
    Value::Map(out)
}

/// A rule in the shape observe reports, with the defaults that depend on its
/// statement (the schema fills in the others).
fn canonical_rule(m: &Fields) -> Fields {
    let statement = |k: &str, v: &Value| {
        matches!(v, Value::Map(_)) && (k == "managed_rule_group" || k == "rate_limit")
    };
    let mut out: Fields = m
        .iter()
        .filter(|(k, v)| k.as_str() == "name" || k.as_str() == "priority" || statement(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (kind, action, default) in [
        ("managed_rule_group", "override_action", "none"),
        ("rate_limit", "action", "block"),
    ] {
        if out.contains_key(kind) {
            let v = m.get(action).cloned().unwrap_or(Value::str(default));
            out.insert(action.into(), v);
        }
    }
    out.insert(
        "visibility".into(),
        canonical_visibility(m.get("visibility"), m.get("name")),
    );
    out
}

/// The rules' normal form: the defaults WAF fills in (visibility, empty
/// exclusions, actions) written out, so equal ACLs compare equal.
fn rules_norm(v: &Value, _: &Fields) -> Value {
    match v {
        Value::List(rules) => Value::List(
            rules
                .iter()
                .map(|r| match r {
                    Value::Map(m) => Value::Map(canonical_rule(m)),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The ACL's visibility with WAF's defaults; the metric is named after the ACL.
fn acl_visibility_norm(v: &Value, acl: &Fields) -> Value {
    canonical_visibility(Some(v), acl.get("name"))
}

/// The desired fields in the shape WAF takes and observe reports them.
pub fn canonical(desired: &Fields) -> Fields {
    let mut want = desired.clone();
    want.entry("visibility".to_string())
        .or_insert_with(|| Value::Map(Fields::new()));
    normal_form(&SCHEMA, &want)
}

fn visibility_value(v: Option<&VisibilityConfig>) -> Value {
    let flag = |on: fn(&VisibilityConfig) -> bool| Value::Bool(v.is_some_and(on));
    Value::Map(fields([
        (
            "cloudwatch_metrics_enabled",
            flag(|v| v.cloud_watch_metrics_enabled()),
        ),
        (
            "sampled_requests_enabled",
            flag(|v| v.sampled_requests_enabled()),
        ),
        ("metric_name", Value::str(v.map_or("", |v| v.metric_name()))),
    ]))
}

/// The kind of statement a rule holds that this kind does not model, by its API name.
fn other_statement(s: &Statement) -> &'static str {
    if s.byte_match_statement().is_some() {
        "ByteMatchStatement"
    } else if s.sqli_match_statement().is_some() {
        "SqliMatchStatement"
    } else if s.xss_match_statement().is_some() {
        "XssMatchStatement"
    } else if s.geo_match_statement().is_some() {
        "GeoMatchStatement"
    } else if s.ip_set_reference_statement().is_some() {
        "IPSetReferenceStatement"
    } else if s.rule_group_reference_statement().is_some() {
        "RuleGroupReferenceStatement"
    } else if s.label_match_statement().is_some() {
        "LabelMatchStatement"
    } else if s.and_statement().is_some()
        || s.or_statement().is_some()
        || s.not_statement().is_some()
    {
        "a logical statement"
    } else {
        "another statement"
    }
}

fn rule_action_name(a: &RuleAction) -> &'static str {
    if a.block().is_some() {
        "block"
    } else if a.count().is_some() {
        "count"
    } else if a.allow().is_some() {
        "allow"
    } else if a.captcha().is_some() {
        "captcha"
    } else if a.challenge().is_some() {
        "challenge"
    } else {
        "other"
    }
}

/// One live rule in the canonical shape. A statement this kind does not model
/// is shown by its name, so an out-of-band rule of any kind is visible drift.
pub fn rule_value(r: &Rule) -> Value {
    let mut out = Fields::new();
    out.insert("name".into(), Value::str(r.name()));
    out.insert("priority".into(), Value::Int(r.priority().into()));
    let st = r.statement();
    if let Some(g) = st.and_then(|s| s.managed_rule_group_statement()) {
        let mut group = Fields::new();
        group.insert("vendor".into(), Value::str(g.vendor_name()));
        group.insert("name".into(), Value::str(g.name()));
        if let Some(v) = g.version() {
            group.insert("version".into(), Value::str(v));
        }
        let mut excluded: Vec<&str> = g.excluded_rules().iter().map(|e| e.name()).collect();
        excluded.sort();
        group.insert(
            "excluded_rules".into(),
            Value::List(excluded.into_iter().map(Value::str).collect()),
        );
        out.insert("managed_rule_group".into(), Value::Map(group));
        let count = r.override_action().is_some_and(|o| o.count().is_some());
        out.insert(
            "override_action".into(),
            Value::str(if count { "count" } else { "none" }),
        );
    } else if let Some(rate) = st.and_then(|s| s.rate_based_statement()) {
        let mut m = Fields::new();
        m.insert("limit".into(), Value::Int(rate.limit()));
        m.insert(
            "aggregate_key_type".into(),
            Value::str(rate.aggregate_key_type().as_str()),
        );
        // WAF's default window; moto echoes the request, which may leave it out.
        let window = match rate.evaluation_window_sec() {
            0 => 300,
            w => w,
        };
        m.insert("evaluation_window_sec".into(), Value::Int(window));
        out.insert("rate_limit".into(), Value::Map(m));
        out.insert(
            "action".into(),
            Value::str(r.action().map(rule_action_name).unwrap_or("none")),
        );
    } else {
        out.insert(
            "statement".into(),
            Value::str(st.map(other_statement).unwrap_or("none")),
        );
        if let Some(a) = r.action() {
            out.insert("action".into(), Value::str(rule_action_name(a)));
        }
    }
    out.insert("visibility".into(), visibility_value(r.visibility_config()));
    Value::Map(out)
}

fn observed(acl: &AwsWebAcl, scope: &str, tags: IndexMap<String, String>) -> Observed {
    let mut f = fields([
        ("name", Value::str(acl.name())),
        ("scope", Value::str(scope)),
    ]);
    // moto reports a missing description as "": the same thing.
    if let Some(d) = acl.description().filter(|d| !d.is_empty()) {
        f.insert("description".into(), Value::str(d));
    }
    let block = acl.default_action().is_some_and(|a| a.block().is_some());
    f.extend(fields([
        (
            "default_action",
            Value::str(if block { "block" } else { "allow" }),
        ),
        (
            "rules",
            Value::List(acl.rules().iter().map(rule_value).collect()),
        ),
        ("visibility", visibility_value(acl.visibility_config())),
    ]));
    let attributes = fields([
        ("id", Value::str(acl.id())),
        ("arn", Value::str(acl.arn())),
        ("name", Value::str(acl.name())),
        ("capacity", Value::Int(acl.capacity())),
    ]);
    let id = acl.arn().to_string();
    Observed {
        id,
        fields: f,
        attributes,
        tags,
    }
}

// ---------------------------------------------------------------------------
// Desired values -> SDK types.

fn bad(address: &str, msg: String) -> ProviderError {
    ProviderError::InvalidInput(format!("{address}: {msg}"))
}

fn req_str(m: &Fields, k: &str, address: &str, what: &str) -> Result<String, ProviderError> {
    str_of(m, k)
        .map(str::to_string)
        .ok_or_else(|| bad(address, format!("{what}: `{k}` must be a known string")))
}

fn req_int(m: &Fields, k: &str, address: &str, what: &str) -> Result<i64, ProviderError> {
    m.get(k)
        .and_then(Value::as_int)
        .ok_or_else(|| bad(address, format!("{what}: `{k}` must be a known integer")))
}

fn sdk_visibility(v: &Value, address: &str, what: &str) -> Result<VisibilityConfig, ProviderError> {
    let m = v
        .as_map()
        .ok_or_else(|| bad(address, format!("{what}: visibility must be a table")))?;
    let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(true);
    VisibilityConfig::builder()
        .cloud_watch_metrics_enabled(flag("cloudwatch_metrics_enabled"))
        .sampled_requests_enabled(flag("sampled_requests_enabled"))
        .metric_name(req_str(m, "metric_name", address, what)?)
        .build()
        .map_err(|e| bad(address, format!("{what}: {e}")))
}

/// A canonical desired rule as WAF takes it.
fn sdk_rule(m: &Fields, address: &str) -> Result<Rule, ProviderError> {
    let name = req_str(m, "name", address, "a rule")?;
    let what = format!("rule `{name}`");
    let priority = req_int(m, "priority", address, &what)?;
    let priority = i32::try_from(priority)
        .map_err(|_| bad(address, format!("{what}: priority {priority} is too large")))?;
    let mut rule = Rule::builder().name(&name).priority(priority);
    match (m.get("managed_rule_group"), m.get("rate_limit")) {
        (Some(Value::Map(g)), None) => {
            let excluded = g
                .get("excluded_rules")
                .map(Value::str_list)
                .unwrap_or_default()
                .into_iter()
                .map(|n| ExcludedRule::builder().name(n).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(address, format!("{what}: {e}")))?;
            let group = ManagedRuleGroupStatement::builder()
                .vendor_name(req_str(g, "vendor", address, &what)?)
                .name(req_str(g, "name", address, &what)?)
                .set_version(str_of(g, "version").map(str::to_string))
                .set_excluded_rules((!excluded.is_empty()).then_some(excluded))
                .build()
                .map_err(|e| bad(address, format!("{what}: {e}")))?;
            let over = match str_of(m, "override_action") {
                Some("count") => OverrideAction::builder()
                    .count(CountAction::builder().build())
                    .build(),
                _ => OverrideAction::builder()
                    .none(NoneAction::builder().build())
                    .build(),
            };
            rule = rule
                .statement(
                    Statement::builder()
                        .managed_rule_group_statement(group)
                        .build(),
                )
                .override_action(over);
        }
        (None, Some(Value::Map(r))) => {
            let rate = RateBasedStatement::builder()
                .limit(req_int(r, "limit", address, &what)?)
                .aggregate_key_type(RateBasedStatementAggregateKeyType::from(
                    str_of(r, "aggregate_key_type").unwrap_or("IP"),
                ))
                .evaluation_window_sec(
                    r.get("evaluation_window_sec")
                        .and_then(Value::as_int)
                        .unwrap_or(300),
                )
                .build()
                .map_err(|e| bad(address, format!("{what}: {e}")))?;
            let action = match str_of(m, "action") {
                Some("count") => RuleAction::builder()
                    .count(CountAction::builder().build())
                    .build(),
                _ => RuleAction::builder()
                    .block(BlockAction::builder().build())
                    .build(),
            };
            rule = rule
                .statement(Statement::builder().rate_based_statement(rate).build())
                .action(action);
        }
        _ => {
            return Err(bad(
                address,
                format!("{what}: give exactly one of `managed_rule_group` or `rate_limit`"),
            ))
        }
    }
    let vis = m
        .get("visibility")
        .cloned()
        .unwrap_or_else(|| canonical_visibility(None, Some(&Value::str(&name))));
    rule.visibility_config(sdk_visibility(&vis, address, &what)?)
        .build()
        .map_err(|e| bad(address, format!("{what}: {e}")))
}

/// The declared rules as WAF takes them; `None` when `rules` is not declared.
fn sdk_rules(want: &Fields, address: &str) -> Result<Option<Vec<Rule>>, ProviderError> {
    match want.get("rules") {
        None => Ok(None),
        Some(Value::List(items)) => items
            .iter()
            .map(|r| match r {
                Value::Map(m) => sdk_rule(m, address),
                other => Err(bad(
                    address,
                    format!("a rule must be a table, found {other}"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(bad(address, format!("`rules` is not known yet ({other})"))),
    }
}

fn sdk_default_action(want: &Fields) -> DefaultAction {
    match str_of(want, "default_action") {
        Some("block") => DefaultAction::builder()
            .block(BlockAction::builder().build())
            .build(),
        _ => DefaultAction::builder()
            .allow(AllowAction::builder().build())
            .build(),
    }
}

pub fn sdk_tags(tags: &IndexMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

// ---------------------------------------------------------------------------
// WAF calls.

/// Every web ACL of one scope: one `ListWebACLs` per 100.
pub async fn list_acls(
    cx: &Cx,
    scope: &str,
) -> Result<Vec<aws_sdk_wafv2::types::WebAclSummary>, ProviderError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = cx
            .wafv2
            .list_web_acls()
            .scope(Scope::from(scope))
            .limit(100)
            .set_next_marker(marker.take())
            .send()
            .await
            .map_err(waf_error)?;
        out.extend(page.web_acls().iter().cloned());
        match page.next_marker() {
            Some(m) if !m.is_empty() && !page.web_acls().is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// The ACL and the lock token to change it with; `None` when it is gone.
async fn get_acl(cx: &Cx, a: &AclArn) -> Result<Option<(AwsWebAcl, String)>, ProviderError> {
    let req = cx.wafv2.get_web_acl().name(&a.name).scope(a.sdk_scope());
    let Some(out) = found(req.id(&a.id).send().await.map_err(waf_error))? else {
        return Ok(None);
    };
    let token = out.lock_token().unwrap_or_default().to_string();
    Ok(out.web_acl().cloned().map(|acl| (acl, token)))
}

/// A resource's tags, AWS's own (`aws:*`) left out.
pub async fn list_tags(cx: &Cx, arn: &str) -> Result<IndexMap<String, String>, ProviderError> {
    let mut out = IndexMap::new();
    let mut marker: Option<String> = None;
    loop {
        let page = cx
            .wafv2
            .list_tags_for_resource()
            .resource_arn(arn)
            .limit(100)
            .set_next_marker(marker.take())
            .send()
            .await
            .map_err(waf_error)?;
        let list = page
            .tag_info_for_resource()
            .map(|t| t.tag_list())
            .unwrap_or_default();
        for t in list {
            if !t.key().starts_with("aws:") {
                out.insert(t.key().to_string(), t.value().to_string());
            }
        }
        match page.next_marker() {
            Some(m) if !m.is_empty() && !list.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    out.sort_keys();
    Ok(out)
}

/// An ACL's tags with WAF's own call; `None` when it is gone.
async fn read_acl_tags(
    cx: &Cx,
    arn: &str,
) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    found(list_tags(cx, arn).await)
}

/// GetWebACL, and the tags from the observe pass's stack tag index or
/// ListTagsForResource, for one ACL: `None` when it is gone.
async fn observe_one(cx: &Cx, a: &AclArn) -> Result<Option<Observed>, ProviderError> {
    let Some((acl, _)) = get_acl(cx, a).await? else {
        return Ok(None);
    };
    let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, acl.arn(), &a.arn).await {
        Some(t) => t,
        None => match read_acl_tags(cx, &a.arn).await? {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    Ok(Some(observed(&acl, a.scope, tags)))
}

/// The scopes this stack's region can hold: CLOUDFRONT ACLs live in us-east-1 only.
fn scopes(cx: &Cx) -> &'static [&'static str] {
    if cx.region == "us-east-1" {
        &["REGIONAL", "CLOUDFRONT"]
    } else {
        &["REGIONAL"]
    }
}

/// Writes the ACL's whole configuration: the desired values where declared, the
/// live ones elsewhere (UpdateWebACL resets whatever it is not given). Retries
/// with a fresh lock token when someone else changed the ACL in between.
async fn put_acl(cx: &Cx, a: &AclArn, want: &Fields, address: &str) -> Result<(), ProviderError> {
    let rules = sdk_rules(want, address)?;
    let visibility = match want.get("visibility") {
        Some(v) => Some(sdk_visibility(v, address, "the ACL")?),
        None => None,
    };
    let mut attempt = 0;
    loop {
        let Some((live, token)) = get_acl(cx, a).await? else {
            return Err(ProviderError::NotFound(format!(
                "{address}: web ACL {} is gone; run plan again to re-create it",
                a.arn
            )));
        };
        let description = match want.get("description") {
            Some(v) => v.as_str().map(str::to_string),
            None => live.description().map(str::to_string),
        }
        .filter(|d| !d.is_empty());
        let default_action = if want.contains_key("default_action") {
            Some(sdk_default_action(want))
        } else {
            live.default_action().cloned()
        };
        let req = cx
            .wafv2
            .update_web_acl()
            .name(&a.name)
            .scope(a.sdk_scope())
            .id(&a.id)
            .lock_token(&token)
            .set_default_action(default_action)
            .set_description(description)
            .set_rules(Some(rules.clone().unwrap_or_else(|| live.rules().to_vec())))
            .set_visibility_config(visibility.clone().or(live.visibility_config().cloned()))
            .set_data_protection_config(live.data_protection_config().cloned())
            .set_custom_response_bodies(live.custom_response_bodies().cloned())
            .set_captcha_config(live.captcha_config().cloned())
            .set_challenge_config(live.challenge_config().cloned())
            .set_token_domains(
                (!live.token_domains().is_empty()).then(|| live.token_domains().to_vec()),
            )
            .set_association_config(live.association_config().cloned());
        match req.send().await.map_err(waf_error) {
            Ok(_) => return Ok(()),
            Err(e) if is_code(&e, &["WAFOptimisticLockException"]) && attempt < LOCK_RETRIES => {
                attempt += 1;
                tracing::info!(
                    address,
                    attempt,
                    "web ACL changed meanwhile; re-reading its lock token"
                );
            }
            Err(e) => return Err(at(address, "UpdateWebACL", e)),
        }
    }
}

async fn sync_tags(
    cx: &Cx,
    arn: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
    address: &str,
) -> Result<(), ProviderError> {
    let stale = crate::kit::tags::tag_keys_to_remove(have, want);
    let changed = crate::kit::tags::tags_to_set(have, want);
    if !stale.is_empty() {
        cx.wafv2
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(|e| at(address, "UntagResource", waf_error(e)))?;
    }
    if !changed.is_empty() {
        cx.wafv2
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sdk_tags(&changed)))
            .send()
            .await
            .map_err(|e| at(address, "TagResource", waf_error(e)))?;
    }
    Ok(())
}

/// The config fields the update path compares (tags are handled apart).
const CONFIG_FIELDS: &[&str] = &["description", "default_action", "rules", "visibility"];

impl WebAcl {
    /// Makes an existing ACL match `want` (canonical) and reads it back.
    async fn converge(
        &self,
        cx: &Cx,
        a: &AclArn,
        live: &Observed,
        want: &Fields,
        tags: &IndexMap<String, String>,
        address: &str,
    ) -> Result<Observed, ProviderError> {
        let changes = reconcile_core::plan::diff_fields(&SCHEMA, want, &live.fields);
        if changes
            .iter()
            .any(|c| CONFIG_FIELDS.contains(&c.field.as_str()))
        {
            put_acl(cx, a, want, address).await?;
        }
        if &live.tags != tags {
            sync_tags(cx, &a.arn, &live.tags, tags, address).await?;
        }
        read_back(cx, a, tags, address, "right after it was written").await
    }
}

/// The ACL just written, `when` naming the moment should it be gone.
async fn read_back(
    cx: &Cx,
    a: &AclArn,
    tags: &IndexMap<String, String>,
    address: &str,
    when: &str,
) -> Result<Observed, ProviderError> {
    match get_acl(cx, a).await? {
        Some((acl, _)) => Ok(observed(&acl, a.scope, tags.clone())),
        None => Err(ProviderError::NotFound(format!(
            "{address}: web ACL {} vanished {when}; run plan again",
            a.arn
        ))),
    }
}

/// Problems in one ACL's declaration.
pub fn problems(f: &Fields, region: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    if str_of(f, "scope") == Some("CLOUDFRONT") && region != "us-east-1" {
        out.push((
            "scope",
            format!("a CLOUDFRONT web ACL lives in us-east-1, not in {region}"),
            "put it in a stack whose region is us-east-1, or use scope = \"REGIONAL\"".into(),
        ));
    }
    if let Some(Value::Map(v)) = f.get("visibility") {
        if let Some(Err(e)) = str_of(v, "metric_name").map(check_metric_name) {
            out.push(("visibility", e, "choose another metric_name".into()));
        }
    }
    let Some(Value::List(rules)) = f.get("rules") else {
        return out;
    };
    let mut names = BTreeSet::new();
    let mut priorities = BTreeSet::new();
    for r in rules {
        let Some(m) = r.as_map() else { continue };
        let name = str_of(m, "name").unwrap_or("?").to_string();
        let what = format!("rule `{name}`");
        if str_of(m, "name").is_some() && !names.insert(name.clone()) {
            out.push((
                "rules",
                format!("two rules are named `{name}`"),
                "give each rule its own name".into(),
            ));
        }
        if let Some(p) = m.get("priority").and_then(Value::as_int) {
            if !priorities.insert(p) {
                out.push((
                    "rules",
                    format!("{what}: priority {p} is used by another rule"),
                    "give each rule its own priority".into(),
                ));
            }
        }
        let managed = m.contains_key("managed_rule_group");
        let rate = m.contains_key("rate_limit");
        if managed == rate {
            out.push((
                "rules",
                format!("{what} needs exactly one statement"),
                "give it either `managed_rule_group = { name = \"...\" }` or `rate_limit = { limit = 2000 }`".into(),
            ));
        }
        if m.contains_key("override_action") && !managed {
            out.push((
                "rules",
                format!("{what}: `override_action` is for managed rule groups"),
                "use `action` for a rate limit".into(),
            ));
        }
        if m.contains_key("action") && managed {
            out.push((
                "rules",
                format!("{what}: a managed rule group takes `override_action`, not `action`"),
                "write `override_action = \"none\"` or `\"count\"`".into(),
            ));
        }
        if let Some(Value::Map(rl)) = m.get("rate_limit") {
            if let Some(w) = rl.get("evaluation_window_sec").and_then(Value::as_int) {
                if ![60, 120, 300, 600].contains(&w) {
                    out.push((
                        "rules",
                        format!("{what}: evaluation_window_sec {w} is not one WAF offers"),
                        "use 60, 120, 300 or 600".into(),
                    ));
                }
            }
        }
        if let Some(Value::Map(v)) = m.get("visibility") {
            if let Some(Err(e)) = str_of(v, "metric_name").map(check_metric_name) {
                out.push((
                    "rules",
                    format!("{what}: {e}"),
                    "choose another metric_name".into(),
                ));
            }
        } else if let Err(e) = check_metric_name(&name) {
            out.push((
                "rules",
                format!("{what}: its name is its default metric name, and {e}"),
                "set `visibility = { metric_name = \"...\" }`, or rename the rule".into(),
            ));
        }
    }
    out
}

#[async_trait]
impl Provider for WebAcl {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        diagnostics(r, problems(&r.fields, &stack.region))
    }

    /// A name is unique per scope: only a renamed (or re-scoped) ACL can exist
    /// beside the old one.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes
            .iter()
            .any(|c| c.field == "name" || c.field == "scope")
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let wanted: Vec<AclArn> = ids
            .iter()
            .map(|id| AclArn::parse(id).ok_or_else(|| bad_id(id)))
            .collect::<Result<_, _>>()?;
        let scopes: BTreeSet<&str> = wanted.iter().map(|a| a.scope).collect();
        let mut existing = BTreeSet::new();
        for scope in scopes {
            existing.extend(
                list_acls(cx, scope)
                    .await?
                    .iter()
                    .filter_map(|s| s.arn().map(str::to_string)),
            );
        }
        let present = wanted.into_iter().filter(|a| existing.contains(&a.arn));
        let calls = present.map(|a| async move { observe_one(cx, &a).await });
        let found = each(calls.collect()).await?;
        Ok(found.into_iter().map(|o| (o.id.clone(), o)).collect())
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        let calls = arns
            .iter()
            .map(|arn| async move { Ok(read_acl_tags(cx, arn).await?.map(|t| (arn.clone(), t))) });
        Ok(Some(each(calls.collect()).await?.into_iter().collect()))
    }

    /// One ListTagsForResource per web ACL in the region (WAF cannot search by
    /// tag), then GetWebACL for the ones that are this stack's.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let mut all = Vec::new();
        for scope in scopes(cx) {
            all.extend(
                list_acls(cx, scope)
                    .await?
                    .iter()
                    .filter_map(|s| s.arn().and_then(AclArn::parse)),
            );
        }
        let calls = all.into_iter().map(|a| async move {
            let Some(tags) = read_acl_tags(cx, &a.arn).await? else {
                return Ok(None);
            };
            Ok(stack_address(cx, &tags)
                .filter(|ad| addresses.is_empty() || addresses.contains(ad))
                .map(|ad| (ad, a)))
        });
        let mut out = Vec::new();
        for (address, a) in each(calls.collect()).await? {
            if let Some(o) = observe_one(cx, &a).await? {
                out.push((address, o));
            }
        }
        Ok(out)
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let addr = want.address;
        let f = canonical(want.fields);
        let name = req_str(&f, "name", addr, "the ACL")?;
        let scope = str_of(&f, "scope").unwrap_or("REGIONAL").to_string();
        if let Some((field, msg, help)) = problems(want.fields, &cx.region).into_iter().next() {
            return Err(bad(addr, format!("{field}: {msg}; {help}")));
        }
        let rules = sdk_rules(&f, addr)?.unwrap_or_default();
        let visibility = sdk_visibility(
            f.get("visibility").unwrap_or(&Value::Unknown),
            addr,
            "the ACL",
        )?;

        // WAF refuses a second ACL of the same name and scope: look first, so that
        // our own interrupted create is adopted and anyone else's is named.
        if let Some(existing) = list_acls(cx, &scope)
            .await?
            .iter()
            .find(|s| s.name() == Some(name.as_str()))
            .and_then(|s| s.arn().and_then(AclArn::parse))
        {
            let found = observe_one(cx, &existing).await?;
            let gone = ProviderError::Other(format!(
                "{addr}: web ACL `{name}` vanished while it was read; apply again"
            ));
            let what = format!("a {scope} web ACL");
            let live = take_over(cx, want, &what, &name, found, gone)?;
            return self
                .converge(cx, &existing, &live, &f, want.tags, addr)
                .await;
        }

        let out = cx
            .wafv2
            .create_web_acl()
            .name(&name)
            .scope(Scope::from(scope.as_str()))
            .default_action(sdk_default_action(&f))
            .set_description(str_of(&f, "description").map(str::to_string))
            .set_rules(Some(rules))
            .visibility_config(visibility)
            // Tagged in the same call, so an interrupted create is found again by its tags.
            .set_tags(Some(sdk_tags(want.tags)))
            .send()
            .await
            .map_err(|e| at(addr, "CreateWebACL", waf_error(e)))?;
        let arn = out
            .summary()
            .and_then(|s| s.arn())
            .and_then(AclArn::parse)
            .ok_or_else(|| {
                ProviderError::Other(format!(
                    "{addr}: CreateWebACL answered no usable ARN; run plan to see whether it exists"
                ))
            })?;
        // Read back: whatever WAF dropped is set again with one update.
        let live = read_back(cx, &arn, want.tags, addr, "right after its creation").await?;
        if reconcile_core::plan::diff_fields(&SCHEMA, &f, &live.fields).is_empty() {
            return Ok(live);
        }
        self.converge(cx, &arn, &live, &f, want.tags, addr).await
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let addr = want.address;
        let a = AclArn::parse(&live.id).ok_or_else(|| bad_id(&live.id))?;
        let f = canonical(want.fields);
        if changes
            .iter()
            .any(|c| CONFIG_FIELDS.contains(&c.field.as_str()))
        {
            put_acl(cx, &a, &f, addr).await?;
        }
        if changes.iter().any(|c| c.field == "tags") {
            sync_tags(cx, &a.arn, &live.tags, want.tags, addr).await?;
        }
        // Capacity follows the rules: read it back.
        read_back(cx, &a, want.tags, addr, "during its update").await
    }

    /// GetWebACL for the lock token, then DeleteWebACL; a lost race re-reads the token.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let a = AclArn::parse(id).ok_or_else(|| bad_id(id))?;
        let mut attempt = 0;
        loop {
            let Some((_, token)) = get_acl(cx, &a).await? else {
                return Ok(());
            };
            match cx
                .wafv2
                .delete_web_acl()
                .name(&a.name)
                .scope(a.sdk_scope())
                .id(&a.id)
                .lock_token(token)
                .send()
                .await
                .map_err(waf_error)
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e)
                    if is_code(&e, &["WAFOptimisticLockException"]) && attempt < LOCK_RETRIES =>
                {
                    attempt += 1;
                }
                Err(e) if is_code(&e, &["WAFAssociatedItemException"]) => {
                    return Err(ProviderError::DependencyViolation(format!(
                        "DeleteWebACL {}: {e}; it still protects a resource: delete its \
                         web_acl_association first (or disassociate it by hand), then apply again",
                        a.arn
                    )))
                }
                Err(e) => return Err(at(&a.arn, "DeleteWebACL", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn map(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn managed_rule(name: &str, priority: i64) -> Value {
        Value::Map(map(&[
            ("name", Value::str(name)),
            ("priority", Value::Int(priority)),
            (
                "managed_rule_group",
                Value::Map(map(&[("name", Value::str(name))])),
            ),
        ]))
    }

    fn rate_rule() -> Value {
        Value::Map(map(&[
            ("name", Value::str("rate")),
            ("priority", Value::Int(9)),
            (
                "rate_limit",
                Value::Map(map(&[("limit", Value::Int(2000))])),
            ),
        ]))
    }

    #[test]
    fn arns_parse() {
        let a = AclArn::parse("arn:aws:wafv2:us-east-1:123456789012:regional/webacl/main/abc-1")
            .unwrap();
        assert_eq!(
            (a.scope, a.name.as_str(), a.id.as_str()),
            ("REGIONAL", "main", "abc-1")
        );
        let g = AclArn::parse("arn:aws:wafv2:us-east-1:1:global/webacl/x/y").unwrap();
        assert_eq!(g.scope, "CLOUDFRONT");
        assert!(AclArn::parse("arn:aws:wafv2:us-east-1:1:regional/ipset/x/y").is_none());
        assert!(AclArn::parse("sg-1").is_none());
    }

    /// What WAF echoes for the rules reconcile sends compares equal to the declaration.
    #[test]
    fn declared_rules_round_trip_through_the_sdk_shape() {
        let desired = map(&[
            ("name", Value::str("edge")),
            ("scope", Value::str("REGIONAL")),
            ("default_action", Value::str("allow")),
            (
                "rules",
                Value::List(vec![
                    managed_rule("AWSManagedRulesCommonRuleSet", 1),
                    rate_rule(),
                ]),
            ),
        ]);
        let want = canonical(&desired);
        let rules = sdk_rules(&want, "web_acl.edge").unwrap().unwrap();
        let acl = AwsWebAcl::builder()
            .name("edge")
            .id("i")
            .arn("arn:aws:wafv2:us-east-1:1:regional/webacl/edge/i")
            .default_action(sdk_default_action(&want))
            .set_rules(Some(rules))
            .visibility_config(sdk_visibility(&want["visibility"], "a", "b").unwrap())
            .description("")
            .build()
            .unwrap();
        let live = observed(&acl, "REGIONAL", IndexMap::new());
        let d = WebAcl.diff(&desired, &live.fields);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(live.attributes["id"], Value::str("i"));
        assert!(!live.fields.contains_key("description"));

        // A managed group gone and a limit changed: drift on `rules`.
        let mut changed = live.fields.clone();
        if let Some(Value::List(rs)) = changed.get_mut("rules") {
            rs.remove(0);
            if let Some(Value::Map(m)) = rs.get_mut(0) {
                if let Some(Value::Map(rl)) = m.get_mut("rate_limit") {
                    rl.insert("limit".into(), Value::Int(100));
                }
            }
        }
        let d = WebAcl.diff(&desired, &changed);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].field, "rules");
        assert!(!d[0].forces_replace);
    }

    #[test]
    fn rule_priority_and_rate_limit_ranges_are_the_schemas() {
        let priority = RULE_FIELDS.iter().find(|f| f.name == "priority").unwrap();
        assert_eq!(priority.range, Some((0, i64::from(i32::MAX))));
        let limit = RATE_FIELDS.iter().find(|f| f.name == "limit").unwrap();
        assert_eq!(limit.range, Some((10, 2_000_000_000)));
    }

    #[test]
    fn validation() {
        let ok = map(&[
            ("name", Value::str("edge")),
            ("scope", Value::str("REGIONAL")),
            (
                "rules",
                Value::List(vec![managed_rule("A", 1), rate_rule()]),
            ),
        ]);
        assert!(
            problems(&ok, "eu-west-1").is_empty(),
            "{:?}",
            problems(&ok, "eu-west-1")
        );
        let mut f = ok.clone();
        f.insert("scope".into(), Value::str("CLOUDFRONT"));
        assert!(problems(&f, "eu-west-1")[0].1.contains("us-east-1"));
        assert!(problems(&f, "us-east-1").is_empty());
        let mut f = ok.clone();
        f.insert(
            "rules".into(),
            Value::List(vec![managed_rule("A", 1), managed_rule("B", 1)]),
        );
        assert!(problems(&f, "us-east-1")[0].1.contains("priority 1"));
        let both = Value::Map(map(&[
            ("name", Value::str("x")),
            ("priority", Value::Int(1)),
            ("action", Value::str("block")),
            (
                "managed_rule_group",
                Value::Map(map(&[("name", Value::str("x"))])),
            ),
        ]));
        f.insert("rules".into(), Value::List(vec![both]));
        assert!(problems(&f, "us-east-1")[0].1.contains("override_action"));
        let none = Value::Map(map(&[
            ("name", Value::str("x")),
            ("priority", Value::Int(1)),
        ]));
        f.insert("rules".into(), Value::List(vec![none]));
        assert!(problems(&f, "us-east-1")[0]
            .1
            .contains("exactly one statement"));
        assert!(check_name("a b").is_err());
        assert!(check_metric_name("has space").is_err());
    }
}
