//! The network tier end to end: the real binary against moto, checked with an
//! independent SDK client. Each test has its own moto server and stack name.

mod common;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, IpPermission, IpRange};
use common::{Moto, Project};

fn tag_filter(stack: &str) -> Filter {
    Filter::builder()
        .name("tag:reconcile:stack")
        .values(stack)
        .build()
}

fn addr_filter(addr: &str) -> Filter {
    Filter::builder()
        .name("tag:reconcile:address")
        .values(addr)
        .build()
}

/// A small network: VPC, two subnets, IGW, public route table, one security group.
fn small_stack(stack: &str, subnet_a: &str) -> String {
    format!(
        r#"
[stack]
name = "{stack}"
region = "us-east-1"
tags = {{ Project = "test" }}

[vpc.main]
cidr_block = "10.0.0.0/16"
enable_dns_hostnames = true

[subnet.a]
vpc_id = "${{vpc.main.id}}"
{subnet_a}

[subnet.b]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[internet_gateway.main]
vpc_id = "${{vpc.main.id}}"

[route_table.public]
vpc_id = "${{vpc.main.id}}"
routes = [{{ destination_cidr_block = "0.0.0.0/0", gateway_id = "${{internet_gateway.main.id}}" }}]
subnet_ids = ["${{subnet.a.id}}", "${{subnet.b.id}}"]

[security_group.web]
name = "{stack}-web"
vpc_id = "${{vpc.main.id}}"
ingress = [{{ protocol = "tcp", from_port = 443, to_port = 443, cidr_block = "0.0.0.0/0" }}]
"#
    )
}

const SUBNET_A: &str = "cidr_block = \"10.0.1.0/24\"\navailability_zone = \"us-east-1a\"";

async fn subnet_of(
    ec2: &aws_sdk_ec2::Client,
    stack: &str,
    addr: &str,
) -> Vec<aws_sdk_ec2::types::Subnet> {
    ec2.describe_subnets()
        .filters(tag_filter(stack))
        .filters(addr_filter(addr))
        .send()
        .await
        .unwrap()
        .subnets()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_network_stack_applies_from_nothing_and_replans_clean() {
    let moto = Moto::start();
    let p = Project::new();
    // The network tier alone; tests/compute.rs applies the whole seed.
    let seed = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("desired-state/proxy-smart/network.toml");
    p.write(
        "proxy-smart/network.toml",
        &std::fs::read_to_string(seed).unwrap(),
    );
    let run = p.run(Some(&moto), &["apply", "--auto-approve", "--timings"]);
    run.expect_code(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);

    let ec2 = moto.ec2().await;
    let vpcs = ec2
        .describe_vpcs()
        .filters(tag_filter("proxy-smart"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.0.0.0/16"));
    let subnets = ec2
        .describe_subnets()
        .filters(tag_filter("proxy-smart"))
        .send()
        .await
        .unwrap();
    let mut cidrs: Vec<&str> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.cidr_block())
        .collect();
    cidrs.sort();
    assert_eq!(
        cidrs,
        [
            "10.0.0.0/24",
            "10.0.1.0/24",
            "10.0.2.0/24",
            "10.0.3.0/24",
            "10.0.4.0/24",
            "10.0.5.0/24"
        ]
    );
    let azs: std::collections::BTreeSet<&str> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.availability_zone())
        .collect();
    assert_eq!(azs.len(), 2, "two availability zones");
    let igws = ec2
        .describe_internet_gateways()
        .filters(tag_filter("proxy-smart"))
        .send()
        .await
        .unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    assert_eq!(igws.internet_gateways()[0].attachments().len(), 1);
    let nats = ec2
        .describe_nat_gateways()
        .filter(tag_filter("proxy-smart"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        nats.nat_gateways().len(),
        1,
        "one NAT gateway, as the seed chose"
    );
    let rts = ec2
        .describe_route_tables()
        .filters(tag_filter("proxy-smart"))
        .send()
        .await
        .unwrap();
    assert_eq!(rts.route_tables().len(), 3);
    let default_routes: Vec<_> = rts
        .route_tables()
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .collect();
    assert_eq!(default_routes.len(), 2, "public via IGW, private via NAT");
    assert!(default_routes.iter().any(|r| r.nat_gateway_id().is_some()));
    assert!(default_routes
        .iter()
        .any(|r| r.gateway_id().is_some_and(|g| g.starts_with("igw-"))));
    let sgs = ec2
        .describe_security_groups()
        .filters(tag_filter("proxy-smart"))
        .send()
        .await
        .unwrap();
    assert_eq!(sgs.security_groups().len(), 4);
    let db = sgs
        .security_groups()
        .iter()
        .find(|g| g.group_name().is_some_and(|n| n.ends_with("db")))
        .unwrap();
    assert!(db
        .ip_permissions()
        .iter()
        .all(|p| p.from_port() == Some(5432)));
    assert!(
        db.ip_permissions().iter().all(|p| p.ip_ranges().is_empty()),
        "the database takes no CIDR ingress"
    );

    // Everything is tracked, and a second plan finds nothing to do.
    let state = p.state_json("proxy-smart");
    // vpc, 6 subnets, igw, eip, nat, 3 route tables, 4 security groups.
    assert_eq!(state["resources"].as_object().unwrap().len(), 17);
    assert!(state["journal"].as_array().unwrap().is_empty());
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode", "--timings"]);
    run.expect_code(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    // A no-op plan costs a handful of describes: one per kind, not one per resource.
    let describes: u64 = run
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("EC2") && l.contains("Describe"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert!(
        describes <= 10,
        "no-op plan made {describes} describe calls:\n{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn subnet_updates_in_place_replaces_on_cidr_and_deletes_when_removed() {
    let moto = Moto::start();
    let p = Project::new();
    let ec2 = moto.ec2().await;
    p.write("net.toml", &small_stack("lifecycle", SUBNET_A));

    // The plan for machines: every resource a create, AWS-decided values unknown.
    let run = p.run(Some(&moto), &["plan", "--json", "--detailed-exitcode"]);
    run.expect_code(2);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["summary"]["create"], 6);
    assert_eq!(doc["has_changes"], true);
    let subnet = doc["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"] == "subnet.a")
        .unwrap();
    assert_eq!(subnet["action"], "create");
    assert_eq!(
        subnet["planned"]["vpc_id"],
        serde_json::json!({"$unknown": true})
    );
    assert_eq!(subnet["dependencies"], serde_json::json!(["vpc.main"]));
    let run = p.run(Some(&moto), &["plan"]);
    assert!(
        run.stdout
            .contains("vpc_id                  = (known after apply)"),
        "{}",
        run.stdout
    );

    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let before = subnet_of(&ec2, "lifecycle", "subnet.a").await;
    assert_eq!(before.len(), 1);
    let id = before[0].subnet_id().unwrap().to_string();
    assert_eq!(before[0].map_public_ip_on_launch(), Some(false));

    // In place: same id.
    p.write(
        "net.toml",
        &small_stack(
            "lifecycle",
            &format!("{SUBNET_A}\nmap_public_ip_on_launch = true"),
        ),
    );
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    assert!(run.stdout.contains("~   subnet.a"), "{}", run.stdout);
    assert!(run.stdout.contains("update in place"), "{}", run.stdout);
    assert!(
        run.stdout.contains("map_public_ip_on_launch false -> true"),
        "{}",
        run.stdout
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let after = subnet_of(&ec2, "lifecycle", "subnet.a").await;
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0].subnet_id(),
        Some(id.as_str()),
        "an in-place update keeps the id"
    );
    assert_eq!(after[0].map_public_ip_on_launch(), Some(true));

    // CIDR change: replacement, create before delete since the ranges differ.
    let moved = "cidr_block = \"10.0.11.0/24\"\navailability_zone = \"us-east-1a\"\nmap_public_ip_on_launch = true";
    p.write("net.toml", &small_stack("lifecycle", moved));
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    assert!(run.stdout.contains("-/+ subnet.a"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("cidr_block forces replacement; create before delete"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"10.0.1.0/24\" -> \"10.0.11.0/24\""),
        "{}",
        run.stdout
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let after = subnet_of(&ec2, "lifecycle", "subnet.a").await;
    assert_eq!(after.len(), 1, "the old subnet is gone");
    assert_ne!(after[0].subnet_id(), Some(id.as_str()));
    assert_eq!(after[0].cidr_block(), Some("10.0.11.0/24"));
    let new_id = after[0].subnet_id().unwrap().to_string();
    // The route table followed the new subnet.
    let rt = ec2
        .describe_route_tables()
        .filters(tag_filter("lifecycle"))
        .send()
        .await
        .unwrap();
    let assoc: Vec<&str> = rt.route_tables()[0]
        .associations()
        .iter()
        .filter_map(|a| a.subnet_id())
        .collect();
    assert!(assoc.contains(&new_id.as_str()), "{assoc:?}");
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);

    // Removed from the TOML: deleted (after the route table lets go of it).
    let text = small_stack("lifecycle", moved).replace(
        "subnet_ids = [\"${subnet.a.id}\", \"${subnet.b.id}\"]",
        "subnet_ids = [\"${subnet.b.id}\"]",
    );
    let start = text.find("[subnet.a]").unwrap();
    let end = text.find("[subnet.b]").unwrap();
    let text = format!("{}{}", &text[..start], &text[end..]);
    p.write("net.toml", &text);
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    assert!(run.stdout.contains("-   subnet.a"), "{}", run.stdout);
    assert!(run.stdout.contains("1 to delete"), "{}", run.stdout);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    assert!(subnet_of(&ec2, "lifecycle", "subnet.a").await.is_empty());
    assert!(p.state_json("lifecycle")["resources"]
        .get("subnet.a")
        .is_none());
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_band_changes_are_drift_and_apply_repairs_them() {
    let moto = Moto::start();
    let p = Project::new();
    let ec2 = moto.ec2().await;
    p.write("net.toml", &small_stack("drift", SUBNET_A));
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let state = p.state_json("drift");
    let id = |a: &str| state["resources"][a]["id"].as_str().unwrap().to_string();
    let (vpc, sg, rt, subnet_b) = (
        id("vpc.main"),
        id("security_group.web"),
        id("route_table.public"),
        id("subnet.b"),
    );

    // Someone opens SSH, deletes the default route, turns DNS hostnames off,
    // and deletes a subnet, all behind reconcile's back.
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    ec2.delete_route()
        .route_table_id(&rt)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    ec2.modify_vpc_attribute()
        .vpc_id(&vpc)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .unwrap();
    // A subnet with a route table association cannot be deleted; drop that first.
    let t = ec2
        .describe_route_tables()
        .route_table_ids(&rt)
        .send()
        .await
        .unwrap();
    for a in t.route_tables()[0].associations() {
        if a.subnet_id() == Some(subnet_b.as_str()) {
            ec2.disassociate_route_table()
                .association_id(a.route_table_association_id().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    ec2.delete_subnet()
        .subnet_id(&subnet_b)
        .send()
        .await
        .unwrap();

    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    let out = &run.stdout;
    assert!(out.contains("~   security_group.web"), "{out}");
    assert!(
        out.contains("ingress   - { tcp 22 from 0.0.0.0/0 }"),
        "{out}"
    );
    assert!(out.contains("~   route_table.public"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("routes") && l.contains("+ { 0.0.0.0/0 via igw-")),
        "{out}"
    );
    assert!(out.contains("~   vpc.main"), "{out}");
    assert!(out.contains("enable_dns_hostnames false -> true"), "{out}");
    assert!(out.contains("drift: changed outside reconcile"), "{out}");
    assert!(out.contains("+   subnet.b"), "{out}");
    assert!(out.contains("deleted outside reconcile"), "{out}");

    let run = p.run(Some(&moto), &["apply", "--auto-approve"]);
    run.expect_code(0);
    let g = ec2
        .describe_security_groups()
        .group_ids(&sg)
        .send()
        .await
        .unwrap();
    let ports: Vec<i32> = g.security_groups()[0]
        .ip_permissions()
        .iter()
        .filter_map(|p| p.from_port())
        .collect();
    assert_eq!(ports, [443], "the SSH rule was revoked");
    let t = ec2
        .describe_route_tables()
        .route_table_ids(&rt)
        .send()
        .await
        .unwrap();
    assert!(t.route_tables()[0]
        .routes()
        .iter()
        .any(|r| r.destination_cidr_block() == Some("0.0.0.0/0")));
    assert_eq!(
        t.route_tables()[0]
            .associations()
            .iter()
            .filter(|a| a.subnet_id().is_some())
            .count(),
        2
    );
    let a = ec2
        .describe_vpc_attribute()
        .vpc_id(&vpc)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(a.enable_dns_hostnames().and_then(|v| v.value()), Some(true));
    assert_eq!(
        subnet_of(&ec2, "drift", "subnet.b").await.len(),
        1,
        "the deleted subnet is back"
    );
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_leaves_nothing_tagged_and_refuses_protected_stacks() {
    let moto = Moto::start();
    let p = Project::new();
    let ec2 = moto.ec2().await;
    let text = small_stack("gone", SUBNET_A)
        + "\n[elastic_ip.nat]\n\n[nat_gateway.main]\nsubnet_id = \"${subnet.a.id}\"\nallocation_id = \"${elastic_ip.nat.id}\"\n";
    p.write(
        "net.toml",
        &text.replace("[vpc.main]\n", "[vpc.main]\nprotect = true\n"),
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);

    // Protected: refused before any delete, naming the resource.
    let run = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("vpc.main: is protected"),
        "{}",
        run.stderr
    );
    assert_eq!(
        ec2.describe_vpcs()
            .filters(tag_filter("gone"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
    assert_eq!(
        ec2.describe_subnets()
            .filters(tag_filter("gone"))
            .send()
            .await
            .unwrap()
            .subnets()
            .len(),
        2
    );

    // Unprotected (applied first, so state forgets the protection), then destroyed.
    p.write("net.toml", &text);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let run = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    run.expect_code(0);
    assert!(run.stdout.contains("to delete"), "{}", run.stdout);
    let left = common::tagged_ids(&ec2, "gone").await;
    assert!(left.is_empty(), "still tagged with the stack: {left:?}");
    assert!(p.state_json("gone")["resources"]
        .as_object()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_apply_is_refused_while_one_runs() {
    use std::io::Read;
    let p = Project::new();
    p.write("net.toml", &small_stack("locked", SUBNET_A));
    // The first apply's endpoint accepts connections and never answers, so it
    // holds the stack's lock for as long as the test needs.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", hang.local_addr().unwrap().port());
    let mut first = p.cmd(None, &["apply", "--auto-approve"]);
    first
        .env("AWS_ENDPOINT_URL", &url)
        .stdout(std::process::Stdio::piped());
    let mut first = first.spawn().unwrap();
    let (mut conn, _) = hang.accept().unwrap();
    let mut buf = [0u8; 16];
    let _ = conn.read(&mut buf);

    let started = std::time::Instant::now();
    let run = p.run(None, &["apply", "--auto-approve"]);
    run.expect_code(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused at once"
    );
    assert!(
        run.stderr
            .contains("stack `locked` is held by `reconcile apply`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        run.stderr
    );
    first.kill().unwrap();
    first.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_refused_once_state_moved_on() {
    let moto = Moto::start();
    let p = Project::new();
    p.write("net.toml", &small_stack("saved", SUBNET_A));
    p.run(Some(&moto), &["plan", "--out", "first.plan"])
        .expect_code(0);
    p.run(Some(&moto), &["plan", "--out", "second.plan"])
        .expect_code(0);
    let run = p.run(
        Some(&moto),
        &["apply", "--plan", "first.plan", "--auto-approve"],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("Apply complete"), "{}", run.stdout);
    let run = p.run(
        Some(&moto),
        &["apply", "--plan", "second.plan", "--auto-approve"],
    );
    run.expect_code(1);
    assert!(
        run.stderr.contains("changed since this plan was made"),
        "{}",
        run.stderr
    );
    let ec2 = moto.ec2().await;
    assert_eq!(
        ec2.describe_vpcs()
            .filters(tag_filter("saved"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_without_a_terminal_needs_auto_approve() {
    let moto = Moto::start();
    let p = Project::new();
    p.write("net.toml", &small_stack("confirm", SUBNET_A));
    let run = p.run(Some(&moto), &["apply"]);
    run.expect_code(1);
    assert!(run.stderr.contains("pass --auto-approve"), "{}", run.stderr);
    let ec2 = moto.ec2().await;
    assert!(ec2
        .describe_vpcs()
        .filters(tag_filter("confirm"))
        .send()
        .await
        .unwrap()
        .vpcs()
        .is_empty());
}
