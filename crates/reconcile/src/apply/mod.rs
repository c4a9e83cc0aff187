//! The executor: runs a [`Plan`] against AWS, in dependency order and in parallel,
//! deletes in reverse order, journalling each mutation in state before it starts.

pub mod concurrency;
pub mod events;

use concurrency::Limits;
use events::{ErrorClass, Event, EventSink, StepError};
use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::{Cx, Desired, Registry};
use reconcile_core::model::{Fields, Reference, Value};
use reconcile_core::plan::{tags_value, Action, Plan, Step};
use reconcile_core::state::{
    Delta, JournalEntry, JournalOp, State, StateError, StateResource, StateStore,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One AWS-facing operation of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Op {
    Create(usize),
    Update(usize),
    /// Deletes the resource with this id (the old copy, for a replacement).
    Delete(usize, String),
}

impl Op {
    fn step(&self) -> usize {
        match self {
            Op::Create(i) | Op::Update(i) | Op::Delete(i, _) => *i,
        }
    }
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    /// Address and typed error (AWS's own message included).
    pub failed: Vec<(String, StepError)>,
    /// Addresses not attempted because something they need failed.
    pub skipped: Vec<String>,
    /// Addresses not started because the run was cancelled (SIGINT, SIGTERM).
    pub not_started: Vec<String>,
    pub interrupted: bool,
    pub outputs: IndexMap<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("internal error: the plan's operations form a cycle ({0}); nothing was changed")]
    Cycle(String),
}

/// Operations at once unless told otherwise: wider than any seed system's
/// widest layer, and narrow enough that thousands of independent resources do
/// not hold thousands of requests open at once, which costs reconcile CPU for
/// every one of them while AWS throttles long before.
pub const DEFAULT_PARALLELISM: usize = 64;

/// How an apply runs besides its plan.
#[derive(Clone)]
pub struct ApplyOptions {
    /// At most this many operations at once, over all services; each service's
    /// own limit adapts below it (see `concurrency`). `None`:
    /// [`DEFAULT_PARALLELISM`].
    pub parallelism: Option<usize>,
    /// Once cancelled, operations in flight finish and are recorded and nothing
    /// new starts. Who cancels (a signal, the daemon stopping) is the caller's business.
    pub cancel: CancellationToken,
    pub events: Arc<dyn EventSink>,
}

struct Shared {
    cx: Cx,
    registry: Arc<Registry>,
    store: Arc<dyn StateStore>,
    plan: Arc<Plan>,
    state: Mutex<State>,
    /// Attributes and fields of every resource known so far, for resolving references.
    live: Mutex<HashMap<String, Fields>>,
    events: Arc<dyn EventSink>,
    /// Idempotency tokens of creates an earlier run started and did not settle.
    retry_tokens: HashMap<String, String>,
}

impl Shared {
    /// Records one step in state: appended to the store's journal, so its cost
    /// does not grow with the stack.
    fn record(&self, deltas: Vec<Delta>) -> Result<(), StateError> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.store.record(&mut st, deltas)
    }

    fn lookup(&self, r: &Reference) -> Value {
        let (Some(addr), Reference::Resource { attr, .. }) = (r.address(), r) else {
            return Value::Unknown;
        };
        self.live
            .lock()
            .unwrap()
            .get(&addr)
            .and_then(|f| f.get(attr).cloned())
            .unwrap_or(Value::Unknown)
    }

    fn emit(&self, e: Event) {
        self.events.event(&e);
    }

    fn resolve(&self, step: &Step) -> Result<Fields, String> {
        let desired = step.desired.clone().unwrap_or_default();
        let lookup = |r: &Reference| self.lookup(r);
        let resolved: Fields = desired
            .iter()
            .map(|(k, v)| (k.clone(), v.resolve(&lookup)))
            .collect();
        if let Some((k, _)) = resolved.iter().find(|(_, v)| v.is_unknown()) {
            return Err(format!(
                "field `{k}` references a value that is still unknown ({}); its dependency did not finish",
                desired[k]
            ));
        }
        Ok(resolved)
    }

    /// Resolved fields, refused before any call when a reference supplied a
    /// value outside the range AWS takes (the loader checked the literal ones).
    fn resolve_checked(&self, step: &Step) -> Result<Fields, StepError> {
        let fields = self.resolve(step).map_err(StepError::other)?;
        let problems = self
            .registry
            .get(&step.kind)
            .map(|p| p.schema().out_of_range(&fields))
            .unwrap_or_default();
        match problems.first() {
            Some(p) => Err(StepError {
                class: ErrorClass::InvalidInput,
                message: format!("{}: {p}", step.address),
            }),
            None => Ok(fields),
        }
    }
}

/// What state records as last applied: the resolved fields and, for taggable
/// kinds, the tag set, so the planner can tell a TOML edit from drift.
fn applied_inputs(fields: &Fields, tags: &IndexMap<String, String>) -> Fields {
    let mut f = fields.clone();
    if !tags.is_empty() {
        f.insert("tags".into(), tags_value(tags));
    }
    f
}

fn merged(attrs: &Fields, fields: &Fields) -> Fields {
    let mut m = fields.clone();
    m.extend(attrs.clone());
    m
}

/// Runs the plan. State is written after every operation; the journal entry for an
/// operation is written before its AWS call and removed after it.
pub async fn execute(
    plan: Plan,
    mut state: State,
    cx: Cx,
    registry: Arc<Registry>,
    store: Arc<dyn StateStore>,
    options: ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let ApplyOptions {
        parallelism,
        cancel,
        events,
    } = options;
    let plan = Arc::new(plan);
    let before = serde_json::to_value(&state).expect("state serialises");

    // A create interrupted before it was recorded is retried with its old
    // idempotency token, so APIs that take one return the resource made then.
    let retry_tokens: HashMap<String, String> = state
        .journal
        .iter()
        .filter(|j| j.op == JournalOp::Create)
        .map(|j| (j.address.clone(), j.token.clone()))
        .collect();
    // Settle what observation already told: adoptions, refreshed attributes, meta changes.
    state.journal.clear();
    for a in &plan.adoptions {
        let deps = plan
            .steps
            .iter()
            .find(|s| s.address == a.address)
            .map(|s| s.dependencies.clone())
            .unwrap_or_default();
        state.resources.insert(
            a.address.clone(),
            StateResource {
                address: a.address.clone(),
                kind: a.kind.clone(),
                id: a.observed.id.clone(),
                inputs: a.observed.fields.clone(),
                attributes: a.observed.attributes.clone(),
                dependencies: deps,
                protect: false,
            },
        );
    }
    // Extra copies found by their tags are tracked before they are deleted, so
    // an interruption now cannot orphan them.
    for s in plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Delete && s.deposed)
    {
        let id = s.id.clone().unwrap_or_default();
        let tracked = state.deposed.iter().any(|d| d.id == id)
            || state.resources.values().any(|r| r.id == id);
        if !tracked {
            state.deposed.push(StateResource {
                address: s.address.clone(),
                kind: s.kind.clone(),
                id,
                inputs: Fields::new(),
                attributes: Fields::new(),
                dependencies: s.dependencies.clone(),
                protect: false,
            });
        }
    }
    for s in plan.steps.iter().filter(|s| s.action == Action::NoOp) {
        if let (Some(r), Some(obs)) = (
            state.resources.get_mut(&s.address),
            plan.observed.get(&s.address),
        ) {
            r.attributes = obs.attributes.clone();
            r.dependencies = s.dependencies.clone();
            r.protect = s.protect;
            if let Some(p) = s
                .planned
                .as_ref()
                .filter(|p| !p.values().any(Value::is_unknown))
            {
                r.inputs = applied_inputs(p, &s.tags);
            }
        }
    }
    if serde_json::to_value(&state).expect("state serialises") != before {
        store.save(&mut state)?;
    }
    let serial_before = state.serial;

    let mut live: HashMap<String, Fields> = state
        .resources
        .values()
        .map(|r| (r.address.clone(), merged(&r.attributes, &r.inputs)))
        .collect();
    for (addr, o) in &plan.observed {
        live.insert(addr.clone(), merged(&o.attributes, &o.fields));
    }

    let (graph, _) = op_graph(&plan, &state);
    if let Err(c) = petgraph::algo::toposort(&graph, None) {
        return Err(ApplyError::Cycle(format!("{:?}", graph[c.node_id()])));
    }

    let mut cx = cx;
    let sink = events.clone();
    cx.status = reconcile_aws::StatusSink::new(move |addr, status| {
        sink.event(&Event::Status {
            key: addr.to_string(),
            status: status.to_string(),
        })
    });
    let shared = Arc::new(Shared {
        cx,
        registry,
        store,
        plan: plan.clone(),
        state: Mutex::new(state),
        live: Mutex::new(live),
        events,
        retry_tokens,
    });

    let mut report = ApplyReport::default();
    let mut pending: HashMap<NodeIndex, usize> = graph
        .node_indices()
        .map(|n| (n, graph.neighbors_directed(n, Direction::Incoming).count()))
        .collect();
    let mut ready: Vec<NodeIndex> = pending
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(n, _)| *n)
        .collect();
    ready.sort_by_key(|n| std::cmp::Reverse(label(&plan, &graph[*n])));
    let mut blocked: HashSet<NodeIndex> = HashSet::new();
    let mut running: JoinSet<Result<(), StepError>> = JoinSet::new();
    let mut task_node: HashMap<tokio::task::Id, NodeIndex> = HashMap::new();
    let parallelism = parallelism.unwrap_or(DEFAULT_PARALLELISM).max(1);
    let mut limits = Limits::new(parallelism);
    // Looked up once per operation: the scheduling loop asks on every pass.
    let services: HashMap<NodeIndex, &'static str> = graph
        .node_indices()
        .map(|n| {
            let kind = &plan.steps[graph[n].step()].kind;
            (n, shared.registry.service(kind).unwrap_or("other"))
        })
        .collect();
    let service = |n: NodeIndex| services[&n];
    let throttles = |svc: &str| shared.cx.calls.throttled(svc);

    let mut started: HashSet<NodeIndex> = HashSet::new();
    loop {
        while running.len() < parallelism && !report.interrupted {
            // The next ready operation whose service has room; `ready` pops from the end.
            let Some(pos) = ready
                .iter()
                .rposition(|&n| limits.has_room(service(n), throttles(service(n))))
            else {
                break;
            };
            let n = ready.remove(pos);
            limits.start(service(n), throttles(service(n)));
            started.insert(n);
            let op = graph[n].clone();
            let sh = shared.clone();
            let handle = running.spawn(async move { run_op(&sh, &op).await });
            task_node.insert(handle.id(), n);
        }
        if running.is_empty() {
            break;
        }
        let joined = tokio::select! {
            j = running.join_next_with_id() => j,
            _ = cancel.cancelled(), if !report.interrupted => {
                // Operations in flight finish and are recorded; nothing new starts.
                report.interrupted = true;
                shared.emit(Event::Note(format!(
                    "interrupted: waiting for {} operation(s) in flight to finish; nothing new starts",
                    running.len()
                )));
                continue;
            }
        };
        let Some(joined) = joined else {
            break;
        };
        // A step that panicked fails alone; its journal entry stays for the next run.
        let (n, result) = match joined {
            Ok((id, r)) => (task_node[&id], r),
            Err(e) => {
                let n = task_node[&e.id()];
                let why = if e.is_panic() {
                    "internal error: the step panicked; its journal entry stays in state, so the next apply finishes it"
                } else {
                    "internal error: the step was cancelled"
                };
                let key = label(&plan, &graph[n]);
                let err = StepError::other(why);
                shared.emit(Event::Failed {
                    key,
                    error: err.clone(),
                });
                (n, Err(err))
            }
        };
        let svc = service(n);
        if let Some(limit) = limits.finish(svc, throttles(svc)) {
            tracing::debug!(service = svc, limit, "concurrency limit changed");
        }
        let op = &graph[n];
        let step = &plan.steps[op.step()];
        match result {
            Ok(()) => {
                match op {
                    Op::Create(_) => report.created += 1,
                    Op::Update(_) => report.updated += 1,
                    Op::Delete(..) => report.deleted += 1,
                }
                for m in graph.neighbors_directed(n, Direction::Outgoing) {
                    let c = pending.get_mut(&m).unwrap();
                    *c -= 1;
                    if *c == 0 && !blocked.contains(&m) {
                        ready.push(m);
                    }
                }
                ready.sort_by_key(|n| std::cmp::Reverse(label(&plan, &graph[*n])));
            }
            Err(e) => {
                report.failed.push((step.address.clone(), e));
                // Everything downstream is skipped; independent work goes on.
                let mut stack = vec![n];
                while let Some(x) = stack.pop() {
                    for m in graph.neighbors_directed(x, Direction::Outgoing) {
                        if blocked.insert(m) {
                            stack.push(m);
                        }
                    }
                }
                ready.retain(|r| !blocked.contains(r));
            }
        }
    }
    let mut skipped: Vec<String> = blocked.iter().map(|n| label(&plan, &graph[*n])).collect();
    skipped.sort();
    skipped.dedup();
    report.skipped = skipped;
    if report.interrupted {
        let mut rest: Vec<String> = graph
            .node_indices()
            .filter(|n| !started.contains(n) && !blocked.contains(n))
            .map(|n| label(&plan, &graph[n]))
            .collect();
        rest.sort();
        rest.dedup();
        report.not_started = rest;
    }

    // Outputs from what now exists; unknown ones (a failed dependency) are left
    // out, and a destroy leaves none (what they named is gone).
    let lookup = |r: &Reference| shared.lookup(r);
    if !plan.destroy {
        report.outputs = plan
            .outputs
            .iter()
            .map(|(k, v)| (k.clone(), v.resolve(&lookup)))
            .filter(|(_, v)| !v.is_unknown())
            .collect();
    }
    // The run ends with a snapshot, which folds its journal. A run that
    // changed nothing writes none: state keeps its serial, so a plan saved
    // before it still applies, and S3 keeps no extra version.
    let mut st = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    let unchanged =
        st.serial == serial_before && st.outputs == report.outputs && shared.store.folded();
    if !unchanged {
        st.apply(&Delta::Outputs(report.outputs.clone()));
        shared.store.save(&mut st)?;
    }
    drop(st);
    Ok(report)
}

fn label(plan: &Plan, op: &Op) -> String {
    plan.steps[op.step()].address.clone()
}

/// Orders the plan's operations. Creates and updates follow their dependencies;
/// a resource's old copy is deleted only after everything that used it has been
/// deleted or moved to something else; replacements create first unless the plan
/// says the kind cannot.
fn op_graph(plan: &Plan, state: &State) -> (DiGraph<Op, ()>, HashMap<Op, NodeIndex>) {
    let mut g: DiGraph<Op, ()> = DiGraph::new();
    let mut idx: HashMap<Op, NodeIndex> = HashMap::new();
    let mut forward: HashMap<&str, NodeIndex> = HashMap::new();
    let mut deletes: HashMap<&str, Vec<NodeIndex>> = HashMap::new();
    let mut add = |g: &mut DiGraph<Op, ()>, op: Op| {
        let n = g.add_node(op.clone());
        idx.insert(op, n);
        n
    };
    for (i, s) in plan.steps.iter().enumerate() {
        match s.action {
            Action::Create => {
                forward.insert(&s.address, add(&mut g, Op::Create(i)));
            }
            Action::Update => {
                forward.insert(&s.address, add(&mut g, Op::Update(i)));
            }
            Action::Replace => {
                let c = add(&mut g, Op::Create(i));
                let d = add(&mut g, Op::Delete(i, s.id.clone().unwrap_or_default()));
                if s.create_before_destroy {
                    g.add_edge(c, d, ());
                } else {
                    g.add_edge(d, c, ());
                }
                forward.insert(&s.address, c);
                deletes.entry(&s.address).or_default().push(d);
            }
            Action::Delete => {
                let d = add(&mut g, Op::Delete(i, s.id.clone().unwrap_or_default()));
                deletes.entry(&s.address).or_default().push(d);
            }
            Action::NoOp => {}
        }
    }
    let dbc: HashSet<&str> = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Replace && !s.create_before_destroy)
        .map(|s| s.address.as_str())
        .collect();
    // What each address depended on when it was last applied (for its old copy).
    let old_deps = |addr: &str, step: &Step| -> Vec<String> {
        if step.action == Action::Delete {
            return step.dependencies.clone();
        }
        state
            .resources
            .get(addr)
            .map(|r| r.dependencies.clone())
            .unwrap_or_default()
    };
    for s in &plan.steps {
        if let Some(&n) = forward.get(s.address.as_str()) {
            for d in &s.dependencies {
                if let Some(&m) = forward.get(d.as_str()) {
                    g.update_edge(m, n, ());
                }
            }
        }
        for dep in old_deps(&s.address, s) {
            let Some(dep_deletes) = deletes.get(dep.as_str()) else {
                continue;
            };
            for &dd in dep_deletes {
                // The dependent's old copy goes before the dependency's.
                for &own in deletes.get(s.address.as_str()).into_iter().flatten() {
                    g.update_edge(own, dd, ());
                }
                // A dependent that stays moves off the old copy first, unless the
                // dependency must be deleted before its replacement exists.
                if let Some(&f) = forward.get(s.address.as_str()) {
                    if !dbc.contains(dep.as_str()) && !dbc.contains(s.address.as_str()) {
                        g.update_edge(f, dd, ());
                    }
                }
            }
        }
    }
    (g, idx)
}

async fn run_op(sh: &Shared, op: &Op) -> Result<(), StepError> {
    let step = &sh.plan.steps[op.step()];
    let addr = step.address.as_str();
    let provider = sh
        .registry
        .get(&step.kind)
        .ok_or_else(|| StepError::other(format!("unknown kind `{}`", step.kind)))?
        .clone();
    let key = match op {
        Op::Delete(_, id) if step.action == Action::Replace => format!("{addr} (old {id})"),
        _ => addr.to_string(),
    };
    let verb = match op {
        Op::Create(_) => "creating",
        Op::Update(_) => "updating",
        Op::Delete(..) => "deleting",
    };
    sh.emit(Event::Started {
        key: key.clone(),
        verb,
    });
    let fail = |e: StepError| {
        sh.emit(Event::Failed {
            key: key.clone(),
            error: e.clone(),
        });
        Err(e)
    };
    let state_err = |e: StateError| StepError::other(e.to_string());
    let token = match op {
        Op::Create(_) => sh.retry_tokens.get(addr).cloned(),
        _ => None,
    }
    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let journal = |op: JournalOp, id: Option<String>| JournalEntry {
        op,
        address: addr.to_string(),
        kind: step.kind.clone(),
        resource_id: id,
        token: token.clone(),
        started_at: chrono::Utc::now(),
    };
    let settle = || Delta::Settle {
        token: token.clone(),
    };
    match op {
        Op::Create(_) => {
            let fields = match sh.resolve_checked(step) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            let replacing = step.action == Action::Replace && step.create_before_destroy;
            let mut begin = vec![];
            // The old copy stays tracked until it is deleted, so a crash cannot orphan it.
            if replacing {
                begin.push(Delta::Depose {
                    address: addr.to_string(),
                });
            }
            begin.push(Delta::Begin(journal(JournalOp::Create, None)));
            sh.record(begin).map_err(state_err)?;
            let want = Desired {
                address: addr,
                fields: &fields,
                tags: &step.tags,
                token: &token,
                replacing: step
                    .id
                    .as_deref()
                    .filter(|_| step.action == Action::Replace),
            };
            match provider.create(&sh.cx, &want).await {
                Ok(obs) => {
                    crash_point(addr);
                    sh.live
                        .lock()
                        .unwrap()
                        .insert(addr.to_string(), merged(&obs.attributes, &obs.fields));
                    sh.record(vec![
                        Delta::Put(StateResource {
                            address: addr.to_string(),
                            kind: step.kind.clone(),
                            id: obs.id.clone(),
                            inputs: applied_inputs(&fields, &step.tags),
                            attributes: obs.attributes.clone(),
                            dependencies: step.dependencies.clone(),
                            protect: step.protect,
                        }),
                        settle(),
                    ])
                    .map_err(state_err)?;
                    sh.emit(Event::Finished {
                        key: key.clone(),
                        message: format!("created {}", obs.id),
                    });
                    Ok(())
                }
                Err(e) => {
                    let _ = sh.record(vec![settle()]);
                    fail(e.into())
                }
            }
        }
        Op::Update(_) => {
            let fields = match sh.resolve_checked(step) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            let Some(live) = sh.plan.observed.get(addr) else {
                return fail(StepError::other(
                    "the plan holds no observation of this resource; run plan again",
                ));
            };
            let mut want_all = fields.clone();
            let mut have_all = live.fields.clone();
            {
                let last = sh
                    .state
                    .lock()
                    .unwrap()
                    .resources
                    .get(addr)
                    .map(|r| r.inputs.clone());
                reconcile_core::plan::local_settings_as_live(
                    provider.schema(),
                    &mut have_all,
                    last.as_ref(),
                    &want_all,
                );
            }
            if !step.tags.is_empty() {
                want_all.insert("tags".into(), tags_value(&step.tags));
                have_all.insert("tags".into(), tags_value(&live.tags));
            }
            let mut changes = sh
                .registry
                .get(&step.kind)
                .map(|p| p.diff(&want_all, &have_all))
                .unwrap_or_default();
            changes.retain(|c| !step.ignore_changes.contains(&c.field));
            if let Some(c) = changes.iter().find(|c| c.forces_replace) {
                return fail(StepError::other(format!(
                    "`{}` now needs a replacement, which this plan did not include; run plan again",
                    c.field
                )));
            }
            sh.record(vec![Delta::Begin(journal(
                JournalOp::Update,
                Some(live.id.clone()),
            ))])
            .map_err(state_err)?;
            let want = Desired {
                address: addr,
                fields: &fields,
                tags: &step.tags,
                token: &token,
                replacing: None,
            };
            let result = if changes.is_empty() {
                Ok(live.clone())
            } else {
                provider.update(&sh.cx, live, &want, &changes).await
            };
            match result {
                Ok(obs) => {
                    sh.live
                        .lock()
                        .unwrap()
                        .insert(addr.to_string(), merged(&obs.attributes, &obs.fields));
                    let updated = {
                        let st = sh.state.lock().unwrap_or_else(PoisonError::into_inner);
                        st.resources.get(addr).map(|r| StateResource {
                            inputs: applied_inputs(&fields, &step.tags),
                            attributes: obs.attributes.clone(),
                            dependencies: step.dependencies.clone(),
                            protect: step.protect,
                            ..r.clone()
                        })
                    };
                    sh.record(
                        updated
                            .map(Delta::Put)
                            .into_iter()
                            .chain([settle()])
                            .collect(),
                    )
                    .map_err(state_err)?;
                    sh.emit(Event::Finished {
                        key: key.clone(),
                        message: format!("updated {}", obs.id),
                    });
                    Ok(())
                }
                Err(e) => {
                    let _ = sh.record(vec![settle()]);
                    fail(e.into())
                }
            }
        }
        Op::Delete(_, id) => {
            sh.record(vec![Delta::Begin(journal(
                JournalOp::Delete,
                Some(id.clone()),
            ))])
            .map_err(state_err)?;
            let result = if step.already_gone && step.action == Action::Delete {
                Ok(())
            } else {
                let applied = {
                    let st = sh.state.lock().unwrap_or_else(PoisonError::into_inner);
                    st.resources
                        .get(addr)
                        .filter(|r| &r.id == id)
                        .or_else(|| {
                            st.deposed
                                .iter()
                                .find(|r| &r.id == id && r.kind == step.kind)
                        })
                        .map(|r| r.inputs.clone())
                };
                provider.delete_applied(&sh.cx, id, applied.as_ref()).await
            };
            match result {
                Ok(()) => {
                    sh.record(vec![
                        Delta::Gone {
                            address: addr.to_string(),
                            kind: step.kind.clone(),
                            id: id.clone(),
                        },
                        settle(),
                    ])
                    .map_err(state_err)?;
                    sh.emit(Event::Finished {
                        key: key.clone(),
                        message: format!("deleted {id}"),
                    });
                    Ok(())
                }
                Err(e) => {
                    let _ = sh.record(vec![settle()]);
                    fail(e.into())
                }
            }
        }
    }
}

/// Fault injection for the crash-recovery tests: dies like `kill -9` in the worst
/// window, after AWS created the resource and before state recorded it.
fn crash_point(addr: &str) {
    if std::env::var("RECONCILE_TEST_CRASH_AFTER_CREATE").as_deref() == Ok(addr) {
        std::process::abort();
    }
}

#[cfg(test)]
mod engine_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use petgraph::algo::has_path_connecting;

    pub(super) fn step(addr: &str, action: Action, deps: &[&str], cbd: bool) -> Step {
        Step {
            address: addr.into(),
            kind: addr.split('.').next().unwrap().into(),
            action,
            id: (action != Action::Create).then(|| format!("{addr}-old")),
            reason: None,
            drift: false,
            changes: vec![],
            create_before_destroy: cbd,
            desired: None,
            planned: None,
            tags: IndexMap::new(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            protect: false,
            ignore_changes: vec![],
            already_gone: false,
            deposed: false,
            notes: vec![],
        }
    }

    pub(super) fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            format_version: 1,
            stack: "t".into(),
            region: "us-east-1".into(),
            source: "t.toml".into(),
            state_lineage: None,
            state_serial: 0,
            destroy: false,
            steps,
            adoptions: vec![],
            outputs: IndexMap::new(),
            observed: IndexMap::new(),
            targets: vec![],
            state_location: None,
        }
    }

    fn state(entries: &[(&str, &[&str])]) -> State {
        let mut st = State::default();
        for (addr, deps) in entries {
            st.resources.insert(
                addr.to_string(),
                StateResource {
                    address: addr.to_string(),
                    kind: addr.split('.').next().unwrap().into(),
                    id: format!("{addr}-old"),
                    inputs: Fields::new(),
                    attributes: Fields::new(),
                    dependencies: deps.iter().map(|d| d.to_string()).collect(),
                    protect: false,
                },
            );
        }
        st
    }

    /// Whether operation `a` must finish before `b` starts.
    fn before(p: &Plan, st: &State, a: (&str, &str), b: (&str, &str)) -> bool {
        let (g, idx) = op_graph(p, st);
        let find = |(verb, addr): (&str, &str)| {
            let i = p.steps.iter().position(|s| s.address == addr).unwrap();
            let op = match verb {
                "create" => Op::Create(i),
                "update" => Op::Update(i),
                _ => Op::Delete(i, format!("{addr}-old")),
            };
            idx[&op]
        };
        petgraph::algo::toposort(&g, None).expect("no cycle");
        has_path_connecting(&g, find(a), find(b), None)
    }

    #[test]
    fn deletes_run_in_reverse_dependency_order() {
        let p = plan(vec![
            step(
                "route_table.a",
                Action::Delete,
                &["vpc.main", "subnet.a"],
                false,
            ),
            step("subnet.a", Action::Delete, &["vpc.main"], false),
            step("vpc.main", Action::Delete, &[], false),
        ]);
        let st = state(&[
            ("vpc.main", &[]),
            ("subnet.a", &["vpc.main"]),
            ("route_table.a", &["vpc.main", "subnet.a"]),
        ]);
        assert!(before(
            &p,
            &st,
            ("delete", "route_table.a"),
            ("delete", "subnet.a")
        ));
        assert!(before(
            &p,
            &st,
            ("delete", "subnet.a"),
            ("delete", "vpc.main")
        ));
        assert!(!before(
            &p,
            &st,
            ("delete", "vpc.main"),
            ("delete", "subnet.a")
        ));
    }

    #[test]
    fn create_before_delete_moves_dependents_before_the_old_copy_goes() {
        let p = plan(vec![
            step("subnet.a", Action::Replace, &[], true),
            step("route_table.a", Action::Update, &["subnet.a"], false),
        ]);
        let st = state(&[("subnet.a", &[]), ("route_table.a", &["subnet.a"])]);
        assert!(before(
            &p,
            &st,
            ("create", "subnet.a"),
            ("update", "route_table.a")
        ));
        assert!(before(
            &p,
            &st,
            ("update", "route_table.a"),
            ("delete", "subnet.a")
        ));
    }

    #[test]
    fn delete_before_create_deletes_first_and_updates_dependents_after() {
        let p = plan(vec![
            step("subnet.a", Action::Replace, &[], false),
            step("nat_gateway.a", Action::Replace, &["subnet.a"], false),
            step("route_table.a", Action::Update, &["subnet.a"], false),
        ]);
        let st = state(&[
            ("subnet.a", &[]),
            ("nat_gateway.a", &["subnet.a"]),
            ("route_table.a", &["subnet.a"]),
        ]);
        assert!(before(
            &p,
            &st,
            ("delete", "nat_gateway.a"),
            ("delete", "subnet.a")
        ));
        assert!(before(
            &p,
            &st,
            ("delete", "subnet.a"),
            ("create", "subnet.a")
        ));
        assert!(before(
            &p,
            &st,
            ("create", "subnet.a"),
            ("create", "nat_gateway.a")
        ));
        assert!(before(
            &p,
            &st,
            ("create", "subnet.a"),
            ("update", "route_table.a")
        ));
    }

    #[test]
    fn a_dependent_lets_go_before_its_dependency_is_deleted() {
        let p = plan(vec![
            step("route_table.a", Action::Update, &[], false),
            step("subnet.a", Action::Delete, &[], false),
        ]);
        let st = state(&[("subnet.a", &[]), ("route_table.a", &["subnet.a"])]);
        assert!(before(
            &p,
            &st,
            ("update", "route_table.a"),
            ("delete", "subnet.a")
        ));
    }

    #[test]
    fn creates_follow_dependencies_and_independent_work_is_parallel() {
        let p = plan(vec![
            step("vpc.main", Action::Create, &[], true),
            step("subnet.a", Action::Create, &["vpc.main"], true),
            step("subnet.b", Action::Create, &["vpc.main"], true),
        ]);
        let st = State::default();
        assert!(before(
            &p,
            &st,
            ("create", "vpc.main"),
            ("create", "subnet.a")
        ));
        assert!(!before(
            &p,
            &st,
            ("create", "subnet.a"),
            ("create", "subnet.b")
        ));
        assert!(!before(
            &p,
            &st,
            ("create", "subnet.b"),
            ("create", "subnet.a")
        ));
    }
}
