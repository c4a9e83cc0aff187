//! The commands around plan and apply: `state list|show|rm`, `import`, `--target`,
//! several stacks under desired-state/, and `--input`. The real binary against
//! moto, checked with an independent SDK client. Each test has its own moto
//! server and stack name.

mod common;
use aws_sdk_ec2::types::Filter;
use common::{Moto, Project};

/// A VPC and two subnets.
fn vpc_and_subnets(stack: &str) -> String {
    format!(
        r#"
[stack]
name = "{stack}"
region = "us-east-1"
tags = {{ Project = "cli-test" }}

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
"#
    )
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The subnets of a VPC, as (id, cidr).
async fn subnets_in(ec2: &aws_sdk_ec2::Client, vpc_id: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc_id))
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
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

/// Ids of the VPCs with this CIDR.
async fn vpcs_with_cidr(ec2: &aws_sdk_ec2::Client, cidr: &str) -> Vec<String> {
    ec2.describe_vpcs()
        .send()
        .await
        .unwrap()
        .vpcs()
        .iter()
        .filter(|v| v.cidr_block() == Some(cidr))
        .map(|v| v.vpc_id().unwrap().to_string())
        .collect()
}

fn state_id(p: &Project, stack: &str, addr: &str) -> Option<String> {
    p.state_json(stack)["resources"][addr]["id"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn state_list_show_and_rm_then_the_next_run_adopts_instead_of_duplicating() {
    let moto = Moto::start();
    let p = Project::new();
    let stack = "cli-state";
    p.write("s.toml", &vpc_and_subnets(stack));
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let vpc = state_id(&p, stack, "vpc.main").unwrap();
    let sub_a = state_id(&p, stack, "subnet.a").unwrap();
    let sub_b = state_id(&p, stack, "subnet.b").unwrap();

    // state list: every address with its AWS id, one per line. No AWS call.
    let list = p.run(None, &["state", "list"]);
    list.expect_code(0);
    for (addr, id) in [
        ("vpc.main", &vpc),
        ("subnet.a", &sub_a),
        ("subnet.b", &sub_b),
    ] {
        assert!(
            list.stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [addr, id.as_str()]),
            "`state list` lacks `{addr} {id}`:\n{}",
            list.stdout
        );
    }

    // state show: the entry as JSON, with the id.
    let show = p.run(None, &["state", "show", "vpc.main"]);
    show.expect_code(0);
    let entry: serde_json::Value = serde_json::from_str(&show.stdout)
        .unwrap_or_else(|e| panic!("`state show` is not JSON ({e}):\n{}", show.stdout));
    assert_eq!(entry["address"], "vpc.main");
    assert_eq!(entry["kind"], "vpc");
    assert_eq!(entry["id"], vpc.as_str());
    assert_eq!(entry["inputs"]["cidr_block"], "10.0.0.0/16");
    // An address that is not tracked is an error.
    let missing = p.run(None, &["state", "show", "subnet.zzz"]);
    missing.expect_code(1);
    assert!(missing.stderr.contains("subnet.zzz"), "{}", missing.stderr);

    // state rm: forgotten by state, still in AWS.
    let rm = p.run(None, &["state", "rm", "subnet.a"]);
    rm.expect_code(0);
    assert!(rm.stdout.contains(&sub_a), "{}", rm.stdout);
    assert!(state_id(&p, stack, "subnet.a").is_none());
    assert_eq!(
        state_id(&p, stack, "subnet.b").as_deref(),
        Some(sub_b.as_str())
    );
    let list = p.run(None, &["state", "list"]);
    assert!(!list.stdout.contains("subnet.a"), "{}", list.stdout);
    let ec2 = moto.ec2().await;
    let want = vec![
        (sub_a.clone(), "10.0.1.0/24".to_string()),
        (sub_b.clone(), "10.0.2.0/24".to_string()),
    ];
    assert_eq!(
        subnets_in(&ec2, &vpc).await,
        want,
        "state rm deleted in AWS"
    );

    // subnet.a is still declared: the next plan finds the live one by its
    // `reconcile:address` tag and adopts it rather than proposing a create.
    let plan = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    plan.expect_code(2);
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains("subnet.a"))
        .unwrap_or_else(|| panic!("the plan does not mention subnet.a:\n{}", plan.stdout));
    assert!(line.contains("adopted") && line.contains(&sub_a), "{line}");
    assert!(
        plan.stdout.contains("0 to create"),
        "the plan proposes a create:\n{}",
        plan.stdout
    );
    // A plan writes nothing: subnet.a is still untracked.
    assert!(state_id(&p, stack, "subnet.a").is_none());

    // The apply records the adoption and creates nothing.
    let apply = p.run(Some(&moto), &["apply", "--auto-approve"]);
    apply.expect_code(0);
    assert_eq!(
        state_id(&p, stack, "subnet.a").as_deref(),
        Some(sub_a.as_str())
    );
    assert_eq!(
        subnets_in(&ec2, &vpc).await,
        want,
        "a second subnet.a was made"
    );
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
    assert_eq!(subnets_in(&ec2, &vpc).await, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_adopts_an_existing_vpc_and_only_its_tags_change() {
    let moto = Moto::start();
    let p = Project::new();
    let stack = "cli-import";
    let cidr = "10.42.0.0/16";
    let ec2 = moto.ec2().await;
    let vpc = ec2
        .create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    p.write(
        "s.toml",
        &format!(
            r#"
[stack]
name = "{stack}"
region = "us-east-1"
tags = {{ Project = "cli-test" }}

[vpc.main]
cidr_block = "{cidr}"
"#
        ),
    );

    // Importing an address that is not declared is refused.
    p.run(Some(&moto), &["import", "vpc.other", &vpc])
        .expect_code(1);
    // An id that does not exist is refused, and nothing is recorded.
    let bad = p.run(
        Some(&moto),
        &["import", "vpc.main", "vpc-0000000000000000f"],
    );
    bad.expect_code(1);
    assert!(
        bad.stderr.contains("vpc-0000000000000000f"),
        "{}",
        bad.stderr
    );

    let imp = p.run(Some(&moto), &["import", "vpc.main", &vpc]);
    imp.expect_code(0);
    assert!(imp.stdout.contains(&vpc), "{}", imp.stdout);
    let list = p.run(None, &["state", "list"]);
    list.expect_code(0);
    assert!(
        list.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["vpc.main", vpc.as_str()]),
        "{}",
        list.stdout
    );
    // A second import of the same address is refused.
    p.run(Some(&moto), &["import", "vpc.main", &vpc])
        .expect_code(1);

    // The plan: an in-place update of the tags only, nothing created.
    let plan = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    plan.expect_code(2);
    assert!(
        plan.stdout
            .contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("~   vpc.main"), "{}", plan.stdout);
    assert!(
        !plan.stdout.contains("drift"),
        "an import's first tags are not drift: {}",
        plan.stdout
    );
    let changed: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.starts_with("      "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(
        !changed.is_empty() && changed.iter().all(|f| *f == "tags"),
        "fields other than tags change: {changed:?}\n{}",
        plan.stdout
    );
    for tag in [
        "+ Project = \"cli-test\"",
        "+ reconcile:stack = \"cli-import\"",
        "+ reconcile:address = \"vpc.main\"",
    ] {
        assert!(plan.stdout.contains(tag), "no `{tag}`:\n{}", plan.stdout);
    }

    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
    assert_eq!(vpcs_with_cidr(&ec2, cidr).await, vec![vpc.clone()]);
    let tags = ec2
        .describe_vpcs()
        .vpc_ids(&vpc)
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect::<std::collections::BTreeMap<_, _>>();
    assert_eq!(tags.get("reconcile:stack").map(String::as_str), Some(stack));
    assert_eq!(
        tags.get("reconcile:address").map(String::as_str),
        Some("vpc.main")
    );
    assert_eq!(tags.get("Project").map(String::as_str), Some("cli-test"));
}

#[tokio::test(flavor = "multi_thread")]
async fn target_limits_plan_and_apply_to_the_address_and_its_dependencies() {
    let moto = Moto::start();
    let p = Project::new();
    let stack = "cli-target";
    p.write("s.toml", &vpc_and_subnets(stack));

    let plan = p.run(Some(&moto), &["plan", "--target", "subnet.a"]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("+   vpc.main"), "{}", plan.stdout);
    assert!(plan.stdout.contains("+   subnet.a"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("subnet.b"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 2 to create"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("Note: --target limits this plan to subnet.a and what it depends on"),
        "{}",
        plan.stdout
    );

    // An unknown target is an error before any change.
    p.run(Some(&moto), &["plan", "--target", "subnet.zzz"])
        .expect_code(1);

    p.run(
        Some(&moto),
        &["apply", "--target", "subnet.a", "--auto-approve"],
    )
    .expect_code(0);
    let vpc = state_id(&p, stack, "vpc.main").unwrap();
    let sub_a = state_id(&p, stack, "subnet.a").unwrap();
    assert!(state_id(&p, stack, "subnet.b").is_none());
    let ec2 = moto.ec2().await;
    assert_eq!(
        subnets_in(&ec2, &vpc).await,
        vec![(sub_a.clone(), "10.0.1.0/24".to_string())],
        "subnet.b exists after a targeted apply"
    );
    let b_tagged = ec2
        .describe_subnets()
        .filters(filter("tag:reconcile:address", "subnet.b"))
        .send()
        .await
        .unwrap();
    assert!(b_tagged.subnets().is_empty());

    // Targeted, the rest of the stack is out of view: no changes.
    p.run(
        Some(&moto),
        &["plan", "--target", "subnet.a", "--detailed-exitcode"],
    )
    .expect_code(0);

    // A plain plan and apply then create subnet.b, and only it.
    let plan = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    plan.expect_code(2);
    assert!(plan.stdout.contains("+   subnet.b"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 2 unchanged."),
        "{}",
        plan.stdout
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let sub_b = state_id(&p, stack, "subnet.b").unwrap();
    assert_eq!(
        subnets_in(&ec2, &vpc).await,
        vec![
            (sub_a, "10.0.1.0/24".to_string()),
            (sub_b, "10.0.2.0/24".to_string())
        ]
    );
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_path_every_stack_under_desired_state_is_planned_and_applied() {
    let moto = Moto::start();
    let p = Project::new();
    // A stack in one file...
    p.write(
        "a.toml",
        r#"
[stack]
name = "cli-multi-a"
region = "us-east-1"

[vpc.main]
cidr_block = "10.61.0.0/16"
"#,
    );
    // ...and one in a directory whose files are merged.
    p.write(
        "b/stack.toml",
        r#"
[stack]
name = "cli-multi-b"
region = "us-east-1"

[vpc.main]
cidr_block = "10.62.0.0/16"
"#,
    );
    p.write(
        "b/subnets.toml",
        r#"
[subnet.a]
vpc_id = "${vpc.main.id}"
cidr_block = "10.62.1.0/24"
availability_zone = "us-east-1a"
"#,
    );

    let plan = p.run(Some(&moto), &["plan"]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("stack cli-multi-a"), "{}", plan.stdout);
    assert!(plan.stdout.contains("stack cli-multi-b"), "{}", plan.stdout);
    assert!(plan.stdout.contains("10.61.0.0/16"), "{}", plan.stdout);
    assert!(plan.stdout.contains("10.62.1.0/24"), "{}", plan.stdout);
    // Planning writes no state.
    assert!(!p.state_dir().join("cli-multi-a.json").exists());

    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let a = p.state_json("cli-multi-a");
    let b = p.state_json("cli-multi-b");
    assert_eq!(a["stack"], "cli-multi-a");
    assert_eq!(b["stack"], "cli-multi-b");
    let keys = |s: &serde_json::Value| {
        let mut k: Vec<String> = s["resources"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&a), ["vpc.main"]);
    assert_eq!(keys(&b), ["subnet.a", "vpc.main"]);
    let vpc_a = a["resources"]["vpc.main"]["id"].as_str().unwrap();
    let vpc_b = b["resources"]["vpc.main"]["id"].as_str().unwrap();
    assert_ne!(vpc_a, vpc_b);
    let ec2 = moto.ec2().await;
    assert_eq!(vpcs_with_cidr(&ec2, "10.61.0.0/16").await, [vpc_a]);
    assert_eq!(vpcs_with_cidr(&ec2, "10.62.0.0/16").await, [vpc_b]);
    assert_eq!(subnets_in(&ec2, vpc_b).await.len(), 1);

    // Each stack is tagged with its own name.
    let tagged = ec2
        .describe_vpcs()
        .filters(filter("tag:reconcile:stack", "cli-multi-b"))
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = tagged.vpcs().iter().map(|v| v.vpc_id().unwrap()).collect();
    assert_eq!(ids, [vpc_b]);

    let plan = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    plan.expect_code(0);
    assert_eq!(
        plan.stdout.matches("No changes.").count(),
        2,
        "{}",
        plan.stdout
    );

    // With two state files, `state list` needs --stack, before or after `list`.
    p.run(None, &["state", "list"]).expect_code(1);
    let list = p.run(None, &["state", "--stack", "cli-multi-b", "list"]);
    list.expect_code(0);
    assert!(list.stdout.contains(vpc_b), "{}", list.stdout);
    assert!(!list.stdout.contains(vpc_a), "{}", list.stdout);
    let list = p.run(None, &["state", "list", "--stack", "cli-multi-a"]);
    list.expect_code(0);
    assert!(list.stdout.contains(vpc_a), "{}", list.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn inputs_come_from_the_command_line_or_the_environment() {
    let moto = Moto::start();
    let p = Project::new();
    p.write(
        "s.toml",
        r#"
[stack]
name = "cli-input"
region = "us-east-1"

[input.cidr]
description = "The VPC's CIDR"

[vpc.main]
cidr_block = "${input.cidr}"
"#,
    );

    // No value at all: a validation error naming both ways to give one, no AWS call.
    let missing = p.run(None, &["plan"]);
    missing.expect_code(1);
    assert!(missing.stderr.contains("cidr"), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("RECONCILE_INPUT_CIDR"),
        "{}",
        missing.stderr
    );
    assert!(!p.state_dir().join("cli-input.json").exists());

    p.run(
        Some(&moto),
        &["apply", "--input", "cidr=10.9.0.0/16", "--auto-approve"],
    )
    .expect_code(0);
    let ec2 = moto.ec2().await;
    let vpc = state_id(&p, "cli-input", "vpc.main").unwrap();
    assert_eq!(vpcs_with_cidr(&ec2, "10.9.0.0/16").await, [vpc.as_str()]);

    // The same value from the environment: nothing to do.
    let from_env = |value: &str, args: &[&str]| {
        let mut c = p.cmd(Some(&moto), args);
        c.env("RECONCILE_INPUT_CIDR", value);
        common::Run::from(c.output().unwrap())
    };
    from_env("10.9.0.0/16", &["plan", "--detailed-exitcode"]).expect_code(0);
    // Another value from the environment is seen (a CIDR change replaces the VPC)...
    let other = from_env("10.8.0.0/16", &["plan", "--detailed-exitcode"]);
    other.expect_code(2);
    assert!(
        other.stdout.contains("\"10.9.0.0/16\" -> \"10.8.0.0/16\""),
        "{}",
        other.stdout
    );
    // ...and --input wins over the environment.
    from_env(
        "10.8.0.0/16",
        &["plan", "--input", "cidr=10.9.0.0/16", "--detailed-exitcode"],
    )
    .expect_code(0);

    // The environment alone drives an apply too: destroy, then create from it.
    from_env("10.9.0.0/16", &["destroy", "--auto-approve"]).expect_code(0);
    assert!(vpcs_with_cidr(&ec2, "10.9.0.0/16").await.is_empty());
    from_env("10.7.0.0/16", &["apply", "--auto-approve"]).expect_code(0);
    let vpc = state_id(&p, "cli-input", "vpc.main").unwrap();
    assert_eq!(vpcs_with_cidr(&ec2, "10.7.0.0/16").await, [vpc]);
    from_env("10.7.0.0/16", &["plan", "--detailed-exitcode"]).expect_code(0);
}
