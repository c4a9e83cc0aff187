//! The planner: (desired stack, state, observed AWS) -> a [`Plan`] of steps. Pure: no I/O.

pub use crate::catalog::{KindCatalog, Observed, Takeover, TAG_ADDRESS, TAG_STACK};
pub use crate::diff::{diff_fields, FieldChange};

use crate::graph::Graph;
use crate::model::{Fields, Reference, Schema, Stack, Value};
use crate::state::{State, StateResource};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

pub const PLAN_FORMAT_VERSION: u32 = 1;

/// Settings of reconcile itself (`Field::local`) are compared with what was
/// last applied, not with AWS: puts those values into `live` (the desired ones
/// when nothing was applied yet, so a fresh adoption shows no change).
pub fn local_settings_as_live(
    schema: &Schema,
    live: &mut Fields,
    last_applied: Option<&Fields>,
    want: &Fields,
) {
    for f in schema.fields.iter().filter(|f| f.local) {
        match last_applied
            .and_then(|l| l.get(f.name))
            .or_else(|| want.get(f.name))
        {
            Some(v) => live.insert(f.name.to_string(), v.clone()),
            None => live.shift_remove(f.name),
        };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub address: String,
    pub kind: String,
    pub action: Action,
    /// The AWS id of the existing resource (update, replace, delete, no-op).
    pub id: Option<String>,
    /// Why this step exists when it is not a plain config change.
    pub reason: Option<String>,
    /// True when every change is an out-of-band change to a declared field.
    pub drift: bool,
    pub changes: Vec<FieldChange>,
    /// For `replace`: whether the new resource is created before the old is deleted.
    pub create_before_destroy: bool,
    /// Desired fields as written (references unresolved); resolved again at apply time.
    pub desired: Option<Fields>,
    /// Desired values resolved with what is known now; `Unknown` where not.
    pub planned: Option<Fields>,
    /// Full desired tag set, `reconcile:*` tags included.
    pub tags: IndexMap<String, String>,
    /// Addresses this step's resource depends on (desired graph, or state for deletes).
    pub dependencies: Vec<String>,
    pub protect: bool,
    pub ignore_changes: Vec<String>,
    /// For deletes: the resource is already gone, only the state entry is dropped.
    #[serde(default)]
    pub already_gone: bool,
    /// For deletes: the old copy of a replaced resource, not the current one.
    #[serde(default)]
    pub deposed: bool,
    /// What a person should know about this step even when nothing changes: a
    /// field another resource manages, or one reconcile manages again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A resource found by its tags that state did not know (an interrupted create).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Adoption {
    pub address: String,
    pub kind: String,
    pub observed: Observed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    pub region: String,
    pub source: String,
    pub state_lineage: Option<String>,
    pub state_serial: u64,
    pub destroy: bool,
    pub steps: Vec<Step>,
    pub adoptions: Vec<Adoption>,
    /// Outputs as written; resolved after apply.
    pub outputs: IndexMap<String, Value>,
    /// What each existing resource looked like when planned, for updates.
    pub observed: IndexMap<String, Observed>,
    /// `--target` addresses; empty when the plan covers the whole stack.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Where the state the plan was made against lives, when not in the
    /// local state directory (`s3://bucket/prefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_location: Option<String>,
}

impl Plan {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.steps {
            match s.action {
                Action::Create => c.create += 1,
                Action::Update => c.update += 1,
                Action::Replace => c.replace += 1,
                Action::Delete => c.delete += 1,
                Action::NoOp => c.unchanged += 1,
            }
        }
        c
    }
    pub fn has_changes(&self) -> bool {
        let c = self.counts();
        c.create + c.update + c.replace + c.delete > 0 || !self.adoptions.is_empty()
    }
}

#[derive(Default, Debug, Clone, Copy, Serialize)]
pub struct Counts {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
}

/// A reason the plan cannot be made, naming the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub address: String,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.address, self.message)
    }
}

pub struct PlanInput<'a> {
    pub stack: &'a Stack,
    pub graph: &'a Graph,
    pub state: &'a State,
    /// Live view of every address in state (and adopted ones); `None` = gone.
    pub observed: &'a HashMap<String, Option<Observed>>,
    pub adoptions: Vec<Adoption>,
    pub catalog: &'a dyn KindCatalog,
    pub destroy: bool,
    pub targets: &'a [String],
}

/// The full desired tag set of a resource.
pub fn desired_tags(stack: &Stack, address: &str) -> IndexMap<String, String> {
    let r = &stack.resources[address];
    let mut t = stack.tags.clone();
    t.extend(r.tags.clone());
    t.insert(TAG_STACK.into(), stack.name.clone());
    t.insert(TAG_ADDRESS.into(), address.into());
    t
}

/// Resolves a reference against what the plan knows: resources being created
/// expose only their declared, known fields; existing ones their live attributes.
pub fn lookup_planned(
    planned: &HashMap<String, (Action, Fields)>,
    live: &dyn Fn(&str) -> Option<Observed>,
    r: &Reference,
) -> Value {
    let Reference::Resource { attr, .. } = r else {
        return Value::Unknown;
    };
    let addr = r.address().unwrap();
    match planned.get(&addr) {
        Some((Action::Create | Action::Replace, fields)) => {
            fields.get(attr).cloned().unwrap_or(Value::Unknown)
        }
        Some((_, fields)) => fields.get(attr).cloned().unwrap_or_else(|| {
            live(&addr)
                .and_then(|o| o.attributes.get(attr).or(o.fields.get(attr)).cloned())
                .unwrap_or(Value::Unknown)
        }),
        None => Value::Unknown,
    }
}

pub fn compute(input: PlanInput<'_>) -> Result<Plan, Vec<PlanError>> {
    let PlanInput {
        stack,
        graph,
        state,
        observed,
        adoptions,
        catalog,
        destroy,
        targets,
    } = input;
    let mut errors = Vec::new();
    let mut steps = Vec::new();
    let mut planned: HashMap<String, (Action, Fields)> = HashMap::new();
    // One copy per address is adopted; any other copy under the same address
    // (an interrupted replacement's, say) is deleted so nothing is orphaned.
    let (adoptions, extra_copies) = split_copies(adoptions);
    let adopted: HashMap<&str, &Adoption> =
        adoptions.iter().map(|a| (a.address.as_str(), a)).collect();
    let live = |addr: &str| -> Option<Observed> {
        observed
            .get(addr)
            .cloned()
            .flatten()
            .or_else(|| adopted.get(addr).map(|a| a.observed.clone()))
    };

    let selected = select_targets(graph, state, targets);
    let (owned, released) = if destroy {
        Default::default()
    } else {
        takeovers(stack, graph, state, catalog)
    };
    let order = if destroy { vec![] } else { graph.order() };
    for addr in &order {
        if !selected.as_ref().is_none_or(|s| s.contains(addr)) {
            continue;
        }
        let r = &stack.resources[addr];
        let schema = catalog
            .schema(&r.kind)
            .expect("validated kinds have schemas");
        let lookup = |rf: &Reference| lookup_planned(&planned, &live, rf);
        let resolved: Fields = r
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.resolve(&lookup)))
            .collect();
        let mut tags = IndexMap::new();
        if schema.taggable {
            tags = desired_tags(stack, addr);
        }
        let in_state = state.resources.get(addr);
        let now = live(addr);
        let mut step = Step {
            address: addr.clone(),
            kind: r.kind.clone(),
            action: Action::NoOp,
            id: now.as_ref().map(|o| o.id.clone()),
            reason: None,
            drift: false,
            changes: vec![],
            create_before_destroy: true,
            desired: Some(r.fields.clone()),
            planned: Some(resolved.clone()),
            tags: tags.clone(),
            dependencies: graph.dependencies(addr),
            protect: r.protect,
            ignore_changes: r.ignore_changes.clone(),
            already_gone: false,
            deposed: false,
            notes: vec![],
        };
        for (field, owner) in owned.get(addr).into_iter().flatten() {
            // Apply diffs again before an update: it must leave the field alone too.
            if !step.ignore_changes.contains(field) {
                step.ignore_changes.push(field.clone());
            }
            step.notes.push(if now.is_none() {
                format!("{field} is set at creation, then managed by {owner}")
            } else {
                format!("{field} is managed by {owner}: not compared with AWS")
            });
        }
        for (field, owner) in released.get(addr).into_iter().flatten() {
            step.notes.push(format!(
                "{field} is managed again: {owner}, which managed it, is no longer declared"
            ));
        }
        match now {
            None => {
                step.action = Action::Create;
                step.changes = resolved
                    .iter()
                    .map(|(k, v)| FieldChange::new(k, None, Some(v.clone()), false))
                    .collect();
                if in_state.is_some() {
                    step.reason = Some("deleted outside reconcile".into());
                    step.drift = true;
                }
            }
            Some(obs) => {
                if adopted.contains_key(addr.as_str()) {
                    step.reason = Some(format!("adopting {} left by an interrupted apply", obs.id));
                }
                let mut live_fields = obs.fields.clone();
                let mut want = resolved.clone();
                local_settings_as_live(
                    schema,
                    &mut live_fields,
                    in_state.map(|s| &s.inputs),
                    &want,
                );
                if schema.taggable {
                    live_fields.insert("tags".into(), tags_value(&obs.tags));
                    want.insert("tags".into(), tags_value(&tags));
                }
                let mut changes = catalog.diff(&r.kind, &want, &live_fields);
                changes.retain(|c| !step.ignore_changes.contains(&c.field));
                if !changes.is_empty() {
                    // Drift: live differs while the desired value is what we last applied.
                    let last = in_state.map(|s| &s.inputs);
                    let drift = last.is_some_and(|last| {
                        changes
                            .iter()
                            .all(|c| last.get(&c.field) == want.get(&c.field))
                    });
                    step.drift = drift && !adopted.contains_key(addr.as_str());
                    if step.drift {
                        step.reason = Some("drift: changed outside reconcile".into());
                    }
                    let forcing: Vec<&str> = changes
                        .iter()
                        .filter(|c| c.forces_replace)
                        .map(|c| c.field.as_str())
                        .collect();
                    if forcing.is_empty() {
                        step.action = Action::Update;
                    } else {
                        step.action = Action::Replace;
                        step.create_before_destroy =
                            catalog.create_before_destroy(&r.kind, &changes);
                        if let Some(guard) = catalog.guarded_by(&r.kind, &obs) {
                            errors.push(PlanError {
                                address: addr.clone(),
                                message: format!(
                                    "has {guard} on in AWS but {} would force its replacement, which deletes it; reconcile never switches {guard} off on its own: revert that change, or apply `{guard} = false` first if you really mean it",
                                    forcing.join(", ")
                                ),
                            });
                        }
                        if let Some(why) = catalog.in_use_guard(&r.kind) {
                            let users = users_of(stack, addr, &obs.id);
                            if !users.is_empty() {
                                errors.push(PlanError {
                                    address: addr.clone(),
                                    message: format!(
                                        "{} would force its replacement, which deletes it, but {} still use it: {why}; point them elsewhere first, or revert that change",
                                        forcing.join(", "),
                                        users.join(", ")
                                    ),
                                });
                            }
                        }
                        if r.protect {
                            errors.push(PlanError {
                                address: addr.clone(),
                                message: format!(
                                    "is protected (protect = true) but {} would force its replacement; revert that change, or remove `protect` deliberately first",
                                    forcing.join(", ")
                                ),
                            });
                        }
                    }
                    step.changes = changes;
                }
            }
        }
        planned.insert(addr.clone(), (step.action, resolved));
        steps.push(step);
    }

    // Deletes: whatever state holds that the stack no longer declares (all of it on destroy).
    let mut deletes: Vec<&StateResource> = state
        .resources
        .values()
        .filter(|s| destroy || !stack.resources.contains_key(&s.address))
        .filter(|s| selected.as_ref().is_none_or(|sel| sel.contains(&s.address)))
        .collect();
    deletes.sort_by(|a, b| a.address.cmp(&b.address));
    for s in deletes {
        let protect =
            s.protect || (destroy && stack.resources.get(&s.address).is_some_and(|r| r.protect));
        let gone = observed.get(&s.address).is_some_and(Option::is_none);
        // Already gone from AWS: dropping the state entry deletes nothing.
        let guard = observed
            .get(&s.address)
            .and_then(Option::as_ref)
            .and_then(|o| catalog.guarded_by(&s.kind, o));
        if let Some(guard) = guard.filter(|_| !protect) {
            errors.push(PlanError {
                address: s.address.clone(),
                message: format!(
                    "has {guard} on in AWS, so {} would fail half-way; reconcile never switches {guard} off on its own: apply `{guard} = false` first if you really mean to delete it",
                    if destroy { "destroy" } else { "deleting it" }
                ),
            });
        }
        if let Some(why) = catalog.in_use_guard(&s.kind).filter(|_| !destroy && !gone) {
            let users = users_of(stack, &s.address, &s.id);
            if !users.is_empty() {
                errors.push(PlanError {
                    address: s.address.clone(),
                    message: format!(
                        "is no longer declared, so it would be deleted, but {} still use it: {why}; point them elsewhere first",
                        users.join(", ")
                    ),
                });
            }
        }
        if protect && !gone {
            errors.push(PlanError {
                address: s.address.clone(),
                message: if destroy {
                    "is protected (protect = true): destroy would delete it; nothing was deleted. Remove `protect` and apply first if you really mean it".into()
                } else {
                    "is protected (protect = true) but is no longer declared, so it would be deleted; declare it again, or apply with `protect = false` before removing it".into()
                },
            });
        }
        steps.push(Step {
            address: s.address.clone(),
            kind: s.kind.clone(),
            action: Action::Delete,
            id: Some(s.id.clone()),
            reason: Some(if gone {
                "already deleted outside reconcile; only the state entry is dropped".into()
            } else {
                let why = if destroy {
                    "destroy"
                } else {
                    "no longer declared"
                };
                match catalog.delete_note(&s.kind, Some(&s.inputs)) {
                    Some(note) => format!("{why}; {note}"),
                    None => why.into(),
                }
            }),
            drift: false,
            changes: vec![],
            create_before_destroy: false,
            desired: None,
            planned: None,
            tags: IndexMap::new(),
            dependencies: s.dependencies.clone(),
            protect,
            ignore_changes: vec![],
            already_gone: gone,
            deposed: false,
            notes: vec![],
        });
    }
    // Adoptions of resources no longer declared are deleted too, so nothing is orphaned.
    // With `--target`, leftovers of other addresses wait for an untargeted run.
    let in_selection = |addr: &String| selected.as_ref().is_none_or(|sel| sel.contains(addr));
    for a in adoptions.iter().filter(|a| in_selection(&a.address)) {
        if (destroy || !stack.resources.contains_key(&a.address))
            && !state.resources.contains_key(&a.address)
        {
            steps.push(Step {
                address: a.address.clone(),
                kind: a.kind.clone(),
                action: Action::Delete,
                id: Some(a.observed.id.clone()),
                reason: Some("left by an interrupted apply and no longer declared".into()),
                drift: false,
                changes: vec![],
                create_before_destroy: false,
                desired: None,
                planned: None,
                tags: IndexMap::new(),
                dependencies: vec![],
                protect: false,
                ignore_changes: vec![],
                already_gone: false,
                deposed: false,
                notes: vec![],
            });
        }
    }
    for a in extra_copies.iter().filter(|a| in_selection(&a.address)) {
        steps.push(Step {
            address: a.address.clone(),
            kind: a.kind.clone(),
            action: Action::Delete,
            id: Some(a.observed.id.clone()),
            reason: Some(format!(
                "second copy {} left by an interrupted apply",
                a.observed.id
            )),
            drift: false,
            changes: vec![],
            create_before_destroy: false,
            desired: None,
            planned: None,
            tags: IndexMap::new(),
            dependencies: vec![],
            protect: false,
            ignore_changes: vec![],
            already_gone: false,
            deposed: true,
            notes: vec![],
        });
    }
    for d in state.deposed.iter().filter(|d| in_selection(&d.address)) {
        steps.push(Step {
            address: d.address.clone(),
            kind: d.kind.clone(),
            action: Action::Delete,
            id: Some(d.id.clone()),
            reason: Some(format!(
                "old copy {} left by an interrupted replacement",
                d.id
            )),
            drift: false,
            changes: vec![],
            create_before_destroy: false,
            desired: None,
            planned: None,
            tags: IndexMap::new(),
            dependencies: d.dependencies.clone(),
            protect: false,
            ignore_changes: vec![],
            already_gone: false,
            deposed: true,
            notes: vec![],
        });
    }
    force_destroy_before_create(&mut steps);

    if !errors.is_empty() {
        return Err(errors);
    }
    let observed_out: IndexMap<String, Observed> = steps
        .iter()
        .filter_map(|s| live(&s.address).map(|o| (s.address.clone(), o)))
        .collect();
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        stack: stack.name.clone(),
        region: stack.region.clone(),
        source: stack.source.display().to_string(),
        state_lineage: state.lineage.clone(),
        state_serial: state.serial,
        destroy,
        steps,
        adoptions,
        outputs: stack
            .outputs
            .iter()
            .map(|(k, o)| (k.clone(), o.value.clone()))
            .collect(),
        observed: observed_out,
        targets: targets.to_vec(),
        state_location: stack.state.clone(),
    })
}

/// Fields taken over, by the address they belong to: `(field, owner)` for
/// declared owners, and for owners state holds that the stack no longer
/// declares (the field is managed again, unless a declared owner has it).
type Owners = HashMap<String, Vec<(String, String)>>;

fn takeovers(
    stack: &Stack,
    graph: &Graph,
    state: &State,
    catalog: &dyn KindCatalog,
) -> (Owners, Owners) {
    let mut owned = Owners::new();
    for r in stack.resources.values() {
        let uses = graph.dependencies(&r.address);
        for t in catalog.takes_over(&r.kind, &r.fields, &uses) {
            if stack.resources.contains_key(&t.address) && t.address != r.address {
                owned
                    .entry(t.address)
                    .or_default()
                    .push((t.field, r.address.clone()));
            }
        }
    }
    let mut released = Owners::new();
    let mut gone: Vec<&StateResource> = state
        .resources
        .values()
        .filter(|s| !stack.resources.contains_key(&s.address))
        .collect();
    gone.sort_by(|a, b| a.address.cmp(&b.address));
    for s in gone {
        for t in catalog.takes_over(&s.kind, &s.inputs, &s.dependencies) {
            let still_owned = owned
                .get(&t.address)
                .is_some_and(|o| o.iter().any(|(f, _)| *f == t.field));
            if stack.resources.contains_key(&t.address) && !still_owned {
                released
                    .entry(t.address)
                    .or_default()
                    .push((t.field, s.address.clone()));
            }
        }
    }
    (owned, released)
}

/// The first copy found for each address, and the others.
/// The declared resources, other than `address` itself, that use it: by a
/// reference, or by writing its id (an ARN, say) as a literal.
fn users_of(stack: &Stack, address: &str, id: &str) -> Vec<String> {
    stack
        .resources
        .values()
        .filter(|r| r.address != address)
        .filter(|r| {
            r.refs
                .iter()
                .any(|(rf, _)| rf.address().as_deref() == Some(address))
                || (!id.is_empty() && r.fields.values().any(|v| v.mentions(id)))
        })
        .map(|r| r.address.clone())
        .collect()
}

fn split_copies(all: Vec<Adoption>) -> (Vec<Adoption>, Vec<Adoption>) {
    let mut seen = BTreeSet::new();
    all.into_iter()
        .partition(|a| seen.insert(a.address.clone()))
}

/// A replacement that must delete first forces the same on replaced dependents:
/// their old copies reference it and must go before it does.
fn force_destroy_before_create(steps: &mut [Step]) {
    let mut dbc: BTreeSet<String> = BTreeSet::new();
    for s in steps.iter_mut() {
        if s.action != Action::Replace {
            continue;
        }
        if s.dependencies.iter().any(|d| dbc.contains(d)) && s.create_before_destroy {
            s.create_before_destroy = false;
        }
        if !s.create_before_destroy {
            dbc.insert(s.address.clone());
        }
    }
}

/// Tags as a field value for diffing; AWS-owned `aws:*` tags are not ours to compare.
pub fn tags_value(t: &IndexMap<String, String>) -> Value {
    Value::Map(
        t.iter()
            .filter(|(k, _)| !k.starts_with("aws:"))
            .map(|(k, v)| (k.clone(), Value::str(v.clone())))
            .collect(),
    )
}

/// With `--target`, the targets and everything they depend on; `None` = all.
fn select_targets(graph: &Graph, state: &State, targets: &[String]) -> Option<BTreeSet<String>> {
    if targets.is_empty() {
        return None;
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = targets.to_vec();
    while let Some(a) = todo.pop() {
        if !out.insert(a.clone()) {
            continue;
        }
        todo.extend(graph.dependencies(&a));
        if let Some(s) = state.resources.get(&a) {
            todo.extend(s.dependencies.iter().cloned());
        }
    }
    Some(out)
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
