//! `db_instance`: an RDS database instance (PostgreSQL in the seeds), standalone or
//! as a member (writer or reader) of an Aurora `db_cluster`.
//!
//! Creates and updates wait until AWS reports the instance `available`, deletes
//! until it is gone, reporting each status on the way. A delete takes a final
//! snapshot unless the last applied inputs say `skip_final_snapshot = true`;
//! a cluster member has none of its own (the cluster's snapshot holds the data).

use crate::kit::fields::{bool_of, changes_field, i32_of, str_list, str_of, strs_of};
use crate::kit::{Cx, Desired, Provider, ProviderError};
use crate::rds::{self, named, timeouts, Db, Problem};
use async_trait::async_trait;
use aws_sdk_rds::types::DbInstance as AwsInstance;
use reconcile_core::model::schema::{Default, Field, Norm, Schema, Ty};
use reconcile_core::model::{Diagnostic, Fields, Resource, Stack, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

pub struct DbInstance;

pub const ENGINES: &[&str] = &[
    "postgres",
    "aurora-postgresql",
    "mysql",
    "mariadb",
    "aurora-mysql",
];

pub static SCHEMA: Schema = Schema {
    kind: "db_instance",
    doc: "An RDS database instance. Standalone (PostgreSQL, say) it owns its storage, \
          master user and backups; with `db_cluster_identifier` it is a writer or reader of an \
          Aurora `db_cluster`, which owns those instead. Creates and in-place updates wait until \
          the instance is available again; a delete takes a final snapshot unless \
          `skip_final_snapshot = true` was applied before.",
    fields: &[
        Field::new(
            "identifier",
            Ty::Pattern(rds::check_identifier),
            "The instance identifier, lowercase. Changing it replaces the instance.",
        )
        .required()
        .force_new(),
        Field::new(
            "engine",
            Ty::Enum(ENGINES),
            "The database engine. Changing it replaces the instance.",
        )
        .required()
        .force_new(),
        Field::new(
            "engine_version",
            Ty::Str,
            "The engine version: a major (\"16\") or exact (\"16.3\") version; a major matches any \
             of its minors. Upgraded in place (a new major with AllowMajorVersionUpgrade); \
             not for cluster members, which follow their cluster.",
        )
        .norm(Norm::VersionPrefix),
        Field::new(
            "instance_class",
            Ty::Str,
            "The instance class, like \"db.t4g.micro\" (\"db.serverless\" for Aurora Serverless v2). \
             Changed in place (a short outage; multi-AZ fails over).",
        )
        .required(),
        Field::new(
            "allocated_storage",
            Ty::Int,
            "Storage in GiB; grown in place (AWS cannot shrink it). Required for standalone instances.",
        ),
        Field::new(
            "max_allocated_storage",
            Ty::Int,
            "Upper limit in GiB for storage autoscaling; 0 turns autoscaling off. Changed in place.",
        ),
        Field::new(
            "storage_type",
            Ty::Enum(&["gp2", "gp3", "io1", "io2", "standard"]),
            "The storage type; changed in place.",
        ),
        Field::new(
            "db_name",
            Ty::Str,
            "The database created with the instance. Changing it replaces the instance.",
        )
        .force_new(),
        Field::new(
            "master_username",
            Ty::Str,
            "The master user's name; required for standalone instances. Changing it replaces the instance.",
        )
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
            "multi_az",
            Ty::Bool,
            "A standby in a second availability zone; changed in place.",
        ),
        Field::new(
            "storage_encrypted",
            Ty::Bool,
            "Encrypt storage at rest (AWS's default is false: declare true for patient data). \
             Changing it replaces the instance.",
        )
        .force_new(),
        Field::new(
            "kms_key_id",
            Ty::Str,
            "The KMS key ARN for storage encryption (default: the AWS-managed key). Changing it \
             replaces the instance.",
        )
        .force_new(),
        Field::new(
            "backup_retention_period",
            Ty::Int,
            "Days of automated backups (0 turns them off); changed in place.",
        )
        .range(0, 35),
        Field::new(
            "preferred_backup_window",
            Ty::Str,
            "Daily UTC backup window, like \"03:00-04:00\"; changed in place.",
        ),
        Field::new(
            "deletion_protection",
            Ty::Bool,
            "AWS refuses to delete the instance while on. Changed in place; left out it is not \
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
            "The DB subnet group (its VPC and subnets). Changing it replaces the instance.",
        )
        .force_new(),
        Field::new(
            "publicly_accessible",
            Ty::Bool,
            "Whether the instance gets a public DNS name and address; changed in place.",
        )
        .default(Default::Bool(false)),
        Field::new(
            "enabled_cloudwatch_logs_exports",
            Ty::List(&Ty::Str),
            "Logs published to CloudWatch Logs (\"postgresql\", \"upgrade\"), compared as a set; \
             changed in place.",
        )
        .set(),
        Field::new(
            "db_parameter_group_name",
            Ty::Str,
            "The DB parameter group; changed in place (static parameters need a reboot, which \
             reconcile does not do).",
        ),
        Field::new(
            "port",
            Ty::Int,
            "The port the database listens on; changed in place (the instance restarts).",
        ),
        Field::new(
            "auto_minor_version_upgrade",
            Ty::Bool,
            "Apply minor engine upgrades in the maintenance window; changed in place.",
        ),
        Field::new(
            "copy_tags_to_snapshot",
            Ty::Bool,
            "Copy the instance's tags to its snapshots; changed in place.",
        ),
        Field::new(
            "db_cluster_identifier",
            Ty::Str,
            "The Aurora cluster this instance belongs to, like \"${db_cluster.main.id}\". \
             Changing it replaces the instance.",
        )
        .force_new(),
        Field::new(
            "promotion_tier",
            Ty::Int,
            "Cluster members only: failover priority (0 is promoted first); changed in place.",
        )
        .range(0, 15),
        rds::APPLY_IMMEDIATELY,
        rds::SKIP_FINAL_SNAPSHOT,
        rds::FINAL_SNAPSHOT_IDENTIFIER,
        rds::TIMEOUTS,
    ],
    attributes: &[
        ("id", "The instance identifier."),
        ("arn", "The instance's ARN."),
        ("endpoint", "The DNS name to connect to (without the port)."),
        ("port", "The port to connect to."),
        (
            "resource_id",
            "The AWS-wide unique resource id (db-...), as IAM policies use it.",
        ),
        ("status", "The status AWS reported last (\"available\")."),
        (
            "master_user_secret_arn",
            "With manage_master_user_password: the Secrets Manager secret RDS keeps the password in.",
        ),
    ],
    taggable: true,
};

/// Fields an Aurora member takes from its cluster: declaring them on the member
/// is refused (AWS would refuse, or silently use the cluster's).
const CLUSTER_OWNED: &[&str] = &[
    "engine_version",
    "allocated_storage",
    "max_allocated_storage",
    "storage_type",
    "db_name",
    "master_username",
    "master_password_secret",
    "master_password_secret_key",
    "manage_master_user_password",
    "multi_az",
    "storage_encrypted",
    "kms_key_id",
    "backup_retention_period",
    "preferred_backup_window",
    "deletion_protection",
    "vpc_security_group_ids",
    "enabled_cloudwatch_logs_exports",
    "port",
];

/// Problems in one instance's declaration, by field (`None`: the whole resource).
/// `declared` says whether a field was written (defaults are not).
pub fn problems(f: &Fields, declared: &dyn Fn(&str) -> bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let engine = str_of(f, "engine").unwrap_or_default();
    let member = declared("db_cluster_identifier");
    if member {
        if !engine.starts_with("aurora") {
            out.push((
                Some("engine"),
                format!("a cluster member's engine is the cluster's (aurora-postgresql or aurora-mysql), not \"{engine}\""),
                "use the db_cluster's engine".to_string(),
            ));
        }
        for k in CLUSTER_OWNED {
            if declared(k) {
                out.push((
                    Some(*k),
                    format!("`{k}` belongs to the Aurora cluster, not to a member instance"),
                    "remove it here and set it on the db_cluster".to_string(),
                ));
            }
        }
    } else {
        if engine.starts_with("aurora") {
            out.push((
                Some("engine"),
                format!("an {engine} instance lives in an Aurora cluster"),
                "add `db_cluster_identifier = \"${db_cluster.NAME.id}\"`, or use engine \"postgres\""
                    .to_string(),
            ));
        }
        if declared("promotion_tier") {
            out.push((
                Some("promotion_tier"),
                "`promotion_tier` is for Aurora cluster members only".into(),
                "remove it".into(),
            ));
        }
        for k in ["master_username", "allocated_storage"] {
            if !declared(k) {
                out.push((
                    None,
                    format!("a standalone instance needs `{k}`"),
                    format!("add `{k} = ...`"),
                ));
            }
        }
        let secret = declared("master_password_secret");
        let managed = bool_of(f, "manage_master_user_password") == Some(true);
        if secret == managed {
            out.push((
                if secret { Some("manage_master_user_password") } else { None },
                if secret {
                    "the master password comes either from `master_password_secret` or from RDS (`manage_master_user_password = true`), not both".into()
                } else {
                    "a standalone instance needs a master password source".into()
                },
                "set `master_password_secret = \"${secret.NAME.arn}\"` (with `master_password_secret_key`), or `manage_master_user_password = true`".into(),
            ));
        }
        if let Some(alloc) = f.get("allocated_storage").and_then(Value::as_int) {
            let storage = str_of(f, "storage_type").unwrap_or("gp2");
            let (lo, hi) = storage_range(storage);
            if !(lo..=hi).contains(&alloc) {
                out.push((
                    Some("allocated_storage"),
                    format!("allocated_storage {alloc} GiB is outside {lo}-{hi} GiB for {engine} on {storage} storage"),
                    format!("use {lo} to {hi} GiB"),
                ));
            }
        }
        if let (Some(max), Some(alloc)) = (
            f.get("max_allocated_storage").and_then(Value::as_int),
            f.get("allocated_storage").and_then(Value::as_int),
        ) {
            if max != 0 && max < alloc {
                out.push((
                    Some("max_allocated_storage"),
                    format!("max_allocated_storage {max} is below allocated_storage {alloc}"),
                    "raise it, or set 0 to turn storage autoscaling off".into(),
                ));
            }
        }
    }
    if let Some(class) = str_of(f, "instance_class").filter(|c| !c.contains("${")) {
        if let Some((msg, help)) = class_problem(class, member) {
            out.push((Some("instance_class"), msg, help));
        }
    }
    if declared("master_password_secret_key") && !declared("master_password_secret") {
        out.push((
            Some("master_password_secret_key"),
            "`master_password_secret_key` without `master_password_secret`".into(),
            "add `master_password_secret`, or remove the key".into(),
        ));
    }
    out
}

/// The GiB a standalone instance may be created with, by storage type
/// (gp2 when not declared, as for AWS), for the engines reconcile offers.
fn storage_range(storage: &str) -> (i64, i64) {
    match storage {
        "io1" | "io2" => (100, 65536),
        "standard" => (5, 3072),
        _ => (20, 65536),
    }
}

/// Whether `class` is shaped like an RDS class, `db.<family>.<size>`
/// (`db.t4g.micro`, `db.r6g.2xlarge`), or `db.serverless` for a cluster member.
fn class_problem(class: &str, member: bool) -> Option<(String, String)> {
    if class == "db.serverless" {
        return (!member).then(|| {
            (
                "instance_class \"db.serverless\" is for Aurora cluster members".to_string(),
                "use a provisioned class like \"db.t4g.micro\", or make the instance a member of an Aurora db_cluster".to_string(),
            )
        });
    }
    let parts: Vec<&str> = class.split('.').collect();
    let word = |p: &str| {
        !p.is_empty()
            && p.starts_with(|c: char| c.is_ascii_lowercase())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let ok = parts.len() == 3
        && parts[0] == "db"
        && word(parts[1])
        && parts[2]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !parts[2].is_empty();
    (!ok).then(|| {
        (
            format!("instance_class \"{class}\" is not an RDS instance class"),
            "write it like \"db.t4g.micro\" or \"db.r6g.large\" (db.<family>.<size>)".to_string(),
        )
    })
}

pub(super) fn observed(d: &AwsInstance) -> Option<Observed> {
    let id = d.db_instance_identifier()?.to_string();
    let (s, b, n) = (rds::str_value, rds::bool_value, rds::int_value);
    let port = d.endpoint().and_then(|e| e.port()).or(d.db_instance_port());
    let mut f = rds::fields([
        ("identifier", Value::str(&id)),
        ("engine", s(d.engine())),
        ("engine_version", s(d.engine_version())),
        ("instance_class", s(d.db_instance_class())),
        ("allocated_storage", n(d.allocated_storage())),
        // AWS leaves the limit out when autoscaling is off, which is declared as 0.
        ("max_allocated_storage", n(d.max_allocated_storage())),
        ("storage_type", s(d.storage_type())),
        ("db_name", s(d.db_name())),
        ("master_username", s(d.master_username())),
        (
            "manage_master_user_password",
            Value::Bool(d.master_user_secret().is_some()),
        ),
        ("multi_az", b(d.multi_az())),
        ("storage_encrypted", b(d.storage_encrypted())),
        ("kms_key_id", s(d.kms_key_id())),
        ("backup_retention_period", n(d.backup_retention_period())),
        ("preferred_backup_window", s(d.preferred_backup_window())),
        // Always observed, declared or not: the planner refuses deletes while it is on.
        ("deletion_protection", b(d.deletion_protection())),
        (
            "vpc_security_group_ids",
            rds::security_groups(d.vpc_security_groups()),
        ),
        (
            "db_subnet_group_name",
            s(d.db_subnet_group().and_then(|g| g.db_subnet_group_name())),
        ),
        ("publicly_accessible", b(d.publicly_accessible())),
        (
            "enabled_cloudwatch_logs_exports",
            str_list(d.enabled_cloudwatch_logs_exports().iter().cloned()),
        ),
        (
            "db_parameter_group_name",
            s(d.db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())),
        ),
        ("port", n(port)),
        (
            "auto_minor_version_upgrade",
            b(d.auto_minor_version_upgrade()),
        ),
        ("copy_tags_to_snapshot", b(d.copy_tags_to_snapshot())),
        ("db_cluster_identifier", s(d.db_cluster_identifier())),
    ]);
    if let Some(t) = d.promotion_tier() {
        f.insert("promotion_tier".into(), Value::Int(t.into()));
    }
    let attributes = rds::fields([
        ("id", Value::str(&id)),
        ("arn", s(d.db_instance_arn())),
        ("endpoint", s(d.endpoint().and_then(|e| e.address()))),
        ("port", n(port)),
        ("resource_id", s(d.dbi_resource_id())),
        ("status", s(d.db_instance_status())),
        (
            "master_user_secret_arn",
            s(d.master_user_secret().and_then(|m| m.secret_arn())),
        ),
    ]);
    Some(Observed {
        id,
        fields: f,
        attributes,
        tags: rds::tags_of(d.tag_list()),
    })
}

#[async_trait]
impl Provider for DbInstance {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn deletion_guard(&self) -> Option<&'static str> {
        Some("deletion_protection")
    }

    fn validate(&self, _stack: &Stack, r: &Resource) -> Vec<Diagnostic> {
        rds::diagnostics(r, problems(&r.fields, &|k| r.field_pos.contains_key(k)))
    }

    /// The identifier is unique in the region: only a renamed instance can exist
    /// beside the old one.
    fn create_before_destroy(&self, changes: &[FieldChange]) -> bool {
        changes_field(changes, "identifier")
    }

    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        Db::Instance.observe(cx, ids).await
    }

    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Db::Instance.find_tagged(cx, addresses).await
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError> {
        let (f, addr) = (want.fields, want.address);
        let declared = |k: &str| f.contains_key(k) && !is_default_only(f, k);
        rds::refuse(addr, problems(f, &declared))?;
        let t = timeouts(addr, Some(f))?;
        let id = str_of(f, "identifier").unwrap_or_default();
        let member = f.contains_key("db_cluster_identifier");
        let s = |k: &str| str_of(f, k).map(str::to_string);
        let mut req = cx
            .rds
            .create_db_instance()
            .db_instance_identifier(id)
            .set_engine(s("engine"))
            .set_db_instance_class(s("instance_class"))
            .set_db_cluster_identifier(s("db_cluster_identifier"))
            .set_promotion_tier(i32_of(f, "promotion_tier"))
            .set_publicly_accessible(bool_of(f, "publicly_accessible"))
            .set_db_parameter_group_name(s("db_parameter_group_name"))
            .set_auto_minor_version_upgrade(bool_of(f, "auto_minor_version_upgrade"))
            .set_copy_tags_to_snapshot(bool_of(f, "copy_tags_to_snapshot"))
            .set_db_subnet_group_name(s("db_subnet_group_name"))
            .set_tags(Some(rds::to_tags(want.tags)));
        if !member {
            req = req
                .set_engine_version(s("engine_version"))
                .set_allocated_storage(i32_of(f, "allocated_storage"))
                .set_max_allocated_storage(i32_of(f, "max_allocated_storage").filter(|m| *m > 0))
                .set_storage_type(s("storage_type"))
                .set_db_name(s("db_name"))
                .set_master_username(s("master_username"))
                .set_manage_master_user_password(bool_of(f, "manage_master_user_password"))
                .set_multi_az(bool_of(f, "multi_az"))
                .set_storage_encrypted(bool_of(f, "storage_encrypted"))
                .set_kms_key_id(s("kms_key_id"))
                .set_backup_retention_period(i32_of(f, "backup_retention_period"))
                .set_preferred_backup_window(s("preferred_backup_window"))
                .set_deletion_protection(bool_of(f, "deletion_protection"))
                .set_vpc_security_group_ids(strs_of(f, "vpc_security_group_ids"))
                .set_enable_cloudwatch_logs_exports(strs_of(f, "enabled_cloudwatch_logs_exports"))
                .set_port(i32_of(f, "port"));
            if let Some(pw) = rds::master_password(cx, addr, f).await? {
                req = req.master_user_password(pw.expose());
            }
        }
        req.send()
            .await
            .map_err(|e| named(addr, "creating", rds::rds_error(e)))?;
        Db::Instance.created(cx, addr, id, &t).await
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
            .modify_db_instance()
            .db_instance_identifier(&live.id)
            .apply_immediately(bool_of(f, "apply_immediately").unwrap_or(true))
            .set_db_instance_class(c.str("instance_class"))
            .set_allocated_storage(c.int("allocated_storage"))
            .set_storage_type(c.str("storage_type"))
            .set_multi_az(c.bool("multi_az"))
            .set_backup_retention_period(c.int("backup_retention_period"))
            .set_preferred_backup_window(c.str("preferred_backup_window"))
            .set_deletion_protection(c.bool("deletion_protection"))
            .set_vpc_security_group_ids(c.strs("vpc_security_group_ids"))
            .set_publicly_accessible(c.bool("publicly_accessible"))
            .set_db_parameter_group_name(c.str("db_parameter_group_name"))
            .set_db_port_number(c.int("port"))
            .set_auto_minor_version_upgrade(c.bool("auto_minor_version_upgrade"))
            .set_copy_tags_to_snapshot(c.bool("copy_tags_to_snapshot"))
            .set_promotion_tier(c.int("promotion_tier"))
            .set_manage_master_user_password(c.bool("manage_master_user_password"));
        if c.on("engine_version") {
            let (version, major) = rds::upgrade(f, &live.fields);
            req = req.engine_version(version);
            if major {
                req = req.allow_major_version_upgrade(true);
            }
        }
        if c.on("max_allocated_storage") {
            // AWS turns autoscaling off when the limit equals the allocated storage.
            let max = i32_of(f, "max_allocated_storage").unwrap_or(0);
            let alloc = i32_of(f, "allocated_storage")
                .or_else(|| i32_of(&live.fields, "allocated_storage"))
                .unwrap_or(0);
            req = req.max_allocated_storage(if max == 0 { alloc } else { max });
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
        Db::Instance.updated(cx, live, want, changes, &t, any).await
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
        Db::Instance
            .delete(cx, id, applied, |live, snapshot| {
                let mut req = cx.rds.delete_db_instance().db_instance_identifier(id);
                // A member's data is the cluster's: the cluster's final snapshot covers it.
                if str_of(&live.fields, "db_cluster_identifier").is_none_or(str::is_empty) {
                    req = req
                        .skip_final_snapshot(snapshot.is_none())
                        .set_final_db_snapshot_identifier(snapshot);
                }
                async move { req.send().await.map(|_| ()).map_err(rds::rds_error) }
            })
            .await
    }
}

/// Fields the model filled in from a schema default count as not declared for
/// the member checks (a member has `publicly_accessible = false` by default, say).
fn is_default_only(f: &Fields, k: &str) -> bool {
    SCHEMA
        .field(k)
        .and_then(|d| d.default)
        .is_some_and(|d| f.get(k) == Some(&d.value()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::SchemaDiff;

    fn fields(pairs: &[(&str, Value)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn check(f: &Fields) -> Vec<String> {
        problems(f, &|k| f.contains_key(k))
            .into_iter()
            .map(|(_, m, _)| m)
            .collect()
    }

    fn postgres() -> Fields {
        fields(&[
            ("identifier", Value::str("db1")),
            ("engine", Value::str("postgres")),
            ("instance_class", Value::str("db.t4g.micro")),
            ("allocated_storage", Value::Int(20)),
            ("master_username", Value::str("app")),
            ("manage_master_user_password", Value::Bool(true)),
        ])
    }

    #[test]
    fn a_standalone_instance_needs_storage_user_and_one_password_source() {
        assert!(check(&postgres()).is_empty(), "{:?}", check(&postgres()));
        let mut f = postgres();
        f.insert("master_password_secret".into(), Value::str("arn:x"));
        assert!(check(&f)[0].contains("not both"));
        f.shift_remove("manage_master_user_password");
        assert!(check(&f).is_empty());
        f.shift_remove("master_password_secret");
        assert!(check(&f)[0].contains("password source"));
        let mut f = postgres();
        f.shift_remove("allocated_storage");
        assert!(check(&f)[0].contains("allocated_storage"));
        let mut f = postgres();
        f.insert("engine".into(), Value::str("aurora-postgresql"));
        assert!(check(&f)[0].contains("lives in an Aurora cluster"));
        let mut f = postgres();
        f.insert("max_allocated_storage".into(), Value::Int(10));
        assert!(check(&f)[0].contains("below"));
        let mut f = postgres();
        f.insert("master_password_secret_key".into(), Value::str("password"));
        assert!(check(&f)
            .iter()
            .any(|m| m.contains("without `master_password_secret`")));
    }

    #[test]
    fn an_aurora_member_takes_storage_and_credentials_from_its_cluster() {
        let member = fields(&[
            ("identifier", Value::str("w")),
            ("engine", Value::str("aurora-postgresql")),
            ("instance_class", Value::str("db.serverless")),
            ("db_cluster_identifier", Value::str("${db_cluster.main.id}")),
            ("promotion_tier", Value::Int(1)),
        ]);
        assert!(check(&member).is_empty(), "{:?}", check(&member));
        let mut f = member.clone();
        f.insert("allocated_storage".into(), Value::Int(20));
        f.insert("master_username".into(), Value::str("app"));
        let msgs = check(&f);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("belongs to the Aurora cluster"));
        let mut f = member;
        f.insert("engine".into(), Value::str("postgres"));
        assert!(check(&f)[0].contains("engine"));
    }

    #[test]
    fn storage_fits_the_engine_and_storage_type() {
        let mut f = postgres();
        f.insert("allocated_storage".into(), Value::Int(10));
        assert_eq!(
            check(&f),
            ["allocated_storage 10 GiB is outside 20-65536 GiB for postgres on gp2 storage"]
        );
        f.insert("storage_type".into(), Value::str("io1"));
        f.insert("allocated_storage".into(), Value::Int(50));
        assert!(check(&f)[0].contains("outside 100-65536 GiB for postgres on io1"));
        f.insert("allocated_storage".into(), Value::Int(100));
        assert!(check(&f).is_empty());
        f.insert("storage_type".into(), Value::str("gp3"));
        f.insert("allocated_storage".into(), Value::Int(70000));
        assert!(check(&f)[0].contains("outside 20-65536"));
    }

    #[test]
    fn instance_classes_are_shaped_like_rds_classes() {
        for ok in [
            "db.t4g.micro",
            "db.r6g.large",
            "db.m5d.24xlarge",
            "db.x2iedn.metal",
        ] {
            assert_eq!(class_problem(ok, false), None, "{ok}");
        }
        for bad in [
            "t4g.micro",
            "db.t4g",
            "db.T4G.micro",
            "db.t4g.micro.x",
            "rds.t4g.micro",
            "db..micro",
        ] {
            assert!(class_problem(bad, false).is_some(), "{bad}");
        }
        assert_eq!(class_problem("db.serverless", true), None);
        let mut f = postgres();
        f.insert("instance_class".into(), Value::str("db.serverless"));
        assert!(check(&f)[0].contains("is for Aurora cluster members"));
    }

    #[test]
    fn plain_bounds_are_the_schemas_to_check() {
        let range = |k| SCHEMA.field(k).and_then(|f| f.range);
        assert_eq!(range("backup_retention_period"), Some((0, 35)));
        assert_eq!(range("promotion_tier"), Some((0, 15)));
    }

    #[test]
    fn defaults_do_not_count_as_declared_for_members() {
        let f = fields(&[("publicly_accessible", Value::Bool(false))]);
        assert!(is_default_only(&f, "publicly_accessible"));
        let f = fields(&[("publicly_accessible", Value::Bool(true))]);
        assert!(!is_default_only(&f, "publicly_accessible"));
    }

    #[test]
    fn observed_fields_map_from_describe() {
        use aws_sdk_rds::types::{Endpoint, MasterUserSecret, Tag, VpcSecurityGroupMembership};
        let d = AwsInstance::builder()
            .db_instance_identifier("db1")
            .engine("postgres")
            .engine_version("16.3")
            .db_instance_class("db.t4g.micro")
            .allocated_storage(20)
            .db_instance_status("available")
            .endpoint(Endpoint::builder().address("db1.x").port(5432).build())
            .vpc_security_groups(
                VpcSecurityGroupMembership::builder()
                    .vpc_security_group_id("sg-1")
                    .status("active")
                    .build(),
            )
            .master_user_secret(MasterUserSecret::builder().secret_arn("arn:s").build())
            .deletion_protection(true)
            .tag_list(
                Tag::builder()
                    .key("reconcile:address")
                    .value("db_instance.a")
                    .build(),
            )
            .tag_list(
                Tag::builder()
                    .key("aws:cloudformation:x")
                    .value("y")
                    .build(),
            )
            .build();
        let o = observed(&d).unwrap();
        assert_eq!(o.id, "db1");
        assert_eq!(o.fields["deletion_protection"], Value::Bool(true));
        assert_eq!(o.fields["manage_master_user_password"], Value::Bool(true));
        assert_eq!(o.fields["max_allocated_storage"], Value::Int(0));
        assert_eq!(o.fields["publicly_accessible"], Value::Bool(false));
        assert_eq!(
            o.fields["vpc_security_group_ids"],
            Value::List(vec![Value::str("sg-1")])
        );
        assert_eq!(o.attributes["endpoint"], Value::str("db1.x"));
        assert_eq!(o.attributes["port"], Value::Int(5432));
        assert_eq!(o.attributes["master_user_secret_arn"], Value::str("arn:s"));
        assert_eq!(o.tags.len(), 1, "aws:* tags are AWS's own: {:?}", o.tags);
        for f in SCHEMA.fields.iter().filter(|f| !f.local) {
            if f.name != "promotion_tier" {
                assert!(o.fields.contains_key(f.name), "{} not observed", f.name);
            }
        }
        // A declared major matches the live minor.
        let want = fields(&[("engine_version", Value::str("16"))]);
        assert!(DbInstance.diff(&want, &o.fields).is_empty());
        let want = fields(&[("engine_version", Value::str("17"))]);
        assert_eq!(DbInstance.diff(&want, &o.fields).len(), 1);
    }
}
