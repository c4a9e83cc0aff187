//! Retries end to end: a small fault-injecting HTTP proxy sits between the real
//! binary and moto. It proves that throttling and EC2's eventual-consistency
//! errors are retried by the SDK, and that any other error fails its resource
//! at once while independent work still finishes.

mod common;
use common::proxy::{Fault, Proxy};
use common::{Moto, Project};

/// The count `--timings` printed for an EC2 operation (0 when absent).
fn timed_calls(stdout: &str, op: &str) -> u64 {
    stdout
        .lines()
        .map(str::split_whitespace)
        .filter_map(|mut w| match (w.next(), w.next(), w.next()) {
            (Some("EC2"), Some(o), Some(n)) if o == op => n.parse().ok(),
            _ => None,
        })
        .next()
        .unwrap_or(0)
}

fn header(stack: &str) -> String {
    format!(
        r#"
[stack]
name = "{stack}"
region = "us-east-1"

[vpc.main]
cidr_block = "10.0.0.0/16"
"#
    )
}

fn security_group(stack: &str) -> String {
    format!(
        r#"
[security_group.web]
name = "{stack}-web"
vpc_id = "${{vpc.main.id}}"
ingress = [{{ protocol = "tcp", from_port = 443, to_port = 443, cidr_block = "0.0.0.0/0" }}]
"#
    )
}

async fn groups_of(moto: &Moto, stack: &str) -> Vec<aws_sdk_ec2::types::SecurityGroup> {
    moto.ec2()
        .await
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:reconcile:stack")
                .values(stack)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .security_groups()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_and_every_attempt_is_counted() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto, |action, nth| {
        (action == "DescribeVpcs" && nth <= 2).then_some(Fault {
            status: 503,
            code: "RequestLimitExceeded",
            message: "Request limit exceeded.",
        })
    });
    let p = Project::new();
    p.write("net.toml", &header("retry-throttle"));

    let run = p.run_at(&proxy.url, &["apply", "--auto-approve", "--timings"]);
    run.expect_code(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    // Two throttled attempts and the one that went through: the SDK retried,
    // and each attempt is a call in the table, as the proxy saw them.
    assert_eq!(proxy.count("DescribeVpcs"), 3, "{}", run.stdout);
    assert_eq!(
        timed_calls(&run.stdout, "DescribeVpcs"),
        proxy.count("DescribeVpcs"),
        "{}",
        run.stdout
    );
    assert_eq!(timed_calls(&run.stdout, "CreateVpc"), 1, "{}", run.stdout);
    // Both throttled answers were seen as throttling (they narrow EC2's concurrency).
    assert!(
        run.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["throttled", "EC2", "2"]),
        "{}",
        run.stdout
    );

    let vpcs = moto.ec2().await.describe_vpcs().send().await.unwrap();
    assert!(
        vpcs.vpcs()
            .iter()
            .any(|v| v.cidr_block() == Some("10.0.0.0/16") && !v.is_default().unwrap_or(false)),
        "the VPC exists in moto"
    );
    assert!(p.state_json("retry-throttle")["resources"]
        .get("vpc.main")
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn eventual_consistency_on_a_mutation_is_retried() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto, |action, nth| {
        (action == "AuthorizeSecurityGroupIngress" && nth == 1).then_some(Fault {
            status: 400,
            code: "InvalidGroup.NotFound",
            message: "The security group does not exist",
        })
    });
    let p = Project::new();
    let stack = "retry-eventual";
    p.write(
        "net.toml",
        &format!("{}{}", header(stack), security_group(stack)),
    );

    let run = p.run_at(&proxy.url, &["apply", "--auto-approve", "--timings"]);
    run.expect_code(0);
    assert_eq!(proxy.count("AuthorizeSecurityGroupIngress"), 2);
    assert_eq!(
        timed_calls(&run.stdout, "AuthorizeSecurityGroupIngress"),
        2,
        "{}",
        run.stdout
    );

    let groups = groups_of(&moto, stack).await;
    assert_eq!(groups.len(), 1);
    let rules = groups[0].ip_permissions();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].from_port(), Some(443));
    assert_eq!(rules[0].to_port(), Some(443));
    assert_eq!(rules[0].ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn other_errors_fail_at_once_and_independent_work_finishes() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto, |action, _| {
        (action == "CreateSubnet").then_some(Fault {
            status: 400,
            code: "InvalidParameterValue",
            message: "injected",
        })
    });
    let p = Project::new();
    let stack = "retry-fail";
    p.write(
        "net.toml",
        &format!(
            r#"{}{}
[subnet.a]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"
"#,
            header(stack),
            security_group(stack)
        ),
    );

    let run = p.run_at(&proxy.url, &["apply", "--auto-approve"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("subnet.a") && run.stderr.contains("injected"),
        "{}",
        run.stderr
    );
    assert_eq!(proxy.count("CreateSubnet"), 1, "not retried");

    // The VPC and the group do not depend on the subnet: both were made.
    assert_eq!(groups_of(&moto, stack).await.len(), 1);
    let state = p.state_json(stack);
    let resources = state["resources"].as_object().unwrap();
    let mut tracked: Vec<&str> = resources.keys().map(String::as_str).collect();
    tracked.sort();
    assert_eq!(tracked, ["security_group.web", "vpc.main"], "{state}");
    let vpc_id = state["resources"]["vpc.main"]["id"].as_str().unwrap();
    let vpcs = moto
        .ec2()
        .await
        .describe_vpcs()
        .vpc_ids(vpc_id)
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    assert!(state["journal"].as_array().unwrap().is_empty(), "{state}");
}
