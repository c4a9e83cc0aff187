//! The state backend suite: the same tests run on the local directory and on
//! S3 (the emulator, with conditional writes and a versioned bucket), so both
//! give the same guarantees: steps journalled and folded, a writer whose
//! state moved on refused without overwriting anything, leases refused while
//! held, taken over only after their duration, noticed when lost, history
//! kept, and a moved copy refusing runs.

mod common;
use common::{s3, Moto};
use reconcile::state::lease::{self, acquire, break_lease, LeaseOptions};
use reconcile::state::{LocalStore, Reach, S3Store};
use reconcile_core::state::lease::LeaseCell;
use reconcile_core::state::{Delta, StateError, StateResource, StateStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

enum Where {
    Local(tempfile::TempDir),
    S3 { moto: Moto, bucket: String },
}

struct Backend {
    at: Where,
}

impl Backend {
    fn local() -> Backend {
        Backend {
            at: Where::Local(tempfile::tempdir().unwrap()),
        }
    }

    async fn s3() -> Backend {
        let moto = Moto::start();
        let bucket = "team-state".to_string();
        common::versioned_bucket(&moto, &bucket).await;
        Backend {
            at: Where::S3 { moto, bucket },
        }
    }

    fn store(&self, stack: &str) -> Arc<dyn StateStore> {
        match &self.at {
            Where::Local(dir) => Arc::new(LocalStore::new(dir.path(), stack)),
            Where::S3 { moto, bucket } => Arc::new(S3Store::new(
                bucket,
                "prod/eu",
                stack,
                &Reach {
                    endpoint_url: Some(moto.url.clone()),
                    region: "us-east-1".into(),
                },
            )),
        }
    }

    /// Journal steps stored now, seen with an independent client or listing.
    async fn journal_steps(&self, stack: &str) -> usize {
        match &self.at {
            Where::Local(dir) => {
                std::fs::read_to_string(dir.path().join(format!("{stack}.journal")))
                    .map_or(0, |t| t.lines().count())
            }
            Where::S3 { moto, bucket } => s3(moto)
                .await
                .list_objects_v2()
                .bucket(bucket)
                .prefix(format!("prod/eu/journal/{stack}/"))
                .send()
                .await
                .unwrap()
                .contents()
                .len(),
        }
    }
}

fn put(address: &str, id: &str) -> Vec<Delta> {
    vec![Delta::Put(StateResource {
        address: address.into(),
        kind: "vpc".into(),
        id: id.into(),
        inputs: Default::default(),
        attributes: Default::default(),
        dependencies: vec![],
        protect: false,
    })]
}

/// Runs each test on both backends: `<name>_local` and `<name>_s3`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Backend::local()).await;
                }
            )*
        }
        mod on_s3 {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Backend::s3().await).await;
                }
            )*
        }
    };
}

on_both!(
    steps_are_journalled_reloaded_and_folded,
    a_writer_whose_state_moved_on_is_refused_and_overwrites_nothing,
    a_live_lease_is_refused_at_once_naming_its_holder_and_released_after,
    a_lease_whose_holder_is_gone_is_taken_over_only_after_its_duration,
    a_lease_renewed_while_watched_is_refused,
    a_holder_whose_lease_was_taken_starts_nothing_new,
    history_keeps_the_versions_written_and_reads_them,
    a_moved_copy_refuses_every_run_and_names_where_state_went,
);

async fn steps_are_journalled_reloaded_and_folded(b: Backend) {
    let store = b.store("app");
    let mut st = store.load("us-east-1").unwrap();
    assert_eq!((st.serial, st.lineage.clone()), (0, None));
    // The first step sets the lineage with a snapshot; the next are steps.
    store.record(&mut st, put("vpc.a", "vpc-1")).unwrap();
    assert!(st.lineage.is_some());
    for i in 0..4 {
        store
            .record(&mut st, put(&format!("vpc.n{i}"), &format!("vpc-{i}")))
            .unwrap();
    }
    assert_eq!(b.journal_steps("app").await, 4);
    let other = b.store("app");
    let back = other.load("us-east-1").unwrap();
    assert_eq!(back.serial, 5);
    assert_eq!(back.resources.len(), 5);
    assert_eq!(back.lineage, st.lineage);
    // A fold writes one snapshot and leaves no step behind.
    store.save(&mut st).unwrap();
    assert_eq!(b.journal_steps("app").await, 0);
    let back = b.store("app").load("us-east-1").unwrap();
    assert_eq!((back.serial, back.resources.len()), (6, 5));
    // Another stack beside it is its own state.
    assert_eq!(b.store("other").load("us-east-1").unwrap().serial, 0);
}

async fn a_writer_whose_state_moved_on_is_refused_and_overwrites_nothing(b: Backend) {
    let first = b.store("app");
    let mut st = first.load("us-east-1").unwrap();
    first.record(&mut st, put("vpc.a", "vpc-1")).unwrap();
    first.record(&mut st, put("vpc.b", "vpc-2")).unwrap();

    // Two writers read the same state; the second one writes and folds.
    let stale = b.store("app");
    let mut old = stale.load("us-east-1").unwrap();
    let newer = b.store("app");
    let mut now = newer.load("us-east-1").unwrap();
    newer.record(&mut now, put("vpc.c", "vpc-3")).unwrap();
    newer.save(&mut now).unwrap();

    let step = stale.record(&mut old, put("vpc.stale", "vpc-9"));
    assert!(
        matches!(step, Err(StateError::Conflict { .. })),
        "a step after another writer folded: {step:?}"
    );
    let snap = stale.save(&mut old);
    assert!(
        matches!(snap, Err(StateError::Conflict { .. })),
        "a snapshot over newer state: {snap:?}"
    );
    let back = b.store("app").load("us-east-1").unwrap();
    assert_eq!(back.serial, now.serial);
    assert!(back.resources.contains_key("vpc.c"));
    assert!(!back.resources.contains_key("vpc.stale"));
}

fn opts(secs: u64) -> LeaseOptions {
    LeaseOptions {
        duration: Duration::from_secs(secs),
        wait: true,
    }
}

async fn a_live_lease_is_refused_at_once_naming_its_holder_and_released_after(b: Backend) {
    let store = b.store("app");
    let held = acquire(store.lease(), "app", "apply", &opts(30), |_| {}).unwrap();
    let started = Instant::now();
    match acquire(store.lease(), "app", "apply", &opts(30), |_| {}) {
        Err(StateError::Locked { holder, .. }) => {
            assert!(holder.contains("`reconcile apply`"), "{holder}");
            assert!(holder.contains(&format!("pid {}", std::process::id())));
        }
        other => panic!("expected the lease refused, got {:?}", other.err()),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    drop(held);
    assert!(store.lease().read().unwrap().is_none(), "released");
    let again = acquire(store.lease(), "app", "plan", &opts(30), |_| {}).unwrap();
    assert!(again.took_over().is_none());
    // `state unlock` removes it whoever holds it and says who did.
    let who = break_lease(&*store.lease()).unwrap().expect("a holder");
    assert!(who.contains("`reconcile plan`"), "{who}");
    assert!(store.lease().read().unwrap().is_none());
    assert!(break_lease(&*store.lease()).unwrap().is_none());
}

/// A lease record as a process on this machine that is gone left it.
fn gone_holder(cell: &dyn LeaseCell, secs: u64) {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let mut h = lease::me("apply", Duration::from_secs(secs));
    h.pid = child.id();
    assert!(cell
        .create(&serde_json::to_string(&h).unwrap())
        .unwrap()
        .is_some());
}

async fn a_lease_whose_holder_is_gone_is_taken_over_only_after_its_duration(b: Backend) {
    let store = b.store("app");
    gone_holder(&*store.lease(), 3);
    let started = Instant::now();
    let mut told = String::new();
    let g = acquire(store.lease(), "app", "apply", &opts(30), |m| {
        told = m.to_string()
    })
    .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3),
        "taken over after {waited:?}, before the holder's 3 s"
    );
    assert!(told.contains("its process is gone"), "{told}");
    assert_eq!(g.took_over().map(|h| h.duration_secs), Some(3));
    let seen = store.lease().read().unwrap().unwrap();
    assert_eq!(
        seen.holder().unwrap().id,
        g.holder().id,
        "the record is ours"
    );
}

async fn a_lease_renewed_while_watched_is_refused(b: Backend) {
    let store = b.store("app");
    let cell = store.lease();
    // A holder on another machine: only its renewals tell it is alive.
    let mut h = lease::me("watch", Duration::from_secs(3));
    h.host = "elsewhere".into();
    h.pid_space = None;
    let mut tag = cell
        .create(&serde_json::to_string(&h).unwrap())
        .unwrap()
        .unwrap();
    let renewer = {
        let cell = cell.clone();
        std::thread::spawn(move || {
            for _ in 0..6 {
                std::thread::sleep(Duration::from_millis(500));
                h.renewed = chrono::Utc::now();
                match cell.replace(&tag, &serde_json::to_string(&h).unwrap()) {
                    Ok(Some(t)) => tag = t,
                    _ => return,
                }
            }
        })
    };
    let started = Instant::now();
    let r = acquire(cell.clone(), "app", "apply", &opts(30), |_| {});
    assert!(
        matches!(&r, Err(StateError::Locked { holder, .. }) if holder.contains("elsewhere")),
        "{:?}",
        r.err()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    renewer.join().unwrap();
}

async fn a_holder_whose_lease_was_taken_starts_nothing_new(b: Backend) {
    let store = b.store("app");
    let g = acquire(store.lease(), "app", "apply", &opts(3), |_| {}).unwrap();
    assert!(!g.lost());
    // Someone broke the lease and another run took it.
    break_lease(&*store.lease()).unwrap();
    let other = acquire(store.lease(), "app", "apply", &opts(30), |_| {}).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !g.lost() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(g.lost(), "the first holder noticed at its next renewal");
    drop(g);
    let seen = store
        .lease()
        .read()
        .unwrap()
        .expect("not removed by the loser");
    assert_eq!(seen.holder().unwrap().id, other.holder().id);
}

async fn history_keeps_the_versions_written_and_reads_them(b: Backend) {
    let store = b.store("app");
    let mut st = store.load("us-east-1").unwrap();
    store.record(&mut st, put("vpc.a", "vpc-1")).unwrap();
    store.record(&mut st, put("vpc.b", "vpc-2")).unwrap();
    store.save(&mut st).unwrap();
    let versions = store.history().unwrap();
    assert!(versions.len() >= 2, "{versions:?}");
    assert!(versions[0].current, "newest first: {versions:?}");
    let oldest = store.load_version(&versions[1].id).unwrap();
    assert_eq!(oldest.serial, 1);
    assert_eq!(oldest.resources.len(), 1);
    let newest = store.load_version(&versions[0].id).unwrap();
    assert_eq!(newest.serial, st.serial);
    assert!(store.load_version("no-such-version").is_err());
}

async fn a_moved_copy_refuses_every_run_and_names_where_state_went(b: Backend) {
    let store = b.store("app");
    let mut st = store.load("us-east-1").unwrap();
    store.record(&mut st, put("vpc.a", "vpc-1")).unwrap();
    st.moved_to = Some("s3://elsewhere/team".into());
    store.save(&mut st).unwrap();
    match b.store("app").load("us-east-1") {
        Err(e @ StateError::Moved { .. }) => {
            assert!(e.to_string().contains("s3://elsewhere/team"), "{e}")
        }
        other => panic!("expected Moved, got {other:?}"),
    }
}
