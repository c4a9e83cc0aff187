//! The kind catalog: the one interface through which validation and the planner
//! learn every kind's schema, validation, diff, replacement rule and deletion guard.
//! The AWS crate implements it; the planner's tests use a small fake one.

use crate::diff::{diff_fields, FieldChange};
use crate::model::{Diagnostic, Fields, Resource, Schemas, Stack, Value};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Tag naming the stack that manages a resource; with [`TAG_ADDRESS`] it lets a
/// create interrupted before state recorded it be found and adopted.
pub const TAG_STACK: &str = "reconcile:stack";
/// Tag naming the address (`KIND.NAME`) a resource was created for.
pub const TAG_ADDRESS: &str = "reconcile:address";

/// A resource as it really is in AWS, normalised to its kind's schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub id: String,
    /// Values of the schema's fields as AWS reports them.
    pub fields: Fields,
    /// Attributes AWS decides (`id`, `arn`, ...).
    pub attributes: Fields,
    pub tags: IndexMap<String, String>,
}

/// A field of another resource that a resource takes over from the stack: an
/// autoscaler owning a service's task count, say. The planner then no longer
/// compares that field with AWS (after the create that sets it) and says why.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Takeover {
    /// The address of the resource whose field is taken over.
    pub address: String,
    pub field: String,
}

/// Everything the pure layers need from the kinds beyond parsing.
pub trait KindCatalog: Schemas + Send + Sync {
    /// Problems only visible with the whole stack at hand (two resources that
    /// would undo each other, a subnet outside its VPC's range, ...).
    fn validate(&self, _stack: &Stack, _r: &Resource) -> Vec<Diagnostic> {
        vec![]
    }

    /// Field-by-field differences between desired and live, from the kind's
    /// schema alone: what AWS reports differently but means the same is told by
    /// the schema's normal forms, not by code of the kind's own.
    fn diff(&self, kind: &str, desired: &Fields, live: &Fields) -> Vec<FieldChange> {
        match self.schema(kind) {
            Some(s) => diff_fields(s, desired, live),
            None => vec![],
        }
    }

    /// Whether a replacement may create the new resource before deleting the old.
    fn create_before_destroy(&self, kind: &str, changes: &[FieldChange]) -> bool;

    /// The field through which AWS itself refuses to delete a resource of this
    /// kind while it is `true` (deletion protection, say), if the kind has one.
    fn deletion_guard(&self, _kind: &str) -> Option<&'static str> {
        None
    }

    /// Why a resource of this kind must not be deleted or replaced while other
    /// declared resources still use it (a key that encrypts their data, say),
    /// if that is so: the planner then refuses such a delete or replacement,
    /// naming the users.
    fn in_use_guard(&self, _kind: &str) -> Option<&'static str> {
        None
    }

    /// What deleting a resource of this kind does beyond deleting it (a
    /// waiting period before the deletion takes effect, say), from its last
    /// applied inputs: the plan tells it beside the delete.
    fn delete_note(&self, _kind: &str, _applied: Option<&Fields>) -> Option<String> {
        None
    }

    /// The fields of other resources that a resource of this kind takes over
    /// while it exists. `fields` are its fields as declared (references
    /// unresolved) or as last applied (resolved); `uses` are the addresses it
    /// depends on. Asked of declared resources, and of resources state still
    /// holds but the stack no longer declares, so the plan can tell that a
    /// field is managed again.
    fn takes_over(&self, _kind: &str, _fields: &Fields, _uses: &[String]) -> Vec<Takeover> {
        vec![]
    }

    /// Every kind's whole-stack checks for every declared resource. A resource
    /// whose required field the loader refused was reported already; its kind's
    /// checks would only see it without that field and complain again about the
    /// symptom (no containers, say). A refused optional field is as if left out,
    /// and the kind's other problems are still reported at once.
    fn validate_stack(&self, stack: &Stack) -> Vec<Diagnostic> {
        stack
            .resources
            .values()
            .filter(|r| {
                !r.field_pos.keys().any(|k| {
                    !r.fields.contains_key(k)
                        && self
                            .schema(&r.kind)
                            .and_then(|s| s.field(k))
                            .is_some_and(|f| f.required)
                })
            })
            .flat_map(|r| self.validate(stack, r))
            .collect()
    }

    /// The guard field that is on in this live resource, if any: a delete or
    /// replacement of it would fail half-way in AWS.
    fn guarded_by(&self, kind: &str, live: &Observed) -> Option<&'static str> {
        self.deletion_guard(kind)
            .filter(|f| live.fields.get(*f) == Some(&Value::Bool(true)))
    }
}
