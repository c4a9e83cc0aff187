//! `eventbridge_rule`: an EventBridge rule, on a schedule or an event
//! pattern, with its targets inline and its tags.
//!
//! PutRule replaces the whole rule, so any change of the rule itself resends
//! every field (and the state: PutRule without one enables the rule).
//! Schedules are checked offline as AWS reads them: `rate(1 minute)` singular
//! only for 1, and six-field `cron(...)` with `?` in one of day-of-month and
//! day-of-week; a Unix five-field cron is refused with its AWS form.

use crate::kit::adopt::{changes_to, take_over};
use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{bool_of, changes_field, fields_of, str_of};
use crate::kit::policy::json_norm;
use crate::kit::tags::{own_tags, read_each};
use crate::kit::{by_id, each, Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_eventbridge::types::{RuleState, Tag, Target};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeMap, HashMap};

pub struct EventbridgeRule;

/// A rule has at most 5 targets.
const MAX_TARGETS: usize = 5;

const TARGET_FIELDS: &[Field] = &[
    Field::new(
        "id",
        Ty::Pattern(check_target_id),
        "The target's id within the rule: 1 to 64 letters, digits and `.-_`.",
    )
    .required(),
    Field::new(
        "arn",
        Ty::Str,
        "What is called: `${lambda_function.NAME.arn}` or `${sns_topic.NAME.arn}`.",
    )
    .required(),
    Field::new(
        "input",
        Ty::Str,
        "A JSON document sent instead of the event; left out, the event itself.",
    )
    .norm(Norm::With(json_norm)),
];

pub static SCHEMA: Schema = Schema {
    kind: "eventbridge_rule",
    doc: "An EventBridge rule with its targets inline: on a schedule \
          (`schedule_expression = \"cron(0 3 * * ? *)\"`, daily at 03:00 UTC) or on an event \
          pattern (a JSON document). `validate` checks schedules as AWS reads them, with no \
          AWS call: `rate(1 minute)` is singular only for 1 (`rate(5 minutes)`), units are \
          minutes, hours or days; a cron has six fields (minutes, hours, day-of-month, month, \
          day-of-week, year) with `?` in exactly one of day-of-month and day-of-week, so a \
          five-field Unix cron or a seven-field one is refused with its AWS form. A function \
          target also needs a `lambda_permission` for events.amazonaws.com with the rule's \
          ARN as `source_arn`. A change of the rule is made with PutRule (which replaces it \
          whole), targets with PutTargets/RemoveTargets, tags with TagResource/UntagResource. \
          Observing costs one DescribeRule, one ListTargetsByRule and, where the plan's \
          Resource Groups Tagging API read does not list the rule, one ListTagsForResource per \
          rule. Only rules of the default event bus are found again by their tags after an \
          interrupted create. The emulator (moto 5.2.5) takes any `cron(...)` and a `rate(...)` \
          with any number (AWS refuses `rate(5 minute)`), never runs a schedule, and is not \
          listed by its Tagging API.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The rule name, unique on its event bus: 1 to 64 letters, digits and `.-_`. \
             Changing it replaces the rule.",
        )
        .required()
        .force_new(),
        Field::new(
            "description",
            Ty::Str,
            "What the rule is for. Updated in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "schedule_expression",
            Ty::Pattern(check_schedule),
            "When it fires: `rate(5 minutes)` or `cron(0 3 * * ? *)` (UTC). Exclusive with \
             `event_pattern`; only on the default event bus. Updated in place.",
        )
        .absent_clears(),
        Field::new(
            "event_pattern",
            Ty::Str,
            "The events it matches, as a JSON document (a TOML multi-line literal reads best), \
             such as `{\"source\": [\"aws.ecs\"]}`. Compared as JSON. Updated in place.",
        )
        .absent_clears()
        .norm(Norm::With(json_norm)),
        Field::new(
            "enabled",
            Ty::Bool,
            "Whether the rule fires (state ENABLED or DISABLED). Updated in place.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "event_bus_name",
            Ty::Str,
            "The event bus. Changing it replaces the rule.",
        )
        .default(Default::Str("default"))
        .force_new(),
        Field::new(
            "targets",
            Ty::List(&Ty::Object(TARGET_FIELDS)),
            "Up to 5 targets, as `[{ id = \"backup\", arn = \"${lambda_function.b.arn}\" }]`, \
             compared as a set. Added or changed with PutTargets, removed with RemoveTargets.",
        )
        .default(Default::Strs(&[]))
        .set(),
    ],
    attributes: &[
        ("id", "The rule's ARN, which is its id."),
        (
            "arn",
            "The rule's ARN: what a `lambda_permission`'s `source_arn` takes.",
        ),
        ("name", "The rule name."),
    ],
    taggable: true,
};

fn check_name_like(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!("\"{s}\": {what} has 1 to 64 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_".contains(*c)))
    {
        return Err(format!(
            "\"{s}\" contains {c:?}; use letters, digits and .-_ only"
        ));
    }
    Ok(())
}

pub fn check_name(s: &str) -> Result<(), String> {
    check_name_like(s, "a rule name")
}

pub fn check_target_id(s: &str) -> Result<(), String> {
    check_name_like(s, "a target id")
}

/// A schedule as EventBridge reads it: `rate(N unit)` or six-field `cron(...)`.
pub fn check_schedule(s: &str) -> Result<(), String> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("rate(").and_then(|x| x.strip_suffix(')')) {
        return check_rate(inner);
    }
    if let Some(inner) = s.strip_prefix("cron(").and_then(|x| x.strip_suffix(')')) {
        return check_cron(inner);
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() == 5 || fields.len() == 6 {
        return Err(format!(
            "\"{s}\" is not a schedule expression; EventBridge takes \"cron({})\" or a rate \
             such as \"rate(5 minutes)\"",
            aws_cron(&fields).join(" ")
        ));
    }
    Err(format!(
        "\"{s}\" is not a schedule expression; write \"rate(5 minutes)\" or \"cron(0 3 * * ? *)\""
    ))
}

fn check_rate(inner: &str) -> Result<(), String> {
    let bad = |why: String| Err(format!("\"rate({inner})\": {why}"));
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [n, unit] = parts.as_slice() else {
        return bad("write a number and a unit, such as rate(5 minutes)".into());
    };
    let Ok(n) = n.parse::<u64>() else {
        return bad(format!("\"{n}\" is not a whole number"));
    };
    if n == 0 {
        return bad("the rate must be at least 1".into());
    }
    let singular = match *unit {
        "minute" | "hour" | "day" => true,
        "minutes" | "hours" | "days" => false,
        other => {
            return bad(format!(
                "\"{other}\" is not a unit; use minute(s), hour(s) or day(s)"
            ))
        }
    };
    let stem = unit.trim_end_matches('s');
    match (n == 1, singular) {
        (true, false) => bad(format!("write rate(1 {stem}): the singular for 1")),
        (false, true) => bad(format!(
            "write rate({n} {stem}s): the plural for more than 1"
        )),
        _ => Ok(()),
    }
}

/// The six AWS fields of a five-field Unix cron or a seven-field one with
/// seconds: year added or seconds dropped, and `?` where AWS wants it.
fn aws_cron(fields: &[&str]) -> Vec<String> {
    let mut f: Vec<String> = match fields.len() {
        5 => fields
            .iter()
            .map(|x| x.to_string())
            .chain(["*".into()])
            .collect(),
        7 => fields[1..].iter().map(|x| x.to_string()).collect(),
        _ => fields.iter().map(|x| x.to_string()).collect(),
    };
    if f.len() == 6 && f[2] != "?" && f[4] != "?" {
        if f[4] == "*" {
            f[4] = "?".into();
        } else {
            f[2] = "?".into();
        }
    }
    f
}

fn check_cron(inner: &str) -> Result<(), String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    let form = || format!("cron({})", aws_cron(&fields).join(" "));
    match fields.len() {
        6 => {}
        5 => {
            let numeric_dow = fields[4].chars().any(|c| c.is_ascii_digit());
            return Err(format!(
                "\"cron({inner})\" has five fields, as a Unix cron; EventBridge takes six \
                 (minutes hours day-of-month month day-of-week year): write \"{}\"{}",
                form(),
                if numeric_dow {
                    " (and count days of the week from 1 = Sunday, or write SUN-SAT)"
                } else {
                    ""
                }
            ));
        }
        7 => {
            return Err(format!(
                "\"cron({inner})\" has seven fields; EventBridge takes six, without seconds \
                 (minutes hours day-of-month month day-of-week year): write \"{}\"",
                form()
            ))
        }
        n => {
            return Err(format!(
                "\"cron({inner})\" has {n} fields; EventBridge takes six: minutes hours \
                 day-of-month month day-of-week year, such as \"cron(0 3 * * ? *)\""
            ))
        }
    }
    match (fields[2] == "?", fields[4] == "?") {
        (true, false) | (false, true) => Ok(()),
        (true, true) => Err(format!(
            "\"cron({inner})\": only one of day-of-month and day-of-week may be `?`; write \"cron({} {} * {} ? {})\"",
            fields[0], fields[1], fields[3], fields[5]
        )),
        (false, false) => Err(format!(
            "\"cron({inner})\": one of day-of-month and day-of-week must be `?`; write \"{}\"",
            form()
        )),
    }
}

/// Problems with a rule's fields, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let schedule = f.get("schedule_expression");
    let pattern = f.get("event_pattern");
    match (schedule, pattern) {
        (Some(_), Some(_)) => out.push((
            "event_pattern",
            "both `schedule_expression` and `event_pattern` are set".into(),
            "a rule fires on a schedule or on matching events: keep one, and make a second \
             rule for the other"
                .into(),
        )),
        (None, None) => out.push((
            "",
            "neither `schedule_expression` nor `event_pattern` is set".into(),
            "add `schedule_expression = \"rate(1 day)\"` or an `event_pattern`".into(),
        )),
        _ => {}
    }
    if schedule.is_some() && str_of(f, "event_bus_name").is_some_and(|b| b != "default") {
        out.push((
            "schedule_expression",
            "a schedule runs only on the default event bus".into(),
            "leave `event_bus_name` out, or use EventBridge Scheduler".into(),
        ));
    }
    if let Some(p) = str_of(f, "event_pattern").filter(|p| !p.contains("${")) {
        match serde_json::from_str::<serde_json::Value>(p) {
            Ok(serde_json::Value::Object(_)) => {}
            _ => out.push((
                "event_pattern",
                "the event pattern is not a JSON object".into(),
                "write it as JSON, such as {\"source\": [\"aws.ecs\"]}".into(),
            )),
        }
    }
    let targets = f.get("targets").and_then(Value::as_list).unwrap_or(&[]);
    if targets.len() > MAX_TARGETS {
        out.push((
            "targets",
            format!(
                "{} targets; a rule has at most {MAX_TARGETS}",
                targets.len()
            ),
            "split them over several rules".into(),
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in targets.iter().filter_map(Value::as_map) {
        if let Some(id) = t.get("id").and_then(Value::as_str) {
            if !ids.insert(id) {
                out.push((
                    "targets",
                    format!("two targets have the id \"{id}\""),
                    "give each target its own id".into(),
                ));
            }
        }
        if let Some(input) = t
            .get("input")
            .and_then(Value::as_str)
            .filter(|i| !i.contains("${"))
        {
            if serde_json::from_str::<serde_json::Value>(input).is_err() {
                out.push((
                    "targets",
                    "a target's `input` is not valid JSON".into(),
                    "write the JSON document the target receives".into(),
                ));
            }
        }
    }
    out
}

/// (event bus, name) of a rule ARN: `...:rule/NAME` or `...:rule/BUS/NAME`.
pub fn split_arn(arn: &str) -> (String, String) {
    let rest = arn.split_once(":rule/").map(|(_, r)| r).unwrap_or(arn);
    match rest.split_once('/') {
        Some((bus, name)) => (bus.to_string(), name.to_string()),
        None => ("default".to_string(), rest.to_string()),
    }
}

fn targets_value(targets: &[Target]) -> Value {
    Value::List(
        targets
            .iter()
            .map(|t| {
                let mut m = fields_of([("arn", Value::str(t.arn())), ("id", Value::str(t.id()))]);
                if let Some(i) = t.input() {
                    m.insert("input".into(), Value::str(i));
                }
                Value::Map(m)
            })
            .collect(),
    )
}

/// Declared targets by id: (arn, input).
fn targets_of(f: &Fields) -> BTreeMap<String, (String, Option<String>)> {
    f.get("targets")
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_map)
        .filter_map(|m| {
            Some((
                m.get("id")?.as_str()?.to_string(),
                (
                    m.get("arn")?.as_str()?.to_string(),
                    m.get("input").and_then(Value::as_str).map(str::to_string),
                ),
            ))
        })
        .collect()
}

async fn list_targets(
    cx: &Cx,
    bus: &str,
    name: &str,
) -> Result<Option<Vec<Target>>, ProviderError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let Some(page) = unless_gone(
            cx.events
                .list_targets_by_rule()
                .rule(name)
                .event_bus_name(bus)
                .set_next_token(token)
                .send()
                .await,
        )?
        else {
            return Ok(None);
        };
        out.extend(page.targets().iter().cloned());
        match page.next_token().filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(Some(out)),
        }
    }
}

async fn list_tags(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    let out = unless_gone(
        cx.events
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await,
    )?;
    Ok(out.map(|o| own_tags(o.tags().iter().map(|t| (t.key(), t.value())))))
}

fn aws_tags(tags: &IndexMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ProviderError::InvalidInput(e.to_string()))
        })
        .collect()
}

/// One rule by bus and name, targets and tags included; `None` when gone.
async fn read(cx: &Cx, bus: &str, name: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(r) = unless_gone(
        cx.events
            .describe_rule()
            .name(name)
            .event_bus_name(bus)
            .send()
            .await,
    )?
    else {
        return Ok(None);
    };
    let arn = r.arn().unwrap_or_default().to_string();
    let Some(targets) = list_targets(cx, bus, name).await? else {
        return Ok(None);
    };
    let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, &arn, &arn).await {
        Some(t) => t,
        None => match list_tags(cx, &arn).await? {
            Some(t) => t,
            None => return Ok(None),
        },
    };
    let mut fields = fields_of([
        ("name", Value::str(r.name().unwrap_or(name))),
        (
            "description",
            Value::str(r.description().unwrap_or_default()),
        ),
        (
            "enabled",
            Value::Bool(!matches!(r.state(), Some(RuleState::Disabled))),
        ),
        (
            "event_bus_name",
            Value::str(r.event_bus_name().unwrap_or(bus)),
        ),
        ("targets", targets_value(&targets)),
    ]);
    if let Some(s) = r.schedule_expression().filter(|s| !s.is_empty()) {
        fields.insert("schedule_expression".into(), Value::str(s));
    }
    if let Some(p) = r.event_pattern().filter(|p| !p.is_empty()) {
        fields.insert("event_pattern".into(), Value::str(p));
    }
    Ok(Some(Observed {
        id: arn.clone(),
        fields,
        attributes: fields_of([
            ("id", Value::str(&arn)),
            ("arn", Value::str(&arn)),
            ("name", Value::str(name)),
        ]),
        tags,
    }))
}

fn state_of(f: &Fields) -> RuleState {
    if bool_of(f, "enabled").unwrap_or(true) {
        RuleState::Enabled
    } else {
        RuleState::Disabled
    }
}

/// Whether any change needs PutRule (all but targets and tags do).
fn needs_put(changes: &[FieldChange]) -> bool {
    changes
        .iter()
        .any(|c| c.field != "targets" && c.field != "tags")
}

impl EventbridgeRule {
    async fn put_rule(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
        name: &str,
        with_tags: bool,
    ) -> Result<String, ProviderError> {
        let f = want.fields;
        let out = cx
            .events
            .put_rule()
            .name(name)
            .event_bus_name(str_of(f, "event_bus_name").unwrap_or("default"))
            .description(str_of(f, "description").unwrap_or_default())
            .set_schedule_expression(str_of(f, "schedule_expression").map(str::to_string))
            .set_event_pattern(str_of(f, "event_pattern").map(str::to_string))
            .state(state_of(f))
            .set_tags(if with_tags {
                Some(aws_tags(want.tags)?)
            } else {
                None
            })
            .send()
            .await
            .map_err(|e| at(want.address, "PutRule", e.into()))?;
        Ok(out.rule_arn().unwrap_or_default().to_string())
    }

    /// PutTargets for what is missing or different, RemoveTargets for the rest.
    async fn sync_targets(
        &self,
        cx: &Cx,
        a: &str,
        bus: &str,
        name: &str,
        wanted: &BTreeMap<String, (String, Option<String>)>,
    ) -> Result<(), ProviderError> {
        let live = list_targets(cx, bus, name).await?.unwrap_or_default();
        let have: BTreeMap<&str, &Target> = live.iter().map(|t| (t.id(), t)).collect();
        let put: Vec<Target> = wanted
            .iter()
            .filter(|(id, (arn, input))| {
                have.get(id.as_str()).is_none_or(|t| {
                    t.arn() != arn || t.input().map(canonical) != input.as_deref().map(canonical)
                })
            })
            .map(|(id, (arn, input))| {
                Target::builder()
                    .id(id)
                    .arn(arn)
                    .set_input(input.clone())
                    .build()
                    .map_err(|e| ProviderError::InvalidInput(format!("{a}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        if !put.is_empty() {
            let out = cx
                .events
                .put_targets()
                .rule(name)
                .event_bus_name(bus)
                .set_targets(Some(put))
                .send()
                .await
                .map_err(|e| at(a, "PutTargets", e.into()))?;
            if let Some(e) = out.failed_entries().first() {
                return Err(ProviderError::InvalidInput(format!(
                    "{a}: PutTargets: target `{}`: {}",
                    e.target_id().unwrap_or_default(),
                    e.error_message().unwrap_or_default()
                )));
            }
        }
        let stale: Vec<String> = have
            .keys()
            .filter(|id| !wanted.contains_key(**id))
            .map(|id| id.to_string())
            .collect();
        if !stale.is_empty() {
            cx.events
                .remove_targets()
                .rule(name)
                .event_bus_name(bus)
                .set_ids(Some(stale))
                .send()
                .await
                .map_err(|e| at(a, "RemoveTargets", e.into()))?;
        }
        Ok(())
    }

    async fn sync(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<(), ProviderError> {
        let a = want.address;
        let (bus, name) = split_arn(&live.id);
        if needs_put(changes) {
            crate::kit::fields::refuse(a, problems(want.fields))?;
            self.put_rule(cx, want, &name, false).await?;
        }
        if changes_field(changes, "targets") {
            self.sync_targets(cx, a, &bus, &name, &targets_of(want.fields))
                .await?;
        }
        if changes_field(changes, "tags") {
            let arn = live.id.as_str();
            crate::sync_tags_by!(
                &live.tags,
                want.tags,
                a,
                untag: cx.events.untag_resource().resource_arn(arn),
                tag: cx.events.tag_resource().resource_arn(arn),
                tags: aws_tags,
            )
            .await?;
        }
        Ok(())
    }
}

fn canonical(s: &str) -> String {
    match json_norm(&Value::str(s), &Fields::new()) {
        Value::Str(x) => x,
        _ => s.to_string(),
    }
}

#[async_trait]
impl Provider for EventbridgeRule {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        // A schedule the loader refused is declared all the same: not "neither".
        let declared = |k: &str| r.field_pos.contains_key(k);
        let mut p = problems(&r.fields);
        if declared("schedule_expression") || declared("event_pattern") {
            p.retain(|(field, _, _)| !field.is_empty());
        }
        crate::kit::fields::diagnostics(r, p)
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let reads = ids
            .iter()
            .map(|id| async move {
                let (bus, name) = split_arn(id);
                read(cx, &bus, &name).await
            })
            .collect();
        Ok(by_id(each(reads).await?))
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        read_each(arns, |arn| async move { list_tags(cx, &arn).await }).await
    }

    /// ListRules on the default bus, then the tags of each rule (the
    /// emulator's Tagging API does not list rules), then a read of the stack's.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = cx
                .events
                .list_rules()
                .set_next_token(token)
                .send()
                .await
                .map_err(ProviderError::from_sdk)?;
            arns.extend(
                page.rules()
                    .iter()
                    .filter_map(|r| r.arn())
                    .map(str::to_string),
            );
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        let reads = arns
            .into_iter()
            .map(|arn| async move {
                let Some(tags) = list_tags(cx, &arn).await? else {
                    return Ok(None);
                };
                let Some(address) = crate::kit::tags::stack_address(cx, &tags) else {
                    return Ok(None);
                };
                if !(addresses.is_empty() || addresses.contains(&address)) {
                    return Ok(None);
                }
                let (bus, name) = split_arn(&arn);
                Ok(read(cx, &bus, &name).await?.map(|o| (address, o)))
            })
            .collect();
        each(reads).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        crate::kit::fields::refuse(a, problems(f))?;
        let name = str_of(f, "name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `name` must be a known string"))
        })?;
        let bus = str_of(f, "event_bus_name").unwrap_or("default");
        // PutRule overwrites a rule of the same name without a word: look first.
        if let Some(found) = read(cx, bus, name).await? {
            let refused =
                ProviderError::InvalidInput(format!("{a}: a rule named `{name}` already exists"));
            let live = take_over(cx, want, "an EventBridge rule", name, Some(found), refused)?;
            let changes = changes_to(self, want, &live);
            return self.update(cx, &live, want, &changes).await;
        }
        let arn = self.put_rule(cx, want, name, true).await?;
        self.sync_targets(cx, a, bus, name, &targets_of(f)).await?;
        Ok(Observed {
            id: arn.clone(),
            fields: f.clone(),
            attributes: fields_of([
                ("id", Value::str(&arn)),
                ("arn", Value::str(&arn)),
                ("name", Value::str(name)),
            ]),
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
        Ok(crate::kit::updated(&SCHEMA, live, want))
    }

    /// RemoveTargets first: AWS refuses to delete a rule that has targets.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let (bus, name) = split_arn(id);
        let who = format!("eventbridge_rule {id} (stack {})", cx.stack);
        let Some(targets) = list_targets(cx, &bus, &name).await? else {
            return Ok(());
        };
        if !targets.is_empty() {
            let ids = targets.iter().map(|t| t.id().to_string()).collect();
            gone_is_done(
                cx.events
                    .remove_targets()
                    .rule(&name)
                    .event_bus_name(&bus)
                    .set_ids(Some(ids))
                    .send()
                    .await,
            )
            .map_err(|e| at(&who, "RemoveTargets", e))?;
        }
        gone_is_done(
            cx.events
                .delete_rule()
                .name(&name)
                .event_bus_name(&bus)
                .send()
                .await,
        )
        .map_err(|e| at(&who, "DeleteRule", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    #[test]
    fn rates_are_singular_for_one_only() {
        for ok in [
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(12 hours)",
            "rate(1 day)",
            "rate(7 days)",
        ] {
            assert!(check_schedule(ok).is_ok(), "{ok}");
        }
        let e = check_schedule("rate(5 minute)").unwrap_err();
        assert!(e.contains("rate(5 minutes)"), "{e}");
        let e = check_schedule("rate(1 minutes)").unwrap_err();
        assert!(e.contains("rate(1 minute)"), "{e}");
        assert!(check_schedule("rate(0 minutes)").is_err());
        assert!(check_schedule("rate(5 weeks)").is_err());
        assert!(check_schedule("rate(five minutes)").is_err());
    }

    #[test]
    fn crons_have_six_fields_and_one_question_mark() {
        for ok in [
            "cron(0 3 * * ? *)",
            "cron(0/15 * ? * MON-FRI *)",
            "cron(0 12 1 * ? 2027)",
        ] {
            assert!(check_schedule(ok).is_ok(), "{ok}");
        }
        let e = check_schedule("cron(0 3 * * *)").unwrap_err();
        assert!(e.contains("five fields"), "{e}");
        assert!(e.contains("cron(0 3 * * ? *)"), "{e}");
        let e = check_schedule("cron(0 0 3 * * ? *)").unwrap_err();
        assert!(e.contains("seven fields"), "{e}");
        assert!(e.contains("cron(0 3 * * ? *)"), "{e}");
        let e = check_schedule("cron(0 3 * * * *)").unwrap_err();
        assert!(e.contains("must be `?`"), "{e}");
        assert!(e.contains("cron(0 3 * * ? *)"), "{e}");
        assert!(check_schedule("cron(0 3 ? * ? *)").is_err());
        let e = check_schedule("0 3 * * *").unwrap_err();
        assert!(e.contains("cron(0 3 * * ? *)"), "{e}");
        let e = check_schedule("cron(0 3 * * 1)").unwrap_err();
        assert!(
            e.contains("cron(0 3 ? * 1 *)") && e.contains("1 = Sunday"),
            "{e}"
        );
    }

    #[test]
    fn a_rule_needs_exactly_one_trigger_and_at_most_five_targets() {
        let base = fields_of([("name", Value::str("r"))]);
        assert_eq!(problems(&base).len(), 1);
        let mut both = base.clone();
        both.insert("schedule_expression".into(), Value::str("rate(1 day)"));
        both.insert(
            "event_pattern".into(),
            Value::str("{\"source\":[\"aws.ecs\"]}"),
        );
        assert_eq!(problems(&both)[0].0, "event_pattern");
        let target = |id: &str| {
            Value::Map(fields_of([
                ("id", Value::str(id)),
                ("arn", Value::str("arn:aws:sns:us-east-1:1:t")),
            ]))
        };
        let mut many = base.clone();
        many.insert("schedule_expression".into(), Value::str("rate(1 day)"));
        many.insert(
            "targets".into(),
            Value::List((0..6).map(|i| target(&format!("t{i}"))).collect()),
        );
        assert_eq!(problems(&many).len(), 1);
        many.insert(
            "targets".into(),
            Value::List(vec![target("a"), target("a")]),
        );
        assert!(problems(&many)[0].1.contains("two targets"));
    }

    #[test]
    fn patterns_compare_as_json_and_arns_split() {
        let a = fields_of([(
            "event_pattern",
            Value::str("{\"source\": [\"aws.ecs\"], \"detail-type\": [\"x\"]}"),
        )]);
        let b = fields_of([(
            "event_pattern",
            Value::str("{\"detail-type\":[\"x\"],\"source\":[\"aws.ecs\"]}"),
        )]);
        assert!(EventbridgeRule.diff(&a, &b).is_empty());
        assert_eq!(
            split_arn("arn:aws:events:us-east-1:1:rule/daily"),
            ("default".to_string(), "daily".to_string())
        );
        assert_eq!(
            split_arn("arn:aws:events:us-east-1:1:rule/ops/daily"),
            ("ops".to_string(), "daily".to_string())
        );
    }
}
