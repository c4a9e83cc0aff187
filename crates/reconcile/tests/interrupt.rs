//! SIGTERM (or Ctrl-C) during an apply: the operation in flight finishes and is
//! recorded, nothing new starts, the exit code says so, and a second apply
//! finishes the job with nothing duplicated.

mod common;
use common::proxy::Proxy;
use common::{Moto, Project};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const STACK: &str = r#"
[stack]
name = "interrupt"
region = "us-east-1"

[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[subnet.c]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.3.0/24"
availability_zone = "us-east-1a"
"#;

async fn live_subnets(moto: &Moto) -> BTreeSet<String> {
    let f = aws_sdk_ec2::types::Filter::builder()
        .name("tag:reconcile:stack")
        .values("interrupt")
        .build();
    moto.ec2()
        .await
        .describe_subnets()
        .filters(f)
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_step_in_flight_and_starts_nothing_new() {
    let moto = Moto::start();
    // Each subnet create takes a second and a half: long enough to interrupt.
    let proxy = Proxy::start_with_delay(
        &moto,
        |_, _| None,
        |action, _| {
            if action == "CreateSubnet" {
                Duration::from_millis(1500)
            } else {
                Duration::ZERO
            }
        },
    );
    let p = Project::new();
    p.write("net.toml", STACK);
    let mut cmd = p.cmd(None, &["apply", "--auto-approve", "--parallelism", "1"]);
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();

    // Wait until a subnet create is in flight (journalled, not yet settled).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let in_flight = p.state_now("interrupt").is_some_and(|s| {
            s["journal"].as_array().is_some_and(|j| {
                j.iter()
                    .any(|e| e["kind"] == "subnet" && e["op"] == "create")
            })
        });
        if in_flight {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no subnet create was ever in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "exits promptly"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted;"), "{stderr}");
    assert!(stderr.contains("not started"), "{stderr}");
    assert!(stdout.contains("Apply INTERRUPTED"), "{stdout}");

    // The create in flight finished and was recorded; the rest never started.
    let state = p.state_json("interrupt");
    assert!(state["journal"].as_array().unwrap().is_empty(), "{state}");
    let tracked: BTreeSet<String> = state["resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(a, _)| a.starts_with("subnet."))
        .map(|(_, r)| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        tracked.len(),
        1,
        "exactly the subnet in flight was made: {state}"
    );
    assert_eq!(live_subnets(&moto).await, tracked, "nothing untracked");
    assert_eq!(proxy.count("CreateSubnet"), 1);

    // A second apply finishes the job.
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    assert_eq!(live_subnets(&moto).await.len(), 3);
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
}
