//! ECS autoscaling end to end with the real binary against moto: a cluster, a
//! service, a scalable target and a target tracking policy are applied from
//! nothing and plan clean; the service's task count moved outside reconcile
//! (as the autoscaler would) stays out of the plan, which says who manages it;
//! removing the target deregisters it and makes the task count managed again;
//! bounds the wrong way round are refused offline; a remediating watch leaves
//! the autoscaler's count alone cycle after cycle. Checked with independent
//! ECS and Application Auto Scaling clients.

mod common;
use common::{Moto, Project, Sentinel};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

const STACK: &str = "scaling";
const DIMENSION: &str = "ecs:service:DesiredCount";

const SERVICE: &str = r#"
[stack]
name = "scaling"
region = "us-east-1"
tags = { Project = "proxy-smart" }

[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[security_group.app]
name = "scaling-app"
vpc_id = "${vpc.main.id}"

[ecs_cluster.main]
name = "scaling"

[ecs_task_definition.app]
family = "scaling-app"
cpu = "256"
memory = "512"
containers = [{ name = "app", image = "nginx", port_mappings = [{ container_port = 80 }] }]

[ecs_service.api]
name = "api"
cluster = "${ecs_cluster.main.arn}"
task_definition = "${ecs_task_definition.app.arn}"
desired_count = 2
subnets = ["${subnet.a.id}"]
security_groups = ["${security_group.app.id}"]
"#;

fn scaling(min: i64, max: i64) -> String {
    format!(
        r#"
[appautoscaling_target.api]
resource_id = "service/${{ecs_cluster.main.name}}/${{ecs_service.api.name}}"
min_capacity = {min}
max_capacity = {max}

[appautoscaling_policy.cpu]
name = "api-cpu"
resource_id = "${{appautoscaling_target.api.resource_id}}"
target_tracking = {{ target_value = 70, predefined_metric_type = "ECSServiceAverageCPUUtilization", scale_in_cooldown = 300, scale_out_cooldown = 60 }}
"#
    )
}

struct Clients {
    ecs: aws_sdk_ecs::Client,
    aas: aws_sdk_applicationautoscaling::Client,
}

async fn clients(moto: &Moto) -> Clients {
    let conf = moto.sdk().await;
    Clients {
        ecs: aws_sdk_ecs::Client::new(&conf),
        aas: aws_sdk_applicationautoscaling::Client::new(&conf),
    }
}

async fn desired_count(ecs: &aws_sdk_ecs::Client) -> i32 {
    ecs.describe_services()
        .cluster("scaling")
        .services("api")
        .send()
        .await
        .unwrap()
        .services()[0]
        .desired_count()
}

/// What the autoscaler does: moves the service's task count.
async fn scale_to(ecs: &aws_sdk_ecs::Client, n: i32) {
    ecs.update_service()
        .cluster("scaling")
        .service("api")
        .desired_count(n)
        .send()
        .await
        .unwrap();
}

async fn targets(aas: &aws_sdk_applicationautoscaling::Client) -> Vec<(String, i32, i32)> {
    aas.describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap()
        .scalable_targets()
        .iter()
        .map(|t| {
            (
                format!("{}|{}", t.resource_id(), t.scalable_dimension().as_str()),
                t.min_capacity(),
                t.max_capacity(),
            )
        })
        .collect()
}

fn plan_json(run: &common::Run) -> Value {
    serde_json::from_str::<Value>(&run.stdout)
        .unwrap_or_else(|e| panic!("plan --json: {e}\n{}", run.stdout))["plan"]
        .clone()
}

fn step<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"] == address)
        .unwrap_or_else(|| panic!("no step for {address}: {plan}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_autoscaler_owns_the_task_count_until_its_target_is_removed() {
    let moto = Moto::start();
    let c = clients(&moto).await;
    let p = Project::new();
    p.write("scaling.toml", &format!("{SERVICE}{}", scaling(1, 4)));

    p.run(None, &["validate"]).expect_code(0);
    let first = p.run(Some(&moto), &["plan"]);
    first.expect_code(0);
    assert!(
        first.stdout.contains(
            "desired_count is set at creation, then managed by appautoscaling_target.api"
        ),
        "{}",
        first.stdout
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);

    // What AWS now holds: the service with its declared count, the target, and
    // the policy with the two alarms AWS made for it.
    assert_eq!(desired_count(&c.ecs).await, 2);
    assert_eq!(
        targets(&c.aas).await,
        [(format!("service/scaling/api|{DIMENSION}"), 1, 4)]
    );
    let policies = c
        .aas
        .describe_scaling_policies()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    let policy = &policies.scaling_policies()[0];
    assert_eq!(policies.scaling_policies().len(), 1);
    assert_eq!(policy.policy_name(), "api-cpu");
    let tt = policy
        .target_tracking_scaling_policy_configuration()
        .unwrap();
    assert_eq!(tt.target_value(), 70.0);
    assert_eq!(tt.scale_in_cooldown(), Some(300));
    assert_eq!(tt.scale_out_cooldown(), Some(60));
    let state = p.state_json(STACK);
    let exported = &state["resources"]["appautoscaling_policy.cpu"]["attributes"];
    assert_eq!(exported["arn"], policy.policy_arn());
    let aws_alarms: Vec<&str> = policy.alarms().iter().map(|a| a.alarm_name()).collect();
    assert_eq!(aws_alarms.len(), 2, "{aws_alarms:?}");
    assert!(aws_alarms.iter().all(|a| a.starts_with("TargetTracking-")));
    let names: Vec<&str> = exported["alarm_names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|n| aws_alarms.contains(n)), "{names:?}");

    // Clean, and it says who owns the count.
    let clean = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    clean.expect_code(0);
    assert!(
        clean.stdout.contains(
            "desired_count is managed by appautoscaling_target.api: not compared with AWS"
        ),
        "{}",
        clean.stdout
    );

    // The autoscaler scales out: still clean, and apply leaves the count alone.
    scale_to(&c.ecs, 3).await;
    let run = p.run(Some(&moto), &["plan", "--json", "--detailed-exitcode"]);
    run.expect_code(0);
    let plan = plan_json(&run);
    let svc = step(&plan, "ecs_service.api");
    assert_eq!(svc["action"], "no_op", "{svc}");
    assert_eq!(
        svc["notes"][0],
        "desired_count is managed by appautoscaling_target.api: not compared with AWS"
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    assert_eq!(desired_count(&c.ecs).await, 3);

    // A new bound is an update of the target in place; the service's other
    // fields are still compared.
    p.write("scaling.toml", &format!("{SERVICE}{}", scaling(1, 6)));
    let run = p.run(Some(&moto), &["plan", "--json"]);
    let plan = plan_json(&run);
    assert_eq!(step(&plan, "appautoscaling_target.api")["action"], "update");
    assert_eq!(step(&plan, "ecs_service.api")["action"], "no_op");
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    assert_eq!(targets(&c.aas).await[0].2, 6);
    assert_eq!(desired_count(&c.ecs).await, 3);

    // Without the target and its policy the count is the stack's again.
    p.write("scaling.toml", SERVICE);
    let run = p.run(Some(&moto), &["plan"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(
            "desired_count is managed again: appautoscaling_target.api, which managed it, is no longer declared"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("desired_count 3 -> 2"),
        "{}",
        run.stdout
    );
    let plan = plan_json(&p.run(Some(&moto), &["plan", "--json"]));
    assert_eq!(step(&plan, "appautoscaling_target.api")["action"], "delete");
    assert_eq!(step(&plan, "appautoscaling_policy.cpu")["action"], "delete");
    assert_eq!(step(&plan, "ecs_service.api")["action"], "update");
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    assert!(targets(&c.aas).await.is_empty());
    assert_eq!(desired_count(&c.ecs).await, 2);
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);

    p.run(Some(&moto), &["destroy", "--auto-approve"])
        .expect_code(0);
}

#[test]
fn bounds_the_wrong_way_round_are_refused_offline_where_they_are_written() {
    let p = Project::new();
    let file = p.write("scaling.toml", &format!("{SERVICE}{}", scaling(5, 2)));
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("max_capacity = 2"))
        .unwrap()
        + 1;
    let sentinel = Sentinel::new();
    let run = p.run_at(&sentinel.url, &["validate"]);
    run.expect_code(1);
    sentinel.assert_no_call();
    let all = run.all();
    assert!(
        all.contains(&format!("scaling.toml:{line}:1")),
        "expected scaling.toml:{line}:1 in\n{all}"
    );
    assert!(
        all.contains("max_capacity 2 is below min_capacity 5"),
        "{all}"
    );
    assert!(!p.state_dir().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remediating_watch_leaves_the_autoscaler_s_count_alone() {
    let moto = Moto::start();
    let c = clients(&moto).await;
    let p = Project::new();
    p.write("scaling.toml", &format!("{SERVICE}{}", scaling(1, 4)));
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);

    let mut child = p
        .cmd(
            Some(&moto),
            &[
                "watch",
                "--interval",
                "1s",
                "--remediate",
                "--metrics-addr",
                "none",
                "--log-format",
                "json",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start reconcile watch");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str(&line) else {
                continue;
            };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<Value> = Vec::new();
    let next_cycle = |seen: &mut Vec<Value>| -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(v) => {
                    seen.push(v.clone());
                    if v["event"] == "cycle" {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("no cycle within 30 s; saw {seen:?}")
                }
            }
        }
    };

    // The test plays the autoscaler between cycles.
    for n in [3, 4, 1, 2] {
        scale_to(&c.ecs, n).await;
        // A cycle may have started before the move; the next one surely sees it.
        next_cycle(&mut seen);
        let cycle = next_cycle(&mut seen);
        assert_eq!(cycle["ok"], true, "{cycle}");
        assert_eq!(cycle["differences"], 0, "{cycle}");
        assert_eq!(desired_count(&c.ecs).await, n);
    }
    let _ = child.kill();
    let _ = child.wait();
    let noisy: Vec<&Value> = seen
        .iter()
        .filter(|e| {
            ["drift", "remediated", "unmanaged"].contains(&e["event"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(noisy.is_empty(), "{noisy:?}");
}
