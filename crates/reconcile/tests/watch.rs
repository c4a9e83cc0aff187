//! `reconcile watch` end to end: the real daemon against a private moto server,
//! with a short interval; out-of-band changes are made with an independent SDK
//! client, events are read from its JSON log and numbers from its `/metrics`.

mod common;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, Tag, TagSpecification};
use common::{Moto, Project};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

fn stack_toml(stack: &str, env: &str) -> String {
    format!(
        r#"
[stack]
name = "{stack}"
region = "us-east-1"
tags = {{ Environment = "{env}" }}

[vpc.main]
cidr_block = "10.0.0.0/16"
enable_dns_hostnames = true

[subnet.a]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[security_group.web]
name = "{stack}-web"
vpc_id = "${{vpc.main.id}}"
ingress = [{{ protocol = "tcp", from_port = 443, to_port = 443, cidr_block = "0.0.0.0/0" }}]
"#
    )
}

/// A running `reconcile watch`, its JSON events arriving on a channel.
struct Watcher {
    child: Child,
    events: Receiver<Value>,
    /// Every event seen so far, for failure messages.
    seen: Vec<Value>,
    metrics: Option<String>,
}

impl Watcher {
    fn start(p: &Project, moto: &Moto, args: &[&str]) -> Watcher {
        let mut all = vec![
            "watch",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ];
        if !args.contains(&"--interval") {
            all.extend(["--interval", "1s"]);
        }
        all.extend_from_slice(args);
        let mut child = p
            .cmd(Some(moto), &all)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start reconcile watch");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut w = Watcher {
            child,
            events: rx,
            seen: vec![],
            metrics: None,
        };
        let started = w.wait_for("started", Duration::from_secs(20), |_| true);
        w.metrics = started["metrics_addr"].as_str().map(str::to_string);
        w
    }

    /// The next event named `event` that `pred` accepts, within `timeout`.
    fn wait_for(&mut self, event: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["event"] == event && pred(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "no `{event}` event within {timeout:?}; saw:\n{}",
                    self.seen
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    }

    /// Waits for the end of the next cycle and returns its summary.
    fn next_cycle(&mut self) -> Value {
        self.wait_for("cycle", Duration::from_secs(30), |_| true)
    }

    fn get(&self, path: &str) -> (u16, String) {
        let addr = self.metrics.as_deref().expect("metrics endpoint");
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        let code = body
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, body)
    }

    fn sigterm(&mut self) -> (Option<i32>, Duration) {
        let t = Instant::now();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s.code(), t.elapsed());
            }
            if t.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                panic!("watch did not exit within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn vpc_of(ec2: &aws_sdk_ec2::Client, stack: &str) -> String {
    let out = ec2
        .describe_vpcs()
        .filters(
            Filter::builder()
                .name("tag:reconcile:stack")
                .values(stack)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.vpcs()[0].vpc_id().unwrap().to_string()
}

async fn dns_hostnames(ec2: &aws_sdk_ec2::Client, vpc: &str) -> bool {
    ec2.describe_vpc_attribute()
        .vpc_id(vpc)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap()
        .enable_dns_hostnames()
        .and_then(|a| a.value())
        .unwrap_or(false)
}

async fn set_dns_hostnames(ec2: &aws_sdk_ec2::Client, vpc: &str, on: bool) {
    ec2.modify_vpc_attribute()
        .vpc_id(vpc)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(on).build())
        .send()
        .await
        .unwrap();
}

fn apply(p: &Project, moto: &Moto) {
    p.run(Some(moto), &["apply", "--auto-approve"])
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_reported_in_the_log_and_metrics_and_aws_is_left_alone() {
    let moto = Moto::start();
    let p = Project::new();
    p.write("watched.toml", &stack_toml("watched", "prod"));
    apply(&p, &moto);
    let ec2 = moto.ec2().await;
    let vpc = vpc_of(&ec2, "watched").await;

    let mut w = Watcher::start(&p, &moto, &[]);
    let first = w.next_cycle();
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["differences"], 0, "{first}");
    let (code, body) = w.get("/readyz");
    assert_eq!(code, 200, "{body}");
    assert_eq!(w.get("/healthz").0, 200);

    // Someone switches DNS hostnames off in the console.
    set_dns_hostnames(&ec2, &vpc, false).await;
    let drift = w.wait_for("drift", Duration::from_secs(10), |v| {
        v["address"] == "vpc.main"
    });
    assert_eq!(drift["stack"], "watched");
    assert_eq!(drift["kind"], "vpc");
    assert_eq!(drift["id"], vpc.as_str());
    let change = &drift["changes"][0];
    assert_eq!(change["field"], "enable_dns_hostnames", "{drift}");
    assert_eq!(change["old"], "false");
    assert_eq!(change["new"], "true");
    w.next_cycle();

    let (_, metrics) = w.get("/metrics");
    assert!(
        metrics.contains("reconcile_drifted_resources{stack=\"watched\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("reconcile_cycles_total "), "{metrics}");
    assert!(metrics.contains("reconcile_last_successful_cycle_timestamp_seconds "));
    assert!(metrics.contains("reconcile_cycle_duration_seconds_count "));
    assert!(
        metrics.contains("reconcile_aws_calls_total{service=\"EC2\",operation=\"DescribeVpcs\"}"),
        "{metrics}"
    );

    // Report-only: the drift stays, and nothing was remediated.
    w.next_cycle();
    assert!(!dns_hostnames(&ec2, &vpc).await);
    assert!(w.seen.iter().all(|e| e["event"] != "remediated"));
    assert!(!metrics.contains("reconcile_remediation_actions_total{"));

    let (code, elapsed) = w.sigterm();
    assert_eq!(code, Some(0));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn remediate_reverts_a_change_and_recreates_a_deleted_resource() {
    let moto = Moto::start();
    let p = Project::new();
    p.write("healing.toml", &stack_toml("healing", "prod"));
    apply(&p, &moto);
    let ec2 = moto.ec2().await;
    let vpc = vpc_of(&ec2, "healing").await;
    let state = p.state_json("healing");
    let sg = state["resources"]["security_group.web"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut w = Watcher::start(&p, &moto, &["--remediate"]);
    w.next_cycle();
    set_dns_hostnames(&ec2, &vpc, false).await;
    ec2.delete_security_group()
        .group_id(&sg)
        .send()
        .await
        .unwrap();

    let mut repaired = false;
    for _ in 0..3 {
        w.wait_for("cycle", Duration::from_secs(30), |_| true);
        let new_sg = p.state_json("healing")["resources"]["security_group.web"]["id"]
            .as_str()
            .map(str::to_string);
        if dns_hostnames(&ec2, &vpc).await && new_sg.as_deref().is_some_and(|s| s != sg) {
            repaired = true;
            break;
        }
    }
    assert!(repaired, "not repaired within two cycles; saw {:?}", w.seen);
    let rem = w
        .seen
        .iter()
        .find(|e| e["event"] == "remediated")
        .expect("a remediated event");
    assert_eq!(rem["failed"].as_array().unwrap().len(), 0, "{rem}");
    let groups = ec2
        .describe_security_groups()
        .filters(
            Filter::builder()
                .name("tag:reconcile:address")
                .values("security_group.web")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(groups.security_groups().len(), 1, "exactly one copy");
    let (_, metrics) = w.get("/metrics");
    assert!(
        metrics
            .contains("reconcile_remediation_actions_total{stack=\"healing\",action=\"create\"} 1"),
        "{metrics}"
    );

    // Repaired: the next cycle finds nothing.
    let c = w.next_cycle();
    assert_eq!(c["differences"], 0, "{c}");
    assert_eq!(w.sigterm().0, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn toml_edits_are_picked_up_and_a_broken_edit_keeps_the_last_good_version() {
    let moto = Moto::start();
    let p = Project::new();
    let file = p.write("edited.toml", &stack_toml("edited", "prod"));
    apply(&p, &moto);
    let mut w = Watcher::start(&p, &moto, &[]);
    assert_eq!(w.next_cycle()["differences"], 0);

    // A tag edit: every taggable resource now differs from its desired tags.
    std::fs::write(&file, stack_toml("edited", "staging")).unwrap();
    let pending = w.wait_for("pending", Duration::from_secs(10), |v| {
        v["address"] == "vpc.main"
    });
    assert_eq!(pending["action"], "update");
    assert!(
        pending["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "tags"),
        "{pending}"
    );
    let c = w.next_cycle();
    assert!(c["differences"].as_u64().unwrap() >= 3, "{c}");

    // A broken edit is reported and the last good version keeps being watched.
    std::fs::write(
        &file,
        "[stack]\nname = \"edited\"\nregion = \"us-east-1\"\n[vpc.main\ncidr_block = \"10.0.0.0/16\"\n",
    )
    .unwrap();
    let invalid = w.wait_for("invalid", Duration::from_secs(10), |_| true);
    assert_eq!(invalid["using"], "the last valid version");
    let problems = invalid["problems"].as_array().unwrap();
    assert!(
        problems[0].as_str().unwrap().contains("edited.toml:4:"),
        "{invalid}"
    );
    let c = w.next_cycle();
    assert_eq!(c["ok"], true, "{c}");
    assert!(c["differences"].as_u64().unwrap() >= 3, "{c}");
    assert_eq!(w.sigterm().0, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_tagged_with_the_stack_but_not_in_state_are_reported_unmanaged() {
    let moto = Moto::start();
    let p = Project::new();
    p.write("tagged.toml", &stack_toml("tagged", "prod"));
    apply(&p, &moto);
    let ec2 = moto.ec2().await;
    let ghost = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .tags(
                    Tag::builder()
                        .key("reconcile:stack")
                        .value("tagged")
                        .build(),
                )
                .tags(
                    Tag::builder()
                        .key("reconcile:address")
                        .value("vpc.copy")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ghost_id = ghost.vpc().unwrap().vpc_id().unwrap().to_string();

    let mut w = Watcher::start(&p, &moto, &[]);
    let u = w.wait_for("unmanaged", Duration::from_secs(10), |_| true);
    assert_eq!(u["id"], ghost_id.as_str());
    assert_eq!(u["address"], "vpc.copy");
    assert_eq!(u["kind"], "vpc");
    w.next_cycle();
    let (_, metrics) = w.get("/metrics");
    assert!(
        metrics.contains("reconcile_unmanaged_resources{stack=\"tagged\"} 1"),
        "{metrics}"
    );
    assert_eq!(w.sigterm().0, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn once_exits_0_without_drift_2_with_drift_and_1_on_error() {
    let moto = Moto::start();
    let p = Project::new();
    p.write("cron.toml", &stack_toml("cron", "prod"));
    apply(&p, &moto);
    let once = |p: &Project| p.run(Some(&moto), &["watch", "--once", "--log-format", "json"]);
    let r = once(&p);
    assert_eq!(r.code, 0, "{}", r.all());

    let ec2 = moto.ec2().await;
    let vpc = vpc_of(&ec2, "cron").await;
    set_dns_hostnames(&ec2, &vpc, false).await;
    let r = once(&p);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("\"event\":\"drift\""), "{}", r.all());
    assert!(r.stdout.contains("\"address\":\"vpc.main\""));
    // Report-only: still drifted.
    assert!(!dns_hostnames(&ec2, &vpc).await);

    // --remediate with --once repairs, and a second run finds nothing.
    let r = p.run(Some(&moto), &["watch", "--once", "--remediate"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(dns_hostnames(&ec2, &vpc).await);
    assert_eq!(once(&p).code, 0);

    // A stack that cannot be read (and has no earlier good version) is an error.
    p.write(
        "cron.toml",
        "[stack]\nname = \"cron\"\nregion = \"us-east-1\"\n[vpc.main]\ncidr_block = 12\n",
    );
    let r = once(&p);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("\"event\":\"invalid\""), "{}", r.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_the_wait_exits_zero_at_once() {
    let moto = Moto::start();
    let p = Project::new();
    p.write("quiet.toml", &stack_toml("quiet", "prod"));
    apply(&p, &moto);
    let mut w = Watcher::start(&p, &moto, &["--interval", "1h"]);
    w.next_cycle();
    let (code, elapsed) = w.sigterm();
    assert_eq!(code, Some(0));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // No lock is left behind: an apply can run right away.
    p.run(Some(&moto), &["plan"]).expect_code(0);
}

/// Events of several replicas, whichever speaks first.
fn next_of(ws: &mut [&mut Watcher], event: &str, timeout: Duration) -> (usize, Value) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for (i, w) in ws.iter_mut().enumerate() {
            while let Ok(v) = w.events.try_recv() {
                w.seen.push(v.clone());
                if v["event"] == event {
                    return (i, v);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no `{event}` event from any replica within {timeout:?}");
}

/// Two replicas remediating one stack whose state is in S3: only the lease
/// holder repairs; killed, the other takes the stack over and repairs the
/// drift made after the kill, once.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_a_stack_and_the_survivor_takes_it_over() {
    let moto = Moto::start();
    common::set_fake_credentials();
    let s3 = common::s3(&moto).await;
    s3.create_bucket().bucket("ha-state").send().await.unwrap();
    let p = Project::new();
    p.write(
        "ha.toml",
        "[stack]\nname = \"ha\"\nregion = \"us-east-1\"\nstate = \"s3://ha-state/w\"\n\n[log_group.api]\nname = \"/ha/api\"\nretention_in_days = 30\n",
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk().await);
    let retention = || async {
        logs.describe_log_groups()
            .log_group_name_prefix("/ha/api")
            .send()
            .await
            .unwrap()
            .log_groups()[0]
            .retention_in_days()
    };

    let mut a = Watcher::start(&p, &moto, &["--remediate"]);
    let mut b = Watcher::start(&p, &moto, &["--remediate"]);
    let (holder, taken) = next_of(
        &mut [&mut a, &mut b],
        "lease_taken",
        Duration::from_secs(20),
    );
    let replica = taken["replica"].as_str().unwrap().to_string();
    let (mut holder_w, mut other) = if holder == 0 { (a, b) } else { (b, a) };
    let (_, metrics) = holder_w.get("/metrics");
    assert!(
        metrics.contains(&format!("reconcile_stack_lease_holder{{stack=\"ha\",holder=\"{replica}\",replica=\"{replica}\"}} 1")),
        "{metrics}"
    );

    // Drift while both run: the holder repairs it, the other does not.
    logs.put_retention_policy()
        .log_group_name("/ha/api")
        .retention_in_days(7)
        .send()
        .await
        .unwrap();
    holder_w.wait_for("remediated", Duration::from_secs(20), |v| {
        v["stack"] == "ha"
    });
    assert_eq!(retention().await, Some(30));
    other.next_cycle();
    other.next_cycle();
    assert!(
        other.seen.iter().all(|e| e["event"] != "remediated"),
        "only the holder remediates"
    );

    // The holder dies; drift made afterwards is repaired by the survivor.
    holder_w.child.kill().unwrap();
    holder_w.child.wait().unwrap();
    let killed = Instant::now();
    logs.put_retention_policy()
        .log_group_name("/ha/api")
        .retention_in_days(14)
        .send()
        .await
        .unwrap();
    let took = other.wait_for("lease_taken", Duration::from_secs(20), |v| {
        v["stack"] == "ha"
    });
    assert!(
        took["took_over_from"]
            .as_str()
            .is_some_and(|h| h.contains("`reconcile watch`")),
        "{took}"
    );
    other.wait_for("remediated", Duration::from_secs(20), |v| {
        v["stack"] == "ha"
    });
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "taken over and repaired {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(retention().await, Some(30));
    other.next_cycle();
    other.next_cycle();
    let repairs = other
        .seen
        .iter()
        .filter(|e| e["event"] == "remediated")
        .count();
    assert_eq!(repairs, 1, "repaired once");
}
