//! ops: the steps every command and the watch daemon share, as plain functions:
//! load a stack, open and lock its state, connect to AWS, observe and plan,
//! look for unmanaged copies, and apply. The CLI and the daemon only choose
//! what to show and which exit code to give.

use crate::apply::{self, ApplyError, ApplyOptions, ApplyReport};
use crate::state::{lease, LeaseGuard, LeaseOptions, Reach};
use reconcile_aws::observe::{observe_stack, ObserveError};
use reconcile_aws::{AwsOptions, CallCounter, Cx, ProviderError, Registry};
use reconcile_core::graph::Graph;
use reconcile_core::model::{self, Diagnostic, InputValues, Stack};
use reconcile_core::plan::{self, Action, Plan, PlanError, PlanInput};
use reconcile_core::state::{State, StateError, StateLocation, StateStore};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Exit codes, as Terraform's: success, error, changes present.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_CHANGES: u8 = 2;

/// What every operation needs to know of the run: the kinds, where state
/// lives, how to reach AWS, and the inputs given on the command line.
#[derive(Clone)]
pub struct Env {
    pub catalog: Arc<Registry>,
    pub state_dir: PathBuf,
    /// `--state`: where every stack's state lives this run, whatever its
    /// `[stack] state` says.
    pub state: Option<StateLocation>,
    pub lease: LeaseOptions,
    pub endpoint_url: Option<String>,
    /// Overrides every stack's region.
    pub region: Option<String>,
    pub inputs: InputValues,
}

/// Reads, type-checks, validates and graphs one stack; every problem found, at once.
pub fn load(env: &Env, path: &Path) -> Result<(Stack, Graph), Vec<Diagnostic>> {
    let (stack, mut diags) =
        model::load_all(path, &*env.catalog, &env.inputs, env.region.as_deref());
    if let Some(stack) = &stack {
        diags.extend(plan::KindCatalog::validate_stack(&*env.catalog, stack));
    }
    let graph = stack.as_ref().map(Graph::build);
    if let Some(Err(cycles)) = &graph {
        diags.extend(cycles.iter().cloned());
    }
    match (stack, graph) {
        (Some(stack), Some(Ok(graph))) if diags.is_empty() => Ok((stack, graph)),
        _ => Err(diags),
    }
}

/// Where a stack's state lives: `--state`, else its `[stack] state`, else
/// the local state directory.
pub fn state_location(env: &Env, declared: Option<&str>) -> Result<StateLocation, StateError> {
    if let Some(l) = &env.state {
        return Ok(l.clone());
    }
    match declared {
        Some(d) => StateLocation::parse(d).map_err(StateError::Location),
        None => Ok(StateLocation::Local(env.state_dir.clone())),
    }
}

/// The state store of a stack whose state lives where `declared` says (see
/// [`state_location`]).
pub fn store(
    env: &Env,
    stack: &str,
    declared: Option<&str>,
    region: &str,
) -> Result<Arc<dyn StateStore>, StateError> {
    let location = state_location(env, declared)?;
    let reach = Reach {
        endpoint_url: env.endpoint_url.clone(),
        region: env.region.clone().unwrap_or_else(|| region.to_string()),
    };
    Ok(crate::state::open_store(&location, stack, &reach))
}

/// A stack's state, taken for `operation`: its lease and what state holds.
/// Waiting out a lapsed lease happens off the async threads.
pub async fn open(
    store: Arc<dyn StateStore>,
    stack: &str,
    operation: &str,
    region: &str,
    opts: &LeaseOptions,
) -> Result<(LeaseGuard, State), StateError> {
    let (stack, operation, region, opts) = (
        stack.to_string(),
        operation.to_string(),
        region.to_string(),
        opts.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let guard = lease::acquire(store.lease(), &stack, &operation, &opts, |why| {
            eprintln!("{why}")
        })?;
        let state = store.load(&region)?;
        Ok((guard, state))
    })
    .await
    .expect("the lease task runs to its end")
}

/// A stack's state read without its lease, as plan reads it: a run in
/// progress may be writing it, which a saved plan's serial catches.
pub async fn read(store: Arc<dyn StateStore>, region: &str) -> Result<State, StateError> {
    let region = region.to_string();
    tokio::task::spawn_blocking(move || store.load(&region))
        .await
        .expect("the state read runs to its end")
}

/// AWS clients for a stack's region, every call counted in `calls`.
pub async fn connect(env: &Env, region: &str, stack: &str, calls: &CallCounter) -> Cx {
    let opts = AwsOptions {
        region: region.to_string(),
        endpoint_url: env.endpoint_url.clone(),
    };
    Cx::connect(&opts, stack, calls.clone()).await
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanFailure {
    #[error("--target {0}: no such address in the stack or its state")]
    UnknownTarget(String),
    #[error("{0}")]
    Observe(#[from] ObserveError),
    /// The planner refused (protected resources, live deletion guards).
    #[error("the plan was refused")]
    Refused(Vec<PlanError>),
}

impl PlanFailure {
    /// The typed AWS error behind a failed observation, if that is what failed.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            PlanFailure::Observe(e) => Some(&e.source),
            _ => None,
        }
    }
}

/// A plan with what it took to make it.
pub struct Planned {
    pub plan: Plan,
    /// Resources observed in AWS (adoptions included).
    pub observed: usize,
    pub seconds: f64,
}

/// Observes what state and the stack name, then plans. Pure but for the reads.
#[allow(clippy::too_many_arguments)]
pub async fn plan(
    cx: &Cx,
    catalog: &Registry,
    stack: &Stack,
    graph: &Graph,
    state: &State,
    destroy: bool,
    targets: &[String],
) -> Result<Planned, PlanFailure> {
    for t in targets {
        if !stack.resources.contains_key(t) && !state.resources.contains_key(t) {
            return Err(PlanFailure::UnknownTarget(t.clone()));
        }
    }
    let started = Instant::now();
    let obs = observe_stack(cx, catalog, Some(stack), state).await?;
    let observed = obs.observed.values().filter(|o| o.is_some()).count() + obs.adoptions.len();
    let plan = plan::compute(PlanInput {
        stack,
        graph,
        state,
        observed: &obs.observed,
        adoptions: obs.adoptions,
        catalog,
        destroy,
        targets,
    })
    .map_err(PlanFailure::Refused)?;
    let refused = refuse_deletes(cx, catalog, state, &plan).await?;
    if !refused.is_empty() {
        return Err(PlanFailure::Refused(refused));
    }
    Ok(Planned {
        plan,
        observed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The kinds' objections to the deletes and replacements of a plan: data a
/// delete would lose without an applied setting that allows it. Asked only
/// for those steps, a few at a time, so a plan without deletes costs nothing.
async fn refuse_deletes(
    cx: &Cx,
    catalog: &Registry,
    state: &State,
    plan: &Plan,
) -> Result<Vec<PlanError>, ObserveError> {
    use futures::{StreamExt, TryStreamExt};
    let asks = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Delete | Action::Replace) && !s.already_gone)
        .filter_map(|s| {
            let p = catalog.get(&s.kind)?;
            let id = s.id.clone()?;
            let applied = state.resources.get(&s.address).map(|r| &r.inputs);
            Some(async move {
                p.refuse_delete(cx, &id, applied)
                    .await
                    .map(|why| {
                        why.map(|message| PlanError {
                            address: s.address.clone(),
                            message,
                        })
                    })
                    .map_err(|source| ObserveError {
                        kind: s.kind.clone(),
                        source,
                    })
            })
        })
        .collect::<Vec<_>>();
    let found: Vec<Option<PlanError>> = futures::stream::iter(asks)
        .buffer_unordered(reconcile_aws::kit::READS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// A resource tagged with the stack that its state does not track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmanaged {
    pub kind: String,
    pub id: String,
    pub address: String,
}

/// Everything tagged with the stack that state does not track, for the kinds
/// the stack or its state use: the trace of an interrupted apply, or a copy
/// made outside reconcile. Never deleted, only reported.
pub async fn unmanaged(
    cx: &Cx,
    catalog: &Registry,
    stack: &Stack,
    state: &State,
) -> Result<Vec<Unmanaged>, ProviderError> {
    let kinds: BTreeSet<&str> = stack
        .resources
        .values()
        .map(|r| r.kind.as_str())
        .chain(state.resources.values().map(|r| r.kind.as_str()))
        .collect();
    let tracked: HashSet<(&str, &str)> = state
        .resources
        .values()
        .chain(state.deposed.iter())
        .map(|r| (r.kind.as_str(), r.id.as_str()))
        .collect();
    let finds = kinds.iter().filter_map(|k| {
        let p = catalog.get(k)?;
        p.schema().taggable.then_some(async move {
            p.find_tagged(cx, &[])
                .await
                .map(|found| (k.to_string(), found))
        })
    });
    let mut out = Vec::new();
    for r in futures::future::join_all(finds).await {
        let (kind, found) = r?;
        for (address, o) in found {
            if !tracked.contains(&(kind.as_str(), o.id.as_str())) {
                out.push(Unmanaged {
                    kind: kind.clone(),
                    id: o.id,
                    address,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.address, &a.id).cmp(&(&b.address, &b.id)));
    Ok(out)
}

/// Applies a plan through the executor, journalling in `store`.
pub async fn apply(
    cx: Cx,
    catalog: Arc<Registry>,
    store: Arc<dyn StateStore>,
    plan: Plan,
    state: State,
    options: ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    apply::execute(plan, state, cx, catalog, store, options).await
}
