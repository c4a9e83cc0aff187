//! `db_cluster`: an Aurora cluster (PostgreSQL in the seeds), with Serverless v2
//! scaling. Its writer and readers are `db_instance`s naming it in
//! `db_cluster_identifier`, so the graph creates the cluster first and deletes
//! it last; the cluster owns storage, credentials and backups.

use crate::kit::fields::{bool_of, changes_field, i32_of, str_list, str_of, strs_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use crate::rds::{self, named, timeouts, Db, Problem};
use async_trait::async_trait;
use aws_sdk_rds::types::{DbCluster as AwsCluster, ServerlessV2ScalingConfiguration};
use indexmap::IndexMap;
use reconcile_core::model::schema::{Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct DbCluster;

pub const SCALING_FIELDS: &[Field] = &[
    Field::new(
        "min_capacity",
        Ty::Float,
        "Least Aurora capacity units, in steps of 0.5 (0 lets the cluster pause when idle).",
    )
    .required(),
    Field::new(
        "max_capacity",
        Ty::Float,
        "Most Aurora capacity units, in steps of 0.5, 1 to 256.",
    )
    .required(),
];

pub static SCHEMA: Schema = Schema {
    kind: "db_cluster",
    doc: "An Aurora database cluster, with Serverless v2 scaling. Its writer and readers are \
          `db_instance`s with `db_cluster_identifier = \"${db_cluster.NAME.id}\"` and \
          `instance_class = \"db.serverless\"`. Creates and in-place updates wait until the \
          cluster is available; a delete takes a final snapshot unless \
          `skip_final_snapshot = true` was applied before.",
    fields: &[
        Field::new(
            "cluster_identifier",
            Ty::Pattern(rds::check_identifier),
            "The cluster identifier, lowercase. Changing it replaces the cluster.",
        )
        .required()
        .force_new(),
        Field::new(
            "engine",
            Ty::Enum(&["aurora-postgresql", "aurora-mysql"]),
            "The Aurora engine. Changing it replaces the cluster.",
        )
        .required()
        .force_new(),
        Field::new(
            "engine_version",
            Ty::Str,
            "The engine version, a major (\"16\") or exact (\"16.4\"); a major matches any of its \
             minors. Upgraded in place (a new major with AllowMajorVersionUpgrade).",
        )
        .norm(Norm::VersionPrefix),
        Field::new(
            "database_name",
            Ty::Str,
            "The database created with the cluster. Changing it replaces the cluster.",
        )
        .force_new(),
        Field::new(
            "master_username",
            Ty::Str,
            "The master user's name. Changing it replaces the cluster.",
        )
        .required()
        .force_new(),
        rds::MASTER_PASSWORD_SECRET,
        rds::MASTER_PASSWORD_SECRET_KEY,
        Field::new(
            "manage_master_user_password",
            Ty::Bool,
            "Let RDS generate the master password and keep it in Secrets Manager (attribute \
             `master_user_secret_arn`); instead of `master_password_secret`. Changed in place.",
        ),
        Field::new(
            "serverlessv2_scaling",
            Ty::Object(SCALING_FIELDS),
            "Serverless v2 capacity, like `{ min_capacity = 0.5, max_capacity = 8 }`; changed in place.",
        ),
        Field::new(
            "storage_encrypted",
            Ty::Bool,
            "Encrypt storage at rest (AWS's default is false: declare true for patient data). \
             Changing it replaces the cluster.",
        )
        .force_new(),
        Field::new(
            "kms_key_id",
            Ty::Str,
            "The KMS key ARN for storage encryption. Changing it replaces the cluster.",
        )
        .force_new(),
        Field::new(
            "backup_retention_period",
            Ty::Int,
            "Days of automated backups (Aurora always keeps some); changed in place.",
        )
        .range(1, 35),
        Field::new(
            "preferred_backup_window",
            Ty::Str,
            "Daily UTC backup window, like \"03:00-04:00\"; changed in place.",
        ),
        Field::new(
            "deletion_protection",
            Ty::Bool,
            "AWS refuses to delete the cluster while on. Changed in place; left out it is not \
             managed, and reconcile never switches it off unless declared false.",
        ),
        Field::new(
            "vpc_security_group_ids",
            Ty::List(&Ty::Str),
            "Security groups, compared as a set; changed in place.",
        )
        .set(),
        Field::new(
            "db_subnet_group_name",
            Ty::Str,
            "The DB subnet group. Changing it replaces the cluster.",
        )
        .force_new(),
        Field::new(
            "enabled_cloudwatch_logs_exports",
            Ty::List(&Ty::Str),
            "Logs published to CloudWatch Logs (\"postgresql\"), compared as a set; changed in place.",
        )
        .set(),
        Field::new(
            "port",
            Ty::Int,
            "The port the cluster listens on; changed in place.",
        ),
        Field::new(
            "copy_tags_to_snapshot",
            Ty::Bool,
            "Copy the cluster's tags to its snapshots; changed in place.",
        ),
        rds::APPLY_IMMEDIATELY,
        rds::SKIP_FINAL_SNAPSHOT,
        rds::FINAL_SNAPSHOT_IDENTIFIER,
        rds::TIMEOUTS,
    ],
    attributes: &[
        ("id", "The cluster identifier."),
        ("arn", "The cluster's ARN."),
        ("endpoint", "The writer endpoint's DNS name."),
        ("reader_endpoint", "The reader endpoint's DNS name."),
        ("port", "The port to connect to."),
        ("resource_id", "The AWS-wide unique resource id (cluster-...)."),
        ("status", "The status AWS reported last (\"available\")."),
        (
            "master_user_secret_arn",
            "With manage_master_user_password: the Secrets Manager secret RDS keeps the password in.",
        ),
    ],
    taggable: true,
};

/// Problems in one cluster's declaration, by field (`None`: the whole resource).
pub fn problems(f: &Fields, declared: &dyn Fn(&str) -> bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let secret = declared("master_password_secret");
    let managed = bool_of(f, "manage_master_user_password") == Some(true);
    if secret == managed {
        out.push((
            if secret { Some("manage_master_user_password") } else { None },
            if secret {
                "the master password comes either from `master_password_secret` or from RDS (`manage_master_user_password = true`), not both".to_string()
            } else {
                "a cluster needs a master password source".to_string()
            },
            "set `master_password_secret = \"${secret.NAME.arn}\"` (with `master_password_secret_key`), or `manage_master_user_password = true`".to_string(),
        ));
    }
    if declared("master_password_secret_key") && !secret {
        out.push((
            Some("master_password_secret_key"),
            "`master_password_secret_key` without `master_password_secret`".into(),
            "add `master_password_secret`, or remove the key".into(),
        ));
    }
    if let Some(m) = f.get("serverlessv2_scaling").and_then(Value::as_map) {
        let min = m.get("min_capacity").and_then(Value::as_float);
        let max = m.get("max_capacity").and_then(Value::as_float);
        let half = |x: f64| (x * 2.0).fract() == 0.0;
        if let (Some(min), Some(max)) = (min, max) {
            if !(half(min) && half(max)) {
                out.push((
                    Some("serverlessv2_scaling"),
                    format!("capacities {min} and {max} must be multiples of 0.5"),
                    "use 0.5, 1, 1.5, ...".into(),
                ));
            }
            if !(0.0..=256.0).contains(&min) || !(1.0..=256.0).contains(&max) {
                out.push((
                    Some("serverlessv2_scaling"),
                    format!("capacities {min} and {max} are outside what Aurora allows"),
                    "min_capacity 0 to 256, max_capacity 1 to 256".into(),
                ));
            }
            if min > max {
                out.push((
                    Some("serverlessv2_scaling"),
                    format!("min_capacity {min} is above max_capacity {max}"),
                    "swap them".into(),
                ));
            }
        }
    }
    out
}

fn scaling_value(min: f64, max: f64) -> Value {
    let mut m = IndexMap::new();
    m.insert("min_capacity".to_string(), Value::Float(min));
    m.insert("max_capacity".to_string(), Value::Float(max));
    Value::Map(m)
}

fn scaling_of(f: &Fields) -> Option<ServerlessV2ScalingConfiguration> {
    let m = f.get("serverlessv2_scaling")?.as_map()?;
    Some(
        ServerlessV2ScalingConfiguration::builder()
            .set_min_capacity(m.get("min_capacity").and_then(Value::as_float))
            .set_max_capacity(m.get("max_capacity").and_then(Value::as_float))
            .build(),
    )
}

pub(super) fn observed(c: &AwsCluster) -> Option<Observed> {
    let id = c.db_cluster_identifier()?.to_string();
    let (s, b, n) = (rds::str_value, rds::bool_value, rds::int_value);
    let mut f = rds::fields([
        ("cluster_identifier", Value::str(&id)),
        ("engine", s(c.engine())),
        ("engine_version", s(c.engine_version())),
        ("database_name", s(c.database_name())),
        ("master_username", s(c.master_username())),
        (
            "manage_master_user_password",
            Value::Bool(c.master_user_secret().is_some()),
        ),
    ]);
    if let Some(sc) = c.serverless_v2_scaling_configuration() {
        let (min, max) = (sc.min_capacity(), sc.max_capacity());
        let scaling = scaling_value(min.unwrap_or(0.0), max.unwrap_or(0.0));
        f.insert("serverlessv2_scaling".into(), scaling);
    }
    f.extend(rds::fields([
        ("storage_encrypted", b(c.storage_encrypted())),
        ("kms_key_id", s(c.kms_key_id())),
        ("backup_retention_period", n(c.backup_retention_period())),
        ("preferred_backup_window", s(c.preferred_backup_window())),
        // Always observed, declared or not: the planner refuses deletes while it is on.
        ("deletion_protection", b(c.deletion_protection())),
        (
            "vpc_security_group_ids",
            rds::security_groups(c.vpc_security_groups()),
        ),
        ("db_subnet_group_name", s(c.db_subnet_group())),
        (
            "enabled_cloudwatch_logs_exports",
            str_list(c.enabled_cloudwatch_logs_exports().iter().cloned()),
        ),
        ("port", n(c.port())),
        ("copy_tags_to_snapshot", b(c.copy_tags_to_snapshot())),
    ]));
    let attributes = rds::fields([
        ("id", Value::str(&id)),
        ("arn", s(c.db_cluster_arn())),
        ("endpoint", s(c.endpoint())),
        ("reader_endpoint", s(c.reader_endpoint())),
        ("port", n(c.port())),
        ("resource_id", s(c.db_cluster_resource_id())),
        ("status", s(c.status())),
        (
            "master_user_secret_arn",
            s(c.master_user_secret().and_then(|m| m.secret_arn())),
        ),
    ]);
    Some(Observed {
        id,
        fields: f,
        attributes,
        tags: rds::tags_of(c.tag_list()),
    })
}

#[async_trait]
impl Provider for DbCluster {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn deletion_guard(&self) -> Option<&'static str> {
        Some("deletion_protection")
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        rds::diagnostics(r, problems(&r.fields, &|k| r.field_pos.contains_key(k)))
    }

    /// The identifier is unique in the region: only a renamed cluster can exist
    /// beside the old one.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "cluster_identifier")
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        Db::Cluster.observe(cx, ids).await
    }

    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Db::Cluster.find_tagged(cx, addresses).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let (f, addr) = (want.fields, want.address);
        rds::refuse(addr, problems(f, &|k| f.contains_key(k)))?;
        let t = timeouts(addr, Some(f))?;
        let id = str_of(f, "cluster_identifier").unwrap_or_default();
        let s = |k: &str| str_of(f, k).map(str::to_string);
        let mut req = cx
            .rds
            .create_db_cluster()
            .db_cluster_identifier(id)
            .set_engine(s("engine"))
            .set_engine_version(s("engine_version"))
            .set_database_name(s("database_name"))
            .set_master_username(s("master_username"))
            .set_manage_master_user_password(bool_of(f, "manage_master_user_password"))
            .set_serverless_v2_scaling_configuration(scaling_of(f))
            .set_storage_encrypted(bool_of(f, "storage_encrypted"))
            .set_kms_key_id(s("kms_key_id"))
            .set_backup_retention_period(i32_of(f, "backup_retention_period"))
            .set_preferred_backup_window(s("preferred_backup_window"))
            .set_deletion_protection(bool_of(f, "deletion_protection"))
            .set_vpc_security_group_ids(strs_of(f, "vpc_security_group_ids"))
            .set_db_subnet_group_name(s("db_subnet_group_name"))
            .set_enable_cloudwatch_logs_exports(strs_of(f, "enabled_cloudwatch_logs_exports"))
            .set_port(i32_of(f, "port"))
            .set_copy_tags_to_snapshot(bool_of(f, "copy_tags_to_snapshot"))
            .set_tags(Some(rds::to_tags(want.tags)));
        if let Some(pw) = rds::master_password(cx, addr, f).await? {
            req = req.master_user_password(pw.expose());
        }
        req.send()
            .await
            .map_err(|e| named(addr, "creating", rds::rds_error(e)))?;
        Db::Cluster.created(cx, addr, id, &t).await
    }

    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError> {
        let (f, addr) = (want.fields, want.address);
        let t = timeouts(addr, Some(f))?;
        let c = rds::Changed::new(f, changes);
        let mut req = cx
            .rds
            .modify_db_cluster()
            .db_cluster_identifier(&live.id)
            .apply_immediately(bool_of(f, "apply_immediately").unwrap_or(true))
            .set_backup_retention_period(c.int("backup_retention_period"))
            .set_preferred_backup_window(c.str("preferred_backup_window"))
            .set_deletion_protection(c.bool("deletion_protection"))
            .set_vpc_security_group_ids(c.strs("vpc_security_group_ids"))
            .set_port(c.int("port"))
            .set_copy_tags_to_snapshot(c.bool("copy_tags_to_snapshot"))
            .set_manage_master_user_password(c.bool("manage_master_user_password"));
        if c.on("engine_version") {
            let (version, major) = rds::upgrade(f, &live.fields);
            req = req.engine_version(version);
            if major {
                req = req.allow_major_version_upgrade(true);
            }
        }
        if c.on("serverlessv2_scaling") {
            req = req.set_serverless_v2_scaling_configuration(scaling_of(f));
        }
        if c.on("enabled_cloudwatch_logs_exports") {
            req = req.cloudwatch_logs_export_configuration(rds::log_exports(f, &live.fields));
        }
        let mut any = c.any();
        if let Some(pw) = rds::new_password(cx, addr, f, changes).await? {
            any = true;
            req = req.master_user_password(pw.expose());
        }
        if any {
            req.send()
                .await
                .map_err(|e| named(addr, "updating", rds::rds_error(e)))?;
        }
        Db::Cluster.updated(cx, live, want, changes, &t, any).await
    }

    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError> {
        self.delete_applied(cx, id, None).await
    }

    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        Db::Cluster
            .delete(cx, id, applied, |_, snapshot| {
                let req = cx
                    .rds
                    .delete_db_cluster()
                    .db_cluster_identifier(id)
                    .skip_final_snapshot(snapshot.is_none())
                    .set_final_db_snapshot_identifier(snapshot);
                async move { req.send().await.map(|_| ()).map_err(rds::rds_error) }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn check(f: &Fields) -> Vec<String> {
        problems(f, &|k| f.contains_key(k))
            .into_iter()
            .map(|(_, m, _)| m)
            .collect()
    }

    fn cluster() -> Fields {
        let mut f = Fields::new();
        f.insert("cluster_identifier".into(), Value::str("c1"));
        f.insert("engine".into(), Value::str("aurora-postgresql"));
        f.insert("master_username".into(), Value::str("app"));
        f.insert("manage_master_user_password".into(), Value::Bool(true));
        f.insert("serverlessv2_scaling".into(), scaling_value(0.5, 8.0));
        f
    }

    #[test]
    fn scaling_is_checked_and_mapped_both_ways() {
        assert!(check(&cluster()).is_empty(), "{:?}", check(&cluster()));
        let mut f = cluster();
        f.insert("serverlessv2_scaling".into(), scaling_value(8.0, 2.0));
        assert!(check(&f)[0].contains("above"));
        f.insert("serverlessv2_scaling".into(), scaling_value(0.3, 8.0));
        assert!(check(&f)[0].contains("0.5"));
        let sc = scaling_of(&cluster()).unwrap();
        assert_eq!(
            (sc.min_capacity(), sc.max_capacity()),
            (Some(0.5), Some(8.0))
        );
        let c = AwsCluster::builder()
            .db_cluster_identifier("c1")
            .serverless_v2_scaling_configuration(
                aws_sdk_rds::types::ServerlessV2ScalingConfigurationInfo::builder()
                    .min_capacity(0.5)
                    .max_capacity(8.0)
                    .build(),
            )
            .build();
        let o = observed(&c).unwrap();
        assert!(DbCluster
            .diff(&cluster(), &o.fields)
            .iter()
            .all(|ch| ch.field != "serverlessv2_scaling"));
        assert_eq!(o.fields["deletion_protection"], Value::Bool(false));
    }

    #[test]
    fn backup_days_are_the_schemas_to_check() {
        let days = SCHEMA.field("backup_retention_period");
        assert_eq!(days.and_then(|f| f.range), Some((1, 35)));
    }

    #[test]
    fn one_password_source() {
        let mut f = cluster();
        f.insert("master_password_secret".into(), Value::str("arn:x"));
        assert!(check(&f)[0].contains("not both"));
        f.shift_remove("manage_master_user_password");
        assert!(check(&f).is_empty());
        f.shift_remove("master_password_secret");
        assert!(check(&f)[0].contains("password source"));
    }
}
