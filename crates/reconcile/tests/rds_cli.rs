//! The data tier end to end: the real binary against moto applies a VPC, two
//! subnets, a DB subnet group and a protected PostgreSQL instance; plans show no
//! change, an instance class change is an update in place, replacement and
//! destroy of the protected database are refused before anything is touched,
//! out-of-band changes made with boto3 are drift that apply repairs, and a
//! deliberate destroy leaves a final snapshot. Checked with an independent client.

mod common;
use common::{Moto, Project};
use std::process::Command;

fn stack(instance_class: &str, engine: &str) -> String {
    format!(
        r#"
[stack]
name = "carebow"
region = "us-east-1"
tags = {{ Project = "carebow" }}

[vpc.main]
cidr_block = "10.0.0.0/16"

[subnet.db_a]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.1.0/24"
availability_zone = "us-east-1a"

[subnet.db_b]
vpc_id = "${{vpc.main.id}}"
cidr_block = "10.0.2.0/24"
availability_zone = "us-east-1b"

[db_subnet_group.main]
name = "carebow-db"
description = "CareBow database subnets"
subnet_ids = ["${{subnet.db_a.id}}", "${{subnet.db_b.id}}"]

[db_instance.main]
identifier = "carebow-main"
engine = "{engine}"
engine_version = "16"
instance_class = "{instance_class}"
allocated_storage = 20
storage_type = "gp3"
db_name = "carebow"
master_username = "carebow"
manage_master_user_password = true
storage_encrypted = true
backup_retention_period = 7
deletion_protection = true
db_subnet_group_name = "${{db_subnet_group.main.name}}"
timeouts = {{ create = "30m" }}
protect = true
"#
    )
}

async fn rds(moto: &Moto) -> aws_sdk_rds::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await;
    aws_sdk_rds::Client::new(&conf)
}

async fn instance(rds: &aws_sdk_rds::Client, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
    rds.describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.db_instances().first().cloned())
}

/// Runs a boto3 snippet against moto, as someone at the console would.
fn boto3(moto: &Moto, code: &str) {
    let py = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join(".venv/bin/python");
    let script = format!(
        "import boto3\nrds = boto3.client('rds', region_name='us-east-1', endpoint_url='{}')\n{code}\n",
        moto.url
    );
    let out = Command::new(py)
        .args(["-c", &script])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("run boto3");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protected_postgres_database_through_the_cli() {
    let moto = Moto::start();
    let rds = rds(&moto).await;
    let ec2 = moto.ec2().await;
    let p = Project::new();
    p.write("carebow.toml", &stack("db.t4g.micro", "postgres"));

    p.run(None, &["validate"]).expect_code(0);
    let run = p.run(Some(&moto), &["apply", "--auto-approve"]);
    run.expect_code(0);
    let db = instance(&rds, "carebow-main").await.expect("created");
    assert_eq!(db.db_instance_class(), Some("db.t4g.micro"));
    assert_eq!(db.deletion_protection(), Some(true));
    assert_eq!(db.storage_encrypted(), Some(true));
    assert_eq!(
        db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        Some("carebow-db")
    );
    assert!(db.master_user_secret().is_some());
    let state = p.state_json("carebow");
    let st = &state["resources"]["db_instance.main"];
    assert_eq!(st["id"], "carebow-main");
    assert!(st["attributes"]["endpoint"]
        .as_str()
        .unwrap()
        .starts_with("carebow-main."));
    assert_eq!(st["inputs"]["timeouts"]["create"], "30m");

    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode", "--timings"]);
    run.expect_code(0);
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);

    // A new instance class: an update in place, applied.
    p.write("carebow.toml", &stack("db.t4g.small", "postgres"));
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    assert!(run.stdout.contains("db_instance.main"), "{}", run.stdout);
    assert!(run.stdout.contains("update in place"), "{}", run.stdout);
    assert!(run.stdout.contains("instance_class"), "{}", run.stdout);
    assert!(run.stdout.contains("1 to update"), "{}", run.stdout);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let db = instance(&rds, "carebow-main").await.unwrap();
    assert_eq!(db.db_instance_class(), Some("db.t4g.small"));
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);

    // A new engine would replace the protected database: refused, naming the field.
    p.write("carebow.toml", &stack("db.t4g.small", "mysql"));
    let run = p.run(Some(&moto), &["apply", "--auto-approve"]);
    run.expect_code(1);
    let all = run.all();
    assert!(all.contains("db_instance.main"), "{all}");
    assert!(all.contains("protect"), "{all}");
    assert!(all.contains("engine"), "{all}");
    let db = instance(&rds, "carebow-main").await.unwrap();
    assert_eq!(db.engine(), Some("postgres"));
    p.write("carebow.toml", &stack("db.t4g.small", "postgres"));

    // Destroy is refused whole: everything still exists.
    let run = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    run.expect_code(1);
    assert!(
        run.all().contains("db_instance.main: is protected"),
        "{}",
        run.all()
    );
    assert!(instance(&rds, "carebow-main").await.is_some());
    assert_eq!(
        rds.describe_db_subnet_groups()
            .send()
            .await
            .unwrap()
            .db_subnet_groups()
            .len(),
        1
    );
    assert_eq!(common::tagged_ids(&ec2, "carebow").await.len(), 3);

    // Out of band: protection off and a shorter backup retention. Drift, repaired.
    boto3(
        &moto,
        "rds.modify_db_instance(DBInstanceIdentifier='carebow-main', DeletionProtection=False, \
         BackupRetentionPeriod=3, ApplyImmediately=True)",
    );
    let run = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    run.expect_code(2);
    assert!(run.stdout.contains("drift"), "{}", run.stdout);
    assert!(run.stdout.contains("deletion_protection"), "{}", run.stdout);
    assert!(
        run.stdout.contains("backup_retention_period"),
        "{}",
        run.stdout
    );
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let db = instance(&rds, "carebow-main").await.unwrap();
    assert_eq!(db.deletion_protection(), Some(true));
    assert_eq!(db.backup_retention_period(), Some(7));
    p.run(Some(&moto), &["plan", "--detailed-exitcode"])
        .expect_code(0);

    // Deliberately unprotected first, then destroyed: a final snapshot stays.
    let text = stack("db.t4g.small", "postgres")
        .replace("protect = true\n", "")
        .replace("deletion_protection = true", "deletion_protection = false");
    p.write("carebow.toml", &text);
    p.run(Some(&moto), &["apply", "--auto-approve"])
        .expect_code(0);
    let run = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    run.expect_code(0);
    assert!(instance(&rds, "carebow-main").await.is_none());
    let snaps = rds
        .describe_db_snapshots()
        .db_instance_identifier("carebow-main")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = snaps
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("carebow-main-final-"), "{names:?}");
    assert!(common::tagged_ids(&ec2, "carebow").await.is_empty());
    assert_eq!(
        rds.describe_db_subnet_groups()
            .send()
            .await
            .unwrap()
            .db_subnet_groups()
            .len(),
        0
    );
}

/// The database kinds' numeric bounds are the schema's: `validate` refuses a
/// value out of range where the file says it, before any AWS call.
#[test]
fn out_of_range_numbers_are_refused_where_written() {
    let p = Project::new();
    let text = stack("db.t4g.micro", "postgres");
    p.write(
        "carebow.toml",
        &text.replace(
            "backup_retention_period = 7",
            "backup_retention_period = 36",
        ),
    );
    let run = p.run(None, &["validate"]);
    assert_ne!(run.code, 0);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("carebow.toml:36:27: `db_instance.main`.backup_retention_period is 36; AWS takes 0 to 35"),
        "{all}"
    );
}
