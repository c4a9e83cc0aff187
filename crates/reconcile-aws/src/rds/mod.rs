//! Shared RDS plumbing for `db_subnet_group`, `db_instance` and `db_cluster`: the
//! status poller, batched describes, tags, error typing, the master password read
//! from Secrets Manager, and the reconcile settings (timeouts, final snapshot).

pub mod db_cluster;
pub mod db_instance;
pub mod db_subnet_group;

use crate::kit::duration::check_duration;
use crate::kit::fields::{bool_of, changes_field, i32_of, str_list, str_of, strs_of};
use crate::kit::tags::stack_address;
use crate::kit::wait::{Backoff, Progress, Timeouts};
use crate::kit::{Cx, Desired, ProviderError, StatusSink};
use aws_sdk_rds::types::{
    CloudwatchLogsExportConfiguration, DbCluster, DbInstance, Filter, PendingModifiedValues, Tag,
    VpcSecurityGroupMembership,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use indexmap::IndexMap;
use reconcile_core::model::schema::{Default, Field, Ty};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed, TAG_ADDRESS};
use reconcile_core::sensitive::Sensitive;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// RDS refuses more values than this in one describe filter.
pub const FILTER_VALUES_MAX: usize = 100;

// ---------------------------------------------------------------------------
// Reconcile settings shared by db_instance and db_cluster.

/// Terraform's defaults for aws_db_instance / aws_rds_cluster, which users know.
pub const DEFAULT_CREATE: Duration = Duration::from_secs(40 * 60);
pub const DEFAULT_UPDATE: Duration = Duration::from_secs(80 * 60);
pub const DEFAULT_DELETE: Duration = Duration::from_secs(60 * 60);

pub const TIMEOUT_FIELDS: &[Field] = &[
    Field::new(
        "create",
        Ty::Pattern(check_duration),
        "How long a create may take to become available (default \"40m\").",
    ),
    Field::new(
        "update",
        Ty::Pattern(check_duration),
        "How long an update may take to become available again (default \"80m\").",
    ),
    Field::new(
        "delete",
        Ty::Pattern(check_duration),
        "How long a delete may take until the resource is gone (default \"60m\").",
    ),
];

pub const APPLY_IMMEDIATELY: Field = Field::new(
    "apply_immediately",
    Ty::Bool,
    "Reconcile setting: apply in-place changes now rather than in the next maintenance window. \
     With false, AWS holds them as pending and the plan keeps showing them until they land.",
)
.default(Default::Bool(true))
.local();

pub const SKIP_FINAL_SNAPSHOT: Field = Field::new(
    "skip_final_snapshot",
    Ty::Bool,
    "Reconcile setting: delete without a final snapshot. Read from the last applied inputs at \
     delete time, so set it and apply before destroying.",
)
.default(Default::Bool(false))
.local();

pub const FINAL_SNAPSHOT_IDENTIFIER: Field = Field::new(
    "final_snapshot_identifier",
    Ty::Pattern(check_identifier),
    "Reconcile setting: the name of the final snapshot taken on delete \
     (default `<identifier>-final-<UTC timestamp>`).",
)
.local();

pub const TIMEOUTS: Field = Field::new(
    "timeouts",
    Ty::Object(TIMEOUT_FIELDS),
    "Reconcile setting: how long to wait for AWS, like `{ create = \"40m\", update = \"80m\", \
     delete = \"60m\" }` (Terraform's defaults); units s, m, h.",
)
.local();

pub const MASTER_PASSWORD_SECRET: Field = Field::new(
    "master_password_secret",
    Ty::Str,
    "Reconcile setting: the Secrets Manager ARN holding the master password, like \
     \"${secret.db.arn}\"; read at apply time, never stored. A new ARN or key sets the password \
     in place; a new value inside the same secret is not seen (apply after changing the ARN or key).",
)
.local();

pub const MASTER_PASSWORD_SECRET_KEY: Field = Field::new(
    "master_password_secret_key",
    Ty::Str,
    "Reconcile setting: the JSON key inside `master_password_secret` holding the password \
     (like \"password\"); absent, the whole secret string is the password.",
)
.local();

pub const DEFAULTS: Timeouts = Timeouts {
    create: DEFAULT_CREATE,
    update: DEFAULT_UPDATE,
    delete: DEFAULT_DELETE,
};

/// RDS identifiers (instances, clusters, snapshots): 1-63 characters, lowercase
/// letters, digits and hyphens, starting with a letter, no `--`, no trailing `-`.
/// Lowercase only, because AWS lowercases what it is given and a mixed-case name
/// would then differ from AWS on every plan.
pub fn check_identifier(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err(format!("\"{s}\": an RDS identifier has 1 to 63 characters"));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "\"{s}\": an RDS identifier starts with a lowercase letter"
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "\"{s}\": use lowercase letters, digits and hyphens only (AWS lowercases RDS identifiers)"
        ));
    }
    if s.ends_with('-') || s.contains("--") {
        return Err(format!(
            "\"{s}\": an RDS identifier may not end with a hyphen or hold two in a row"
        ));
    }
    Ok(())
}

/// The final snapshot's name: the declared one, or `<identifier>-final-<UTC timestamp>`.
pub fn final_snapshot_id(
    identifier: &str,
    applied: Option<&Fields>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    if let Some(s) = applied
        .and_then(|f| f.get("final_snapshot_identifier"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return s.to_string();
    }
    format!("{identifier}-final-{}", now.format("%Y%m%d-%H%M%S"))
}

/// Whether the last applied inputs ask to delete without a final snapshot.
/// No record at all means the snapshot is taken: the safe side for patient data.
pub fn skip_final_snapshot(applied: Option<&Fields>) -> bool {
    applied
        .and_then(|f| f.get("skip_final_snapshot"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The major version AWS gates with `AllowMajorVersionUpgrade`: PostgreSQL 10 and
/// later count the first number, older PostgreSQL and MySQL the first two.
pub fn major_version(engine: &str, version: &str) -> String {
    let parts: Vec<&str> = version.split('.').collect();
    let first: u32 = parts[0].parse().unwrap_or(0);
    if engine.contains("postgres") && first >= 10 {
        parts[0].to_string()
    } else {
        parts.iter().take(2).copied().collect::<Vec<_>>().join(".")
    }
}

// ---------------------------------------------------------------------------
// Errors.

/// Types an RDS error: RDS names its not-found errors `...NotFoundFault` as
/// well as `...NotFound`, and both must read as "gone".
pub fn rds_error<E, R>(e: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match ProviderError::from_sdk(e) {
        ProviderError::Aws { code, message } if code.ends_with("NotFoundFault") => {
            ProviderError::NotFound(format!("{code}: {message}"))
        }
        other => other,
    }
}

/// What to do about an RDS error, by its code, for the person reading it.
fn hint(e: &ProviderError) -> &'static str {
    let text = e.to_string();
    let has = |c: &str| text.contains(c);
    if has("AlreadyExists") {
        "a resource with this name exists already outside this stack's state: choose another name, or adopt it with `reconcile import`"
    } else if has("InvalidDBInstanceState") || has("InvalidDBClusterStateFault") {
        "it is busy (modifying, backing up, ...): wait until it is available and apply again"
    } else if has("InsufficientDBInstanceCapacity") || has("StorageQuotaExceeded") {
        "AWS has no room for it: try another instance_class or ask AWS support for a higher quota"
    } else if has("DBSubnetGroup") {
        "check db_subnet_group_name and that the group's subnets span two availability zones"
    } else if has("KMSKeyNotAccessible") {
        "check kms_key_id: the key must exist, be enabled and usable by RDS"
    } else if has("protect") {
        "deletion protection is on in AWS: apply `deletion_protection = false` first if you really mean it"
    } else if matches!(e, ProviderError::InvalidInput(_)) {
        "AWS refused a field value: fix the field AWS names and apply again"
    } else if matches!(e, ProviderError::Throttled(_)) {
        "AWS throttled the call after the SDK's retries: apply again in a minute"
    } else {
        "see AWS's message; fix the declaration and apply again"
    }
}

/// Names the resource and what to do in an error, keeping its type.
pub fn named(address: &str, doing: &str, e: ProviderError) -> ProviderError {
    let h = hint(&e);
    crate::kit::error::at_with_hint(address, doing, h, e)
}

// ---------------------------------------------------------------------------
// The master password.

/// Reads the master password from Secrets Manager, at apply time only. The
/// value lives in a `Sensitive` and goes straight into the RDS request; no error
/// here can quote it (AWS's messages never hold the value, `json_key`'s neither).
pub async fn master_password(
    cx: &Cx,
    address: &str,
    fields: &Fields,
) -> Result<Option<Sensitive>, ProviderError> {
    let Some(arn) = fields.get("master_password_secret") else {
        return Ok(None);
    };
    let arn = arn.as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
        ProviderError::InvalidInput(format!(
            "{address}: master_password_secret must be a Secrets Manager ARN, like \"${{secret.db.arn}}\""
        ))
    })?;
    let key = fields
        .get("master_password_secret_key")
        .and_then(Value::as_str);
    let out = cx
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            named(
                address,
                &format!("reading master_password_secret {arn}"),
                ProviderError::from_sdk(e),
            )
        })?;
    let Some(text) = out.secret_string() else {
        return Err(ProviderError::InvalidInput(format!(
            "{address}: master_password_secret {arn} holds no string value: set one (a person, or a `secret` kind) before apply"
        )));
    };
    let whole = Sensitive::new(text);
    let pw = whole.json_key(key).map_err(|e| {
        ProviderError::InvalidInput(format!(
            "{address}: master_password_secret {arn}: {e}; fix master_password_secret_key"
        ))
    })?;
    if pw.expose().len() < 8 {
        return Err(ProviderError::InvalidInput(format!(
            "{address}: the password in master_password_secret {arn} is shorter than the 8 characters RDS requires"
        )));
    }
    Ok(Some(pw))
}

// ---------------------------------------------------------------------------
// Tags.

pub fn to_tags(tags: &IndexMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags as a map, leaving out the ones AWS owns (`aws:*`).
pub fn tags_of(tags: &[Tag]) -> IndexMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}

/// Makes the resource's tags exactly `want` (AWS-owned tags untouched).
pub async fn sync_tags(
    cx: &Cx,
    arn: &str,
    have: &IndexMap<String, String>,
    want: &IndexMap<String, String>,
) -> Result<(), ProviderError> {
    let stale = crate::kit::tags::tag_keys_to_remove(have, want);
    let changed = crate::kit::tags::tags_to_set(have, want);
    if !stale.is_empty() {
        cx.rds
            .remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(rds_error)?;
    }
    if !changed.is_empty() {
        cx.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(to_tags(&changed)))
            .send()
            .await
            .map_err(rds_error)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Batched describes.

/// The filters of a batched describe: one per 100 ids; `None` (no filter,
/// every resource of the region) when `ids` is `None`.
fn id_filters(name: &str, ids: Option<&[String]>) -> Vec<Option<Vec<Filter>>> {
    let Some(ids) = ids else { return vec![None] };
    ids.chunks(FILTER_VALUES_MAX)
        .map(|c| {
            let f = Filter::builder().name(name).set_values(Some(c.to_vec()));
            Some(vec![f.build()])
        })
        .collect()
}

/// DB instances by identifier: one call per 100 ids (and per page). A filter,
/// not `DBInstanceIdentifier`, because that takes one id and fails when it is gone.
/// `None` lists every instance of the region.
pub async fn describe_instances(
    cx: &Cx,
    ids: Option<&[String]>,
) -> Result<Vec<DbInstance>, ProviderError> {
    let mut out = Vec::new();
    for f in id_filters("db-instance-id", ids) {
        let mut pages = cx
            .rds
            .describe_db_instances()
            .set_filters(f)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            out.extend_from_slice(page.map_err(rds_error)?.db_instances());
        }
    }
    Ok(out)
}

/// DB clusters by identifier, as [`describe_instances`].
pub async fn describe_clusters(
    cx: &Cx,
    ids: Option<&[String]>,
) -> Result<Vec<DbCluster>, ProviderError> {
    let mut out = Vec::new();
    for f in id_filters("db-cluster-id", ids) {
        let mut pages = cx
            .rds
            .describe_db_clusters()
            .set_filters(f)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            out.extend_from_slice(page.map_err(rds_error)?.db_clusters());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Waiting.

/// RDS changes take minutes; polling faster only spends the account's API budget.
pub const BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(5),
    max: Duration::from_secs(30),
};

/// What a wait ends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    Available,
    Gone,
}

/// Which `timeouts` key bounds a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Create,
    Update,
    Delete,
}

impl Phase {
    fn key(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Update => "update",
            Phase::Delete => "delete",
        }
    }
}

/// One wait: whose, for what, how long, how often, where to report.
pub struct Wait<'a> {
    pub address: &'a str,
    pub goal: Goal,
    pub phase: Phase,
    pub timeout: Duration,
    pub backoff: Backoff,
    pub status: &'a StatusSink,
}

/// Statuses AWS will not leave by itself: waiting on is pointless.
pub fn is_failed(status: &str) -> bool {
    status == "failed"
        || status.starts_with("incompatible-")
        || status.starts_with("inaccessible-encryption-credentials")
        || status == "restore-error"
        || status == "storage-full"
}

/// Waits on the kit's waiter until `describe` (the live status; `None` when
/// gone) reaches the goal. Fails at once on a status AWS will not leave, and
/// after the timeout with what becomes of the resource.
pub async fn wait<F, Fut>(w: &Wait<'_>, mut describe: F) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<String>, ProviderError>>,
{
    let after = match w.phase {
        Phase::Create => {
            "it is tagged with its address, so the next plan adopts it instead of creating another"
        }
        Phase::Delete => "the next apply deletes it if it is still there",
        Phase::Update => "the next plan compares it again",
    };
    let when_timed_out =
        format!("the resource still exists in AWS and AWS carries on with it ({after})");
    let kit_wait = crate::kit::wait::Wait {
        address: w.address,
        phase: w.phase.key(),
        timeout: w.timeout,
        backoff: w.backoff,
        status: w.status,
        when_failed: "the resource still exists: look at its events in the RDS console, fix \
                      the cause (parameters, network, KMS key), then apply again",
        when_timed_out: &when_timed_out,
    };
    let (address, goal) = (w.address, w.goal);
    crate::kit::wait::wait(&kit_wait, || {
        let fut = describe();
        async move {
            let now = match fut.await {
                Ok(s) => s,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(named(address, "waiting", e)),
            };
            match now {
                None if goal == Goal::Gone => Ok(Progress::Done("deleted".into())),
                None => Err(ProviderError::NotFound(format!(
                    "{address}: it disappeared while reconcile waited for it to become \
                     available (deleted outside reconcile?); run plan again"
                ))),
                Some(s) if goal == Goal::Available && s == "available" => Ok(Progress::Done(s)),
                Some(s) if is_failed(&s) => Ok(Progress::Failed(format!(
                    "AWS reports status `{s}`, which it does not leave by itself"
                ))),
                Some(s) => Ok(Progress::Pending(s)),
            }
        }
    })
    .await
}

/// Whether an instance still has changes AWS accepted but has not applied.
pub fn has_pending(p: Option<&PendingModifiedValues>) -> bool {
    let Some(p) = p else { return false };
    p.db_instance_class().is_some()
        || p.allocated_storage().is_some()
        || p.master_user_password().is_some()
        || p.port().is_some()
        || p.backup_retention_period().is_some()
        || p.multi_az().is_some()
        || p.engine_version().is_some()
        || p.storage_type().is_some()
        || p.iops().is_some()
        || p.storage_throughput().is_some()
        || p.db_subnet_group_name().is_some()
        || p.db_instance_identifier().is_some()
        || p.pending_cloudwatch_logs_exports().is_some_and(|l| {
            !l.log_types_to_enable().is_empty() || !l.log_types_to_disable().is_empty()
        })
}

pub use crate::kit::error::unless_gone;

/// The status to wait on: with `settle`, one that reads "available" while
/// changes are still pending reads "modifying", because AWS is slow to flip
/// the status right after a Modify call.
fn settled(status: Option<&str>, settle: bool, pending: bool) -> String {
    match status.unwrap_or("unknown") {
        "available" if settle && pending => "modifying".to_string(),
        s => s.to_string(),
    }
}

/// One instance's status for a wait; `None` when gone. With `settle`, pending
/// changes read "modifying" (see [`settled`]).
pub async fn instance_status(
    client: &aws_sdk_rds::Client,
    id: &str,
    settle: bool,
) -> Result<Option<String>, ProviderError> {
    let out = client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await;
    let Some(out) = unless_gone(out.map_err(rds_error))? else {
        return Ok(None);
    };
    Ok(out.db_instances().first().map(|d| {
        let pending = has_pending(d.pending_modified_values());
        settled(d.db_instance_status(), settle, pending)
    }))
}

/// One cluster's status for a wait, as [`instance_status`].
pub async fn cluster_status(
    client: &aws_sdk_rds::Client,
    id: &str,
    settle: bool,
) -> Result<Option<String>, ProviderError> {
    let out = client
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await;
    let Some(out) = unless_gone(out.map_err(rds_error))? else {
        return Ok(None);
    };
    Ok(out.db_clusters().first().map(|c| {
        let pending = c.pending_modified_values().is_some_and(|p| {
            p.engine_version().is_some()
                || p.master_user_password().is_some()
                || p.backup_retention_period().is_some()
                || p.db_cluster_identifier().is_some()
                || p.storage_type().is_some()
                || p.allocated_storage().is_some()
        });
        settled(c.status(), settle, pending)
    }))
}

// ---------------------------------------------------------------------------
// Field helpers.

/// The desired values of the fields an update changes, for a Modify request:
/// each accessor answers `None` for a field the update does not change, and
/// [`Changed::any`] says whether any field was asked for, so whether to send.
pub struct Changed<'a> {
    f: &'a Fields,
    changes: &'a [FieldChange],
    any: std::cell::Cell<bool>,
}

impl<'a> Changed<'a> {
    pub fn new(f: &'a Fields, changes: &'a [FieldChange]) -> Self {
        let any = std::cell::Cell::new(false);
        Changed { f, changes, any }
    }

    /// Whether the update changes `k`.
    pub fn on(&self, k: &str) -> bool {
        let on = changes_field(self.changes, k);
        self.any.set(self.any.get() || on);
        on
    }

    pub fn any(&self) -> bool {
        self.any.get()
    }

    pub fn str(&self, k: &str) -> Option<String> {
        self.on(k).then(|| str_of(self.f, k).map(str::to_string))?
    }

    pub fn bool(&self, k: &str) -> Option<bool> {
        self.on(k).then(|| bool_of(self.f, k))?
    }

    pub fn int(&self, k: &str) -> Option<i32> {
        self.on(k).then(|| i32_of(self.f, k))?
    }

    pub fn strs(&self, k: &str) -> Option<Vec<String>> {
        self.on(k).then(|| strs_of(self.f, k))?
    }
}

pub use crate::kit::fields::fields_of as fields;

/// A string AWS may leave out, as the empty string.
pub fn str_value(v: Option<&str>) -> Value {
    Value::str(v.unwrap_or_default())
}

/// A flag AWS may leave out, as false.
pub fn bool_value(v: Option<bool>) -> Value {
    Value::Bool(v.unwrap_or(false))
}

/// A number AWS may leave out, as 0.
pub fn int_value(v: Option<i32>) -> Value {
    Value::Int(v.unwrap_or(0).into())
}

/// The security groups an instance or cluster is in, leaving out those being removed.
pub fn security_groups(groups: &[VpcSecurityGroupMembership]) -> Value {
    str_list(
        groups
            .iter()
            .filter(|g| g.status() != Some("removing"))
            .filter_map(|g| g.vpc_security_group_id()),
    )
}

/// The log types to enable and to disable to go from `have` to `want`.
pub fn log_changes(have: &[String], want: &[String]) -> (Vec<String>, Vec<String>) {
    let enable = want.iter().filter(|w| !have.contains(w)).cloned().collect();
    let disable = have.iter().filter(|h| !want.contains(h)).cloned().collect();
    (enable, disable)
}

/// How a kind waits for its resource in one phase, with that phase's timeout.
pub fn waiting<'a>(
    cx: &'a Cx,
    address: &'a str,
    goal: Goal,
    phase: Phase,
    t: &Timeouts,
) -> Wait<'a> {
    Wait {
        address,
        goal,
        phase,
        timeout: match phase {
            Phase::Create => t.create,
            Phase::Update => t.update,
            Phase::Delete => t.delete,
        },
        backoff: BACKOFF,
        status: &cx.status,
    }
}

/// The resource's `timeouts`, or Terraform's defaults; a bad value names the address.
pub fn timeouts(address: &str, f: Option<&Fields>) -> Result<Timeouts, ProviderError> {
    Timeouts::of(address, f, DEFAULTS)
}

// ---------------------------------------------------------------------------
// What db_instance and db_cluster share: observe, find by tags, validate,
// the end of a create and of an update, and delete with a final snapshot.

/// Which of the two database kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Instance,
    Cluster,
}

impl Db {
    fn kind(self) -> &'static str {
        match self {
            Db::Instance => "db_instance",
            Db::Cluster => "db_cluster",
        }
    }

    /// The resources by identifier (`None`: every one of the region), observed.
    async fn describe(
        self,
        cx: &Cx,
        ids: Option<&[String]>,
    ) -> Result<Vec<Observed>, ProviderError> {
        Ok(match self {
            Db::Instance => describe_instances(cx, ids)
                .await?
                .iter()
                .filter_map(db_instance::observed)
                .collect(),
            Db::Cluster => describe_clusters(cx, ids)
                .await?
                .iter()
                .filter_map(db_cluster::observed)
                .collect(),
        })
    }

    async fn status(
        self,
        cx: &Cx,
        id: &str,
        settle: bool,
    ) -> Result<Option<String>, ProviderError> {
        match self {
            Db::Instance => instance_status(&cx.rds, id, settle).await,
            Db::Cluster => cluster_status(&cx.rds, id, settle).await,
        }
    }

    pub async fn observe(
        self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let found = self.describe(cx, Some(ids)).await?;
        Ok(found.into_iter().map(|o| (o.id.clone(), o)).collect())
    }

    async fn observe_one(self, cx: &Cx, id: &str) -> Result<Option<Observed>, ProviderError> {
        let found = self.describe(cx, Some(&[id.to_string()])).await?;
        Ok(found.into_iter().find(|o| o.id == id))
    }

    pub async fn find_tagged(
        self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError> {
        Ok(self
            .describe(cx, None)
            .await?
            .into_iter()
            .filter_map(|o| stack_address(cx, &o.tags).map(|a| (a, o)))
            .filter(|(a, _)| addresses.is_empty() || addresses.contains(a))
            .collect())
    }

    /// Waits for a create to become available and reads the new resource back.
    pub async fn created(
        self,
        cx: &Cx,
        addr: &str,
        id: &str,
        t: &Timeouts,
    ) -> Result<Observed, ProviderError> {
        let w = waiting(cx, addr, Goal::Available, Phase::Create, t);
        wait(&w, || self.status(cx, id, false)).await?;
        self.observe_one(cx, id).await?.ok_or_else(|| {
            ProviderError::NotFound(format!(
                "{addr}: {id} vanished right after it became available; run plan again"
            ))
        })
    }

    /// After an update's Modify call (`modified`; none when only tags or
    /// reconcile's own settings changed): waits until available again, syncs
    /// the tags, and reads the result back.
    pub async fn updated(
        self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
        t: &Timeouts,
        modified: bool,
    ) -> Result<Observed, ProviderError> {
        let (addr, id) = (want.address, live.id.as_str());
        if modified {
            // Without apply_immediately AWS holds the changes until the maintenance
            // window, so only the status (not the pending values) is waited on.
            let settle = bool_of(want.fields, "apply_immediately").unwrap_or(true);
            let w = waiting(cx, addr, Goal::Available, Phase::Update, t);
            wait(&w, || self.status(cx, id, settle)).await?;
        }
        retag(cx, live, want, changes).await?;
        if !modified {
            return Ok(Observed {
                tags: want.tags.clone(),
                ..live.clone()
            });
        }
        let mut o = self.observe_one(cx, id).await?.ok_or_else(|| {
            ProviderError::NotFound(format!("{addr}: {id} vanished during its update"))
        })?;
        o.tags = want.tags.clone();
        Ok(o)
    }

    /// Deletes with the last applied inputs' final snapshot settings and waits
    /// until it is gone. `send` makes the Delete call, given the live resource
    /// and the final snapshot's name (`None`: skip it).
    pub async fn delete<F, Fut>(
        self,
        cx: &Cx,
        id: &str,
        applied: Option<&Fields>,
        send: F,
    ) -> Result<(), ProviderError>
    where
        F: FnOnce(&Observed, Option<String>) -> Fut,
        Fut: Future<Output = Result<(), ProviderError>>,
    {
        let Some(live) = self.observe_one(cx, id).await? else {
            return Ok(());
        };
        let addr = live
            .tags
            .get(TAG_ADDRESS)
            .cloned()
            .unwrap_or_else(|| format!("{} {id}", self.kind()));
        let t = timeouts(&addr, applied)?;
        if str_of(&live.attributes, "status") != Some("deleting") {
            let snapshot = (!skip_final_snapshot(applied))
                .then(|| final_snapshot_id(id, applied, chrono::Utc::now()));
            match send(&live, snapshot).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(named(&addr, "deleting", e)),
            }
        }
        let w = waiting(cx, &addr, Goal::Gone, Phase::Delete, &t);
        wait(&w, || self.status(cx, id, false)).await
    }
}

pub use crate::kit::fields::diagnostics;

/// A problem in a declaration: the field (`None`: the whole resource), what, what to do.
pub use crate::kit::fields::Problem;

pub use crate::kit::fields::refuse;

/// Makes the tags `want` says when they changed.
pub async fn retag(
    cx: &Cx,
    live: &Observed,
    want: &Desired<'_>,
    changes: &[FieldChange],
) -> Result<(), ProviderError> {
    if !changes_field(changes, "tags") {
        return Ok(());
    }
    let arn = str_of(&live.attributes, "arn").unwrap_or_default();
    sync_tags(cx, arn, &live.tags, want.tags)
        .await
        .map_err(|e| named(want.address, "tagging", e))
}

/// The engine version to upgrade to, and whether it is a new major, which AWS
/// only takes with AllowMajorVersionUpgrade.
pub fn upgrade(f: &Fields, live: &Fields) -> (String, bool) {
    let engine = str_of(f, "engine").unwrap_or_default();
    let new = str_of(f, "engine_version").unwrap_or_default();
    let old = str_of(live, "engine_version").unwrap_or_default();
    (
        new.to_string(),
        major_version(engine, new) != major_version(engine, old),
    )
}

/// The log exports to enable and disable to go from `live` to `f`.
pub fn log_exports(f: &Fields, live: &Fields) -> CloudwatchLogsExportConfiguration {
    let k = "enabled_cloudwatch_logs_exports";
    let (on, off) = log_changes(
        &strs_of(live, k).unwrap_or_default(),
        &strs_of(f, k).unwrap_or_default(),
    );
    CloudwatchLogsExportConfiguration::builder()
        .set_enable_log_types(Some(on))
        .set_disable_log_types(Some(off))
        .build()
}

/// The master password an update must send: a new secret ARN or key, or
/// leaving RDS-managed passwords, which needs a password of our own in the
/// same call.
pub async fn new_password(
    cx: &Cx,
    addr: &str,
    f: &Fields,
    changes: &[FieldChange],
) -> Result<Option<Sensitive>, ProviderError> {
    let ch = |k: &str| changes_field(changes, k);
    let managed = bool_of(f, "manage_master_user_password") == Some(true);
    let new_secret = ch("master_password_secret") || ch("master_password_secret_key");
    if managed || !(new_secret || ch("manage_master_user_password")) {
        return Ok(None);
    }
    master_password(cx, addr, f).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::operation::describe_db_instances::{
        DescribeDBInstancesError, DescribeDbInstancesOutput,
    };
    use aws_sdk_rds::types::error::DbInstanceNotFoundFault;
    use aws_sdk_rds::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::sync::{Arc, Mutex};

    #[test]
    fn timeouts_default_to_terraform_and_read_declared_values() {
        let t = timeouts("db_instance.main", None).unwrap();
        assert_eq!(
            (t.create, t.update, t.delete),
            (DEFAULT_CREATE, DEFAULT_UPDATE, DEFAULT_DELETE)
        );
        let mut f = Fields::new();
        let mut m = IndexMap::new();
        m.insert("create".to_string(), Value::str("2h"));
        f.insert("timeouts".into(), Value::Map(m));
        let t = timeouts("db_instance.main", Some(&f)).unwrap();
        assert_eq!(t.create, Duration::from_secs(7200));
        assert_eq!(t.delete, DEFAULT_DELETE);
        let mut m = IndexMap::new();
        m.insert("delete".to_string(), Value::str("soon"));
        f.insert("timeouts".into(), Value::Map(m));
        assert!(timeouts("db_instance.main", Some(&f))
            .unwrap_err()
            .to_string()
            .contains("timeouts.delete"));
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("proxy-smart-keycloak").is_ok());
        for bad in ["", "Upper", "1abc", "a--b", "a-", "a_b", &"a".repeat(64)] {
            assert!(check_identifier(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn final_snapshot_names() {
        let now = chrono::DateTime::parse_from_rfc3339("2025-03-04T05:06:07Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            final_snapshot_id("db1", None, now),
            "db1-final-20250304-050607"
        );
        let mut f = Fields::new();
        f.insert("final_snapshot_identifier".into(), Value::str("last"));
        assert_eq!(final_snapshot_id("db1", Some(&f), now), "last");
        assert!(check_identifier(&final_snapshot_id("db1", None, now)).is_ok());
        assert!(!skip_final_snapshot(None));
        f.insert("skip_final_snapshot".into(), Value::Bool(true));
        assert!(skip_final_snapshot(Some(&f)));
    }

    #[test]
    fn versions() {
        assert_eq!(major_version("postgres", "16.3"), "16");
        assert_eq!(major_version("postgres", "9.6.24"), "9.6");
        assert_eq!(major_version("mysql", "8.0.35"), "8.0");
        assert_eq!(major_version("aurora-postgresql", "15.4"), "15");
    }

    #[test]
    fn log_exports() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (on, off) = log_changes(&s(&["postgresql"]), &s(&["upgrade", "postgresql"]));
        assert_eq!((on, off), (s(&["upgrade"]), s(&[])));
    }

    fn instance(status: &str) -> DescribeDbInstancesOutput {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("db1")
                    .db_instance_status(status)
                    .build(),
            )
            .build()
    }

    /// A client answering DescribeDBInstances with `statuses` in order (the
    /// last one for ever), and a sink recording what was reported.
    fn staged(statuses: &[&'static str]) -> (Client, StatusSink, Arc<Mutex<Vec<String>>>) {
        let mut seq = mock!(Client::describe_db_instances).sequence();
        for (i, s) in statuses.iter().enumerate() {
            let s = *s;
            seq = if i + 1 == statuses.len() {
                seq.output(move || instance(s)).times(1000)
            } else {
                seq.output(move || instance(s))
            };
        }
        let rule = seq.build();
        let client = mock_client!(aws_sdk_rds, RuleMode::Sequential, [&rule]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink = StatusSink::new(move |a, s| s2.lock().unwrap().push(format!("{a}={s}")));
        (client, sink, seen)
    }

    fn fast(sink: &StatusSink, goal: Goal, phase: Phase, timeout: Duration) -> Wait<'_> {
        Wait {
            address: "db_instance.main",
            goal,
            phase,
            timeout,
            backoff: Backoff {
                first: Duration::from_millis(1),
                max: Duration::from_millis(4),
            },
            status: sink,
        }
    }

    #[tokio::test]
    async fn waits_through_statuses_until_available_reporting_each_once() {
        let (client, sink, seen) = staged(&["creating", "creating", "backing-up", "available"]);
        let w = fast(
            &sink,
            Goal::Available,
            Phase::Create,
            Duration::from_secs(10),
        );
        wait(&w, || instance_status(&client, "db1", true))
            .await
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "db_instance.main=creating",
                "db_instance.main=backing-up",
                "db_instance.main=available"
            ]
        );
    }

    #[tokio::test]
    async fn a_status_that_never_settles_times_out_naming_address_status_and_limit() {
        let (client, sink, _) = staged(&["modifying"]);
        let w = fast(
            &sink,
            Goal::Available,
            Phase::Update,
            Duration::from_millis(30),
        );
        let started = std::time::Instant::now();
        let e = wait(&w, || instance_status(&client, "db1", true))
            .await
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(e.contains("db_instance.main"), "{e}");
        assert!(e.contains("`modifying`"), "{e}");
        assert!(e.contains("timeouts.update"), "{e}");
        assert!(e.contains("still exists"), "{e}");
    }

    #[tokio::test]
    async fn a_failed_status_is_an_error_at_once() {
        for bad in ["failed", "incompatible-parameters"] {
            let (client, sink, seen) = staged(&["creating", bad, "available"]);
            let w = fast(
                &sink,
                Goal::Available,
                Phase::Create,
                Duration::from_secs(60),
            );
            let e = wait(&w, || instance_status(&client, "db1", true))
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad) && e.contains("db_instance.main"), "{e}");
            assert_eq!(seen.lock().unwrap().len(), 2, "stopped at {bad}");
        }
    }

    #[tokio::test]
    async fn deletes_wait_until_not_found() {
        let deleting = mock!(Client::describe_db_instances)
            .sequence()
            .output(|| instance("deleting"))
            .times(2)
            .error(|| {
                DescribeDBInstancesError::DbInstanceNotFoundFault(
                    DbInstanceNotFoundFault::builder()
                        .message("DBInstance db1 not found.")
                        .meta(
                            aws_smithy_types::error::ErrorMetadata::builder()
                                .code("DBInstanceNotFound")
                                .message("DBInstance db1 not found.")
                                .build(),
                        )
                        .build(),
                )
            })
            .build();
        let client = mock_client!(aws_sdk_rds, RuleMode::Sequential, [&deleting]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink = StatusSink::new(move |_, s| s2.lock().unwrap().push(s.to_string()));
        let w = fast(&sink, Goal::Gone, Phase::Delete, Duration::from_secs(10));
        wait(&w, || instance_status(&client, "db1", false))
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["deleting", "deleted"]);
    }

    #[tokio::test]
    async fn pending_modifications_read_as_modifying_until_applied() {
        let pending = DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("db1")
                    .db_instance_status("available")
                    .pending_modified_values(
                        PendingModifiedValues::builder()
                            .db_instance_class("db.t4g.small")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let rule = mock!(Client::describe_db_instances)
            .sequence()
            .output(move || pending.clone())
            .output(|| instance("available"))
            .build();
        let client = mock_client!(aws_sdk_rds, RuleMode::Sequential, [&rule]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink = StatusSink::new(move |_, s| s2.lock().unwrap().push(s.to_string()));
        let w = fast(
            &sink,
            Goal::Available,
            Phase::Update,
            Duration::from_secs(10),
        );
        wait(&w, || instance_status(&client, "db1", true))
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["modifying", "available"]);
    }
}
