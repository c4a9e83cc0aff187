//! The Proxy Smart seed complete (network, database, Keycloak and backend on
//! Fargate behind HTTPS load balancers with WAF) and CareBow's API, applied
//! from nothing against moto and checked with independent SDK clients; an
//! image change, out-of-band edits, and the order in which destroy deletes.

mod common;
use common::proxy::Proxy;
use common::{Moto, Project, REGION};
use serde_json::Value;

struct Clients {
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    waf: aws_sdk_wafv2::Client,
    acm: aws_sdk_acm::Client,
}

async fn clients(moto: &Moto) -> Clients {
    let c = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&moto.url)
        .load()
        .await;
    Clients {
        ecs: aws_sdk_ecs::Client::new(&c),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&c),
        waf: aws_sdk_wafv2::Client::new(&c),
        acm: aws_sdk_acm::Client::new(&c),
    }
}

const STACK: &str = "desired-state/proxy-smart";

fn apply(p: &Project, moto: &Moto) {
    let r = p.run(Some(moto), &["apply", STACK, "--auto-approve"]);
    assert_eq!(r.code, 0, "apply:\n{}", r.all());
}

fn plan_code(p: &Project, moto: &Moto) -> (i32, String) {
    let r = p.run(Some(moto), &["plan", STACK, "--detailed-exitcode"]);
    (r.code, r.all())
}

fn plan_json(p: &Project, moto: &Moto) -> Value {
    let r = p.run(Some(moto), &["plan", STACK, "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str(&r.stdout).unwrap()
}

/// (address, action) of every step that is not a no-op.
fn changes(plan: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "no_op")
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn state_id(p: &Project, address: &str) -> String {
    p.state_json("proxy-smart")["resources"][address]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{address} is not in state"))
        .to_string()
}

async fn listeners(
    c: &Clients,
    lb_arn: &str,
) -> Vec<aws_sdk_elasticloadbalancingv2::types::Listener> {
    let mut l = c
        .elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .unwrap()
        .listeners()
        .to_vec();
    l.sort_by_key(|x| x.port());
    l
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_smart_builds_the_whole_system_and_replans_clean() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("proxy-smart");
    p.maxhealth_zone(&moto).await;
    apply(&p, &moto);
    let (code, out) = plan_code(&p, &moto);
    assert_eq!(code, 0, "second plan is not clean:\n{out}");

    let c = clients(&moto).await;
    // The cluster and both services, on Fargate, with their task definitions.
    let clusters = c
        .ecs
        .describe_clusters()
        .clusters("proxy-smart-production")
        .send()
        .await
        .unwrap();
    assert_eq!(clusters.clusters().len(), 1);
    assert_eq!(clusters.clusters()[0].status(), Some("ACTIVE"));
    let services = c
        .ecs
        .describe_services()
        .cluster("proxy-smart-production")
        .services("proxy-smart-keycloak")
        .services("proxy-smart-backend")
        .send()
        .await
        .unwrap();
    assert_eq!(services.services().len(), 2, "{services:?}");
    for s in services.services() {
        assert_eq!(s.status(), Some("ACTIVE"));
        assert_eq!(
            s.launch_type(),
            Some(&aws_sdk_ecs::types::LaunchType::Fargate)
        );
        assert_eq!(s.desired_count(), 1);
        assert!(s.enable_execute_command());
        let cb = s
            .deployment_configuration()
            .and_then(|d| d.deployment_circuit_breaker())
            .expect("circuit breaker");
        assert!(cb.enable() && cb.rollback());
        let vpc = s
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .unwrap();
        assert_eq!(vpc.subnets().len(), 2);
        assert_eq!(s.load_balancers().len(), 1);
    }
    let keycloak_td = state_id(&p, "ecs_task_definition.keycloak");
    let td = c
        .ecs
        .describe_task_definition()
        .task_definition(&keycloak_td)
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!(td.cpu(), Some("1024"));
    assert_eq!(td.memory(), Some("2048"));
    assert!(td
        .requires_compatibilities()
        .contains(&aws_sdk_ecs::types::Compatibility::Fargate));
    let kc = &td.container_definitions()[0];
    assert_eq!(kc.image(), Some("quay.io/keycloak/keycloak:26.5"));
    assert_eq!(kc.secrets().len(), 4);
    let db_secret = state_id(&p, "secret.db_credentials");
    assert!(kc.secrets().iter().any(
        |s| s.name() == "KC_DB_PASSWORD" && s.value_from() == format!("{db_secret}:password::")
    ));
    let url = kc
        .environment()
        .iter()
        .find(|e| e.name() == Some("KC_DB_URL"))
        .and_then(|e| e.value())
        .unwrap();
    assert!(
        url.starts_with("jdbc:postgresql://proxy-smart-keycloak."),
        "{url}"
    );
    let backend_svc = services
        .services()
        .iter()
        .find(|s| s.service_name() == Some("proxy-smart-backend"))
        .unwrap();
    let btd = c
        .ecs
        .describe_task_definition()
        .task_definition(backend_svc.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    let btd = btd.task_definition().unwrap();
    assert_eq!((btd.cpu(), btd.memory()), (Some("512"), Some("1024")));
    assert_eq!(
        btd.container_definitions()[0].port_mappings()[0].container_port(),
        Some(8445)
    );

    // Listeners (TLS 1.3 policy, redirect), health checks, each LB's web ACL.
    for (lb, health, acl) in [
        ("keycloak", "/health/ready", "proxy-smart-keycloak"),
        ("backend", "/health", "proxy-smart-backend"),
    ] {
        let lb_arn = state_id(&p, &format!("load_balancer.{lb}"));
        let ls = listeners(&c, &lb_arn).await;
        assert_eq!(ls.len(), 2, "{lb}: {ls:?}");
        assert_eq!(ls[0].port(), Some(80));
        let redirect = ls[0].default_actions()[0].redirect_config().unwrap();
        assert_eq!(redirect.protocol(), Some("HTTPS"));
        assert_eq!(redirect.port(), Some("443"));
        assert_eq!(
            redirect.status_code(),
            Some(&aws_sdk_elasticloadbalancingv2::types::RedirectActionStatusCodeEnum::Http301)
        );
        assert_eq!(ls[1].port(), Some(443));
        assert!(ls[1].ssl_policy().unwrap().contains("TLS13"), "{:?}", ls[1]);
        let tg_arn = state_id(&p, &format!("target_group.{lb}"));
        let tg = c
            .elb
            .describe_target_groups()
            .target_group_arns(&tg_arn)
            .send()
            .await
            .unwrap();
        let tg = &tg.target_groups()[0];
        assert_eq!(tg.health_check_path(), Some(health));
        assert_eq!(tg.matcher().and_then(|m| m.http_code()), Some("200"));
        let web = c
            .waf
            .get_web_acl_for_resource()
            .resource_arn(&lb_arn)
            .send()
            .await
            .unwrap();
        assert_eq!(web.web_acl().map(|w| w.name()), Some(acl), "{lb}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_keycloak_image_is_a_new_revision_and_a_service_update() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("proxy-smart");
    p.maxhealth_zone(&moto).await;
    apply(&p, &moto);
    let old_td = state_id(&p, "ecs_task_definition.keycloak");

    let file = p.path().join("desired-state/proxy-smart/keycloak.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("quay.io/keycloak/keycloak:26.5"));
    std::fs::write(&file, text.replace("keycloak:26.5", "keycloak:26.5.1")).unwrap();

    let plan = plan_json(&p, &moto);
    assert_eq!(
        changes(&plan),
        [
            ("ecs_service.keycloak".to_string(), "update".to_string()),
            (
                "ecs_task_definition.keycloak".to_string(),
                "replace".to_string()
            ),
        ]
    );
    let svc_step = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"] == "ecs_service.keycloak")
        .unwrap();
    let fields: Vec<&str> = svc_step["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["task_definition"]);

    apply(&p, &moto);
    let new_td = state_id(&p, "ecs_task_definition.keycloak");
    assert_ne!(new_td, old_td);
    let c = clients(&moto).await;
    let svc = c
        .ecs
        .describe_services()
        .cluster("proxy-smart-production")
        .services("proxy-smart-keycloak")
        .send()
        .await
        .unwrap();
    assert_eq!(svc.services()[0].task_definition(), Some(new_td.as_str()));
    let old = c
        .ecs
        .describe_task_definition()
        .task_definition(&old_td)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.task_definition().unwrap().status(),
        Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Inactive),
        "the old revision is deregistered once the service moved"
    );
    assert_eq!(plan_code(&p, &moto).0, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_certificate_and_a_waf_rule_changed_outside_are_repaired() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("proxy-smart");
    p.maxhealth_zone(&moto).await;
    apply(&p, &moto);
    let c = clients(&moto).await;
    let listener = state_id(&p, "listener.keycloak_https");
    let cert = state_id(&p, "certificate.keycloak");

    // Someone swaps the certificate and drops a managed rule group.
    let other = c
        .acm
        .request_certificate()
        .domain_name("someone-else.example.com")
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    c.elb
        .modify_listener()
        .listener_arn(&listener)
        .certificates(
            aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
                .certificate_arn(&other)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let acls = c
        .waf
        .list_web_acls()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .unwrap();
    let summary = acls
        .web_acls()
        .iter()
        .find(|a| a.name() == Some("proxy-smart-keycloak"))
        .unwrap();
    let got = c
        .waf
        .get_web_acl()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .name("proxy-smart-keycloak")
        .id(summary.id().unwrap())
        .send()
        .await
        .unwrap();
    let acl = got.web_acl().unwrap();
    let kept: Vec<_> = acl
        .rules()
        .iter()
        .filter(|r| r.name() != "AWSManagedRulesKnownBadInputsRuleSet")
        .cloned()
        .collect();
    assert_eq!(kept.len(), 1);
    c.waf
        .update_web_acl()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .name(acl.name())
        .id(acl.id())
        .lock_token(got.lock_token().unwrap())
        .set_default_action(acl.default_action().cloned())
        .set_visibility_config(acl.visibility_config().cloned())
        .set_rules(Some(kept))
        .send()
        .await
        .unwrap();

    let (code, out) = plan_code(&p, &moto);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("listener.keycloak_https"), "{out}");
    assert!(out.contains("certificate_arn"), "{out}");
    assert!(out.contains("web_acl.keycloak"), "{out}");
    assert!(out.contains("rules"), "{out}");
    assert!(out.contains("drift"), "{out}");

    apply(&p, &moto);
    let l = c
        .elb
        .describe_listeners()
        .listener_arns(&listener)
        .send()
        .await
        .unwrap();
    assert_eq!(
        l.listeners()[0].certificates()[0].certificate_arn(),
        Some(cert.as_str())
    );
    let got = c
        .waf
        .get_web_acl()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .name("proxy-smart-keycloak")
        .id(summary.id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(got.web_acl().unwrap().rules().len(), 2);
    assert_eq!(plan_code(&p, &moto).0, 0);
}

fn ops(requests: &[(String, String)]) -> Vec<&str> {
    requests.iter().map(|(o, _)| o.as_str()).collect()
}

/// Query-protocol bodies are form-encoded (`arn%3Aaws%3A...`); JSON ones are not.
fn percent_decoded(body: &str) -> String {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&body[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_deletes_in_an_order_aws_accepts() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("proxy-smart");
    p.maxhealth_zone(&moto).await;
    // A stack someone really means to tear down: protection lifted and applied first.
    for entry in std::fs::read_dir(p.path().join("desired-state/proxy-smart")).unwrap() {
        let path = entry.unwrap().path();
        // The function's code directory holds no TOML.
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("protect"))
            .map(|l| {
                if l.trim_start().starts_with("deletion_protection") {
                    "deletion_protection = false".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, text).unwrap();
    }
    apply(&p, &moto);
    // Ids known before the destroy, to find each resource's own delete request.
    let ids: std::collections::HashMap<String, String> = p.state_json("proxy-smart")["resources"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["id"].as_str().unwrap().to_string()))
        .collect();

    let proxy = Proxy::start(&moto, |_, _| None);
    let r = p
        .cmd(Some(&moto), &["destroy", STACK, "--auto-approve"])
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
    let requests: Vec<(String, String)> = proxy
        .requests()
        .into_iter()
        .map(|(op, body)| (op, percent_decoded(&body)))
        .collect();
    // The position of the request `op` that names `address`'s AWS id (or name).
    let at = |op: &str, address: &str| -> usize {
        let id = &ids[address];
        let short = id.rsplit('/').next().unwrap();
        requests
            .iter()
            .position(|(o, body)| {
                o == op && (body.contains(id.as_str()) || body.contains(&format!("\"{short}\"")))
            })
            .unwrap_or_else(|| panic!("no {op} for {address} ({id}) in {:?}", ops(&requests)))
    };
    let before = |a: (&str, &str), b: (&str, &str)| {
        assert!(
            at(a.0, a.1) < at(b.0, b.1),
            "{} {} should come before {} {}: {:?}",
            a.0,
            a.1,
            b.0,
            b.1,
            ops(&requests)
        );
    };
    for side in ["keycloak", "backend"] {
        let svc = format!("ecs_service.{side}");
        let td = format!("ecs_task_definition.{side}");
        let tg = format!("target_group.{side}");
        let lb = format!("load_balancer.{side}");
        let https = format!("listener.{side}_https");
        let http = format!("listener.{side}_http");
        let acl = format!("web_acl.{side}");
        let cert = format!("certificate.{side}");
        let role = format!("iam_role.{side}_execution");
        // A service goes before its cluster, target group and task definition.
        before(
            ("DeleteService", &svc),
            ("DeleteCluster", "ecs_cluster.main"),
        );
        before(("DeleteService", &svc), ("DeleteTargetGroup", &tg));
        before(("DeleteService", &svc), ("DeregisterTaskDefinition", &td));
        // The task definition before the role it names.
        before(("DeregisterTaskDefinition", &td), ("DeleteRole", &role));
        // The web ACL comes off the load balancer before either is deleted.
        before(("DisassociateWebACL", &lb), ("DeleteWebACL", &acl));
        before(("DisassociateWebACL", &lb), ("DeleteLoadBalancer", &lb));
        // Listeners before their load balancer, target group and certificate.
        for l in [&https, &http] {
            before(("DeleteListener", l), ("DeleteLoadBalancer", &lb));
        }
        before(("DeleteListener", &https), ("DeleteTargetGroup", &tg));
        before(("DeleteListener", &https), ("DeleteCertificate", &cert));
        // Everything in a subnet before the subnet.
        for subnet in ["subnet.public_a", "subnet.public_b"] {
            before(("DeleteLoadBalancer", &lb), ("DeleteSubnet", subnet));
        }
        before(
            ("DeleteLoadBalancer", &lb),
            ("DeleteSecurityGroup", "security_group.alb"),
        );
    }
    for subnet in ["subnet.isolated_a", "subnet.isolated_b"] {
        before(
            ("DeleteDBSubnetGroup", "db_subnet_group.keycloak"),
            ("DeleteSubnet", subnet),
        );
    }
    before(
        ("DeleteDBInstance", "db_instance.keycloak"),
        ("DeleteDBSubnetGroup", "db_subnet_group.keycloak"),
    );
    before(
        ("DeleteDBInstance", "db_instance.keycloak"),
        ("DeleteSecurityGroup", "security_group.db"),
    );
    for subnet in ["subnet.public_a", "subnet.private_a", "subnet.isolated_b"] {
        before(("DeleteSubnet", subnet), ("DeleteVpc", "vpc.main"));
    }

    let state = p.state_json("proxy-smart");
    assert_eq!(state["resources"].as_object().unwrap().len(), 0);
    let c = clients(&moto).await;
    let lbs = c.elb.describe_load_balancers().send().await.unwrap();
    assert!(lbs.load_balancers().is_empty());
    let acls = c
        .waf
        .list_web_acls()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .unwrap();
    assert!(acls.web_acls().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn carebow_api_runs_two_tasks_behind_its_load_balancer() {
    let moto = Moto::start();
    let p = Project::new();
    p.copy_seed("carebow");
    let r = p.run(
        Some(&moto),
        &["apply", "desired-state/carebow", "--auto-approve"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let r = p.run(
        Some(&moto),
        &["plan", "desired-state/carebow", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "{}", r.all());

    let c = clients(&moto).await;
    let svc = c
        .ecs
        .describe_services()
        .cluster("carebow")
        .services("carebow-api")
        .send()
        .await
        .unwrap();
    let svc = &svc.services()[0];
    assert_eq!(svc.desired_count(), 2);
    let td = c
        .ecs
        .describe_task_definition()
        .task_definition(svc.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!((td.cpu(), td.memory()), (Some("512"), Some("1024")));
    let tgs = c
        .elb
        .describe_target_groups()
        .names("carebow-api")
        .send()
        .await
        .unwrap();
    assert_eq!(tgs.target_groups()[0].health_check_path(), Some("/healthz"));
}
