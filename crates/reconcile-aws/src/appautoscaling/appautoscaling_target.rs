//! `appautoscaling_target`: a scalable target, the bounds within which
//! Application Auto Scaling may move one dimension of a resource (an ECS
//! service's task count, say).
//!
//! While a target scales an ECS service declared in the same stack, that
//! service's `desired_count` belongs to the autoscaler: the target tells the
//! planner so ([`Provider::takes_over`]), which then compares everything of the
//! service but its task count, and says so in the plan. Without this the
//! service and the autoscaler would undo each other's work on every apply.

use super::{aas_error, bad_id, key_problems, Key, DIMENSIONS, ECS_DESIRED_COUNT, NAMESPACES};
use crate::kit::error::gone_is_done;
use crate::kit::fields::{diagnostics, fields_of, i32_of, refuse, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ScalableTarget, ServiceNamespace};
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct AppautoscalingTarget;

/// How many resource ids one DescribeScalableTargets takes.
const IDS_PER_CALL: usize = 50;

pub static SCHEMA: Schema = Schema {
    kind: "appautoscaling_target",
    doc: "A scalable target: the bounds within which Application Auto Scaling moves one \
          dimension of a resource, an ECS service's task count by default. While a target \
          scales an ECS service of the stack (its `resource_id` refers to the service, like \
          \"service/${ecs_cluster.main.name}/${ecs_service.api.name}\"), the service's \
          `desired_count` is the autoscaler's: it is set when the service is created, then no \
          longer compared with AWS, and the plan says so; removing the target makes it managed \
          again. Known by its key `NAMESPACE/RESOURCE_ID/DIMENSION` (the import id); AWS keeps \
          one target per key, so a create of a key that exists takes that target over, as \
          Terraform does. Not tagged: the emulator implements none of Application Auto \
          Scaling's tag operations, so tags could be neither written nor checked there; the \
          unmanaged scan therefore does not list targets. Observed with one \
          DescribeScalableTargets per namespace per 50 targets. The emulator accepts a \
          `min_capacity` above `max_capacity` (AWS refuses it; reconcile refuses it before any \
          call) and does not move the service's task count into the new bounds as AWS does.",
    fields: &[
        Field::new(
            "service_namespace",
            Ty::Enum(NAMESPACES),
            "The AWS service of the scaled resource. Changing it replaces the target.",
        )
        .default(Default::Str("ecs"))
        .force_new(),
        Field::new(
            "resource_id",
            Ty::Str,
            "The scaled resource as Application Auto Scaling names it; for an ECS service \
             \"service/CLUSTER/SERVICE\", written with references so the service's \
             `desired_count` is left to the target: \
             \"service/${ecs_cluster.main.name}/${ecs_service.api.name}\". Changing it replaces \
             the target.",
        )
        .required()
        .force_new(),
        Field::new(
            "scalable_dimension",
            Ty::Enum(DIMENSIONS),
            "What is scaled. Changing it replaces the target.",
        )
        .default(Default::Str(ECS_DESIRED_COUNT))
        .force_new(),
        Field::new(
            "min_capacity",
            Ty::Int,
            "The fewest the autoscaler may scale in to (at most `max_capacity`). Updated in \
             place.",
        )
        .required()
        .range(0, 2_147_483_647),
        Field::new(
            "max_capacity",
            Ty::Int,
            "The most the autoscaler may scale out to. Updated in place.",
        )
        .required()
        .range(0, 2_147_483_647),
    ],
    attributes: &[
        ("id", "The key: NAMESPACE/RESOURCE_ID/DIMENSION."),
        (
            "arn",
            "The scalable target's ARN (empty where AWS gives none).",
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
    let int = |k| f.get(k).and_then(Value::as_int);
    if let (Some(min), Some(max)) = (int("min_capacity"), int("max_capacity")) {
        if min > max {
            out.push((
                "max_capacity",
                format!("max_capacity {max} is below min_capacity {min}"),
                "raise max_capacity to min_capacity or more, or lower min_capacity".into(),
            ));
        }
    }
    out
}

fn key_of(f: &Fields) -> Key {
    Key {
        namespace: str_of(f, "service_namespace").unwrap_or("ecs").to_string(),
        resource_id: str_of(f, "resource_id").unwrap_or_default().to_string(),
        dimension: str_of(f, "scalable_dimension")
            .unwrap_or(ECS_DESIRED_COUNT)
            .to_string(),
    }
}

fn observed(t: &ScalableTarget) -> Observed {
    let key = Key {
        namespace: t.service_namespace().as_str().to_string(),
        resource_id: t.resource_id().to_string(),
        dimension: t.scalable_dimension().as_str().to_string(),
    };
    let id = key.id();
    Observed {
        fields: fields_of([
            ("service_namespace", Value::str(&key.namespace)),
            ("resource_id", Value::str(&key.resource_id)),
            ("scalable_dimension", Value::str(&key.dimension)),
            ("min_capacity", Value::Int(t.min_capacity().into())),
            ("max_capacity", Value::Int(t.max_capacity().into())),
        ]),
        attributes: fields_of([
            ("id", Value::str(&id)),
            (
                "arn",
                Value::str(t.scalable_target_arn().unwrap_or_default()),
            ),
        ]),
        id,
        tags: indexmap::IndexMap::new(),
    }
}

/// The targets with these keys, one DescribeScalableTargets per namespace per
/// 50 resource ids (per page).
pub async fn describe(cx: &Cx, keys: &[Key]) -> Result<Vec<Observed>, ProviderError> {
    let mut by_ns: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for k in keys {
        by_ns
            .entry(&k.namespace)
            .or_default()
            .insert(&k.resource_id);
    }
    let wanted: BTreeSet<String> = keys.iter().map(Key::id).collect();
    let mut out = Vec::new();
    for (ns, ids) in by_ns {
        let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let mut pages = cx
                .autoscaling
                .describe_scalable_targets()
                .service_namespace(ServiceNamespace::from(ns))
                .set_resource_ids(Some(chunk.to_vec()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for t in page.map_err(aas_error)?.scalable_targets() {
                    let o = observed(t);
                    if wanted.contains(&o.id) {
                        out.push(o);
                    }
                }
            }
        }
    }
    Ok(out)
}

async fn observe_key(cx: &Cx, key: &Key) -> Result<Option<Observed>, ProviderError> {
    Ok(describe(cx, std::slice::from_ref(key))
        .await?
        .into_iter()
        .next())
}

/// The ECS services a target scales: those its resource id refers to as
/// declared, or, for a target only state still holds (references resolved
/// there), the services it depended on.
pub fn scaled_services(f: &Fields, uses: &[String]) -> Vec<String> {
    let dimension = f.get("scalable_dimension");
    // A dimension written as a reference is known only at apply: assume ECS
    // only when the namespace says so.
    let ecs = match dimension.and_then(Value::as_str) {
        Some(d) if !d.contains("${") => d == ECS_DESIRED_COUNT,
        Some(_) => str_of(f, "service_namespace").unwrap_or("ecs") == "ecs",
        None => true,
    };
    if !ecs {
        return vec![];
    }
    let is_service = |a: &String| a.starts_with("ecs_service.");
    let referenced: Vec<String> = f
        .get("resource_id")
        .map(Value::references)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.address())
        .filter(is_service)
        .collect();
    if !referenced.is_empty() {
        return referenced;
    }
    uses.iter().filter(|a| is_service(a)).cloned().collect()
}

impl AppautoscalingTarget {
    async fn register(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        refuse(addr, problems(f))?;
        let key = key_of(f);
        cx.autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::from(key.namespace.as_str()))
            .resource_id(&key.resource_id)
            .scalable_dimension(ScalableDimension::from(key.dimension.as_str()))
            .set_min_capacity(i32_of(f, "min_capacity"))
            .set_max_capacity(i32_of(f, "max_capacity"))
            .send()
            .await
            .map_err(|e| crate::kit::error::at(addr, "registering", aas_error(e)))?;
        observe_key(cx, &key).await?.ok_or_else(|| {
            ProviderError::NotFound(format!(
                "{addr}: the target {} is not there right after it was registered; run plan again",
                key.id()
            ))
        })
    }
}

#[async_trait]
impl Provider for AppautoscalingTarget {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        diagnostics(r, problems(&r.fields))
    }

    fn takes_over(&self, fields: &Fields, uses: &[String]) -> Vec<(String, String)> {
        scaled_services(fields, uses)
            .into_iter()
            .map(|a| (a, "desired_count".to_string()))
            .collect()
    }

    /// The key changes only by replacement, and the old key is another target.
    fn create_before_destroy(&self, _changes: &[FieldChange]) -> bool {
        true
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let keys = ids
            .iter()
            .map(|id| {
                Key::parse(id)
                    .map(|(k, _)| k)
                    .ok_or_else(|| bad_id(id, "a scalable target key"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::kit::by_id(describe(cx, &keys).await?))
    }

    /// Targets carry no tags (see the kind's doc); an interrupted create is
    /// found again by its key, which the next create registers again.
    async fn find_tagged(
        &self,
        _cx: &Cx,
        _addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(vec![])
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        self.register(cx, want).await
    }

    /// RegisterScalableTarget again: it updates the bounds of an existing key.
    async fn update(
        &self,
        cx: &Cx,
        _live: &Observed,
        want: &Desired<'_>,
        _changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        self.register(cx, want).await
    }

    /// AWS deletes the target's policies with it (the emulator keeps them).
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let (key, _) = Key::parse(id).ok_or_else(|| bad_id(id, "a scalable target key"))?;
        gone_is_done(
            cx.autoscaling
                .deregister_scalable_target()
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
    use crate::kit::testing::{resource, stack};

    fn target(min: i64, max: i64) -> Resource {
        resource(
            "appautoscaling_target.api",
            &[
                ("resource_id", Value::str("service/main/api")),
                ("min_capacity", Value::Int(min)),
                ("max_capacity", Value::Int(max)),
            ],
        )
    }

    #[test]
    fn min_above_max_is_refused_at_max_capacity() {
        let r = target(5, 2);
        let d = AppautoscalingTarget.validate(&stack(vec![r.clone()]), &r);
        assert_eq!(d.len(), 1, "{d:?}");
        // max_capacity is the third field: line 4.
        assert_eq!(d[0].pos.as_ref().map(|p| p.line), Some(4));
        assert!(
            d[0].message.contains("below min_capacity 5"),
            "{}",
            d[0].message
        );
        let r = target(2, 2);
        assert!(AppautoscalingTarget
            .validate(&stack(vec![r.clone()]), &r)
            .is_empty());
    }

    #[test]
    fn a_target_takes_over_the_desired_count_of_the_service_it_refers_to() {
        let declared: Fields = [
            (
                "resource_id",
                Value::str("service/${ecs_cluster.main.name}/${ecs_service.api.name}"),
            ),
            ("scalable_dimension", Value::str(ECS_DESIRED_COUNT)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // Declared: the reference inside resource_id decides, not other uses.
        let uses = [
            "ecs_cluster.main".to_string(),
            "ecs_service.other".to_string(),
        ];
        assert_eq!(
            AppautoscalingTarget.takes_over(&declared, &uses),
            [("ecs_service.api".to_string(), "desired_count".to_string())]
        );
        // From state: resolved, so the services it depended on.
        let mut applied = declared.clone();
        applied.insert("resource_id".into(), Value::str("service/main/api"));
        let uses = [
            "ecs_cluster.main".to_string(),
            "ecs_service.api".to_string(),
        ];
        assert_eq!(
            AppautoscalingTarget.takes_over(&applied, &uses),
            [("ecs_service.api".to_string(), "desired_count".to_string())]
        );
        // Another dimension takes nothing over.
        let mut table = declared;
        table.insert(
            "scalable_dimension".into(),
            Value::str("dynamodb:table:ReadCapacityUnits"),
        );
        assert!(AppautoscalingTarget.takes_over(&table, &uses).is_empty());
    }
}
