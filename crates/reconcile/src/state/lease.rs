//! Taking, renewing and giving up a stack's lease, on any backend's
//! [`LeaseCell`]. A guard renews from its own thread, so a run busy in AWS
//! calls keeps its lease; a guard that could not renew in time says so, and
//! its holder starts no new AWS mutation.

use chrono::Utc;
use reconcile_core::state::lease::{Holder, LeaseCell, Liveness, Verdict, Watcher, DEFAULT_LEASE};
use reconcile_core::state::StateError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How leases are taken by this run.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    /// What this run's lease declares: others take it over after seeing it
    /// unchanged this long. Renewed every third of it.
    pub duration: Duration,
    /// Wait out a lease whose holder may be gone, rather than failing at once.
    pub wait: bool,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            duration: DEFAULT_LEASE,
            wait: true,
        }
    }
}

/// This process as a lease holder.
pub fn me(operation: &str, duration: Duration) -> Holder {
    let now = Utc::now();
    Holder {
        id: uuid::Uuid::new_v4().to_string(),
        operation: operation.to_string(),
        host: host(),
        pid: std::process::id(),
        pid_space: pid_space(),
        started: now,
        renewed: now,
        duration_secs: duration.as_secs().max(1),
    }
}

pub fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unnamed host".into())
}

/// The kernel boot and pid namespace this process runs in (Linux only):
/// processes that share it can see each other's pids.
fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

/// How a holder is named in metrics: `operation@host:pid`.
pub fn short(h: &Holder) -> String {
    format!("{}@{}:{}", h.operation, h.host, h.pid)
}

/// Whether the holder's process still runs, where this process can see it.
pub fn liveness(h: &Holder) -> Liveness {
    match (&h.pid_space, pid_space()) {
        (Some(theirs), Some(ours)) if *theirs == ours && h.host == host() => {
            if std::path::Path::new(&format!("/proc/{}", h.pid)).exists() {
                Liveness::Alive
            } else {
                Liveness::Gone
            }
        }
        _ => Liveness::Unknown,
    }
}

fn body(h: &Holder) -> String {
    serde_json::to_string_pretty(h).expect("holder serialises")
}

/// What a single look at a lease found.
pub enum Take {
    Got(LeaseGuard),
    /// Nobody holds it, and the caller asked not to take a free one.
    Free,
    /// Someone else holds it; `left` is how long until it lapses unrenewed.
    Busy {
        holder: Option<Holder>,
        liveness: Liveness,
        renewed: bool,
        left: Duration,
    },
}

/// One look at the lease: takes it if lapsed (as `watcher` has seen it over
/// time) or if free and `take_free`, else says who holds it. Never waits.
pub fn try_take(
    cell: &Arc<dyn LeaseCell>,
    watcher: &mut Watcher,
    operation: &str,
    opts: &LeaseOptions,
    take_free: bool,
) -> Result<Take, StateError> {
    let mut me = me(operation, opts.duration);
    // A race lost between the read and the conditional write is looked at again.
    for _ in 0..3 {
        let seen = cell.read()?;
        match watcher.judge(seen.as_ref(), Instant::now(), opts.duration, liveness) {
            Verdict::Free if !take_free => return Ok(Take::Free),
            Verdict::Free => {
                if let Some(tag) = cell.create(&body(&me))? {
                    watcher.reset();
                    return Ok(Take::Got(LeaseGuard::start(cell.clone(), me, tag, None)));
                }
            }
            Verdict::Lapsed { holder, tag } => {
                me.renewed = Utc::now();
                if let Some(tag) = cell.replace(&tag, &body(&me))? {
                    watcher.reset();
                    if let Some(h) = &holder {
                        tracing::warn!(
                            lease = %cell.location(),
                            "took over the lease of {h}: nobody renewed it for {} s",
                            h.duration_secs
                        );
                    }
                    return Ok(Take::Got(LeaseGuard::start(cell.clone(), me, tag, holder)));
                }
            }
            Verdict::Held {
                holder,
                liveness,
                renewed,
                left,
            } => {
                return Ok(Take::Busy {
                    holder,
                    liveness,
                    renewed,
                    left,
                })
            }
        }
    }
    let holder = cell.read()?.and_then(|s| s.holder());
    Ok(Take::Busy {
        holder,
        liveness: Liveness::Unknown,
        renewed: true,
        left: opts.duration,
    })
}

/// Takes the stack's lease for `operation`. A holder known to be alive (on
/// this machine), or seen renewing, refuses at once with its name. Any other
/// lease is watched: taken over once unchanged for its duration, refused as
/// soon as it is renewed. `waiting` hears once why this run waits.
pub fn acquire(
    cell: Arc<dyn LeaseCell>,
    stack: &str,
    operation: &str,
    opts: &LeaseOptions,
    mut waiting: impl FnMut(&str),
) -> Result<LeaseGuard, StateError> {
    let mut watcher = Watcher::default();
    let mut told = false;
    loop {
        match try_take(&cell, &mut watcher, operation, opts, true)? {
            Take::Got(g) => return Ok(g),
            Take::Free => continue,
            Take::Busy {
                holder,
                liveness,
                renewed,
                left,
            } => {
                if liveness == Liveness::Alive || renewed || !opts.wait {
                    return Err(StateError::Locked {
                        stack: stack.to_string(),
                        holder: Holder::describe(holder.as_ref()),
                    });
                }
                if !told {
                    told = true;
                    let why = match liveness {
                        Liveness::Gone => "its process is gone",
                        _ => "it may be on another machine",
                    };
                    waiting(&format!(
                        "stack `{stack}` is leased to {}; {why}. Waiting {} s: if nobody renews the lease by then, this run takes it over",
                        Holder::describe(holder.as_ref()),
                        left.as_secs().max(1)
                    ));
                }
                std::thread::sleep(left.min(Duration::from_millis(500)));
            }
        }
    }
}

/// Releases a lease whoever holds it, for `state unlock`: answers who held it.
pub fn break_lease(cell: &dyn LeaseCell) -> Result<Option<String>, StateError> {
    let Some(seen) = cell.read()? else {
        return Ok(None);
    };
    let who = Holder::describe(seen.holder().as_ref());
    cell.remove(&seen.tag)?;
    Ok(Some(who))
}

struct Shared {
    tag: Mutex<Option<String>>,
    lost: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// A held lease. Renewed every third of its duration until dropped, then
/// removed (if still ours).
pub struct LeaseGuard {
    cell: Arc<dyn LeaseCell>,
    holder: Holder,
    took_over: Option<Holder>,
    shared: Arc<Shared>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl LeaseGuard {
    fn start(
        cell: Arc<dyn LeaseCell>,
        holder: Holder,
        tag: String,
        took_over: Option<Holder>,
    ) -> LeaseGuard {
        let shared = Arc::new(Shared {
            tag: Mutex::new(Some(tag)),
            lost: AtomicBool::new(false),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let renewer = {
            let (cell, shared, mut holder) = (cell.clone(), shared.clone(), holder.clone());
            std::thread::Builder::new()
                .name("lease".into())
                .spawn(move || renew(&*cell, &shared, &mut holder))
                .expect("a thread starts")
        };
        LeaseGuard {
            cell,
            holder,
            took_over,
            shared,
            renewer: Some(renewer),
        }
    }

    /// The lease may be someone else's now: start nothing new.
    pub fn lost(&self) -> bool {
        self.shared.lost.load(Ordering::SeqCst)
    }

    /// Answers [`LeaseGuard::lost`] from another task.
    pub fn lost_signal(&self) -> LostSignal {
        LostSignal(self.shared.clone())
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Whose lapsed lease this one replaced.
    pub fn took_over(&self) -> Option<&Holder> {
        self.took_over.as_ref()
    }
}

/// Whether a lease was lost, readable from anywhere.
#[derive(Clone)]
pub struct LostSignal(Arc<Shared>);

impl LostSignal {
    pub fn lost(&self) -> bool {
        self.0.lost.load(Ordering::SeqCst)
    }
}

/// Renews until stopped. A renewal that finds the lease changed means it
/// was taken over; renewals failing for two thirds of the duration mean it
/// may soon be. Either way the lease counts as lost.
fn renew(cell: &dyn LeaseCell, shared: &Shared, holder: &mut Holder) {
    let duration = holder.duration();
    let every = duration / 3;
    let mut last_ok = Instant::now();
    loop {
        let stop = shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
        let (stop, _) = shared
            .wake
            .wait_timeout_while(stop, every, |s| !*s)
            .unwrap_or_else(PoisonError::into_inner);
        if *stop {
            return;
        }
        drop(stop);
        let Some(tag) = shared
            .tag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        else {
            return;
        };
        holder.renewed = Utc::now();
        match cell.replace(&tag, &body(holder)) {
            Ok(Some(new)) => {
                *shared.tag.lock().unwrap_or_else(PoisonError::into_inner) = Some(new);
                last_ok = Instant::now();
            }
            Ok(None) => {
                tracing::error!(lease = %cell.location(), "the lease is no longer this run's (released by hand or taken over); starting nothing new");
                *shared.tag.lock().unwrap_or_else(PoisonError::into_inner) = None;
                shared.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!(lease = %cell.location(), "cannot renew the lease: {e}");
                if last_ok.elapsed() >= duration * 2 / 3 {
                    tracing::error!(lease = %cell.location(), "the lease was not renewed in time; starting nothing new");
                    shared.lost.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        *self
            .shared
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        let tag = self
            .shared
            .tag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(tag) = tag {
            if let Err(e) = self.cell.remove(&tag) {
                tracing::warn!(lease = %self.cell.location(), "cannot release the lease: {e}; the next run takes it over after it lapses");
            }
        }
    }
}
