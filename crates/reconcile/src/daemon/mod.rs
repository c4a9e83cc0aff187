//! The watch loop: every interval, observe each stack, report drift and unmanaged
//! resources as events, optionally remediate through the apply engine, and keep
//! `/metrics`, `/healthz` and `/readyz` current; stops cleanly on SIGTERM/SIGINT.

pub mod metrics;

use crate::apply::events::{Discard, ErrorClass};
use crate::apply::ApplyOptions;
use crate::ops::{self, Env, PlanFailure, Unmanaged, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::signals::shutdown_signal;
use crate::state::lease::{self, LeaseGuard, LeaseOptions, Take};
use metrics::{ActionLabel, LeaseLabel, Metrics, StackLabel};
use reconcile_aws::{CallCounter, Cx, ProviderError};
use reconcile_core::graph::Graph;
use reconcile_core::model::{self, Stack};
use reconcile_core::plan::{Action, Step};
use reconcile_core::state::lease::{Holder, Watcher};
use reconcile_core::state::StateStore;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub struct WatchArgs {
    /// A stack, or a directory of stacks; `./desired-state/` when absent.
    pub path: Option<PathBuf>,
    pub interval: Duration,
    pub remediate: bool,
    /// `None`: no HTTP endpoint.
    pub metrics_addr: Option<SocketAddr>,
    pub once: bool,
    pub parallelism: Option<usize>,
}

/// Runs until SIGTERM/SIGINT (exit 0), or one cycle with `--once`:
/// 0 no differences, 2 differences found, 1 a stack could not be watched.
pub async fn run(env: Env, json: bool, args: WatchArgs) -> u8 {
    let events = Events { json };
    let metrics = Arc::new(Metrics::new(args.interval));
    let (stop_tx, mut stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let mut server = None;
    let mut bound = None;
    if let (Some(addr), false) = (args.metrics_addr, args.once) {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                events.emit(
                    "error",
                    json!({"message": format!("cannot listen on {addr}: {e}; pass another --metrics-addr, or `none`")}),
                );
                return EXIT_ERROR;
            }
        };
        bound = listener.local_addr().ok();
        let app = metrics::router(metrics.clone());
        let mut server_stop = stop.clone();
        server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_stop.wait_for(|s| *s).await;
                })
                .await;
        }));
    }
    events.emit(
        "started",
        json!({
            "path": args.path.as_deref().unwrap_or(Path::new("desired-state")).display().to_string(),
            "interval_s": args.interval.as_secs_f64(),
            "remediate": args.remediate,
            "metrics_addr": bound.map(|a| a.to_string()),
        }),
    );

    // A replica's leases last at most one interval, so that another takes
    // its stacks over within two intervals of its death.
    let lease_opts = LeaseOptions {
        duration: env
            .lease
            .duration
            .min(args.interval)
            .max(Duration::from_secs(1)),
        wait: false,
    };
    let me = lease::me("watch", lease_opts.duration);
    let mut daemon = Daemon {
        replica: lease::short(&me),
        lease_opts,
        leases: HashMap::new(),
        lease_watchers: HashMap::new(),
        holders: HashMap::new(),
        took_free: false,
        env,
        remediate: args.remediate,
        parallelism: args.parallelism,
        calls: CallCounter::default(),
        clients: HashMap::new(),
        last_good: HashMap::new(),
        metrics: metrics.clone(),
        events: events.clone(),
        scan_every: scan_every(args.interval),
        cycle_no: 0,
        last_unmanaged: HashMap::new(),
    };
    let mut failures = 0u32;
    let mut throttles = 0u32;
    let mut cycle = 0u64;
    let code = loop {
        cycle += 1;
        let started = Instant::now();
        daemon.cycle_no = cycle;
        let out = daemon.cycle(args.path.as_deref(), &stop).await;
        metrics.record_calls(&daemon.calls.snapshot());
        if out.interrupted {
            break EXIT_OK;
        }
        let took = started.elapsed();
        metrics.cycle_done(!out.failed, took);
        events.emit(
            "cycle",
            json!({
                "cycle": cycle,
                "ok": !out.failed,
                "stacks": out.stacks,
                "differences": out.differences,
                "duration_s": (took.as_secs_f64() * 1000.0).round() / 1000.0,
                "aws_calls": daemon.calls.total(),
            }),
        );
        if args.once {
            break if out.failed {
                EXIT_ERROR
            } else if out.differences > 0 {
                EXIT_CHANGES
            } else {
                EXIT_OK
            };
        }
        let wait = next_wait(&out, &mut failures, &mut throttles, args.interval);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => break EXIT_OK,
        }
    };
    if *stop.borrow() {
        events.emit("stopping", json!({"reason": "signal"}));
    }
    if let Some(s) = server {
        // Shutdown was signalled only on SIGTERM; with --once there is no server.
        let _ = tokio::time::timeout(Duration::from_secs(2), s).await;
    }
    code
}

/// How long to wait before the next cycle. A failed cycle is retried with
/// exponential backoff; a throttled one (AWS still refusing after the SDK's own
/// retries) is not a failure: the loop slows down, up to 8 intervals apart.
fn next_wait(
    out: &CycleOutcome,
    failures: &mut u32,
    throttles: &mut u32,
    interval: Duration,
) -> Duration {
    if out.failed {
        *failures += 1;
        retry_backoff(*failures, interval)
    } else if out.throttled {
        *throttles += 1;
        *failures = 0;
        interval * 2u32.pow((*throttles).min(3))
    } else {
        *failures = 0;
        *throttles = 0;
        jittered(interval)
    }
}

/// One failed cycle after another is retried sooner than the interval, backing
/// off exponentially from 5 s up to the interval itself.
fn retry_backoff(failures: u32, interval: Duration) -> Duration {
    let base = Duration::from_secs(5) * 2u32.pow(failures.saturating_sub(1).min(16));
    base.min(interval)
}

/// The interval, 10% either way, so that many daemons started together do not
/// call AWS in step.
fn jittered(interval: Duration) -> Duration {
    // Any uniform source will do; uuid's v4 generator is already a dependency.
    let r = (uuid::Uuid::new_v4().as_u64_pair().0 % 2001) as f64 / 1000.0 - 1.0;
    interval.mul_f64(1.0 + 0.1 * r)
}

#[derive(Default)]
struct CycleOutcome {
    stacks: usize,
    differences: usize,
    failed: bool,
    throttled: bool,
    interrupted: bool,
}

struct Daemon {
    /// This process, as metrics name it.
    replica: String,
    lease_opts: LeaseOptions,
    /// The stacks this replica holds (and so remediates), by name.
    leases: HashMap<String, LeaseGuard>,
    /// What this replica has seen of the other stacks' leases.
    lease_watchers: HashMap<String, Watcher>,
    /// Each stack's holder as last exported.
    holders: HashMap<String, String>,
    /// A free stack was taken this cycle: take no other, so that replicas
    /// started together share the stacks out.
    took_free: bool,
    env: Env,
    remediate: bool,
    parallelism: Option<usize>,
    /// One counter for the process: `/metrics` reports totals.
    calls: CallCounter,
    /// Clients live across cycles so the SDK's adaptive retry remembers throttling.
    clients: HashMap<(String, String), Cx>,
    /// The last version of each stack that validated, used while an edit is broken.
    last_good: HashMap<PathBuf, (Stack, Graph)>,
    metrics: Arc<Metrics>,
    events: Events,
    /// The search for unmanaged copies lists every tagged resource of each
    /// kind, which costs more than the cycle's own observation: it runs on the
    /// first cycle and then every this many cycles (about once an hour).
    scan_every: u64,
    /// The cycle being run, counted from 1.
    cycle_no: u64,
    /// Unmanaged resources found by the last scan, by stack.
    last_unmanaged: HashMap<String, usize>,
}

/// Cycles between two searches for unmanaged copies: about an hour's worth.
fn scan_every(interval: Duration) -> u64 {
    let per_hour = Duration::from_secs(3600).as_secs_f64() / interval.as_secs_f64().max(0.001);
    (per_hour.ceil() as u64).max(1)
}

impl Daemon {
    async fn cycle(&mut self, path: Option<&Path>, stop: &watch::Receiver<bool>) -> CycleOutcome {
        let mut out = CycleOutcome::default();
        let paths = match stacks_under(path.unwrap_or(Path::new("desired-state"))) {
            Ok(p) => p,
            Err(message) => {
                self.events.emit("error", json!({ "message": message }));
                out.failed = true;
                return out;
            }
        };
        out.stacks = paths.len();
        self.took_free = false;
        // Each replica goes through the stacks in its own order, so that
        // replicas started together take different ones first.
        let mut paths = paths;
        let n = paths.len().max(1);
        let turn = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.replica.hash(&mut h);
            h.finish() % n as u64
        };
        paths.rotate_left(turn as usize);
        for p in paths {
            if *stop.borrow() {
                out.interrupted = true;
                return out;
            }
            let mut stop = stop.clone();
            let r = self.watch_stack(&p, &mut stop).await;
            out.differences += r.differences;
            out.failed |= r.failed;
            out.throttled |= r.throttled;
            if r.interrupted {
                out.interrupted = true;
                return out;
            }
        }
        out
    }

    /// The stack at `path` as it is now, or its last good version when an edit broke it.
    fn load(&mut self, path: &Path) -> Option<(Stack, Graph)> {
        match ops::load(&self.env, path) {
            Ok((stack, graph)) => {
                self.last_good
                    .insert(path.to_path_buf(), (stack.clone(), graph.clone()));
                Some((stack, graph))
            }
            Err(diags) => {
                let kept = self.last_good.get(path).cloned();
                self.events.emit(
                    "invalid",
                    json!({
                        "path": path.display().to_string(),
                        "problems": diags.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                        "using": if kept.is_some() { "the last valid version" } else { "nothing: no valid version seen yet" },
                    }),
                );
                kept
            }
        }
    }

    async fn client(&mut self, stack: &Stack) -> Cx {
        let key = (stack.name.clone(), stack.region.clone());
        if let Some(cx) = self.clients.get(&key) {
            return cx.clone();
        }
        let cx = ops::connect(&self.env, &stack.region, &stack.name, &self.calls).await;
        self.clients.insert(key, cx.clone());
        cx
    }

    async fn watch_stack(&mut self, path: &Path, stop: &mut watch::Receiver<bool>) -> StackOutcome {
        let mut out = StackOutcome::default();
        let Some((stack, graph)) = self.load(path) else {
            out.failed = true;
            return out;
        };
        let name = stack.name.clone();
        let store = match ops::store(&self.env, &name, stack.state.as_deref(), &stack.region) {
            Ok(s) => s,
            Err(e) => return self.failed(&name, e.to_string()),
        };
        // Every replica observes; only the stack's lease holder remediates.
        let holds = match self.remediate {
            true => match self.hold(&name, &store).await {
                Some(h) => h,
                // A lease that cannot be read leaves this replica unable to
                // repair: the cycle fails, and /readyz says so.
                None => {
                    out.failed = true;
                    false
                }
            },
            false => false,
        };
        let state = match ops::read(store.clone(), &stack.region).await {
            Ok(s) => s,
            Err(e) => return self.failed(&name, e.to_string()),
        };
        let cx = self.client(&stack).await;

        // Observation only reads, so a stop request abandons it at once.
        let looked = tokio::select! {
            r = self.observe(&cx, &stack, &graph, &state) => r,
            _ = stop.wait_for(|s| *s) => {
                out.interrupted = true;
                return out;
            }
        };
        let (planned, unmanaged) = match looked {
            Ok(x) => x,
            Err(PlanFailure::Refused(errors)) => {
                for e in &errors {
                    self.events.emit(
                        "refused",
                        json!({"stack": name, "address": e.address, "message": e.message}),
                    );
                }
                out.failed = true;
                return out;
            }
            Err(e) => {
                let throttled = matches!(e.provider_error(), Some(ProviderError::Throttled(_)));
                let mut o = self.failed(&name, format!("observing: {e}"));
                if throttled {
                    o.failed = false;
                    o.throttled = true;
                }
                return o;
            }
        };
        let plan = planned.plan;
        let scanned = unmanaged.is_some();
        let unmanaged = unmanaged.unwrap_or_default();
        for u in &unmanaged {
            self.events.emit(
                "unmanaged",
                json!({
                    "stack": name, "kind": u.kind, "id": u.id, "address": u.address,
                    "message": "tagged with this stack but not in its state: the trace of an interrupted apply, or a copy made outside reconcile",
                }),
            );
        }
        if scanned {
            self.last_unmanaged.insert(name.clone(), unmanaged.len());
            self.metrics
                .unmanaged
                .get_or_create(&StackLabel {
                    stack: name.clone(),
                })
                .set(unmanaged.len() as i64);
        }
        let unmanaged_count = self.last_unmanaged.get(&name).copied().unwrap_or(0);

        let mut drifted = 0;
        for s in plan.steps.iter().filter(|s| s.action != Action::NoOp) {
            if s.drift {
                drifted += 1;
            }
            self.events.emit(
                if s.drift { "drift" } else { "pending" },
                step_event(&name, s),
            );
        }
        self.metrics
            .drifted
            .get_or_create(&StackLabel {
                stack: name.clone(),
            })
            .set(drifted);
        out.differences = plan
            .steps
            .iter()
            .filter(|s| s.action != Action::NoOp)
            .count()
            + unmanaged_count;

        if !self.remediate || !plan.has_changes() {
            return out;
        }
        if !holds {
            let message = match self.holders.get(&name).filter(|h| !h.is_empty()) {
                Some(holder) => format!("not remediating: the stack's lease is held by {holder}, which does"),
                None if out.failed => "not remediating: the stack's lease could not be read".into(),
                None => "not remediating yet: the stack's lease is free, and this replica took another free one this cycle; looking again next cycle".into(),
            };
            self.events
                .emit("skipped", json!({"stack": name, "message": message}));
            return out;
        }
        if *stop.borrow() {
            out.interrupted = true;
            return out;
        }
        // The same engine and journal as `apply`; it finishes what is in flight on a signal.
        let cancel = tokio_util::sync::CancellationToken::new();
        // A replica that loses the stack's lease mid-repair starts nothing new:
        // the stack is another replica's now.
        let lost = self.leases.get(&name).map(LeaseGuard::lost_signal);
        let on_stop = {
            let (cancel, mut stop) = (cancel.clone(), stop.clone());
            tokio::spawn(async move {
                let lease_lost = async {
                    match lost {
                        Some(l) => {
                            while !l.lost() {
                                tokio::time::sleep(Duration::from_millis(250)).await;
                            }
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    _ = lease_lost => {}
                }
                cancel.cancel();
            })
        };
        let options = ApplyOptions {
            parallelism: self.parallelism,
            cancel,
            events: Arc::new(Discard),
        };
        let applied = ops::apply(cx, self.env.catalog.clone(), store, plan, state, options).await;
        on_stop.abort();
        match applied {
            Ok(rep) => {
                for (action, n) in [
                    ("create", rep.created),
                    ("update", rep.updated),
                    ("delete", rep.deleted),
                ] {
                    if n > 0 {
                        self.metrics
                            .remediations
                            .get_or_create(&ActionLabel {
                                stack: name.clone(),
                                action: action.into(),
                            })
                            .inc_by(n as u64);
                    }
                }
                self.events.emit(
                    "remediated",
                    json!({
                        "stack": name,
                        "created": rep.created, "updated": rep.updated, "deleted": rep.deleted,
                        "failed": rep.failed.iter().map(|(a, e)| json!({"address": a, "class": e.class, "error": e.message})).collect::<Vec<_>>(),
                        "skipped": rep.skipped,
                        "interrupted": rep.interrupted,
                    }),
                );
                // Throttling that outlasted the SDK's retries slows the loop
                // down instead of counting as a failed cycle.
                let throttled =
                    |e: &crate::apply::events::StepError| e.class == ErrorClass::Throttled;
                out.throttled |= rep.failed.iter().any(|(_, e)| throttled(e));
                out.failed = rep.failed.iter().any(|(_, e)| !throttled(e));
                // Cut short by a lost lease, the daemon goes on; by a signal, it stops.
                out.interrupted = rep.interrupted && *stop.borrow();
            }
            Err(e) => return self.failed(&name, format!("remediating: {e}")),
        }
        out
    }

    /// Whether this replica holds the stack's lease, taking it if it lapsed,
    /// or if it is free and no other free one was taken this cycle.
    /// None when the lease could not be read.
    async fn hold(&mut self, name: &str, store: &Arc<dyn StateStore>) -> Option<bool> {
        if let Some(g) = self.leases.get(name) {
            if !g.lost() {
                self.show_holder(name, self.replica.clone());
                return Some(true);
            }
            self.leases.remove(name);
            self.events.emit(
                "lease_lost",
                json!({"stack": name, "message": "this replica no longer holds the stack's lease: it was released by hand (`state unlock`), taken over, or not renewed in time"}),
            );
        }
        let cell = store.lease();
        let mut watcher = self.lease_watchers.remove(name).unwrap_or_default();
        let (opts, take_free) = (self.lease_opts.clone(), !self.took_free);
        let (watcher, looked) = tokio::task::spawn_blocking(move || {
            let r = lease::try_take(&cell, &mut watcher, "watch", &opts, take_free);
            (watcher, r)
        })
        .await
        .expect("the lease look runs to its end");
        self.lease_watchers.insert(name.to_string(), watcher);
        match looked {
            Ok(Take::Got(g)) => {
                self.took_free |= g.took_over().is_none();
                self.events.emit(
                    "lease_taken",
                    json!({
                        "stack": name,
                        "replica": self.replica,
                        "took_over_from": g.took_over().map(|h| h.to_string()),
                    }),
                );
                self.leases.insert(name.to_string(), g);
                self.show_holder(name, self.replica.clone());
                Some(true)
            }
            Ok(Take::Free) => {
                self.show_holder(name, String::new());
                Some(false)
            }
            Ok(Take::Busy { holder, .. }) => {
                self.show_holder(
                    name,
                    holder
                        .as_ref()
                        .map_or_else(|| Holder::describe(None), lease::short),
                );
                Some(false)
            }
            Err(e) => {
                self.events.emit(
                    "error",
                    json!({"stack": name, "message": format!("reading the stack's lease: {e}")}),
                );
                None
            }
        }
    }

    /// Exports `holder` (empty: nobody) as the stack's lease holder.
    fn show_holder(&mut self, stack: &str, holder: String) {
        let label = |h: String| LeaseLabel {
            stack: stack.to_string(),
            holder: h,
            replica: self.replica.clone(),
        };
        if let Some(before) = self.holders.get(stack) {
            if *before == holder {
                return;
            }
            self.metrics.lease_holder.remove(&label(before.clone()));
        }
        if !holder.is_empty() {
            self.metrics
                .lease_holder
                .get_or_create(&label(holder.clone()))
                .set(1);
        }
        self.holders.insert(stack.to_string(), holder);
    }

    /// The stack's plan, plus everything tagged with the stack that state does
    /// not track when this cycle searches for it (`None` otherwise).
    async fn observe(
        &self,
        cx: &Cx,
        stack: &Stack,
        graph: &Graph,
        state: &reconcile_core::state::State,
    ) -> Result<(ops::Planned, Option<Vec<Unmanaged>>), PlanFailure> {
        let planned = ops::plan(cx, &self.env.catalog, stack, graph, state, false, &[]).await?;
        if !(self.cycle_no - 1).is_multiple_of(self.scan_every) {
            return Ok((planned, None));
        }
        let found = ops::unmanaged(cx, &self.env.catalog, stack, state)
            .await
            .map_err(|source| {
                PlanFailure::Observe(reconcile_aws::observe::ObserveError {
                    kind: "tagged resources".into(),
                    source,
                })
            })?;
        Ok((planned, Some(found)))
    }

    fn failed(&self, stack: &str, message: String) -> StackOutcome {
        self.events
            .emit("error", json!({"stack": stack, "message": message}));
        StackOutcome {
            failed: true,
            ..StackOutcome::default()
        }
    }
}

#[derive(Default)]
struct StackOutcome {
    differences: usize,
    failed: bool,
    throttled: bool,
    interrupted: bool,
}

/// One drifted (or not yet applied) resource as an event: what differs, old -> new.
/// Field values never carry secret material (secrets live only in `Sensitive`),
/// so they are shown as they are.
fn step_event(stack: &str, s: &Step) -> Json {
    let changes: Vec<Json> = if s.action == Action::Create || s.action == Action::Delete {
        vec![]
    } else {
        s.changes
            .iter()
            .map(|c| {
                json!({
                    "field": c.field,
                    "old": c.old.as_ref().map(|v| v.to_string()),
                    "new": c.new.as_ref().map(|v| v.to_string()),
                })
            })
            .collect()
    };
    // The same lines a plan shows, for people; `changes` is for machines.
    let diff: Vec<String> = if changes.is_empty() {
        vec![]
    } else {
        s.changes
            .iter()
            .flat_map(|c| crate::cli::render::change_lines(s.action, c))
            .collect()
    };
    json!({
        "stack": stack,
        "address": s.address,
        "kind": s.kind,
        "id": s.id,
        "action": s.action,
        "reason": s.reason.clone().unwrap_or_else(|| "the desired state changed and is not applied yet".into()),
        "changes": changes,
        "diff": diff,
    })
}

/// Where events go: stdout, one line each, text or JSON.
#[derive(Clone)]
struct Events {
    json: bool,
}

impl Events {
    fn emit(&self, event: &str, mut fields: Json) {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let line = if self.json {
            let mut obj = serde_json::Map::new();
            obj.insert("ts".into(), ts.into());
            obj.insert("event".into(), event.into());
            if let Json::Object(m) = fields.take() {
                obj.extend(m);
            }
            Json::Object(obj).to_string()
        } else {
            format!("{ts} {event:<10} {}", text_fields(&fields))
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// `key=value ...` for scalars, then a clause per field change.
fn text_fields(fields: &Json) -> String {
    let Json::Object(m) = fields else {
        return fields.to_string();
    };
    let mut parts = Vec::new();
    let mut tail = Vec::new();
    for (k, v) in m {
        match v {
            Json::Null => {}
            Json::String(s) if k == "message" || k == "reason" => tail.push(s.clone()),
            Json::String(s) => parts.push(format!("{k}={s}")),
            // Shown through `diff`, the plan's own rendering, when there is one.
            Json::Array(_) if k == "changes" && m.get("diff").is_some_and(|d| d != &json!([])) => {}
            Json::Array(items) if k == "changes" => {
                for c in items {
                    let show = |x: &Json| match x {
                        Json::String(s) => s.clone(),
                        _ => "(none)".into(),
                    };
                    tail.push(format!(
                        "{}: {} -> {}",
                        show(&c["field"]),
                        show(&c["old"]),
                        show(&c["new"])
                    ));
                }
            }
            Json::Array(items) => {
                for i in items {
                    tail.push(match i {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                }
            }
            other => parts.push(format!("{k}={other}")),
        }
    }
    let mut s = parts.join(" ");
    for t in tail {
        s.push_str("\n    ");
        s.push_str(&t);
    }
    s
}

/// The stacks under `path`: the stack itself when `path` is a file or a
/// directory holding exactly one `[stack]` table; otherwise each stack in it.
fn stacks_under(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = model::discover(path).map_err(|d| d.to_string())?;
    let direct: Vec<&PathBuf> = entries.iter().filter(|p| p.is_file()).collect();
    let headers = direct.iter().filter(|p| declares_stack(p)).count();
    if headers == 1 && entries.iter().all(|p| p.is_file()) {
        return Ok(vec![path.to_path_buf()]);
    }
    if entries.is_empty() {
        return Err(format!(
            "no stack under {}: add a .toml file there, or pass a path",
            path.display()
        ));
    }
    Ok(entries)
}

/// Looks for the header line rather than parsing, so that a file broken by an
/// edit still counts and the stack keeps its identity (and its last good version).
fn declares_stack(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .is_ok_and(|t| t.lines().any(|l| l.trim_start().starts_with("[stack]")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_interval() {
        let i = Duration::from_secs(300);
        assert_eq!(retry_backoff(1, i), Duration::from_secs(5));
        assert_eq!(retry_backoff(2, i), Duration::from_secs(10));
        assert_eq!(retry_backoff(4, i), Duration::from_secs(40));
        assert_eq!(retry_backoff(30, i), i);
        assert_eq!(
            retry_backoff(3, Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn throttling_slows_the_loop_and_a_clean_cycle_restores_it() {
        let i = Duration::from_secs(60);
        let (mut f, mut t) = (0, 0);
        let throttled = CycleOutcome {
            throttled: true,
            ..CycleOutcome::default()
        };
        assert_eq!(next_wait(&throttled, &mut f, &mut t, i), i * 2);
        assert_eq!(next_wait(&throttled, &mut f, &mut t, i), i * 4);
        for _ in 0..5 {
            next_wait(&throttled, &mut f, &mut t, i);
        }
        assert_eq!(next_wait(&throttled, &mut f, &mut t, i), i * 8);
        let clean = next_wait(&CycleOutcome::default(), &mut f, &mut t, i);
        assert!(clean <= i.mul_f64(1.1) && t == 0);
        let failed = CycleOutcome {
            failed: true,
            ..CycleOutcome::default()
        };
        assert_eq!(
            next_wait(&failed, &mut f, &mut t, i),
            Duration::from_secs(5)
        );
        assert_eq!(
            next_wait(&failed, &mut f, &mut t, i),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn unmanaged_copies_are_searched_about_once_an_hour() {
        assert_eq!(scan_every(Duration::from_secs(300)), 12);
        assert_eq!(scan_every(Duration::from_secs(1)), 3600);
        assert_eq!(scan_every(Duration::from_secs(7200)), 1);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let i = Duration::from_secs(100);
        for _ in 0..200 {
            let j = jittered(i);
            assert!(
                j >= Duration::from_secs(90) && j <= Duration::from_secs(110),
                "{j:?}"
            );
        }
    }

    #[test]
    fn a_directory_with_one_stack_header_is_one_stack() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("a.toml"),
            "[stack]\nname = \"a\"\nregion = \"us-east-1\"\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("b.toml"),
            "[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n",
        )
        .unwrap();
        assert_eq!(
            stacks_under(d.path()).unwrap(),
            vec![d.path().to_path_buf()]
        );
        std::fs::write(
            d.path().join("c.toml"),
            "[stack]\nname = \"c\"\nregion = \"us-east-1\"\n",
        )
        .unwrap();
        assert_eq!(stacks_under(d.path()).unwrap().len(), 3);
    }

    #[test]
    fn text_events_show_the_plans_rendering_when_there_is_one() {
        let t = text_fields(&json!({
            "address": "security_group.db",
            "changes": [{"field": "ingress", "old": "[..]", "new": "[..]"}],
            "diff": ["ingress   - { tcp 22 from 0.0.0.0/0 }"],
        }));
        assert_eq!(
            t,
            "address=security_group.db\n    ingress   - { tcp 22 from 0.0.0.0/0 }"
        );
    }

    #[test]
    fn text_events_put_changes_on_their_own_lines() {
        let t = text_fields(&json!({
            "stack": "s", "address": "vpc.main", "id": null,
            "changes": [{"field": "enable_dns_hostnames", "old": "false", "new": "true"}],
        }));
        assert_eq!(
            t,
            "stack=s address=vpc.main\n    enable_dns_hostnames: false -> true"
        );
    }
}
