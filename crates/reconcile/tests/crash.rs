//! Crash safety: an apply killed at any moment, then run again, ends with exactly
//! the declared resources, none twice and none untracked.

mod common;
use aws_sdk_ec2::types::Filter;
use common::{Moto, Project};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn stack(name: &str) -> String {
    format!(
        r#"
[stack]
name = "{name}"
region = "us-east-1"

[vpc.main]
cidr_block = "10.0.0.0/16"
enable_dns_hostnames = true

[subnet.a]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[subnet.c]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.3.0/24"
availability_zone = "us-east-1a"

[internet_gateway.main]
vpc_id = "${{vpc.main.id}}"

[elastic_ip.nat]

[nat_gateway.main]
subnet_id = "${{subnet.a.id}}"
allocation_id = "${{elastic_ip.nat.id}}"

[route_table.private]
vpc_id = "${{vpc.main.id}}"
routes = [{{ destination_cidr_block = "0.0.0.0/0", nat_gateway_id = "${{nat_gateway.main.id}}" }}]
subnet_ids = ["${{subnet.b.id}}", "${{subnet.c.id}}"]

[security_group.app]
name = "{name}-app"
vpc_id = "${{vpc.main.id}}"
ingress = [{{ protocol = "tcp", from_port = 8080, to_port = 8080, cidr_block = "10.0.0.0/16" }}]
"#
    )
}

const DECLARED: usize = 9;

/// Exactly the declared resources exist, each once, all tracked; a plan is clean.
async fn assert_converged(moto: &Moto, p: &Project, name: &str) {
    let ec2 = moto.ec2().await;
    let live = common::tagged_ids(&ec2, name).await;
    let state = p.state_json(name);
    let tracked: BTreeSet<String> = state["resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        live.len(),
        DECLARED,
        "exactly the declared resources exist: {live:?}"
    );
    assert_eq!(
        live.iter().cloned().collect::<BTreeSet<_>>(),
        tracked,
        "nothing untracked, nothing missing"
    );
    assert_eq!(
        ec2.describe_vpcs()
            .filters(
                Filter::builder()
                    .name("tag:reconcile:stack")
                    .values(name)
                    .build()
            )
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
    assert!(
        state["journal"].as_array().unwrap().is_empty(),
        "journal settled"
    );
    assert!(state["deposed"].as_array().unwrap().is_empty());
    p.run(Some(moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_aws_created_but_before_state_recorded_is_adopted() {
    let moto = Moto::start();
    for victim in [
        "vpc.main",
        "subnet.b",
        "nat_gateway.main",
        "security_group.app",
    ] {
        let name = format!("crash-{}", victim.replace(['.', '_'], "-"));
        let p = Project::new();
        p.write("net.toml", &stack(&name));
        let mut cmd = p.cmd(
            Some(&moto),
            &["apply", "--auto-approve", "--parallelism", "1"],
        );
        cmd.env("RECONCILE_TEST_CRASH_AFTER_CREATE", victim);
        let out = cmd.output().unwrap();
        assert!(
            !out.status.success(),
            "the apply was meant to die at {victim}"
        );
        let state = p.state_json(&name);
        assert!(
            state["journal"]
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j["address"] == victim && j["op"] == "create"),
            "the interrupted create is journalled: {state}"
        );
        assert!(state["resources"].get(victim).is_none());

        let run = p.run(Some(&moto), &["apply", "--auto-approve"]);
        run.expect_code(0);
        assert!(
            run.stdout.contains(&format!("! {victim}")),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("adopted into state"), "{}", run.stdout);
        assert_converged(&moto, &p, &name).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_dash_nine_at_any_point_then_apply_again_converges() {
    let moto = Moto::start();
    // Kill after 0 (during the first create), 2, 5 and 8 recorded resources.
    let mut mid_apply_kills = 0;
    for after in [0usize, 2, 5, 8] {
        let name = format!("kill-{after}");
        let p = Project::new();
        p.write("net.toml", &stack(&name));
        let mut child = p
            .cmd(
                Some(&moto),
                &["apply", "--auto-approve", "--parallelism", "2"],
            )
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = p.state_now(&name).map(|s| {
                let journal = s["journal"].as_array().map(|j| j.len()).unwrap_or(0);
                let done = s["resources"].as_object().map(|r| r.len()).unwrap_or(0);
                (done, journal)
            });
            if matches!(n, Some((done, journal)) if done >= after && journal > 0) {
                mid_apply_kills += 1;
                break;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        p.run(Some(&moto), &["apply", "--auto-approve"])
            .expect_code(0);
        assert_converged(&moto, &p, &name).await;
    }
    // The poll can lose a race with a fast emulator now and then; most kills
    // must still land with an AWS mutation in flight.
    assert!(
        mid_apply_kills >= 2,
        "only {mid_apply_kills} of 4 kills landed mid-apply"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_between_the_halves_of_a_replacement_leaves_one_copy() {
    let moto = Moto::start();
    let p = Project::new();
    let text = |cidr: &str| {
        format!(
            "[stack]\nname = \"halves\"\nregion = \"us-east-1\"\n\n[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n\
             [subnet.a]\nvpc_id = \"${{vpc.main.id}}\"\ncidr_block = \"{cidr}\"\navailability_zone = \"us-east-1a\"\n"
        )
    };
    p.write("net.toml", &text("10.0.1.0/24"));
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let old = p.state_json("halves")["resources"]["subnet.a"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Create-before-delete replacement, killed right after the new copy exists.
    p.write("net.toml", &text("10.0.9.0/24"));
    let mut cmd = p.cmd(Some(&moto), &["apply", "--auto-approve"]);
    cmd.env("RECONCILE_TEST_CRASH_AFTER_CREATE", "subnet.a");
    assert!(!cmd.output().unwrap().status.success());
    let state = p.state_json("halves");
    assert_eq!(
        state["deposed"][0]["id"],
        old.as_str(),
        "the old copy stays tracked: {state}"
    );
    let ec2 = moto.ec2().await;
    let copies = || async {
        ec2.describe_subnets()
            .filters(
                Filter::builder()
                    .name("tag:reconcile:address")
                    .values("subnet.a")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .subnets()
            .iter()
            .map(|s| {
                (
                    s.subnet_id().unwrap().to_string(),
                    s.cidr_block().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(copies().await.len(), 2, "both copies exist after the crash");

    // The next apply adopts the new copy and deletes the old one: no third copy.
    let run = p.run(Some(&moto), &["apply", "--auto-approve", "--timings"]);
    run.expect_code(0);
    assert!(!run.stdout.contains("CreateSubnet"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("0 created, 0 updated, 1 deleted, 1 adopted"),
        "{}",
        run.stdout
    );
    let left = copies().await;
    assert_eq!(left.len(), 1, "{left:?}\n{}", run.stdout);
    assert_ne!(left[0].0, old);
    assert_eq!(left[0].1, "10.0.9.0/24");
    let state = p.state_json("halves");
    assert_eq!(state["resources"]["subnet.a"]["id"], left[0].0.as_str());
    assert!(state["deposed"].as_array().unwrap().is_empty());
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
}

/// A create killed while its request is still on the wire is retried with the
/// same idempotency token, so an API that honours tokens (CreateRouteTable,
/// CreateNatGateway) returns the resource the first attempt made.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_create_is_retried_with_its_journalled_token() {
    use common::proxy::Proxy;
    let moto = Moto::start();
    // The first CreateRouteTable is held long enough to kill the apply and
    // run the next one; moto ignores the token, so only the requests are checked.
    let proxy = Proxy::start_with_delay(
        &moto,
        |_, _| None,
        |action, nth| {
            if action == "CreateRouteTable" && nth == 1 {
                Duration::from_secs(10)
            } else {
                Duration::ZERO
            }
        },
    );
    let p = Project::new();
    p.write(
        "net.toml",
        "[stack]\nname = \"token\"\nregion = \"us-east-1\"\n\n[vpc.main]\ncidr_block = \"10.0.0.0/16\"\n\n\
         [route_table.main]\nvpc_id = \"${vpc.main.id}\"\n",
    );
    let mut cmd = p.cmd(None, &["apply", "--auto-approve"]);
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let token = loop {
        let journalled = p.state_now("token").and_then(|s| {
            s["journal"]
                .as_array()?
                .iter()
                .find(|j| j["address"] == "route_table.main")
                .and_then(|j| j["token"].as_str().map(str::to_string))
        });
        if let (Some(t), 1) = (&journalled, proxy.count("CreateRouteTable")) {
            break t.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the route table create never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    child.kill().unwrap(); // SIGKILL while the request is held
    child.wait().unwrap();

    p.run_at(&proxy.url, &["apply", "--auto-approve"])
        .expect_code(0);
    let bodies = proxy.bodies("CreateRouteTable");
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    for b in &bodies {
        assert!(b.contains(&format!("ClientToken={token}")), "{b}");
    }
    assert!(p.state_json("token")["journal"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// The process dies inside a state write: halfway through a journal line,
/// or after a fold's snapshot but before the journal it folds is removed.
/// The next apply loses no acknowledged step and replays nothing twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_inside_a_journal_append_or_a_fold_loses_nothing() {
    let moto = Moto::start();
    for (n, point) in ["append:2", "append:6", "fold:2"].into_iter().enumerate() {
        let name = format!("torn-{n}");
        let p = Project::new();
        p.write("net.toml", &stack(&name));
        let out = p
            .cmd(Some(&moto), &["apply", "--auto-approve"])
            .env("RECONCILE_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(
            out.status.code().is_none(),
            "{point}: the process was to die, it exited with {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let journal = std::fs::read(p.state_dir().join(format!("{name}.journal"))).unwrap();
        if point.starts_with("append") {
            assert_ne!(journal.last(), Some(&b'\n'), "{point}: a torn last line");
        } else {
            assert!(
                !journal.is_empty(),
                "{point}: the folded journal is still there"
            );
        }
        let r = p.run(Some(&moto), &["apply", "--auto-approve"]);
        assert_eq!(r.code, 0, "{point}: {}", r.all());
        assert_converged(&moto, &p, &name).await;
    }
}
