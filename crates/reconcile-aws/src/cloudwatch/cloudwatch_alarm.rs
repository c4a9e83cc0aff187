//! `cloudwatch_alarm`: a CloudWatch metric alarm on one metric, with its
//! actions and tags.
//!
//! All of a stack's alarms are observed together: DescribeAlarms takes up to
//! 100 names a call. PutMetricAlarm replaces the whole alarm, so an update
//! sends every field, and tags (which PutMetricAlarm ignores on an existing
//! alarm) follow with TagResource/UntagResource. The alarms target tracking
//! scaling makes for itself ("TargetTracking-...") are AWS's, not the
//! stack's: they are never observed, found by tags, or declared.

use crate::kit::adopt::{changes_to, take_over};
use crate::kit::error::{at, gone_is_done, unless_gone};
use crate::kit::fields::{bool_of, changes_field, fields_of, i32_of, str_list, str_of, strs_of};
use crate::kit::tags::{own_tags, read_each, stack_resources_of_type};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, MetricAlarm, StandardUnit, Statistic, Tag,
};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct CloudwatchAlarm;

/// AlarmNames takes at most 100 names a call.
const NAMES_PER_CALL: usize = 100;

/// The prefix of the alarms target tracking scaling policies create and delete themselves.
pub const TARGET_TRACKING: &str = "TargetTracking-";

pub const STATISTICS: &[&str] = &["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// The operators of a static threshold (the anomaly detection ones need a
/// threshold metric, which this kind does not declare).
pub const OPERATORS: &[&str] = &[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
];

pub const MISSING_DATA: &[&str] = &["missing", "notBreaching", "breaching", "ignore"];

pub const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

const NO_ACTIONS: Default = Default::Strs(&[]);

pub static SCHEMA: Schema = Schema {
    kind: "cloudwatch_alarm",
    doc: "A CloudWatch metric alarm on one metric, such as a load balancer's response time or \
          a database's CPU, notifying SNS topics (`alarm_actions = [\"${sns_topic.NAME.arn}\"]`). \
          Exactly one of `statistic` and `extended_statistic`; `period` is 10, 30 or a multiple \
          of 60 seconds; `datapoints_to_alarm` at most `evaluation_periods`: all checked by \
          `validate`, with no AWS call. A change is made with PutMetricAlarm, which replaces the \
          whole alarm (same name, in place); tags with TagResource/UntagResource. Observing \
          costs one DescribeAlarms per 100 alarms of the stack, and tags from the plan's one \
          Resource Groups Tagging API read of the whole stack (else one ListTagsForResource per \
          alarm). Alarms whose names begin with \"TargetTracking-\" belong to target tracking \
          scaling policies: never observed, adopted or declared. The emulator accepts any \
          period and both statistics at once (AWS refuses them), and never evaluates metrics: \
          its alarms stay in their first state.",
    fields: &[
        Field::new(
            "alarm_name",
            Ty::Pattern(check_name),
            "The alarm name, unique in the account and region, 1 to 255 characters. Changing it \
             replaces the alarm.",
        )
        .required()
        .force_new(),
        Field::new(
            "alarm_description",
            Ty::Str,
            "What the alarm means, up to 1024 characters. Updated in place.",
        )
        .default(Default::Str("")),
        Field::new(
            "namespace",
            Ty::Str,
            "The metric's namespace, such as \"AWS/ApplicationELB\" or \"AWS/RDS\". Updated in place.",
        )
        .required(),
        Field::new(
            "metric_name",
            Ty::Str,
            "The metric, such as \"TargetResponseTime\" or \"CPUUtilization\". Updated in place.",
        )
        .required(),
        Field::new(
            "dimensions",
            Ty::Map(&Ty::Str),
            "The metric's dimensions, as `{ LoadBalancer = \"${load_balancer.web.arn_suffix}\" }` \
             or `{ DBInstanceIdentifier = \"${db_instance.main.id}\" }`, at most 30. Updated in place.",
        )
        .default(Default::Table),
        Field::new(
            "statistic",
            Ty::Enum(STATISTICS),
            "SampleCount, Average, Sum, Minimum or Maximum; or use `extended_statistic`. \
             Updated in place.",
        )
        .absent_clears(),
        Field::new(
            "extended_statistic",
            Ty::Pattern(check_extended_statistic),
            "A percentile or trimmed statistic, such as \"p99\", \"p99.9\" or \"tm90\"; or use \
             `statistic`. Updated in place.",
        )
        .absent_clears(),
        Field::new(
            "period",
            Ty::Int,
            "Seconds over which the statistic is taken: 10, 30 or a multiple of 60. Updated in place.",
        )
        .required()
        .range(10, 86_400),
        Field::new(
            "evaluation_periods",
            Ty::Int,
            "How many recent periods are evaluated. Updated in place.",
        )
        .required()
        .range(1, 100_000),
        Field::new(
            "datapoints_to_alarm",
            Ty::Int,
            "How many of the evaluated periods must breach (\"M out of N\"); left out, all of \
             them. Updated in place.",
        )
        .range(1, 100_000)
        .absent_clears(),
        Field::new(
            "threshold",
            Ty::Float,
            "The value the statistic is compared with. Updated in place.",
        )
        .required(),
        Field::new(
            "comparison_operator",
            Ty::Enum(OPERATORS),
            "How the statistic is compared with the threshold. Updated in place.",
        )
        .required(),
        Field::new(
            "treat_missing_data",
            Ty::Enum(MISSING_DATA),
            "What periods without data count as: missing, notBreaching, breaching or ignore. \
             Updated in place.",
        )
        .default(Default::Str("missing")),
        Field::new(
            "unit",
            Ty::Enum(UNITS),
            "The metric's unit, to pick one of several the metric is published with; left out, \
             any. Updated in place.",
        )
        .absent_clears(),
        Field::new(
            "actions_enabled",
            Ty::Bool,
            "Whether the actions run on a change of state. Updated in place.",
        )
        .default(Default::Bool(true)),
        Field::new(
            "alarm_actions",
            Ty::List(&Ty::Str),
            "ARNs notified on entering ALARM (SNS topics, at most 5). Updated in place.",
        )
        .default(NO_ACTIONS)
        .set(),
        Field::new(
            "ok_actions",
            Ty::List(&Ty::Str),
            "ARNs notified on returning to OK (at most 5). Updated in place.",
        )
        .default(NO_ACTIONS)
        .set(),
        Field::new(
            "insufficient_data_actions",
            Ty::List(&Ty::Str),
            "ARNs notified on entering INSUFFICIENT_DATA (at most 5). Updated in place.",
        )
        .default(NO_ACTIONS)
        .set(),
    ],
    attributes: &[
        ("id", "The alarm name, which is its id."),
        ("arn", "The alarm's ARN."),
        ("alarm_name", "The alarm name."),
    ],
    taggable: true,
};

/// Alarm names: 1 to 255 characters, no control characters, and not one of
/// the names target tracking scaling keeps for itself.
pub fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 255 {
        return Err(format!("\"{s}\": an alarm name has 1 to 255 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("\"{s}\" contains a control character"));
    }
    if s.starts_with(TARGET_TRACKING) {
        return Err(format!(
            "\"{s}\": names beginning with {TARGET_TRACKING} are those target tracking scaling \
             gives its own alarms"
        ));
    }
    Ok(())
}

/// Extended statistics: `pNN` (0 to 100, decimals allowed), the trimmed and
/// windsorized forms `tm`, `wm`, `tc`, `ts` with a percentile or a `(a:b)`
/// range, `PR(a:b)`, and `IQM`.
pub fn check_extended_statistic(s: &str) -> Result<(), String> {
    let pct = |x: &str| x.parse::<f64>().is_ok_and(|n| (0.0..=100.0).contains(&n));
    let range = |x: &str| {
        x.strip_prefix('(')
            .and_then(|x| x.strip_suffix(')'))
            .is_some_and(|x| x.contains(':'))
    };
    let lower = s.to_ascii_lowercase();
    let ok = lower == "iqm"
        || lower.strip_prefix("pr").is_some_and(range)
        || ["tm", "wm", "tc", "ts"]
            .iter()
            .any(|p| lower.strip_prefix(p).is_some_and(|x| pct(x) || range(x)))
        || lower.strip_prefix('p').is_some_and(pct);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not an extended statistic; write a percentile like \"p99\" or \"p99.9\", \
             or a trimmed mean like \"tm90\""
        ))
    }
}

/// Problems with an alarm's fields, as (field, what, what to do). Values that
/// are references are known only at apply and are left alone.
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let int = |k| f.get(k).and_then(Value::as_int);
    if let Some(p) = int("period") {
        if !(p == 10 || p == 30 || (p >= 60 && p % 60 == 0)) {
            let up = if p < 30 {
                if p <= 10 {
                    10
                } else {
                    30
                }
            } else {
                (p + 59) / 60 * 60
            };
            out.push((
                "period",
                format!("`period` is {p}, which CloudWatch alarms do not take"),
                format!("use 10, 30 or a multiple of 60 seconds (such as {up})"),
            ));
        }
    }
    match (f.get("statistic"), f.get("extended_statistic")) {
        (Some(_), Some(_)) => out.push((
            "extended_statistic",
            "both `statistic` and `extended_statistic` are set".into(),
            "keep exactly one: `statistic` for Average, Sum, ..., `extended_statistic` for \
             percentiles like \"p99\""
                .into(),
        )),
        (None, None) => out.push((
            "",
            "neither `statistic` nor `extended_statistic` is set".into(),
            "add `statistic = \"Average\"` (or Sum, Minimum, Maximum, SampleCount), or \
             `extended_statistic = \"p99\"`"
                .into(),
        )),
        _ => {}
    }
    if let (Some(m), Some(n)) = (int("datapoints_to_alarm"), int("evaluation_periods")) {
        if m > n {
            out.push((
                "datapoints_to_alarm",
                format!("`datapoints_to_alarm` is {m}, more than `evaluation_periods` ({n})"),
                format!("use at most {n}, or raise `evaluation_periods`"),
            ));
        }
    }
    if let (Some(p), Some(n)) = (int("period"), int("evaluation_periods")) {
        // AWS's limit on how far back an alarm may look.
        let most = if p >= 3600 { 7 * 86_400 } else { 86_400 };
        if p * n > most {
            out.push((
                "evaluation_periods",
                format!(
                    "{n} periods of {p} s look back {} s, more than CloudWatch allows ({most} s)",
                    p * n
                ),
                "lower `evaluation_periods` or `period`".into(),
            ));
        }
    }
    if str_of(f, "alarm_description").is_some_and(|d| d.chars().count() > 1024) {
        out.push((
            "alarm_description",
            "the description is longer than 1024 characters".into(),
            "shorten it".into(),
        ));
    }
    for k in ["alarm_actions", "ok_actions", "insufficient_data_actions"] {
        if f.get(k)
            .and_then(Value::as_list)
            .is_some_and(|l| l.len() > 5)
        {
            out.push((
                k,
                format!("`{k}` lists more than 5 actions"),
                "CloudWatch takes at most 5 actions per state; notify one SNS topic with \
                 several subscriptions instead"
                    .into(),
            ));
        }
    }
    if f.get("dimensions")
        .and_then(Value::as_map)
        .is_some_and(|m| m.len() > 30)
    {
        out.push((
            "dimensions",
            "more than 30 dimensions".into(),
            "a metric has at most 30 dimensions".into(),
        ));
    }
    out
}

/// What DescribeAlarms answers, as fields.
pub fn fields_from(a: &MetricAlarm) -> Fields {
    let mut dims: IndexMap<String, Value> = a
        .dimensions()
        .iter()
        .filter_map(|d| Some((d.name()?.to_string(), Value::str(d.value()?))))
        .collect();
    dims.sort_keys();
    let mut f = fields_of([
        ("alarm_name", Value::str(a.alarm_name().unwrap_or_default())),
        (
            "alarm_description",
            Value::str(a.alarm_description().unwrap_or_default()),
        ),
        ("namespace", Value::str(a.namespace().unwrap_or_default())),
        (
            "metric_name",
            Value::str(a.metric_name().unwrap_or_default()),
        ),
        ("dimensions", Value::Map(dims)),
        ("period", Value::Int(i64::from(a.period().unwrap_or(0)))),
        (
            "evaluation_periods",
            Value::Int(i64::from(a.evaluation_periods().unwrap_or(0))),
        ),
        ("threshold", Value::Float(a.threshold().unwrap_or(0.0))),
        (
            "treat_missing_data",
            Value::str(a.treat_missing_data().unwrap_or("missing")),
        ),
        (
            "actions_enabled",
            Value::Bool(a.actions_enabled().unwrap_or(true)),
        ),
        ("alarm_actions", str_list(a.alarm_actions().iter().cloned())),
        ("ok_actions", str_list(a.ok_actions().iter().cloned())),
        (
            "insufficient_data_actions",
            str_list(a.insufficient_data_actions().iter().cloned()),
        ),
    ]);
    if let Some(s) = a.statistic() {
        f.insert("statistic".into(), Value::str(s.as_str()));
    }
    if let Some(s) = a.extended_statistic().filter(|s| !s.is_empty()) {
        f.insert("extended_statistic".into(), Value::str(s));
    }
    if let Some(n) = a.datapoints_to_alarm() {
        f.insert("datapoints_to_alarm".into(), Value::Int(i64::from(n)));
    }
    if let Some(op) = a.comparison_operator() {
        f.insert("comparison_operator".into(), Value::str(op.as_str()));
    }
    if let Some(u) = a.unit() {
        f.insert("unit".into(), Value::str(u.as_str()));
    }
    f
}

/// The named alarms that exist, 100 names a call; AWS's own target
/// tracking alarms are never among them.
async fn describe(cx: &Cx, names: &[String]) -> Result<Vec<MetricAlarm>, ProviderError> {
    let names: Vec<String> = names
        .iter()
        .filter(|n| !n.starts_with(TARGET_TRACKING))
        .cloned()
        .collect();
    let mut out = Vec::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut pages = cx
            .cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .alarm_types(AlarmType::MetricAlarm)
            .max_records(NAMES_PER_CALL as i32)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(ProviderError::from_sdk)?;
            out.extend(page.metric_alarms().iter().cloned());
        }
    }
    Ok(out)
}

/// An alarm's tags with CloudWatch's own call; `None` when it is gone.
async fn list_tags(cx: &Cx, arn: &str) -> Result<Option<IndexMap<String, String>>, ProviderError> {
    let out = unless_gone(
        cx.cloudwatch
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await,
    )?;
    Ok(out.map(|o| {
        own_tags(
            o.tags()
                .iter()
                .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
        )
    }))
}

fn aws_tags(tags: &IndexMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The alarms with their tags: from the observe pass's stack tag index where
/// it lists them, else one ListTagsForResource each, a few at a time.
async fn with_tags(cx: &Cx, alarms: Vec<MetricAlarm>) -> Result<Vec<Observed>, ProviderError> {
    let calls = alarms
        .into_iter()
        .map(|a| async move {
            let name = a.alarm_name().unwrap_or_default().to_string();
            let arn = a.alarm_arn().unwrap_or_default().to_string();
            let tags = match crate::kit::tags::indexed(cx, SCHEMA.kind, &name, &arn).await {
                Some(t) => t,
                None => match list_tags(cx, &arn).await? {
                    Some(t) => t,
                    None => return Ok(None),
                },
            };
            Ok(Some(Observed {
                id: name.clone(),
                fields: fields_from(&a),
                attributes: fields_of([
                    ("id", Value::str(&name)),
                    ("arn", Value::str(&arn)),
                    ("alarm_name", Value::str(&name)),
                ]),
                tags,
            }))
        })
        .collect();
    crate::kit::each(calls).await
}

async fn read_one(cx: &Cx, name: &str) -> Result<Option<Observed>, ProviderError> {
    let found = describe(cx, &[name.to_string()]).await?;
    Ok(with_tags(cx, found).await?.into_iter().next())
}

/// Whether any change needs PutMetricAlarm (everything but the tags does).
fn needs_put(changes: &[FieldChange]) -> bool {
    changes.iter().any(|c| c.field != "tags")
}

impl CloudwatchAlarm {
    /// PutMetricAlarm with every field of `want`: it replaces the alarm
    /// whole, so what is left out is cleared. Tags only go with a create:
    /// AWS ignores them on an existing alarm.
    async fn put(
        &self,
        cx: &Cx,
        want: &Desired<'_>,
        name: &str,
        with_tags: bool,
    ) -> Result<(), ProviderError> {
        let f = want.fields;
        let dimensions = f
            .get("dimensions")
            .and_then(Value::as_map)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        Dimension::builder()
                            .name(k)
                            .value(v.as_str().unwrap_or_default())
                            .build()
                    })
                    .collect()
            })
            .unwrap_or_default();
        cx.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description(str_of(f, "alarm_description").unwrap_or_default())
            .namespace(str_of(f, "namespace").unwrap_or_default())
            .metric_name(str_of(f, "metric_name").unwrap_or_default())
            .set_dimensions(Some(dimensions))
            .set_statistic(str_of(f, "statistic").map(Statistic::from))
            .set_extended_statistic(str_of(f, "extended_statistic").map(str::to_string))
            .set_period(i32_of(f, "period"))
            .set_evaluation_periods(i32_of(f, "evaluation_periods"))
            .set_datapoints_to_alarm(i32_of(f, "datapoints_to_alarm"))
            .set_threshold(f.get("threshold").and_then(Value::as_float))
            .set_comparison_operator(str_of(f, "comparison_operator").map(ComparisonOperator::from))
            .treat_missing_data(str_of(f, "treat_missing_data").unwrap_or("missing"))
            .set_unit(str_of(f, "unit").map(StandardUnit::from))
            .actions_enabled(bool_of(f, "actions_enabled").unwrap_or(true))
            .set_alarm_actions(Some(strs_of(f, "alarm_actions").unwrap_or_default()))
            .set_ok_actions(Some(strs_of(f, "ok_actions").unwrap_or_default()))
            .set_insufficient_data_actions(Some(
                strs_of(f, "insufficient_data_actions").unwrap_or_default(),
            ))
            .set_tags(with_tags.then(|| aws_tags(want.tags)))
            .send()
            .await
            .map(drop)
            .map_err(|e| at(want.address, "PutMetricAlarm", e.into()))
    }

    async fn sync_tags(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
    ) -> Result<(), ProviderError> {
        let a = want.address;
        let arn = str_of(&live.attributes, "arn").unwrap_or_default();
        crate::sync_tags_by!(
            &live.tags,
            want.tags,
            a,
            untag: cx.cloudwatch.untag_resource().resource_arn(arn),
            tag: cx.cloudwatch.tag_resource().resource_arn(arn),
            tags: |s: &IndexMap<String, String>| Ok::<_, ProviderError>(aws_tags(s)),
        )
        .await
    }
}

#[async_trait]
impl Provider for CloudwatchAlarm {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        crate::kit::fields::diagnostics(r, problems(&r.fields))
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let found = with_tags(cx, describe(cx, ids).await?).await?;
        Ok(crate::kit::by_id(found))
    }

    async fn read_tags(
        &self,
        cx: &Cx,
        arns: &[String],
    ) -> Result<Option<crate::kit::tags::TagsByArn>, ProviderError> {
        read_each(arns, |arn| async move { list_tags(cx, &arn).await }).await
    }

    /// One Tagging API listing of the stack's alarms, then one DescribeAlarms
    /// per 100 of them.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let names: Vec<String> = stack_resources_of_type(cx, "cloudwatch:alarm")
            .await?
            .into_iter()
            .filter(|(_, tags)| {
                crate::kit::tags::stack_address(cx, tags)
                    .is_some_and(|a| addresses.is_empty() || addresses.contains(&a))
            })
            .filter_map(|(arn, _)| arn.split_once(":alarm:").map(|(_, n)| n.to_string()))
            .collect();
        if names.is_empty() {
            return Ok(vec![]);
        }
        let found = with_tags(cx, describe(cx, &names).await?).await?;
        Ok(crate::kit::tags::tagged(cx, addresses, found))
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let a = want.address;
        crate::kit::fields::refuse(a, problems(f))?;
        let name = str_of(f, "alarm_name").ok_or_else(|| {
            ProviderError::InvalidInput(format!("{a}: `alarm_name` must be a known string"))
        })?;
        // PutMetricAlarm overwrites an alarm of the same name without a word:
        // look first, so that nobody else's alarm is overwritten.
        if let Some(found) = read_one(cx, name).await? {
            let refused =
                ProviderError::InvalidInput(format!("{a}: an alarm named `{name}` already exists"));
            let live = take_over(cx, want, "a CloudWatch alarm", name, Some(found), refused)?;
            let changes = changes_to(self, want, &live);
            return self.update(cx, &live, want, &changes).await;
        }
        self.put(cx, want, name, true).await?;
        let live = read_one(cx, name).await?.ok_or_else(|| {
            ProviderError::Other(format!(
                "{a}: the alarm `{name}` is not described right after its creation; run plan again"
            ))
        })?;
        Ok(Observed {
            id: name.to_string(),
            fields: f.clone(),
            attributes: live.attributes,
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
        if needs_put(changes) {
            crate::kit::fields::refuse(want.address, problems(want.fields))?;
            self.put(cx, want, &live.id, false).await?;
        }
        if changes_field(changes, "tags") {
            self.sync_tags(cx, live, want).await?;
        }
        // PutMetricAlarm replaced the alarm whole: it is what was sent.
        let fields = if needs_put(changes) {
            want.fields.clone()
        } else {
            let mut f = live.fields.clone();
            f.extend(want.fields.clone());
            f
        };
        Ok(Observed {
            id: live.id.clone(),
            fields,
            attributes: live.attributes.clone(),
            tags: want.tags.clone(),
        })
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        if id.starts_with(TARGET_TRACKING) {
            return Ok(());
        }
        gone_is_done(cx.cloudwatch.delete_alarms().alarm_names(id).send().await).map_err(|e| {
            at(
                &format!("cloudwatch_alarm {id} (stack {})", cx.stack),
                "DeleteAlarms",
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn alarm(extra: &[(&str, Value)]) -> Fields {
        let mut f = fields_of([
            ("alarm_name", Value::str("latency")),
            ("namespace", Value::str("AWS/ApplicationELB")),
            ("metric_name", Value::str("TargetResponseTime")),
            ("statistic", Value::str("Average")),
            ("period", Value::Int(300)),
            ("evaluation_periods", Value::Int(3)),
            ("threshold", Value::Float(2.0)),
            ("comparison_operator", Value::str("GreaterThanThreshold")),
        ]);
        for (k, v) in extra {
            f.insert(k.to_string(), v.clone());
        }
        f
    }

    fn fields(p: &[(&'static str, String, String)]) -> Vec<&'static str> {
        p.iter().map(|x| x.0).collect()
    }

    #[test]
    fn periods_are_10_30_or_whole_minutes() {
        for ok in [10, 30, 60, 300, 3600] {
            assert!(
                problems(&alarm(&[("period", Value::Int(ok))])).is_empty(),
                "{ok}"
            );
        }
        for bad in [45, 20, 90, 61] {
            let p = problems(&alarm(&[("period", Value::Int(bad))]));
            assert_eq!(fields(&p), ["period"], "{bad}: {p:?}");
        }
        let p = problems(&alarm(&[("period", Value::Int(45))]));
        assert!(p[0].2.contains("such as 60"), "{p:?}");
    }

    #[test]
    fn exactly_one_statistic() {
        let p = problems(&alarm(&[("extended_statistic", Value::str("p99"))]));
        assert_eq!(fields(&p), ["extended_statistic"], "{p:?}");
        let mut none = alarm(&[]);
        none.shift_remove("statistic");
        let p = problems(&none);
        assert_eq!(fields(&p), [""], "{p:?}");
        none.insert("extended_statistic".into(), Value::str("p99"));
        assert!(problems(&none).is_empty());
    }

    #[test]
    fn datapoints_within_evaluation_periods_and_a_day_of_look_back() {
        let p = problems(&alarm(&[("datapoints_to_alarm", Value::Int(4))]));
        assert_eq!(fields(&p), ["datapoints_to_alarm"], "{p:?}");
        assert!(problems(&alarm(&[("datapoints_to_alarm", Value::Int(3))])).is_empty());
        let p = problems(&alarm(&[
            ("period", Value::Int(60)),
            ("evaluation_periods", Value::Int(1441)),
        ]));
        assert_eq!(fields(&p), ["evaluation_periods"], "{p:?}");
    }

    #[test]
    fn extended_statistics_and_names() {
        for ok in [
            "p99",
            "p99.9",
            "p0",
            "p100",
            "tm90",
            "TM(10%:90%)",
            "wm99",
            "IQM",
            "PR(:300)",
        ] {
            assert!(check_extended_statistic(ok).is_ok(), "{ok}");
        }
        for bad in ["p101", "Average", "p", "99", "tmx"] {
            assert!(check_extended_statistic(bad).is_err(), "{bad}");
        }
        assert!(check_name("keycloak-latency").is_ok());
        assert!(check_name("TargetTracking-table/x-AlarmHigh-1").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn observed_alarms_compare_clean_with_their_declaration() {
        let a = MetricAlarm::builder()
            .alarm_name("latency")
            .alarm_arn("arn:aws:cloudwatch:us-east-1:1:alarm:latency")
            .namespace("AWS/ApplicationELB")
            .metric_name("TargetResponseTime")
            .statistic(Statistic::Average)
            .period(300)
            .evaluation_periods(3)
            .threshold(2.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .actions_enabled(true)
            .dimensions(
                Dimension::builder()
                    .name("LoadBalancer")
                    .value("app/k/1")
                    .build(),
            )
            .alarm_actions("arn:aws:sns:us-east-1:1:b")
            .alarm_actions("arn:aws:sns:us-east-1:1:a")
            .build();
        let live = fields_from(&a);
        // What the loader hands over: defaults filled in, the threshold written `2`.
        let mut want = alarm(&[
            ("threshold", Value::Float(2.0)),
            (
                "dimensions",
                Value::Map(fields_of([("LoadBalancer", Value::str("app/k/1"))])),
            ),
            (
                "alarm_actions",
                str_list(["arn:aws:sns:us-east-1:1:a", "arn:aws:sns:us-east-1:1:b"]),
            ),
        ]);
        for f in SCHEMA.fields {
            if let (false, Some(d)) = (want.contains_key(f.name), f.default) {
                want.insert(f.name.to_string(), d.value());
            }
        }
        assert!(
            CloudwatchAlarm.diff(&want, &live).is_empty(),
            "{:?}",
            CloudwatchAlarm.diff(&want, &live)
        );

        // From Average to p99: the statistic AWS still has is cleared.
        want.shift_remove("statistic");
        want.insert("extended_statistic".into(), Value::str("p99"));
        let c: Vec<String> = CloudwatchAlarm
            .diff(&want, &live)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(c, ["extended_statistic", "statistic"]);

        let changed = |field: &str| vec![FieldChange::new(field, None, None, false)];
        assert!(!needs_put(&changed("tags")));
        assert!(needs_put(&changed("threshold")));
    }
}
