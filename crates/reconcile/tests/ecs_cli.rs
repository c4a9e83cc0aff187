//! ECS end to end with the real binary against moto: a VPC, two subnets, a
//! security group, a cluster, a Fargate task definition and a service are
//! applied from nothing and plan clean; a new image replaces the task
//! definition (new revision first), moves the service onto it in place and
//! deregisters the old revision; an autoscaler's desired count is left alone
//! with `ignore_changes`; destroy removes the service before the cluster.
//! Checked with an independent ECS client.

mod common;
use common::{Moto, Project};

const STACK: &str = "ecs-cli";

fn stack(image: &str, service_meta: &str) -> String {
    format!(
        r#"
[stack]
name = "{STACK}"
region = "us-east-1"
tags = {{ Project = "proxy-smart" }}

[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.a]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.b]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[security_group.app]
name = "ecs-cli-app"
vpc_id = "${{vpc.main.id}}"
ingress = [{{ protocol = "tcp", from_port = 8080, to_port = 8080, cidr_block = "10.0.0.0/16" }}]

[ecs_cluster.main]
name = "ecs-cli"
container_insights = "enabled"

[ecs_task_definition.app]
family = "ecs-cli-app"
cpu = "512"
memory = "1 GB"
execution_role_arn = "arn:aws:iam::123456789012:role/ecs-cli-execution"
containers = [{{
  name = "app",
  image = "{image}",
  command = ["start", "--optimized"],
  port_mappings = [{{ container_port = 8080 }}],
  environment = {{ KC_HTTP_ENABLED = "true", KC_DB = "postgres" }},
  secrets = {{ KC_DB_PASSWORD = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:password::" }},
  health_check = {{ command = ["CMD-SHELL", "curl -f http://localhost:8080/health/ready || exit 1"], start_period = 120 }},
  log_configuration = {{ log_driver = "awslogs", options = {{ "awslogs-group" = "/ecs/app", "awslogs-region" = "us-east-1", "awslogs-stream-prefix" = "app" }} }},
}}]

[ecs_service.app]
name = "app"
cluster = "${{ecs_cluster.main.arn}}"
task_definition = "${{ecs_task_definition.app.arn}}"
desired_count = 2
subnets = ["${{subnet.a.id}}", "${{subnet.b.id}}"]
security_groups = ["${{security_group.app.id}}"]
deployment_circuit_breaker = {{ enable = true, rollback = true }}
enable_execute_command = true
health_check_grace_period_seconds = 60
{service_meta}
"#
    )
}

async fn ecs(moto: &Moto) -> aws_sdk_ecs::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await;
    aws_sdk_ecs::Client::new(&conf)
}

async fn service(ecs: &aws_sdk_ecs::Client) -> aws_sdk_ecs::types::Service {
    ecs.describe_services()
        .cluster("ecs-cli")
        .services("app")
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone()
}

async fn revision_status(ecs: &aws_sdk_ecs::Client, arn: &str) -> String {
    ecs.describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .status()
        .unwrap()
        .as_str()
        .to_string()
}

fn steps(run: &common::Run) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("plan --json: {e}\n{}", run.stdout));
    doc["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "no_op")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fargate_service_rolls_to_a_new_revision_and_is_destroyed_before_its_cluster() {
    let moto = Moto::start();
    let ecs = ecs(&moto).await;
    let p = Project::new();
    p.write("ecs.toml", &stack("quay.io/keycloak/keycloak:26.5", ""));

    p.run(None, &["validate"]).expect_code(0);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let clean = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    clean.expect_code(0);

    let s = service(&ecs).await;
    let first = s.task_definition().unwrap().to_string();
    assert!(first.ends_with(":task-definition/ecs-cli-app:1"), "{first}");
    assert_eq!(s.desired_count(), 2);
    assert!(s.enable_execute_command());
    assert_eq!(s.health_check_grace_period_seconds(), Some(60));
    let cb = s
        .deployment_configuration()
        .and_then(|d| d.deployment_circuit_breaker())
        .expect("circuit breaker set");
    assert!(cb.enable() && cb.rollback());
    let state = p.state_json(STACK);
    assert_eq!(
        state["resources"]["ecs_service.app"]["id"],
        s.service_arn().unwrap()
    );
    assert_eq!(
        state["resources"]["ecs_task_definition.app"]["id"],
        first.as_str()
    );

    // A new image: the task definition is replaced (new revision first) and the
    // service moves onto it in place; nothing else changes.
    p.write("ecs.toml", &stack("quay.io/keycloak/keycloak:26.6", ""));
    let run = p.run(Some(&moto), &["plan", "--json", "--detailed-exitcode"]);
    run.expect_code(2);
    let changed = steps(&run);
    assert_eq!(changed.len(), 2, "{changed:#?}");
    let td = changed
        .iter()
        .find(|s| s["address"] == "ecs_task_definition.app")
        .expect("task definition step");
    assert_eq!(td["action"], "replace");
    assert_eq!(td["create_before_destroy"], true);
    let forcing: Vec<&str> = td["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(forcing, ["containers"]);
    let svc = changed
        .iter()
        .find(|s| s["address"] == "ecs_service.app")
        .expect("service step");
    assert_eq!(svc["action"], "update");
    let fields: Vec<&str> = svc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["task_definition"]);
    let human = p.run(Some(&moto), &["plan"]);
    assert!(
        human.stdout.contains("-/+ ecs_task_definition.app"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("create before delete"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("~   ecs_service.app"),
        "{}",
        human.stdout
    );

    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let s = service(&ecs).await;
    let second = s.task_definition().unwrap().to_string();
    assert!(
        second.ends_with(":task-definition/ecs-cli-app:2"),
        "{second}"
    );
    assert_eq!(revision_status(&ecs, &second).await, "ACTIVE");
    assert_eq!(revision_status(&ecs, &first).await, "INACTIVE");
    let td = ecs
        .describe_task_definition()
        .task_definition(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(
        td.task_definition().unwrap().container_definitions()[0].image(),
        Some("quay.io/keycloak/keycloak:26.6")
    );
    assert_eq!(
        p.state_json(STACK)["resources"]["ecs_task_definition.app"]["id"],
        second.as_str()
    );
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);

    // An autoscaler changes desired_count: drift, unless left to it.
    ecs.update_service()
        .cluster("ecs-cli")
        .service("app")
        .desired_count(4)
        .send()
        .await
        .unwrap();
    let run = p.run(Some(&moto), &["plan", "--json", "--detailed-exitcode"]);
    run.expect_code(2);
    let changed = steps(&run);
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0]["changes"][0]["field"], "desired_count");
    p.write(
        "ecs.toml",
        &stack(
            "quay.io/keycloak/keycloak:26.6",
            "ignore_changes = [\"desired_count\"]",
        ),
    );
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    assert_eq!(
        service(&ecs).await.desired_count(),
        4,
        "left to the autoscaler"
    );

    // Destroy: the service goes before its cluster, nothing is left.
    let run = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    run.expect_code(0);
    let s = service(&ecs).await;
    assert_eq!(s.status(), Some("INACTIVE"));
    let c = ecs
        .describe_clusters()
        .clusters("ecs-cli")
        .send()
        .await
        .unwrap();
    assert_eq!(c.clusters()[0].status(), Some("INACTIVE"));
    assert_eq!(revision_status(&ecs, &second).await, "INACTIVE");
    let active = ecs
        .list_task_definitions()
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    assert!(active.task_definition_arns().is_empty(), "{active:?}");
    assert!(common::tagged_ids(&moto.ec2().await, STACK)
        .await
        .is_empty());
    let state = p.state_json(STACK);
    assert!(
        state["resources"].as_object().is_none_or(|r| r.is_empty()),
        "{state}"
    );
    // The order: the service's delete finished before the cluster's began.
    let out = run.all();
    let svc_done = out
        .find("ecs_service.app: deleted")
        .expect("service deleted");
    let cluster_starts = out
        .find("ecs_cluster.main: deleting")
        .expect("cluster deleted");
    assert!(svc_done < cluster_starts, "{out}");
}

#[test]
fn bad_ecs_declarations_are_refused_with_positions_before_any_call() {
    let p = Project::new();
    p.write(
        "bad.toml",
        r#"
[stack]
name = "ecs-bad"
region = "us-east-1"

[ecs_task_definition.app]
family = "app"
cpu = "1024"
memory = "1024"
containers = [
  { name = "app", image = "nginx", health_check = { command = ["curl", "localhost"] } },
  { name = "app", image = "nginx" },
]

[ecs_service.app]
name = "app"
cluster = "main"
task_definition = "${ecs_task_definition.app.arn}"
deployment_minimum_healthy_percent = 150
"#,
    );
    let sentinel = common::Sentinel::new();
    let run = p.run_at(&sentinel.url, &["validate"]);
    run.expect_code(1);
    let out = run.all();
    for want in [
        "does not pair cpu 1024 with memory 1024",
        "two containers are named \"app\"",
        "starts with CMD, CMD-SHELL or NONE",
        "needs `subnets`",
        "deployment_minimum_healthy_percent is 150; AWS takes 0 to 100",
        "bad.toml:9:",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    sentinel.assert_no_call();
}
