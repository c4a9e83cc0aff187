//! `ecs_cluster`: an ECS cluster, with CloudWatch Container Insights managed in place.
//!
//! CreateCluster answers an existing name with the existing cluster (AWS) or
//! replaces it (moto), so a create looks the name up first and adopts only a
//! cluster tagged as this stack's same address.

use crate::ecs::{self, ecs_error, fields_of, named};
use crate::kit::adopt::changes_to;
use crate::kit::fields::{changes_field, str_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use async_trait::async_trait;
use aws_sdk_ecs::types::{Cluster, ClusterSetting, ClusterSettingName};
use reconcile_core::model::schema::{Default, Field, Schema, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;
use std::time::Duration;

pub struct EcsCluster;

pub const INSIGHTS: &[&str] = &["enabled", "disabled", "enhanced"];

fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{s}\" is not a cluster name: use 1 to 255 letters, digits, hyphens and underscores"
        ))
    }
}

pub static SCHEMA: Schema = Schema {
    kind: "ecs_cluster",
    doc: "An ECS cluster for Fargate services. Observed in batches of 100 per DescribeClusters \
          call, tags included.",
    fields: &[
        Field::new(
            "name",
            Ty::Pattern(check_name),
            "The cluster name, unique in the region. Changing it replaces the cluster.",
        )
        .required()
        .force_new(),
        Field::new(
            "container_insights",
            Ty::Enum(INSIGHTS),
            "CloudWatch Container Insights: \"enabled\", \"enhanced\" (with per-container \
             metrics) or \"disabled\". Changed in place.",
        )
        .default(Default::Str("disabled")),
    ],
    attributes: &[
        ("id", "The cluster ARN."),
        ("arn", "The cluster ARN."),
        ("name", "The cluster name."),
    ],
    taggable: true,
};

fn observed(c: &Cluster) -> Option<Observed> {
    let arn = c.cluster_arn()?.to_string();
    let name = c.cluster_name().unwrap_or_default().to_string();
    // A cluster that never had the setting written has it off.
    let insights = c
        .settings()
        .iter()
        .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
        .and_then(|s| s.value())
        .unwrap_or("disabled");
    Some(Observed {
        fields: fields_of([
            ("name", Value::str(&name)),
            ("container_insights", Value::str(insights)),
        ]),
        attributes: fields_of([
            ("id", Value::str(&arn)),
            ("arn", Value::str(&arn)),
            ("name", Value::str(&name)),
        ]),
        id: arn,
        tags: ecs::tags_of(c.tags()),
    })
}

fn insights_setting(f: &Fields) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(str_of(f, "container_insights").unwrap_or("disabled"))
        .build()
}

async fn observe_one(cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
    Ok(ecs::describe_clusters(cx, &[id.to_string()])
        .await?
        .iter()
        .find_map(observed))
}

#[async_trait]
impl Provider for EcsCluster {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    /// A cluster name is unique in the region: only a renamed cluster can exist
    /// beside the old one.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "name")
    }

    /// Ids are ARNs; an imported cluster may be named by its name instead, so
    /// answers are keyed by whichever the caller asked with.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let found: Vec<Observed> = ecs::describe_clusters(cx, ids)
            .await?
            .iter()
            .filter_map(observed)
            .collect();
        Ok(ids
            .iter()
            .filter_map(|id| {
                found
                    .iter()
                    .find(|o| &o.id == id || ecs::name_of(&o.id) == id)
                    .map(|o| (id.clone(), o.clone()))
            })
            .collect())
    }

    /// Lists every cluster (ListClusters pages), then describes them 100 at a time.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        let arns = ecs::list_clusters(cx).await?;
        let found = ecs::describe_clusters(cx, &arns).await?;
        Ok(ecs::tagged(
            cx,
            addresses,
            found.iter().filter_map(observed),
        ))
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let f = want.fields;
        let addr = want.address;
        let name = str_of(f, "name").unwrap_or_default().to_string();
        if let Some(existing) = observe_one(cx, &name).await? {
            // An earlier, interrupted create made it: bring it to what is declared.
            let live = ecs::claim(cx, want, "an ECS cluster", &name, existing)?;
            let changes = changes_to(self, want, &live);
            if changes.is_empty() {
                return Ok(live);
            }
            return self.update(cx, &live, want, &changes).await;
        }
        let out = cx
            .ecs
            .create_cluster()
            .cluster_name(&name)
            .settings(insights_setting(f))
            .set_tags(Some(ecs::to_tags(want.tags)))
            .send()
            .await
            .map_err(|e| named(addr, "creating", ecs_error(e)))?;
        let made = out.cluster().and_then(observed).ok_or_else(|| {
            ProviderError::Other(format!("{addr}: CreateCluster returned no cluster"))
        })?;
        Ok(observe_one(cx, &made.id).await?.unwrap_or(made))
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let addr = want.address;
        let mut o = live.clone();
        if changes_field(changes, "container_insights") {
            // UpdateCluster takes the same settings as UpdateClusterSettings, and
            // is the one of the two that moto implements.
            let out = cx
                .ecs
                .update_cluster()
                .cluster(&live.id)
                .settings(insights_setting(want.fields))
                .send()
                .await
                .map_err(|e| named(addr, "updating", ecs_error(e)))?;
            if let Some(n) = out.cluster().and_then(observed) {
                o.fields = n.fields;
            }
        }
        if changes_field(changes, "tags") {
            ecs::sync_tags(cx, &live.id, &live.tags, want.tags)
                .await
                .map_err(|e| named(addr, "tagging", e))?;
        }
        o.tags = want.tags.clone();
        Ok(o)
    }

    /// Services are deleted before their cluster (they depend on it), but ECS
    /// may still be stopping their tasks: a cluster that reports it still has
    /// services or tasks is retried for a minute.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        let mut delay = Duration::from_secs(2);
        let mut tries = 0;
        loop {
            match cx
                .ecs
                .delete_cluster()
                .cluster(id)
                .send()
                .await
                .map_err(ecs_error)
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e)
                    if tries < 6
                        && (ecs::is_code(&e, "ClusterContainsServicesException")
                            || ecs::is_code(&e, "ClusterContainsTasksException")
                            || ecs::is_code(&e, "UpdateInProgressException")) =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(15));
                    tries += 1;
                }
                Err(e) => {
                    let who = format!("ecs_cluster {id}");
                    return Err(named(&who, "deleting", e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::Tag;

    #[test]
    fn names() {
        assert!(check_name("proxy-smart_1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
    }

    #[test]
    fn observed_fields_map_from_describe() {
        let c = Cluster::builder()
            .cluster_arn("arn:aws:ecs:us-east-1:1:cluster/main")
            .cluster_name("main")
            .status("ACTIVE")
            .tags(
                Tag::builder()
                    .key("reconcile:address")
                    .value("ecs_cluster.main")
                    .build(),
            )
            .build();
        let o = observed(&c).unwrap();
        assert_eq!(o.id, "arn:aws:ecs:us-east-1:1:cluster/main");
        assert_eq!(o.fields["container_insights"], Value::str("disabled"));
        assert_eq!(o.tags["reconcile:address"], "ecs_cluster.main");
        for f in SCHEMA.fields {
            assert!(o.fields.contains_key(f.name), "{} not observed", f.name);
        }
    }
}
