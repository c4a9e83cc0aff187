//! The load balancer tier end to end: the real binary, through a recording
//! proxy in front of moto, applies a VPC with an internet gateway, two public
//! subnets, a security group, an Application Load Balancer, a target group, an
//! HTTPS listener (TLS 1.3 policy, an ACM certificate made beforehand and passed
//! with `--input`), an HTTP listener redirecting to HTTPS and a listener rule.
//! The next plan is clean and cheap; tags changed out of band are drift, and
//! repaired; an independent client checks what exists;
//! destroy removes everything, deleting rule, listeners, load balancer and
//! target group in that order (moto would accept most wrong orders, so the
//! order is read from the proxy's record).

mod common;
use common::proxy::Proxy;
use common::{Moto, Project};

const STACK: &str = r#"
[stack]
name = "alb"
region = "us-east-1"
tags = { Project = "proxy-smart" }

[input.cert_arn]
description = "The ACM certificate of auth.maxhealth.tech"

[vpc.main]
cidr_block = "10.0.0.0/16"
enable_dns_hostnames = true

[internet_gateway.main]
vpc_id = "${vpc.main.id}"

[subnet.public_a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.0.0/24"
availability_zone = "us-east-1a"
map_public_ip_on_launch = true

[subnet.public_b]
vpc_id = "${vpc.main.id}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1b"
map_public_ip_on_launch = true

[route_table.public]
vpc_id = "${vpc.main.id}"
routes = [{ destination_cidr_block = "0.0.0.0/0", gateway_id = "${internet_gateway.main.id}" }]
subnet_ids = ["${subnet.public_a.id}", "${subnet.public_b.id}"]

[security_group.alb]
name = "alb"
vpc_id = "${vpc.main.id}"
ingress = [
  { protocol = "tcp", from_port = 443, to_port = 443, cidr_block = "0.0.0.0/0" },
  { protocol = "tcp", from_port = 80, to_port = 80, cidr_block = "0.0.0.0/0" },
]

[load_balancer.web]
name = "proxy-smart-keycloak"
subnets = ["${subnet.public_a.id}", "${subnet.public_b.id}"]
security_groups = ["${security_group.alb.id}"]
drop_invalid_header_fields = true
depends_on = ["internet_gateway.main"]

[target_group.keycloak]
name = "proxy-smart-keycloak"
port = 8080
protocol = "HTTP"
vpc_id = "${vpc.main.id}"
health_check = { path = "/health/ready", matcher = "200-399", interval_seconds = 15 }
deregistration_delay = 30

[listener.https]
load_balancer_arn = "${load_balancer.web.arn}"
port = 443
protocol = "HTTPS"
ssl_policy = "ELBSecurityPolicy-TLS13-1-2-2021-06"
certificate_arn = "${input.cert_arn}"
default_action = { type = "forward", target_group_arn = "${target_group.keycloak.arn}" }

[listener.http]
load_balancer_arn = "${load_balancer.web.arn}"
port = 80
protocol = "HTTP"
default_action = { type = "redirect", protocol = "HTTPS", port = "443", status_code = "HTTP_301" }

[listener_rule.admin]
listener_arn = "${listener.https.arn}"
priority = 10
conditions = { host_header = ["auth.maxhealth.tech"], path_pattern = ["/admin/*"] }
action = { type = "fixed-response", status_code = "403", content_type = "text/plain", message_body = "not from here" }
"#;

async fn sdk_conf(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await
}

/// Index of the first and last request of `op` in the proxy's record.
fn span(actions: &[String], op: &str) -> (usize, usize) {
    let at: Vec<usize> = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == op)
        .map(|(i, _)| i)
        .collect();
    assert!(!at.is_empty(), "no {op} in {actions:?}");
    (at[0], *at.last().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_load_balancer_through_the_cli() {
    let moto = Moto::start();
    let conf = sdk_conf(&moto).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let acm = aws_sdk_acm::Client::new(&conf);
    let ec2 = moto.ec2().await;
    let cert = acm
        .request_certificate()
        .domain_name("auth.maxhealth.tech")
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    let input = format!("cert_arn={cert}");

    let p = Project::new();
    p.write("alb.toml", STACK);
    p.run(None, &["validate", "--input", &input]).expect_code(0);

    let proxy = Proxy::start(&moto, |_, _| None);
    let run = p.run_at(&proxy.url, &["apply", "--auto-approve", "--input", &input]);
    run.expect_code(0);

    // The next plan is clean, and costs one describe per ELBv2 kind (plus
    // tags, and attributes one resource a call).
    let before = proxy.actions().len();
    let run = p.run_at(
        &proxy.url,
        &["plan", "--detailed-exitcode", "--input", &input],
    );
    run.expect_code(0);
    let plan_calls: Vec<String> = proxy.actions()[before..].to_vec();
    let n = |op: &str| plan_calls.iter().filter(|a| *a == op).count();
    assert_eq!(n("DescribeLoadBalancers"), 1, "{plan_calls:?}");
    assert_eq!(n("DescribeTargetGroups"), 1, "{plan_calls:?}");
    assert_eq!(n("DescribeListeners"), 1, "{plan_calls:?}");
    assert_eq!(n("DescribeRules"), 1, "{plan_calls:?}");
    // The load balancer's and target group's tags come from the stack's one
    // Tagging API read; moto's Tagging API does not list listeners and rules,
    // so they still cost one DescribeTags each kind.
    assert_eq!(n("GetResources"), 1, "{plan_calls:?}");
    assert_eq!(n("DescribeTags"), 2, "{plan_calls:?}");
    assert_eq!(n("DescribeLoadBalancerAttributes"), 1, "{plan_calls:?}");
    assert_eq!(n("DescribeTargetGroupAttributes"), 1, "{plan_calls:?}");

    // Out of band: a tag of the load balancer changed (the Tagging API shows
    // it), and the target group's stack tag removed (the Tagging API no longer
    // lists it, so its own DescribeTags must). Both are drift, and repaired.
    let state = p.state_json("alb");
    let lb_arn = state["resources"]["load_balancer.web"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tg_arn = state["resources"]["target_group.keycloak"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    elb.add_tags()
        .resource_arns(&lb_arn)
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("Project")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .unwrap();
    elb.remove_tags()
        .resource_arns(&tg_arn)
        .tag_keys("reconcile:stack")
        .send()
        .await
        .unwrap();
    let run = p.run_at(
        &proxy.url,
        &["plan", "--detailed-exitcode", "--input", &input],
    );
    run.expect_code(2);
    for address in ["load_balancer.web", "target_group.keycloak"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(address))
            .unwrap_or_else(|| panic!("{address} not planned:\n{}", run.stdout));
        assert!(line.contains("drift"), "{line}\n{}", run.stdout);
    }
    assert!(run.stdout.contains("2 to update"), "{}", run.stdout);
    p.run_at(&proxy.url, &["apply", "--auto-approve", "--input", &input])
        .expect_code(0);
    let tags = elb
        .describe_tags()
        .resource_arns(&lb_arn)
        .resource_arns(&tg_arn)
        .send()
        .await
        .unwrap();
    for d in tags.tag_descriptions() {
        let has = |k: &str, v: &str| {
            d.tags()
                .iter()
                .any(|t| t.key() == Some(k) && t.value() == Some(v))
        };
        assert!(has("Project", "proxy-smart"), "{d:?}");
        assert!(has("reconcile:stack", "alb"), "{d:?}");
    }
    p.run_at(
        &proxy.url,
        &["plan", "--detailed-exitcode", "--input", &input],
    )
    .expect_code(0);

    // What exists, seen by an independent client.
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(lbs.load_balancers().len(), 1, "exactly one load balancer");
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.load_balancer_arn(), Some(lb_arn.as_str()));
    assert_eq!(lb.load_balancer_name(), Some("proxy-smart-keycloak"));
    assert_eq!(lb.availability_zones().len(), 2);
    let attrs = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .unwrap();
    assert!(attrs.attributes().iter().any(|a| a.key()
        == Some("routing.http.drop_invalid_header_fields.enabled")
        && a.value() == Some("true")));
    let tgs = elb.describe_target_groups().send().await.unwrap();
    assert_eq!(tgs.target_groups().len(), 1);
    let tg = &tgs.target_groups()[0];
    assert_eq!(tg.health_check_path(), Some("/health/ready"));
    assert_eq!(tg.matcher().and_then(|m| m.http_code()), Some("200-399"));
    assert_eq!(tg.health_check_interval_seconds(), Some(15));
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("ip"));
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 2);
    let https = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(443))
        .unwrap();
    assert_eq!(
        https.ssl_policy(),
        Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
    );
    assert_eq!(
        https.certificates()[0].certificate_arn(),
        Some(cert.as_str())
    );
    assert_eq!(
        https.default_actions()[0].target_group_arn(),
        tg.target_group_arn()
    );
    let http = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(80))
        .unwrap();
    let redirect = http.default_actions()[0].redirect_config().unwrap();
    assert_eq!(redirect.protocol(), Some("HTTPS"));
    assert_eq!(redirect.port(), Some("443"));
    assert_eq!(redirect.status_code().map(|c| c.as_str()), Some("HTTP_301"));
    let rules = elb
        .describe_rules()
        .listener_arn(https.listener_arn().unwrap())
        .send()
        .await
        .unwrap();
    let rule = rules
        .rules()
        .iter()
        .find(|r| r.is_default() != Some(true))
        .expect("the admin rule");
    assert_eq!(rule.priority(), Some("10"));
    let state = p.state_json("alb");
    assert_eq!(
        state["resources"]["load_balancer.web"]["id"],
        lb_arn.as_str()
    );
    assert!(
        state["resources"]["load_balancer.web"]["attributes"]["dns_name"]
            .as_str()
            .is_some_and(|d| d.contains("proxy-smart-keycloak"))
    );

    // Destroy: everything goes, in dependency order.
    let https_arn = state["resources"]["listener.https"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = proxy.actions().len();
    p.run_at(
        &proxy.url,
        &["destroy", "--auto-approve", "--input", &input],
    )
    .expect_code(0);
    let all = proxy.actions();
    let actions: Vec<String> = all[before..].to_vec();
    let rule_del = span(&actions, "DeleteRule");
    let listener_del = span(&actions, "DeleteListener");
    let lb_del = span(&actions, "DeleteLoadBalancer");
    let tg_del = span(&actions, "DeleteTargetGroup");
    // Which DeleteListener was the HTTPS one (the rule's): requests and bodies
    // of one operation are recorded in the same order.
    let https_del = all
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "DeleteListener")
        .map(|(i, _)| i)
        .zip(proxy.bodies("DeleteListener"))
        .find(|(_, body)| {
            body.replace("%3A", ":")
                .replace("%2F", "/")
                .contains(&https_arn)
        })
        .map(|(i, _)| i - before)
        .expect("the HTTPS listener's DeleteListener");
    assert!(rule_del.1 < https_del, "{actions:?}");
    assert!(listener_del.1 < lb_del.0, "{actions:?}");
    assert!(lb_del.1 < tg_del.0, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "DeleteListener").count(), 2);

    assert!(elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .is_empty());
    assert!(elb
        .describe_target_groups()
        .send()
        .await
        .unwrap()
        .target_groups()
        .is_empty());
    assert!(common::tagged_ids(&ec2, "alb").await.is_empty());
    // The certificate was the test's, not the stack's: still there.
    assert!(acm
        .describe_certificate()
        .certificate_arn(&cert)
        .send()
        .await
        .is_ok());
}
