//! State as a team keeps it, through the real binary: a stack whose state
//! lives in S3 (the emulator), checked with an independent S3 client; an
//! apply refused at once while another run holds the lease, and proceeding
//! without `unlock` after a dead holder's lease lapsed; `state unlock`,
//! `history`, `show --version`; and `state migrate` from the local directory
//! to S3, after which the old copy refuses runs.

mod common;
use common::{Moto, Project};
use reconcile::state::lease::{self, acquire, LeaseOptions};
use reconcile::state::{Reach, S3Store};
use reconcile_core::state::StateStore;
use std::time::{Duration, Instant};

const BUCKET: &str = "team-state";

fn stack(name: &str, state: Option<&str>, groups: &[&str]) -> String {
    let mut s = format!("[stack]\nname = \"{name}\"\nregion = \"us-east-1\"\n");
    if let Some(url) = state {
        s.push_str(&format!("state = \"{url}\"\n"));
    }
    for g in groups {
        s.push_str(&format!(
            "\n[log_group.{g}]\nname = \"/{name}/{g}\"\nretention_in_days = 30\n"
        ));
    }
    s
}

async fn bucket(moto: &Moto) -> aws_sdk_s3::Client {
    common::versioned_bucket(moto, BUCKET).await
}

async fn keys(client: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

fn store(moto: &Moto, prefix: &str, name: &str) -> S3Store {
    S3Store::new(
        BUCKET,
        prefix,
        name,
        &Reach {
            endpoint_url: Some(moto.url.clone()),
            region: "us-east-1".into(),
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_keeps_its_state_in_s3_with_its_history() {
    let moto = Moto::start();
    let client = bucket(&moto).await;
    let p = Project::new();
    p.write(
        "team.toml",
        &stack("team", Some("s3://team-state/reconcile"), &["api", "web"]),
    );
    let r = p.run(Some(&moto), &["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        keys(&client, "reconcile/team.json").await,
        ["reconcile/team.json"]
    );
    assert!(
        keys(&client, "reconcile/journal/").await.is_empty(),
        "folded"
    );
    assert!(
        keys(&client, "reconcile/leases/").await.is_empty(),
        "released"
    );
    assert!(!p.state_dir().exists(), "nothing written locally");
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "clean: {}", r.all());

    let list = p.run(Some(&moto), &["state", "list"]);
    assert!(list.stdout.contains("log_group.api"), "{}", list.all());
    p.write(
        "team.toml",
        &stack("team", Some("s3://team-state/reconcile"), &["api"]),
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let history = p.run(Some(&moto), &["state", "history"]);
    history.expect_code(0);
    let ids: Vec<&str> = history
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(ids.len() >= 2, "{}", history.stdout);
    assert!(history.stdout.lines().nth(1).unwrap().contains("(current)"));
    // The version before the removal still holds both groups.
    let old = p.run(
        Some(&moto),
        &["state", "show", "--version", ids[1], "log_group.web"],
    );
    assert_eq!(old.code, 0, "{}", old.all());
    assert!(old.stdout.contains("/team/web"), "{}", old.stdout);
    let now = p.run(Some(&moto), &["state", "show", "log_group.web"]);
    assert_eq!(now.code, 1, "{}", now.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_writer_is_refused_at_once_and_a_dead_ones_lease_is_waited_out() {
    let moto = Moto::start();
    let _client = bucket(&moto).await;
    let p = Project::new();
    p.write(
        "team.toml",
        &stack("held", Some("s3://team-state/t"), &["api"]),
    );
    let s = store(&moto, "t", "held");
    let opts = LeaseOptions::default();
    let holder = acquire(s.lease(), "held", "apply", &opts, |_| {}).unwrap();

    let started = Instant::now();
    let r = p.run(Some(&moto), &["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    assert!(
        r.stderr
            .contains("stack `held` is held by `reconcile apply`")
            && r.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        r.stderr
    );
    // `plan` needs no lease.
    p.run(Some(&moto), &["plan"]).expect_code(0);

    // `state unlock` says who held it.
    let r = p.run(Some(&moto), &["state", "unlock"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("held by `reconcile apply`"),
        "{}",
        r.stdout
    );
    std::mem::forget(holder); // its release would find the record gone anyway

    // A holder killed on this machine: its 3 s lease is waited out, then taken.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let mut dead = lease::me("apply", Duration::from_secs(3));
    dead.pid = child.id();
    s.lease()
        .create(&serde_json::to_string(&dead).unwrap())
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let r = p.run(Some(&moto), &["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(r.stderr.contains("its process is gone"), "{}", r.stderr);
    assert!(r.stdout.contains("Apply complete"), "{}", r.stdout);
    assert!(s.lease().read().unwrap().is_none(), "released at the end");
}

#[tokio::test(flavor = "multi_thread")]
async fn migrating_to_s3_moves_state_and_the_old_copy_refuses_runs() {
    let moto = Moto::start();
    let client = bucket(&moto).await;
    let p = Project::new();
    p.write("mig.toml", &stack("mig", None, &["api", "web"]));
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let before = p.state_json("mig");

    let r = p.run(
        Some(&moto),
        &["state", "migrate", "--to", "s3://team-state/moved"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("s3://team-state/moved"), "{}", r.stdout);
    assert_eq!(keys(&client, "moved/mig.json").await.len(), 1);
    let moved = store(&moto, "moved", "mig").load("us-east-1").unwrap();
    assert_eq!(moved.lineage.as_deref(), before["lineage"].as_str());
    assert_eq!(moved.resources.len(), 2);

    // The local copy refuses every run, naming where state went.
    let r = p.run(Some(&moto), &["plan"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("moved from"), "{}", r.stderr);
    assert!(r.stderr.contains("s3://team-state/moved"), "{}", r.stderr);
    // Pointed at the new place, the stack is as it was.
    let r = p.run(
        Some(&moto),
        &[
            "plan",
            "--detailed-exitcode",
            "--state",
            "s3://team-state/moved",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    p.write(
        "mig.toml",
        &stack("mig", Some("s3://team-state/moved"), &["api", "web"]),
    );
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
    // Nothing to migrate twice.
    let r = p.run(
        Some(&moto),
        &["state", "migrate", "--to", "s3://team-state/moved"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
}

#[test]
fn a_state_location_that_is_not_s3_is_refused_by_validate() {
    let p = Project::new();
    p.write(
        "bad.toml",
        &stack("bad", Some("gs://bucket/prefix"), &["api"]),
    );
    let r = p.run(None, &["validate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("bad.toml:4:"), "{}", r.stderr);
    assert!(r.stderr.contains("s3://bucket/prefix"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apply_that_changes_nothing_writes_no_state_and_keeps_saved_plans_valid() {
    let moto = Moto::start();
    let client = bucket(&moto).await;
    let p = Project::new();
    p.write(
        "quiet.toml",
        &stack("quiet", Some("s3://team-state/q"), &["api"]),
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let versions = || async {
        client
            .list_object_versions()
            .bucket(BUCKET)
            .prefix("q/quiet.json")
            .send()
            .await
            .unwrap()
            .versions()
            .len()
    };
    let before = versions().await;
    p.run(Some(&moto), &["plan", "--out", "saved.plan"])
        .expect_code(0);
    let r = p.run(Some(&moto), &["apply", "--auto-approve"]);
    assert!(r.stdout.contains("No changes"), "{}", r.all());
    assert_eq!(versions().await, before, "no new snapshot");
    let r = p.run(
        Some(&moto),
        &["apply", "--plan", "saved.plan", "--auto-approve"],
    );
    assert_eq!(r.code, 0, "the saved plan still applies: {}", r.all());
}
