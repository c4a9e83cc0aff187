//! `appautoscaling_policy`: how Application Auto Scaling moves a scalable
//! target, by target tracking (keep a metric near a value) or by steps (react
//! to an alarm by fixed adjustments).
//!
//! A target tracking policy makes AWS create and own two CloudWatch alarms
//! ("TargetTracking-..."). They are AWS's: they carry no stack tag, so neither
//! the unmanaged scan nor adoption ever sees them, and they are not compared;
//! their names are exported for dashboards.

use super::{aas_error, bad_id, key_problems, Key, DIMENSIONS, ECS_DESIRED_COUNT, NAMESPACES};
use crate::kit::error::{at, gone_is_done};
use crate::kit::fields::{bool_of, diagnostics, fields_of, i32_of, refuse, some_fields_of, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, MetricType, PolicyType, PredefinedMetricSpecification,
    ScalableDimension, ScalingPolicy, ServiceNamespace, StepAdjustment,
    StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration,
};
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct AppautoscalingPolicy;

/// How many policy names one DescribeScalingPolicies takes.
const NAMES_PER_CALL: usize = 50;

const TARGET_TRACKING: &str = "TargetTrackingScaling";
const STEP: &str = "StepScaling";

const TRACKING_FIELDS: &[Field] = &[
    Field::new(
        "target_value",
        Ty::Float,
        "The value the metric is kept near, like 70 (percent CPU).",
    )
    .required(),
    Field::new(
        "predefined_metric_type",
        Ty::Enum(MetricType::values()),
        "The metric: ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization or \
         ALBRequestCountPerTarget (with `resource_label`) for ECS services.",
    )
    .required(),
    Field::new(
        "resource_label",
        Ty::Str,
        "For ALBRequestCountPerTarget: \"app/<load balancer>/<id>/targetgroup/<target \
         group>/<id>\".",
    ),
    Field::new(
        "scale_in_cooldown",
        Ty::Int,
        "Seconds after a scale-in before another scale-in.",
    )
    .range(0, 2_147_483_647),
    Field::new(
        "scale_out_cooldown",
        Ty::Int,
        "Seconds after a scale-out before another scale-out.",
    )
    .range(0, 2_147_483_647),
    Field::new(
        "disable_scale_in",
        Ty::Bool,
        "Only ever scale out (scale in by other means).",
    )
    .default(Default::Bool(false)),
];

const STEP_ADJUSTMENT_FIELDS: &[Field] = &[
    Field::new(
        "metric_interval_lower_bound",
        Ty::Float,
        "Lower bound of the step, as a difference from the alarm's threshold (none: minus \
         infinity).",
    ),
    Field::new(
        "metric_interval_upper_bound",
        Ty::Float,
        "Upper bound of the step, as a difference from the alarm's threshold (none: \
         infinity).",
    ),
    Field::new(
        "scaling_adjustment",
        Ty::Int,
        "How much to scale by in this step (negative scales in).",
    )
    .required(),
];

const STEP_FIELDS: &[Field] = &[
    Field::new(
        "adjustment_type",
        Ty::Enum(AdjustmentType::values()),
        "How `scaling_adjustment` is read: ChangeInCapacity, ExactCapacity or \
         PercentChangeInCapacity.",
    )
    .required(),
    Field::new(
        "cooldown",
        Ty::Int,
        "Seconds after a scaling activity before another one.",
    )
    .range(0, 2_147_483_647),
    Field::new(
        "metric_aggregation_type",
        Ty::Enum(MetricAggregationType::values()),
        "How the alarm's metric is aggregated: Average, Minimum or Maximum.",
    ),
    Field::new(
        "min_adjustment_magnitude",
        Ty::Int,
        "With PercentChangeInCapacity: the least number of tasks a step changes.",
    ),
    Field::new(
        "step_adjustments",
        Ty::List(&Ty::Object(STEP_ADJUSTMENT_FIELDS)),
        "The steps: [{ metric_interval_lower_bound, metric_interval_upper_bound, \
         scaling_adjustment }].",
    )
    .required(),
];

pub static SCHEMA: Schema = Schema {
    kind: "appautoscaling_policy",
    doc: "A scaling policy of a scalable target: target tracking (keep a metric near \
          `target_value`) or step scaling. Write its target's key as references, \
          `resource_id = \"${appautoscaling_target.api.resource_id}\"` (and the same for \
          `service_namespace` and `scalable_dimension` when not ECS's), so it is created after \
          its target and deleted before it. A target tracking policy makes AWS create two \
          CloudWatch alarms named \"TargetTracking-...\": AWS owns them, reconcile neither \
          compares nor lists them, and exports their names as `alarm_names`. Changes are put \
          in place (PutScalingPolicy). Known by its key \
          `NAMESPACE/RESOURCE_ID/DIMENSION/NAME` (the import id). Not tagged (AWS does not \
          tag policies). Observed with one DescribeScalingPolicies per namespace per 50 \
          policy names. The emulator gives a policy a new ARN and two new alarms on every \
          put (leaving the old alarms behind), keeps a deregistered target's policies (AWS \
          deletes them with it) and accepts a policy for a target that does not exist.",
    fields: &[
        Field::new(
            "name",
            Ty::Str,
            "The policy's name, unique for its target. Changing it replaces the policy.",
        )
        .required()
        .force_new(),
        Field::new(
            "service_namespace",
            Ty::Enum(NAMESPACES),
            "The scaled resource's AWS service. Changing it replaces the policy.",
        )
        .default(Default::Str("ecs"))
        .force_new(),
        Field::new(
            "resource_id",
            Ty::Str,
            "The target's resource id, like \"${appautoscaling_target.api.resource_id}\". \
             Changing it replaces the policy.",
        )
        .required()
        .force_new(),
        Field::new(
            "scalable_dimension",
            Ty::Enum(DIMENSIONS),
            "The target's dimension. Changing it replaces the policy.",
        )
        .default(Default::Str(ECS_DESIRED_COUNT))
        .force_new(),
        Field::new(
            "policy_type",
            Ty::Enum(&[TARGET_TRACKING, STEP]),
            "TargetTrackingScaling (with `target_tracking`) or StepScaling (with \
             `step_scaling`). Changed in place.",
        )
        .default(Default::Str(TARGET_TRACKING)),
        Field::new(
            "target_tracking",
            Ty::Object(TRACKING_FIELDS),
            "{ target_value = 70, predefined_metric_type = \"ECSServiceAverageCPUUtilization\", \
             scale_in_cooldown = 300, scale_out_cooldown = 60 }. Changed in place.",
        ),
        Field::new(
            "step_scaling",
            Ty::Object(STEP_FIELDS),
            "{ adjustment_type = \"ChangeInCapacity\", cooldown = 60, metric_aggregation_type = \
             \"Average\", step_adjustments = [{ metric_interval_lower_bound = 0, \
             scaling_adjustment = 1 }] }. Changed in place.",
        ),
    ],
    attributes: &[
        ("id", "The key: NAMESPACE/RESOURCE_ID/DIMENSION/NAME."),
        ("arn", "The policy's ARN."),
        (
            "alarm_names",
            "The CloudWatch alarms AWS created for a target tracking policy.",
        ),
    ],
    taggable: false,
};

/// Problems in one declaration, as (field, what, what to do).
pub fn problems(f: &Fields) -> Vec<(&'static str, String, String)> {
    let mut out = key_problems(
        str_of(f, "service_namespace"),
        str_of(f, "resource_id"),
        str_of(f, "scalable_dimension"),
    );
    let kind = str_of(f, "policy_type").unwrap_or(TARGET_TRACKING);
    let (wanted, other) = if kind == STEP {
        ("step_scaling", "target_tracking")
    } else {
        ("target_tracking", "step_scaling")
    };
    if !f.contains_key(wanted) {
        out.push((
            "policy_type",
            format!("a {kind} policy needs `{wanted}`"),
            format!("add `{wanted} = {{ ... }}`, or change policy_type"),
        ));
    }
    if f.contains_key(other) {
        out.push((
            other,
            format!("`{other}` does not apply to a {kind} policy"),
            "remove it, or set policy_type to match it".to_string(),
        ));
    }
    if let Some(t) = f.get("target_tracking").and_then(Value::as_map) {
        let metric = str_of(t, "predefined_metric_type");
        if metric == Some("ALBRequestCountPerTarget") && !t.contains_key("resource_label") {
            out.push((
                "target_tracking",
                "ALBRequestCountPerTarget needs `resource_label`".into(),
                "add resource_label = \"app/<load balancer>/<id>/targetgroup/<target group>/<id>\""
                    .into(),
            ));
        }
    }
    if let Some(steps) = f
        .get("step_scaling")
        .and_then(Value::as_map)
        .and_then(|s| s.get("step_adjustments"))
        .and_then(Value::as_list)
    {
        if steps.is_empty() {
            out.push((
                "step_scaling",
                "step_adjustments is empty".into(),
                "add at least one step, like { metric_interval_lower_bound = 0, \
                 scaling_adjustment = 1 }"
                    .into(),
            ));
        }
    }
    out
}

fn key_of(f: &Fields) -> (Key, String) {
    (
        Key {
            namespace: str_of(f, "service_namespace").unwrap_or("ecs").to_string(),
            resource_id: str_of(f, "resource_id").unwrap_or_default().to_string(),
            dimension: str_of(f, "scalable_dimension")
                .unwrap_or(ECS_DESIRED_COUNT)
                .to_string(),
        },
        str_of(f, "name").unwrap_or_default().to_string(),
    )
}

fn id_of(key: &Key, name: &str) -> String {
    format!("{}/{name}", key.id())
}

fn int(v: Option<i32>) -> Option<Value> {
    v.map(|n| Value::Int(n.into()))
}

fn float(v: Option<f64>) -> Option<Value> {
    v.map(Value::Float)
}

fn tracking(c: &TargetTrackingScalingPolicyConfiguration) -> Value {
    let metric = c.predefined_metric_specification();
    Value::Map(some_fields_of([
        ("target_value", Some(Value::Float(c.target_value()))),
        (
            "predefined_metric_type",
            metric.map(|m| Value::str(m.predefined_metric_type().as_str())),
        ),
        (
            "resource_label",
            metric.and_then(|m| m.resource_label()).map(Value::str),
        ),
        ("scale_in_cooldown", int(c.scale_in_cooldown())),
        ("scale_out_cooldown", int(c.scale_out_cooldown())),
        (
            "disable_scale_in",
            Some(Value::Bool(c.disable_scale_in().unwrap_or(false))),
        ),
    ]))
}

fn steps(c: &StepScalingPolicyConfiguration) -> Value {
    let adjustments = c
        .step_adjustments()
        .iter()
        .map(|s| {
            Value::Map(some_fields_of([
                (
                    "metric_interval_lower_bound",
                    float(s.metric_interval_lower_bound()),
                ),
                (
                    "metric_interval_upper_bound",
                    float(s.metric_interval_upper_bound()),
                ),
                (
                    "scaling_adjustment",
                    Some(Value::Int(s.scaling_adjustment().into())),
                ),
            ]))
        })
        .collect();
    Value::Map(some_fields_of([
        (
            "adjustment_type",
            c.adjustment_type().map(|a| Value::str(a.as_str())),
        ),
        ("cooldown", int(c.cooldown())),
        (
            "metric_aggregation_type",
            c.metric_aggregation_type().map(|a| Value::str(a.as_str())),
        ),
        (
            "min_adjustment_magnitude",
            int(c.min_adjustment_magnitude()),
        ),
        ("step_adjustments", Some(Value::List(adjustments))),
    ]))
}

fn observed(p: &ScalingPolicy) -> Observed {
    let key = Key {
        namespace: p.service_namespace().as_str().to_string(),
        resource_id: p.resource_id().to_string(),
        dimension: p.scalable_dimension().as_str().to_string(),
    };
    let id = id_of(&key, p.policy_name());
    let alarms = p
        .alarms()
        .iter()
        .map(|a| Value::str(a.alarm_name()))
        .collect();
    Observed {
        fields: some_fields_of([
            ("name", Some(Value::str(p.policy_name()))),
            ("service_namespace", Some(Value::str(&key.namespace))),
            ("resource_id", Some(Value::str(&key.resource_id))),
            ("scalable_dimension", Some(Value::str(&key.dimension))),
            ("policy_type", Some(Value::str(p.policy_type().as_str()))),
            (
                "target_tracking",
                p.target_tracking_scaling_policy_configuration()
                    .map(tracking),
            ),
            (
                "step_scaling",
                p.step_scaling_policy_configuration().map(steps),
            ),
        ]),
        attributes: fields_of([
            ("id", Value::str(&id)),
            ("arn", Value::str(p.policy_arn())),
            ("alarm_names", Value::List(alarms)),
        ]),
        id,
        tags: indexmap::IndexMap::new(),
    }
}

/// The policies with these keys and names: one DescribeScalingPolicies per
/// namespace per 50 names (per page), filtered to the keys asked for.
async fn describe(cx: &Cx, wanted: &[(Key, String)]) -> Result<Vec<Observed>, ProviderError> {
    let mut by_ns: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (k, name) in wanted {
        by_ns.entry(&k.namespace).or_default().insert(name);
    }
    let ids: BTreeSet<String> = wanted.iter().map(|(k, n)| id_of(k, n)).collect();
    let mut out = Vec::new();
    for (ns, names) in by_ns {
        let names: Vec<String> = names.into_iter().map(str::to_string).collect();
        for chunk in names.chunks(NAMES_PER_CALL) {
            let mut pages = cx
                .autoscaling
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::from(ns))
                .set_policy_names(Some(chunk.to_vec()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for p in page.map_err(aas_error)?.scaling_policies() {
                    let o = observed(p);
                    if ids.contains(&o.id) {
                        out.push(o);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn parse(id: &str) -> Result<(Key, String), ProviderError> {
    match Key::parse(id) {
        Some((k, Some(name))) => Ok((k, name)),
        _ => Err(bad_id(
            id,
            "a scaling policy key (with /NAME after the target's key)",
        )),
    }
}

fn tracking_config(
    addr: &str,
    t: &Fields,
) -> Result<TargetTrackingScalingPolicyConfiguration, ProviderError> {
    let invalid = |e: aws_smithy_types::error::operation::BuildError| {
        ProviderError::InvalidInput(format!("{addr}: target_tracking: {e}"))
    };
    let metric = PredefinedMetricSpecification::builder()
        .set_predefined_metric_type(str_of(t, "predefined_metric_type").map(MetricType::from))
        .set_resource_label(str_of(t, "resource_label").map(str::to_string))
        .build()
        .map_err(invalid)?;
    TargetTrackingScalingPolicyConfiguration::builder()
        .set_target_value(t.get("target_value").and_then(Value::as_float))
        .predefined_metric_specification(metric)
        .set_scale_in_cooldown(i32_of(t, "scale_in_cooldown"))
        .set_scale_out_cooldown(i32_of(t, "scale_out_cooldown"))
        .set_disable_scale_in(bool_of(t, "disable_scale_in"))
        .build()
        .map_err(invalid)
}

fn step_config(addr: &str, s: &Fields) -> Result<StepScalingPolicyConfiguration, ProviderError> {
    let adjustments = s
        .get("step_adjustments")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_map)
        .map(|a| {
            StepAdjustment::builder()
                .set_metric_interval_lower_bound(
                    a.get("metric_interval_lower_bound")
                        .and_then(Value::as_float),
                )
                .set_metric_interval_upper_bound(
                    a.get("metric_interval_upper_bound")
                        .and_then(Value::as_float),
                )
                .set_scaling_adjustment(i32_of(a, "scaling_adjustment"))
                .build()
                .map_err(|e| ProviderError::InvalidInput(format!("{addr}: step_adjustments: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StepScalingPolicyConfiguration::builder()
        .set_adjustment_type(str_of(s, "adjustment_type").map(AdjustmentType::from))
        .set_cooldown(i32_of(s, "cooldown"))
        .set_metric_aggregation_type(
            str_of(s, "metric_aggregation_type").map(MetricAggregationType::from),
        )
        .set_min_adjustment_magnitude(i32_of(s, "min_adjustment_magnitude"))
        .set_step_adjustments(Some(adjustments))
        .build())
}

impl AppautoscalingPolicy {
    /// PutScalingPolicy: creates, or replaces the configuration of, the policy
    /// of that name on that target.
    async fn put(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        refuse(addr, problems(f))?;
        let (key, name) = key_of(f);
        let kind = str_of(f, "policy_type").unwrap_or(TARGET_TRACKING);
        let table = |k: &str| f.get(k).and_then(Value::as_map);
        let tracking = table("target_tracking")
            .map(|t| tracking_config(addr, t))
            .transpose()?;
        let step = table("step_scaling")
            .map(|s| step_config(addr, s))
            .transpose()?;
        cx.autoscaling
            .put_scaling_policy()
            .policy_name(&name)
            .service_namespace(ServiceNamespace::from(key.namespace.as_str()))
            .resource_id(&key.resource_id)
            .scalable_dimension(ScalableDimension::from(key.dimension.as_str()))
            .policy_type(PolicyType::from(kind))
            .set_target_tracking_scaling_policy_configuration(tracking)
            .set_step_scaling_policy_configuration(step)
            .send()
            .await
            .map_err(|e| at(addr, "putting", aas_error(e)))?;
        describe(cx, &[(key.clone(), name.clone())])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ProviderError::NotFound(format!(
                    "{addr}: the policy {} is not there right after it was put; run plan again",
                    id_of(&key, &name)
                ))
            })
    }
}

#[async_trait]
impl Provider for AppautoscalingPolicy {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        diagnostics(r, problems(&r.fields))
    }

    /// A new name or target is another policy; the old one can stay meanwhile.
    fn create_before_destroy(&self, _changes: &[FieldChange]) -> bool {
        true
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let wanted = ids
            .iter()
            .map(|id| parse(id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::kit::by_id(describe(cx, &wanted).await?))
    }

    /// Policies carry no tags; an interrupted create is put again by the next
    /// apply under the same name, which AWS treats as the same policy.
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        self.put(cx, want).await
    }

    async fn update(
        &self,
        cx: &Cx,
        _live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        self.put(cx, want).await
    }

    /// AWS deletes a target tracking policy's alarms with it; a policy whose
    /// target was deregistered is gone already.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let (key, name) = parse(id)?;
        gone_is_done(
            cx.autoscaling
                .delete_scaling_policy()
                .policy_name(&name)
                .service_namespace(ServiceNamespace::from(key.namespace.as_str()))
                .resource_id(&key.resource_id)
                .scalable_dimension(ScalableDimension::from(key.dimension.as_str()))
                .send()
                .await
                .map_err(aas_error),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn f(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn cpu(target: f64) -> Value {
        Value::Map(f(&[
            ("target_value", Value::Float(target)),
            (
                "predefined_metric_type",
                Value::str("ECSServiceAverageCPUUtilization"),
            ),
            ("scale_in_cooldown", Value::Int(300)),
            ("scale_out_cooldown", Value::Int(60)),
        ]))
    }

    #[test]
    fn a_policy_needs_the_configuration_of_its_type_and_only_that() {
        let base = [
            ("name", Value::str("cpu")),
            ("resource_id", Value::str("service/main/api")),
        ];
        let mut tt = f(&base);
        tt.insert("target_tracking".into(), cpu(70.0));
        assert!(problems(&tt).is_empty(), "{:?}", problems(&tt));
        tt.insert("policy_type".into(), Value::str(STEP));
        let fields: Vec<&str> = problems(&tt).iter().map(|p| p.0).collect();
        assert_eq!(fields, ["policy_type", "target_tracking"]);
        let mut alb = f(&base);
        alb.insert(
            "target_tracking".into(),
            Value::Map(f(&[
                ("target_value", Value::Float(100.0)),
                (
                    "predefined_metric_type",
                    Value::str("ALBRequestCountPerTarget"),
                ),
            ])),
        );
        assert!(problems(&alb)[0].1.contains("resource_label"));
    }

    #[test]
    fn what_aws_answers_for_a_declared_policy_compares_clean() {
        let want = f(&[("target_tracking", cpu(70.0))]);
        let mut live_tt = cpu(70.0);
        // AWS answers disable_scale_in; the schema's default covers it.
        if let Value::Map(m) = &mut live_tt {
            m.insert("disable_scale_in".into(), Value::Bool(false));
        }
        let live = f(&[("target_tracking", live_tt)]);
        assert!(AppautoscalingPolicy.diff(&want, &live).is_empty());
        let moved = f(&[("target_tracking", cpu(60.0))]);
        let d = AppautoscalingPolicy.diff(&want, &moved);
        assert_eq!(d.len(), 1);
        assert!(!d[0].forces_replace);
    }
}
