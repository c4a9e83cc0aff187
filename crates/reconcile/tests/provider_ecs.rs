//! The ecs_cluster, ecs_task_definition and ecs_service providers, called
//! directly through the library against a private moto server: create, observe,
//! update in place, replace-forcing changes, the convergence update after a
//! service create (moto drops the circuit breaker, ECS Exec and the grace
//! period), duplicate names, deletes, and what observing costs in AWS calls.
//! What exists is checked with an independent ECS client.

mod common;

use indexmap::IndexMap;
use reconcile_aws::ecs::ecs_cluster::EcsCluster;
use reconcile_aws::ecs::ecs_service::EcsService;
use reconcile_aws::ecs::ecs_task_definition::EcsTaskDefinition;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider, StatusSink};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::sync::{Arc, Mutex};

const STACK: &str = "ecs-test";

async fn connect(moto: &common::Moto) -> Cx {
    let opts = AwsOptions {
        region: common::REGION.into(),
        endpoint_url: Some(moto.url.clone()),
    };
    Cx::connect(&opts, STACK, CallCounter::default()).await
}

/// An ECS client independent of reconcile's own.
async fn ecs_client(moto: &common::Moto) -> aws_sdk_ecs::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await;
    aws_sdk_ecs::Client::new(&conf)
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(fields(pairs))
}

fn strs(v: &[&str]) -> Value {
    Value::List(v.iter().map(|s| Value::str(*s)).collect())
}

fn tags(address: &str) -> IndexMap<String, String> {
    let mut t = IndexMap::new();
    t.insert("Project".to_string(), "proxy-smart".to_string());
    t.insert("reconcile:stack".to_string(), STACK.to_string());
    t.insert("reconcile:address".to_string(), address.to_string());
    t
}

fn tags_value(t: &IndexMap<String, String>) -> Value {
    Value::Map(
        t.iter()
            .map(|(k, v)| (k.clone(), Value::str(v.clone())))
            .collect(),
    )
}

/// The changes the planner would find (reconcile's own settings left out).
fn changes(
    p: &dyn Provider,
    want: &Fields,
    t: &IndexMap<String, String>,
    live: &Observed,
) -> Vec<FieldChange> {
    let mut want: Fields = want
        .iter()
        .filter(|(k, _)| !p.schema().field(k).is_some_and(|f| f.local))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    want.insert("tags".into(), tags_value(t));
    let mut have = live.fields.clone();
    have.insert("tags".into(), tags_value(&live.tags));
    p.diff(&want, &have)
}

async fn create(p: &dyn Provider, cx: &Cx, address: &str, f: &Fields) -> Result<Observed, String> {
    let t = tags(address);
    let want = Desired {
        address,
        fields: f,
        tags: &t,
        token: "t",
        replacing: None,
    };
    p.create(cx, &want).await.map_err(|e| e.to_string())
}

async fn update(p: &dyn Provider, cx: &Cx, address: &str, live: &Observed, f: &Fields) -> Observed {
    let t = tags(address);
    let ch = changes(p, f, &t, live);
    assert!(!ch.is_empty(), "{address}: the update test needs a change");
    assert!(
        ch.iter().all(|c| !c.forces_replace),
        "{address}: {ch:?} would force a replacement"
    );
    let want = Desired {
        address,
        fields: f,
        tags: &t,
        token: "t",
        replacing: None,
    };
    p.update(cx, live, &want, &ch)
        .await
        .unwrap_or_else(|e| panic!("update {address}: {e}"))
}

async fn observe_one(p: &dyn Provider, cx: &Cx, id: &str) -> Option<Observed> {
    let mut found = p.observe(cx, &[id.to_string()]).await.expect("observe");
    assert!(found.len() <= 1, "observe {id} answered {found:?}");
    found.remove(id)
}

/// Observes `id` and checks it is what was asked for, tags included.
async fn assert_live(
    p: &dyn Provider,
    cx: &Cx,
    address: &str,
    id: &str,
    want: &Fields,
) -> Observed {
    let live = observe_one(p, cx, id)
        .await
        .unwrap_or_else(|| panic!("{id} is not observed"));
    let diff = changes(p, want, &tags(address), &live);
    assert!(diff.is_empty(), "{id}: live differs from desired: {diff:?}");
    live
}

/// Calls made by `cx` since `before`, by operation.
fn calls_since(
    cx: &Cx,
    before: &std::collections::BTreeMap<(String, String), u64>,
) -> Vec<(String, u64)> {
    cx.calls
        .snapshot()
        .into_iter()
        .filter_map(|(k, n)| {
            let d = n - before.get(&k).copied().unwrap_or(0);
            (d > 0).then_some((k.1, d))
        })
        .collect()
}

fn cluster_fields(name: &str, insights: &str) -> Fields {
    fields(&[
        ("name", Value::str(name)),
        ("container_insights", Value::str(insights)),
    ])
}

fn container(image: &str) -> Value {
    map(&[
        ("name", Value::str("keycloak")),
        ("image", Value::str(image)),
        ("essential", Value::Bool(true)),
        ("command", strs(&["start", "--optimized"])),
        (
            "port_mappings",
            Value::List(vec![map(&[
                ("container_port", Value::Int(8080)),
                ("protocol", Value::str("tcp")),
            ])]),
        ),
        (
            "environment",
            map(&[
                ("KC_HTTP_ENABLED", Value::str("true")),
                ("KC_DB", Value::str("postgres")),
                ("KC_HEALTH_ENABLED", Value::str("true")),
            ]),
        ),
        (
            "secrets",
            map(&[(
                "KC_DB_PASSWORD",
                Value::str(
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:password::",
                ),
            )]),
        ),
        (
            "health_check",
            map(&[
                (
                    "command",
                    strs(&[
                        "CMD-SHELL",
                        "curl -f http://localhost:8080/health/ready || exit 1",
                    ]),
                ),
                ("interval", Value::Int(30)),
                ("timeout", Value::Int(10)),
                ("retries", Value::Int(3)),
                ("start_period", Value::Int(120)),
            ]),
        ),
        (
            "log_configuration",
            map(&[
                ("log_driver", Value::str("awslogs")),
                (
                    "options",
                    map(&[
                        ("awslogs-group", Value::str("/ecs/keycloak")),
                        ("awslogs-region", Value::str("us-east-1")),
                        ("awslogs-stream-prefix", Value::str("keycloak")),
                    ]),
                ),
            ]),
        ),
        ("memory_reservation", Value::Int(1024)),
    ])
}

fn task_fields(family: &str, image: &str) -> Fields {
    fields(&[
        ("family", Value::str(family)),
        ("cpu", Value::str("1 vCPU")),
        ("memory", Value::str("2048")),
        ("network_mode", Value::str("awsvpc")),
        (
            "execution_role_arn",
            Value::str("arn:aws:iam::123456789012:role/keycloak-execution"),
        ),
        (
            "runtime_platform",
            map(&[
                ("operating_system_family", Value::str("LINUX")),
                ("cpu_architecture", Value::str("ARM64")),
            ]),
        ),
        ("containers", Value::List(vec![container(image)])),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_create_observe_update_insights_duplicate_and_delete() {
    let moto = Moto::start();
    let cx = connect(&moto).await;
    let ecs = ecs_client(&moto).await;
    let p = &EcsCluster;

    let want = cluster_fields("proxy-smart", "disabled");
    let made = create(p, &cx, "ecs_cluster.main", &want).await.unwrap();
    assert!(made.id.ends_with(":cluster/proxy-smart"), "{}", made.id);
    assert_eq!(made.attributes["name"], Value::str("proxy-smart"));
    assert_live(p, &cx, "ecs_cluster.main", &made.id, &want).await;
    let found = p
        .find_tagged(&cx, &["ecs_cluster.main".to_string()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.id, made.id);

    // Container Insights in place.
    let want = cluster_fields("proxy-smart", "enhanced");
    let after = update(p, &cx, "ecs_cluster.main", &made, &want).await;
    assert_eq!(after.id, made.id);
    assert_live(p, &cx, "ecs_cluster.main", &made.id, &want).await;
    let c = ecs
        .describe_clusters()
        .clusters(&made.id)
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .unwrap();
    let s = &c.clusters()[0].settings()[0];
    assert_eq!(s.value(), Some("enhanced"));

    // Another address with the same name is refused; the same address adopts.
    let e = create(p, &cx, "ecs_cluster.copy", &want).await.unwrap_err();
    assert!(
        e.contains("ecs_cluster.copy")
            && e.contains("reconcile import")
            && e.contains("proxy-smart"),
        "{e}"
    );
    let again = create(p, &cx, "ecs_cluster.main", &want).await.unwrap();
    assert_eq!(again.id, made.id);
    assert_eq!(
        ecs.list_clusters()
            .send()
            .await
            .unwrap()
            .cluster_arns()
            .len(),
        1
    );

    // Observing many clusters is one call.
    let mut ids = vec![made.id.clone()];
    for i in 0..3 {
        let o = create(
            p,
            &cx,
            &format!("ecs_cluster.c{i}"),
            &cluster_fields(&format!("c{i}"), "enabled"),
        )
        .await
        .unwrap();
        ids.push(o.id);
    }
    let before = cx.calls.snapshot();
    let seen = p.observe(&cx, &ids).await.unwrap();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        calls_since(&cx, &before),
        [("DescribeClusters".to_string(), 1)]
    );

    p.delete(&cx, &made.id).await.unwrap();
    assert!(observe_one(p, &cx, &made.id).await.is_none());
    let c = ecs
        .describe_clusters()
        .clusters(&made.id)
        .send()
        .await
        .unwrap();
    assert_eq!(c.clusters()[0].status(), Some("INACTIVE"));
    p.delete(&cx, &made.id)
        .await
        .expect("deleting twice is fine");
}

use common::Moto;

#[tokio::test(flavor = "multi_thread")]
async fn task_definition_registers_observes_clean_and_a_new_image_forces_a_new_revision() {
    let moto = Moto::start();
    let cx = connect(&moto).await;
    let ecs = ecs_client(&moto).await;
    let p = &EcsTaskDefinition;

    let want = task_fields("keycloak", "quay.io/keycloak/keycloak:26.5");
    let made = create(p, &cx, "ecs_task_definition.keycloak", &want)
        .await
        .unwrap();
    assert!(
        made.id.ends_with(":task-definition/keycloak:1"),
        "{}",
        made.id
    );
    assert_eq!(made.attributes["revision"], Value::Int(1));
    assert_eq!(made.attributes["family"], Value::str("keycloak"));
    let live = assert_live(p, &cx, "ecs_task_definition.keycloak", &made.id, &want).await;

    // What ECS really holds, read independently.
    let td = ecs
        .describe_task_definition()
        .task_definition(&made.id)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let def = td.task_definition().unwrap();
    assert_eq!(def.cpu(), Some("1024"));
    let c = &def.container_definitions()[0];
    assert_eq!(c.environment().len(), 3);
    assert_eq!(c.secrets()[0].name(), "KC_DB_PASSWORD");
    assert_eq!(c.health_check().unwrap().start_period(), Some(120));
    assert!(td
        .tags()
        .iter()
        .any(|t| t.key() == Some("reconcile:address")
            && t.value() == Some("ecs_task_definition.keycloak")));

    // A new image is a replace-forcing change of `containers`; so is a role dropped.
    let newer = task_fields("keycloak", "quay.io/keycloak/keycloak:26.6");
    let ch = changes(p, &newer, &tags("ecs_task_definition.keycloak"), &live);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(ch[0].field, "containers");
    assert!(ch[0].forces_replace);
    assert!(p.create_before_destroy(&ch));
    let mut no_role = want.clone();
    no_role.shift_remove("execution_role_arn");
    let ch = changes(p, &no_role, &tags("ecs_task_definition.keycloak"), &live);
    assert!(
        ch.len() == 1 && ch[0].field == "execution_role_arn" && ch[0].forces_replace,
        "{ch:?}"
    );

    // The new revision exists beside the old until the old is deregistered.
    let second = create(p, &cx, "ecs_task_definition.keycloak", &newer)
        .await
        .unwrap();
    assert!(
        second.id.ends_with(":task-definition/keycloak:2"),
        "{}",
        second.id
    );
    let before = cx.calls.snapshot();
    let both = p
        .observe(&cx, &[made.id.clone(), second.id.clone()])
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    // No batch describe exists for task definitions: one call per revision.
    assert_eq!(
        calls_since(&cx, &before),
        [("DescribeTaskDefinition".to_string(), 2)]
    );

    // Tags change in place.
    let mut t = tags("ecs_task_definition.keycloak");
    t.insert("Owner".into(), "platform".into());
    let want_t = Desired {
        address: "ecs_task_definition.keycloak",
        fields: &newer,
        tags: &t,
        token: "t",
        replacing: None,
    };
    let tag_change = vec![FieldChange::new("tags", None, None, false)];
    p.update(&cx, &second, &want_t, &tag_change).await.unwrap();
    let o = observe_one(p, &cx, &second.id).await.unwrap();
    assert_eq!(o.tags.get("Owner").map(String::as_str), Some("platform"));

    // An interrupted registration is found by its tags (the family's newest).
    let found = p
        .find_tagged(&cx, &["ecs_task_definition.keycloak".to_string()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.id, second.id);

    p.delete(&cx, &made.id).await.unwrap();
    assert!(observe_one(p, &cx, &made.id).await.is_none());
    let old = ecs
        .describe_task_definition()
        .task_definition(&made.id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.task_definition().unwrap().status(),
        Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Inactive)
    );
    p.delete(&cx, &made.id)
        .await
        .expect("deregistering twice is fine");
    assert!(observe_one(p, &cx, &second.id).await.is_some());
}

/// A VPC, two subnets, a security group (with cx.ec2) and an ip target group
/// (with cx.elbv2).
async fn network(cx: &Cx) -> (Vec<String>, String, String) {
    let vpc = cx
        .ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let s = cx
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone(az)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let sg = cx
        .ec2
        .create_security_group()
        .group_name("keycloak")
        .description("keycloak tasks")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    let tg = cx
        .elbv2
        .create_target_group()
        .name("keycloak")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    (subnets, sg, tg)
}

fn service_fields(name: &str, cluster: &str, td: &str, subnets: &[String], sg: &str) -> Fields {
    fields(&[
        ("name", Value::str(name)),
        ("cluster", Value::str(cluster)),
        ("task_definition", Value::str(td)),
        ("desired_count", Value::Int(1)),
        ("launch_type", Value::str("FARGATE")),
        (
            "subnets",
            Value::List(subnets.iter().map(Value::str).collect()),
        ),
        ("security_groups", Value::List(vec![Value::str(sg)])),
        ("assign_public_ip", Value::Bool(false)),
        ("enable_execute_command", Value::Bool(false)),
        ("propagate_tags", Value::str("NONE")),
        ("wait_for_steady_state", Value::Bool(false)),
    ])
}

async fn services_named(ecs: &aws_sdk_ecs::Client, cluster: &str) -> usize {
    let arns = ecs
        .list_services()
        .cluster(cluster)
        .send()
        .await
        .unwrap()
        .service_arns()
        .to_vec();
    if arns.is_empty() {
        return 0;
    }
    ecs.describe_services()
        .cluster(cluster)
        .set_services(Some(arns))
        .send()
        .await
        .unwrap()
        .services()
        .iter()
        .filter(|s| s.status() == Some("ACTIVE"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn service_create_converges_updates_in_place_refuses_duplicates_and_observes_in_one_call() {
    let moto = Moto::start();
    let mut cx = connect(&moto).await;
    let ecs = ecs_client(&moto).await;
    let (subnets, sg, tg) = network(&cx).await;
    let cluster = create(
        &EcsCluster,
        &cx,
        "ecs_cluster.main",
        &cluster_fields("proxy-smart", "enabled"),
    )
    .await
    .unwrap();
    let td1 = create(
        &EcsTaskDefinition,
        &cx,
        "ecs_task_definition.keycloak",
        &task_fields("keycloak", "quay.io/keycloak/keycloak:26.5"),
    )
    .await
    .unwrap();
    let td2 = create(
        &EcsTaskDefinition,
        &cx,
        "ecs_task_definition.keycloak",
        &task_fields("keycloak", "quay.io/keycloak/keycloak:26.6"),
    )
    .await
    .unwrap();
    let p = &EcsService;

    let mut want = service_fields("keycloak", "proxy-smart", &td1.id, &subnets, &sg);
    want.insert(
        "deployment_circuit_breaker".into(),
        map(&[
            ("enable", Value::Bool(true)),
            ("rollback", Value::Bool(true)),
        ]),
    );
    want.insert("deployment_minimum_healthy_percent".into(), Value::Int(100));
    want.insert("deployment_maximum_percent".into(), Value::Int(200));
    want.insert("enable_execute_command".into(), Value::Bool(true));
    want.insert("health_check_grace_period_seconds".into(), Value::Int(60));
    want.insert(
        "load_balancers".into(),
        Value::List(vec![map(&[
            ("target_group_arn", Value::str(&tg)),
            ("container_name", Value::str("keycloak")),
            ("container_port", Value::Int(8080)),
        ])]),
    );
    let made = create(p, &cx, "ecs_service.keycloak", &want).await.unwrap();
    assert!(
        made.id.ends_with(":service/proxy-smart/keycloak"),
        "{}",
        made.id
    );
    assert_eq!(made.attributes["cluster"], Value::str(&cluster.id));

    // What moto's CreateService dropped was set right after, as an independent
    // client sees.
    let s = ecs
        .describe_services()
        .cluster("proxy-smart")
        .services(&made.id)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    let dc = s
        .deployment_configuration()
        .expect("deployment configuration");
    let cb = dc.deployment_circuit_breaker().expect("circuit breaker");
    assert!(cb.enable() && cb.rollback());
    assert_eq!(dc.minimum_healthy_percent(), Some(100));
    assert_eq!(dc.maximum_percent(), Some(200));
    assert!(s.enable_execute_command());
    assert_eq!(s.health_check_grace_period_seconds(), Some(60));
    assert_eq!(s.load_balancers()[0].target_group_arn(), Some(tg.as_str()));
    assert_eq!(
        s.launch_type(),
        Some(&aws_sdk_ecs::types::LaunchType::Fargate)
    );
    let vpc = s
        .network_configuration()
        .unwrap()
        .awsvpc_configuration()
        .unwrap();
    assert_eq!(vpc.subnets().len(), 2);
    assert_eq!(vpc.security_groups(), std::slice::from_ref(&sg));
    // The next plan is clean; the cluster may be named by its name.
    let live = assert_live(p, &cx, "ecs_service.keycloak", &made.id, &want).await;

    // desired_count and task_definition in place; reconcile waits for the
    // steady state it asks for, reporting it.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    cx.status = StatusSink::new(move |a, s| s2.lock().unwrap().push(format!("{a}: {s}")));
    let mut want2 = want.clone();
    want2.insert("desired_count".into(), Value::Int(3));
    want2.insert("task_definition".into(), Value::str(&td2.id));
    want2.insert("wait_for_steady_state".into(), Value::Bool(true));
    let after = update(p, &cx, "ecs_service.keycloak", &live, &want2).await;
    assert_eq!(after.id, made.id);
    assert_eq!(
        *seen.lock().unwrap(),
        ["ecs_service.keycloak: 3/3 tasks running, steady"]
    );
    let s = ecs
        .describe_services()
        .cluster(&cluster.id)
        .services(&made.id)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    assert_eq!(s.desired_count(), 3);
    assert_eq!(s.task_definition(), Some(td2.id.as_str()));
    assert!(
        s.enable_execute_command(),
        "an update keeps what it did not touch"
    );
    let live = assert_live(p, &cx, "ecs_service.keycloak", &made.id, &want2).await;

    // A desired_count an autoscaler changed is drift only if it is managed:
    // the planner drops it with ignore_changes, which this diff shows.
    ecs.update_service()
        .cluster("proxy-smart")
        .service("keycloak")
        .desired_count(4)
        .send()
        .await
        .unwrap();
    let drifted = observe_one(p, &cx, &made.id).await.unwrap();
    let ch = changes(p, &want2, &tags("ecs_service.keycloak"), &drifted);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].field, "desired_count");
    let _ = live;

    // Another address with the same name in the same cluster is refused, and
    // nothing is created; the same address adopts what is there.
    let e = create(p, &cx, "ecs_service.copy", &want).await.unwrap_err();
    assert!(
        e.contains("ecs_service.copy") && e.contains("reconcile import") && e.contains("keycloak"),
        "{e}"
    );
    assert_eq!(services_named(&ecs, "proxy-smart").await, 1);
    let again = create(p, &cx, "ecs_service.keycloak", &want2)
        .await
        .unwrap();
    assert_eq!(again.id, made.id);
    assert_eq!(services_named(&ecs, "proxy-smart").await, 1);

    // Observing N services of a cluster is one DescribeServices call.
    let mut ids = vec![made.id.clone()];
    for i in 0..4 {
        let f = service_fields(&format!("worker{i}"), &cluster.id, &td2.id, &subnets, &sg);
        ids.push(
            create(p, &cx, &format!("ecs_service.worker{i}"), &f)
                .await
                .unwrap()
                .id,
        );
    }
    let before = cx.calls.snapshot();
    let all = p.observe(&cx, &ids).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(
        calls_since(&cx, &before),
        [("DescribeServices".to_string(), 1)]
    );
    let found = p.find_tagged(&cx, &[]).await.unwrap();
    assert_eq!(found.len(), 5);

    // Delete: scaled to 0, deleted, INACTIVE; the cluster can go after.
    for id in &ids {
        p.delete(&cx, id).await.unwrap();
        assert!(observe_one(p, &cx, id).await.is_none());
    }
    assert_eq!(services_named(&ecs, "proxy-smart").await, 0);
    let gone = ecs
        .describe_services()
        .cluster("proxy-smart")
        .services(&made.id)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.services()[0].status(), Some("INACTIVE"));
    assert_eq!(gone.services()[0].desired_count(), 0);
    p.delete(&cx, &made.id)
        .await
        .expect("deleting twice is fine");
    EcsCluster.delete(&cx, &cluster.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_without_its_cluster_or_subnets_is_refused_naming_the_address() {
    let moto = Moto::start();
    let cx = connect(&moto).await;
    let mut f = service_fields("api", "nowhere", "td:1", &[], "sg-1");
    let e = create(&EcsService, &cx, "ecs_service.api", &f)
        .await
        .unwrap_err();
    assert!(
        e.contains("ecs_service.api") && e.contains("subnets"),
        "{e}"
    );
    f.insert("subnets".into(), strs(&["subnet-1"]));
    let e = create(&EcsService, &cx, "ecs_service.api", &f)
        .await
        .unwrap_err();
    assert!(
        e.contains("ecs_service.api") && e.contains("Cluster"),
        "{e}"
    );
}
