//! The provider kit: what every kind is written on. The [`Provider`] trait, the
//! shared clients with call counting and retry policy, typed AWS errors, tags,
//! field helpers, durations and the one waiter.

pub mod adopt;
pub mod client;
pub mod duration;
pub mod error;
pub mod fields;
pub mod policy;
pub mod tags;
pub mod wait;

pub use client::{retry_config, AwsOptions, CallCounter, Cx, StatusSink};
pub use error::ProviderError;

use async_trait::async_trait;
use indexmap::IndexMap;
use reconcile_core::model::{Fields, Schema};
use reconcile_core::plan::{FieldChange, Observed};
use std::collections::HashMap;

/// What a create or update is asked to make real. Fields are fully resolved.
pub struct Desired<'a> {
    pub address: &'a str,
    pub fields: &'a Fields,
    /// The full tag set, `reconcile:stack` and `reconcile:address` included.
    pub tags: &'a IndexMap<String, String>,
    /// Idempotency token for APIs that take one (stable across a retried create).
    pub token: &'a str,
    /// For a create that replaces a resource before deleting it: the old copy's
    /// id. It carries the same address tags, so a create that adopts copies
    /// found by their tags must never take it for the new one.
    pub replacing: Option<&'a str>,
}

/// One AWS resource kind: observe in batches, diff, create, update, delete.
#[async_trait]
pub trait Provider: Send + Sync {
    fn schema(&self) -> &'static Schema;

    /// Observes many resources by id in as few calls as the API allows (one
    /// describe per page). Ids that no longer exist are absent from the answer.
    async fn observe(
        &self,
        cx: &Cx,
        ids: &[String],
    ) -> Result<HashMap<String, Observed>, ProviderError>;

    /// Resources of this kind tagged with the stack and one of `addresses`
    /// (all of the stack's when empty), each with its `reconcile:address` tag.
    /// One address may have several: an old and a new copy, say.
    /// This is how a create interrupted before state recorded it is found again.
    async fn find_tagged(
        &self,
        cx: &Cx,
        addresses: &[String],
    ) -> Result<Vec<(String, Observed)>, ProviderError>;

    /// Fills in live fields that can only be judged against the desired
    /// configuration, for resources that state tracks (or that were found by
    /// their tags) and the stack declares:
    /// whether a secret's value still matches its environment variable, say.
    /// Compared in memory; only the verdict lands in `Observed`. Batched per kind.
    async fn observe_against_desired(
        &self,
        _cx: &Cx,
        _items: &mut [(&reconcile_core::model::Resource, &mut Observed)],
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The tags of live resources by ARN, read with the kind's own API and
    /// never through the stack tag index. The observe pass confirms with it
    /// every tag set the index answered ([`tags::indexed`]) that differs from
    /// the declared one: the Tagging API is eventually consistent and may still
    /// show tags an apply changed a moment ago. Kinds that take tags from the
    /// index implement it; `None`, the default, says the kind does not. An ARN
    /// missing from the answer is a resource that no longer exists.
    async fn read_tags(
        &self,
        _cx: &Cx,
        _arns: &[String],
    ) -> Result<Option<tags::TagsByArn>, ProviderError> {
        Ok(None)
    }

    /// Pure: problems only visible with the whole stack at hand (two resources
    /// that would undo each other, say). Reported with the other validation errors.
    fn validate(
        &self,
        _stack: &reconcile_core::model::Stack,
        _r: &reconcile_core::model::Resource,
    ) -> Vec<reconcile_core::model::Diagnostic> {
        vec![]
    }

    /// Pure: the fields of other resources this resource takes over while it
    /// exists, as `(address, field)`: an autoscaler owning a service's task
    /// count. `fields` are as declared (references unresolved) or, for a
    /// resource only state still holds, as last applied; `uses` are the
    /// addresses it depends on. The planner stops comparing those fields and
    /// says so in the plan.
    fn takes_over(&self, _fields: &Fields, _uses: &[String]) -> Vec<(String, String)> {
        vec![]
    }

    /// The field through which AWS itself refuses to delete the resource while
    /// it is `true` (deletion protection), if the kind has one. The planner
    /// refuses a delete or replacement up front rather than fail half-way.
    fn deletion_guard(&self) -> Option<&'static str> {
        None
    }

    /// Why the resource must not be deleted or replaced while other declared
    /// resources use it (a key encrypting their data), if so: the planner
    /// then refuses that, naming them.
    fn in_use_guard(&self) -> Option<&'static str> {
        None
    }

    /// Pure: what deleting the resource does beyond deleting it, told in the
    /// plan beside the delete ("schedules the key's deletion in 30 days"),
    /// from the last applied inputs (`None` for a copy state never recorded).
    fn delete_note(&self, _applied: Option<&Fields>) -> Option<String> {
        None
    }

    /// Why the live resource `id` must not be deleted now, if it must not: it
    /// still holds data that only an applied setting lets reconcile destroy (a
    /// bucket with objects, say). Asked at plan time, and only for resources
    /// the plan deletes or replaces, so a no-op plan never pays for it; the
    /// answer refuses the plan. The delete itself checks again.
    async fn refuse_delete(
        &self,
        _cx: &Cx,
        _id: &str,
        _applied: Option<&Fields>,
    ) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }

    /// Pure: whether a replacement with these changes can create the new
    /// resource while the old one still exists.
    fn create_before_destroy(&self, _changes: &[FieldChange]) -> bool {
        true
    }

    async fn create(&self, cx: &Cx, want: &Desired<'_>) -> Result<Observed, ProviderError>;

    /// Applies `changes` (none of them replace-forcing) to the live resource.
    async fn update(
        &self,
        cx: &Cx,
        live: &Observed,
        want: &Desired<'_>,
        changes: &[FieldChange],
    ) -> Result<Observed, ProviderError>;

    /// Deletes; a resource that is already gone is success.
    async fn delete(&self, cx: &Cx, id: &str) -> Result<(), ProviderError>;

    /// Deletes with the last applied inputs at hand (`None` for a copy state
    /// never recorded), for kinds whose delete takes options such as a final
    /// snapshot or a recovery window.
    async fn delete_applied(
        &self,
        cx: &Cx,
        id: &str,
        _applied: Option<&Fields>,
    ) -> Result<(), ProviderError> {
        self.delete(cx, id).await
    }
}

/// How many reads run at once where an API answers one resource a call.
pub const READS_AT_ONCE: usize = 8;

/// Runs `calls` (one read each) a few at a time, keeping the answers of the
/// resources still there. Callers collect the calls first: a lazy iterator's
/// closure would not be Send for every lifetime.
pub async fn each<T>(
    calls: Vec<impl std::future::Future<Output = Result<Option<T>, ProviderError>>>,
) -> Result<Vec<T>, ProviderError> {
    use futures::{StreamExt, TryStreamExt};
    let found: Vec<Option<T>> = futures::stream::iter(calls)
        .buffer_unordered(READS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// What an update that made `want` true leaves live: the live fields with the
/// declared ones over them, and without those the schema clears when left out
/// (the update just cleared them); the declared tags. For kinds whose update
/// does not read the resource back.
pub fn updated(schema: &Schema, live: &Observed, want: &Desired<'_>) -> Observed {
    let mut fields = live.fields.clone();
    for f in schema.fields.iter().filter(|f| f.absent_clears) {
        fields.shift_remove(f.name);
    }
    fields.extend(want.fields.clone());
    Observed {
        id: live.id.clone(),
        fields,
        attributes: live.attributes.clone(),
        tags: want.tags.clone(),
    }
}

/// Observations keyed by id, as `observe` answers them.
pub fn by_id(found: Vec<Observed>) -> HashMap<String, Observed> {
    found.into_iter().map(|o| (o.id.clone(), o)).collect()
}

/// Reads `field` for every resource that declares it (and that `also`
/// admits), one resource a call a few at a time, and sets it in its
/// observation: how a setting managed only when declared is observed, so that
/// a no-op plan pays nothing for settings it does not manage. `read` answers
/// `None` for a resource that is gone or has no such setting.
pub async fn observe_declared<F, Fut>(
    items: &mut [(&reconcile_core::model::Resource, &mut Observed)],
    field: &str,
    also: impl Fn(&Observed) -> bool,
    read: F,
) -> Result<(), ProviderError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<reconcile_core::model::Value>, ProviderError>>,
{
    let calls = items
        .iter()
        .filter(|(r, o)| r.fields.contains_key(field) && also(o))
        .map(|(_, o)| {
            let id = o.id.clone();
            let answer = read(id.clone());
            async move { Ok(answer.await?.map(|v| (id, v))) }
        })
        .collect();
    let found: HashMap<String, reconcile_core::model::Value> =
        each(calls).await?.into_iter().collect();
    for (_, o) in items.iter_mut() {
        if let Some(v) = found.get(&o.id) {
            o.fields.insert(field.to_string(), v.clone());
        }
    }
    Ok(())
}

/// Field differences between desired and live, as the planner sees them: from
/// the schema alone. A kind teaches the comparison through its schema's normal
/// forms ([`reconcile_core::model::schema::Norm`]), never by a diff of its own,
/// so this is not a `Provider` method a kind could override.
pub trait SchemaDiff {
    fn diff(&self, desired: &Fields, live: &Fields) -> Vec<FieldChange>;
}

impl<P: Provider + ?Sized> SchemaDiff for P {
    fn diff(&self, desired: &Fields, live: &Fields) -> Vec<FieldChange> {
        reconcile_core::plan::diff_fields(self.schema(), desired, live)
    }
}

/// Resources and stacks built in memory, for the kinds' `validate` tests.
#[cfg(test)]
pub mod testing {
    use indexmap::IndexMap;
    use reconcile_core::model::{Pos, Resource, Stack, Value};

    /// A resource declared at line 1 of `s.toml`, its n-th field (from 0) at
    /// line n + 2, so a test can tell which field a diagnostic points at.
    pub fn resource(address: &str, fields: &[(&str, Value)]) -> Resource {
        let (kind, name) = address.split_once('.').expect("kind.name");
        let at = |line| Pos {
            file: "s.toml".into(),
            line,
            col: 1,
        };
        Resource {
            address: address.into(),
            kind: kind.into(),
            name: name.into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            depends_on: vec![],
            protect: false,
            ignore_changes: vec![],
            tags: IndexMap::new(),
            pos: at(1),
            field_pos: fields
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.to_string(), at(i + 2)))
                .collect(),
            refs: vec![],
        }
    }

    pub fn stack(resources: Vec<Resource>) -> Stack {
        Stack {
            name: "s".into(),
            region: "us-east-1".into(),
            tags: IndexMap::new(),
            state: None,
            source: "s.toml".into(),
            resources: resources
                .into_iter()
                .map(|r| (r.address.clone(), r))
                .collect(),
            outputs: IndexMap::new(),
        }
    }
}
