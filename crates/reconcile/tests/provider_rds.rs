//! The db_subnet_group, db_instance and db_cluster providers, called directly
//! through the library against a private moto server: create, observe, find by
//! tags, update in place, deletion protection, deletes with and without a final
//! snapshot, an Aurora Serverless v2 cluster with its members, and what observing
//! costs in AWS calls. What exists is checked with an independent RDS client.

mod common;

use indexmap::IndexMap;
use reconcile_aws::ec2::subnet::Subnet;
use reconcile_aws::ec2::vpc::Vpc;
use reconcile_aws::kit::SchemaDiff;
use reconcile_aws::rds::db_cluster::DbCluster;
use reconcile_aws::rds::db_instance::DbInstance;
use reconcile_aws::rds::db_subnet_group::DbSubnetGroup;
use reconcile_aws::{AwsOptions, CallCounter, Cx, Desired, Provider, StatusSink};
use reconcile_core::model::{Fields, Value};
use reconcile_core::plan::{FieldChange, Observed};
use std::sync::{Arc, Mutex};

const STACK: &str = "rds-test";
const PASSWORD: &str = "canary-Pa55word-never-shown";

async fn connect(moto: &common::Moto) -> Cx {
    let opts = AwsOptions {
        region: common::REGION.into(),
        endpoint_url: Some(moto.url.clone()),
    };
    Cx::connect(&opts, STACK, CallCounter::default()).await
}

/// An RDS client independent of reconcile's own.
async fn rds_client(moto: &common::Moto) -> aws_sdk_rds::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(common::REGION))
        .endpoint_url(&moto.url)
        .load()
        .await;
    aws_sdk_rds::Client::new(&conf)
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn strs(v: &[&str]) -> Value {
    Value::List(v.iter().map(|s| Value::str(*s)).collect())
}

fn tags(address: &str) -> IndexMap<String, String> {
    let mut t = IndexMap::new();
    t.insert("Project".to_string(), "carebow".to_string());
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

/// The changes the planner would find: reconcile's own settings are compared
/// with the last applied inputs, not with AWS, so they are left out here.
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

async fn assert_found_by_tag(p: &dyn Provider, cx: &Cx, address: &str, id: &str) {
    let found = p
        .find_tagged(cx, &[address.to_string()])
        .await
        .expect("find_tagged");
    let ids: Vec<&str> = found.iter().map(|(_, o)| o.id.as_str()).collect();
    assert_eq!(ids, [id], "find_tagged({address})");
    assert_eq!(found[0].0, address);
}

/// A VPC with two subnets in two zones, made with the network providers.
async fn network(cx: &Cx) -> (String, Vec<String>) {
    let t = tags("vpc.main");
    let vpc = Vpc
        .create(
            cx,
            &Desired {
                address: "vpc.main",
                fields: &fields(&[("cidr_block", Value::str("10.0.0.0/16"))]),
                tags: &t,
                token: "t",
                replacing: None,
            },
        )
        .await
        .unwrap()
        .id;
    let mut subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let address = format!("subnet.db_{i}");
        let t = tags(&address);
        let f = fields(&[
            ("vpc_id", Value::str(&vpc)),
            ("cidr_block", Value::str(format!("10.0.{}.0/24", i + 1))),
            ("availability_zone", Value::str(*az)),
        ]);
        let s = Subnet
            .create(
                cx,
                &Desired {
                    address: &address,
                    fields: &f,
                    tags: &t,
                    token: "t",
                    replacing: None,
                },
            )
            .await
            .unwrap();
        subnets.push(s.id);
    }
    (vpc, subnets)
}

async fn subnet_group(cx: &Cx, name: &str, subnets: &[String]) -> Observed {
    let f = fields(&[
        ("name", Value::str(name)),
        ("description", Value::str("database subnets")),
        (
            "subnet_ids",
            Value::List(subnets.iter().map(Value::str).collect()),
        ),
    ]);
    create(&DbSubnetGroup, cx, "db_subnet_group.main", &f)
        .await
        .unwrap()
}

async fn master_secret(cx: &Cx) -> String {
    cx.secrets
        .create_secret()
        .name("carebow/db-master")
        .secret_string(format!(
            r#"{{"username":"carebow","password":"{PASSWORD}"}}"#
        ))
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

fn postgres(id: &str, group: &str, secret: &str) -> Fields {
    fields(&[
        ("identifier", Value::str(id)),
        ("engine", Value::str("postgres")),
        ("engine_version", Value::str("16")),
        ("instance_class", Value::str("db.t4g.micro")),
        ("allocated_storage", Value::Int(20)),
        ("storage_type", Value::str("gp3")),
        ("db_name", Value::str("carebow")),
        ("master_username", Value::str("carebow")),
        ("master_password_secret", Value::str(secret)),
        ("master_password_secret_key", Value::str("password")),
        ("storage_encrypted", Value::Bool(true)),
        ("backup_retention_period", Value::Int(7)),
        ("db_subnet_group_name", Value::str(group)),
        ("publicly_accessible", Value::Bool(false)),
        ("enabled_cloudwatch_logs_exports", strs(&["postgresql"])),
        ("copy_tags_to_snapshot", Value::Bool(true)),
        ("apply_immediately", Value::Bool(true)),
        ("skip_final_snapshot", Value::Bool(false)),
    ])
}

fn count(cx: &Cx, op: &str) -> u64 {
    cx.calls
        .snapshot()
        .iter()
        .filter(|((_, o), _)| o == op)
        .map(|(_, n)| *n)
        .sum()
}

fn recorder() -> (StatusSink, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (
        StatusSink::new(move |a, st| s.lock().unwrap().push(format!("{a}: {st}"))),
        seen,
    )
}

async fn snapshots_of(rds: &aws_sdk_rds::Client, instance: &str) -> Vec<String> {
    rds.describe_db_snapshots()
        .db_instance_identifier(instance)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn subnet_group_lifecycle() {
    let moto = common::Moto::start();
    let cx = connect(&moto).await;
    let (vpc, subnets) = network(&cx).await;
    let p = &DbSubnetGroup;
    let address = "db_subnet_group.main";
    let made = subnet_group(&cx, "carebow-db", &subnets).await;
    assert_eq!(made.id, "carebow-db");
    assert_eq!(made.attributes["vpc_id"], Value::str(&vpc));
    assert!(made.attributes["arn"]
        .as_str()
        .unwrap()
        .ends_with(":subgrp:carebow-db"));
    let want = fields(&[
        ("name", Value::str("carebow-db")),
        ("description", Value::str("database subnets")),
        (
            "subnet_ids",
            Value::List(subnets.iter().rev().map(Value::str).collect()),
        ),
    ]);
    let live = assert_live(p, &cx, address, "carebow-db", &want).await;
    assert_eq!(live.attributes, made.attributes);
    assert_found_by_tag(p, &cx, address, "carebow-db").await;

    // Another stack's group of the same shape is neither observed as ours nor found.
    rds_client(&moto)
        .await
        .create_db_subnet_group()
        .db_subnet_group_name("someone-else")
        .db_subnet_group_description("x")
        .set_subnet_ids(Some(subnets.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(p.find_tagged(&cx, &[]).await.unwrap().len(), 1);

    // moto 5.2.5's ModifyDBSubnetGroup deletes the group, so update is not run here.
    p.delete(&cx, "carebow-db").await.unwrap();
    assert!(observe_one(p, &cx, "carebow-db").await.is_none());
    p.delete(&cx, "carebow-db").await.unwrap();
}

#[tokio::test]
async fn postgres_instance_lifecycle() {
    let moto = common::Moto::start();
    let mut cx = connect(&moto).await;
    let (sink, seen) = recorder();
    cx.status = sink;
    let rds = rds_client(&moto).await;
    let (_, subnets) = network(&cx).await;
    subnet_group(&cx, "carebow-db", &subnets).await;
    let secret = master_secret(&cx).await;
    let p = &DbInstance;
    let address = "db_instance.main";

    // A key the secret does not hold: refused before anything is created, and
    // the message does not quote the secret.
    let mut bad = postgres("carebow-main", "carebow-db", &secret);
    bad.insert("master_password_secret_key".into(), Value::str("pw"));
    let e = create(p, &cx, address, &bad).await.unwrap_err();
    assert!(e.contains(address) && e.contains("no key `pw`"), "{e}");
    assert!(!e.contains(PASSWORD), "the error shows the password: {e}");
    assert!(observe_one(p, &cx, "carebow-main").await.is_none());

    let want = postgres("carebow-main", "carebow-db", &secret);
    let made = create(p, &cx, address, &want).await.unwrap();
    assert_eq!(made.id, "carebow-main");
    assert_eq!(made.attributes["status"], Value::str("available"));
    assert_eq!(made.attributes["port"], Value::Int(5432));
    assert!(made.attributes["endpoint"]
        .as_str()
        .unwrap()
        .starts_with("carebow-main."));
    assert!(made.attributes["arn"]
        .as_str()
        .unwrap()
        .ends_with(":db:carebow-main"));
    assert!(
        seen.lock()
            .unwrap()
            .contains(&format!("{address}: available")),
        "{:?}",
        seen.lock().unwrap()
    );
    let live = assert_live(p, &cx, address, "carebow-main", &want).await;
    assert_eq!(live.fields["deletion_protection"], Value::Bool(false));
    assert_eq!(
        live.fields["engine_version"]
            .as_str()
            .map(|v| v.starts_with("16")),
        Some(true)
    );
    assert_found_by_tag(p, &cx, address, "carebow-main").await;
    let raw = rds
        .describe_db_instances()
        .db_instance_identifier("carebow-main")
        .send()
        .await
        .unwrap();
    let raw = &raw.db_instances()[0];
    assert_eq!(raw.storage_encrypted(), Some(true));
    assert!(raw
        .tag_list()
        .iter()
        .any(|t| t.key() == Some("reconcile:address") && t.value() == Some(address)));

    // In place: the instance class, and deletion protection on.
    let mut want2 = want.clone();
    want2.insert("instance_class".into(), Value::str("db.t4g.small"));
    want2.insert("deletion_protection".into(), Value::Bool(true));
    let after = update(p, &cx, address, &live, &want2).await;
    assert_eq!(after.id, "carebow-main");
    let live = assert_live(p, &cx, address, "carebow-main", &want2).await;
    assert_eq!(live.fields["deletion_protection"], Value::Bool(true));
    let raw = rds
        .describe_db_instances()
        .db_instance_identifier("carebow-main")
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.db_instances()[0].db_instance_class(),
        Some("db.t4g.small")
    );
    assert_eq!(raw.db_instances()[0].deletion_protection(), Some(true));

    // AWS refuses the delete while protection is on; the error names the resource.
    let e = p
        .delete_applied(&cx, "carebow-main", Some(&want2))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(address) && e.contains("deletion_protection"),
        "{e}"
    );
    assert!(observe_one(p, &cx, "carebow-main").await.is_some());

    // Unprotected and deleted with nothing applied on record: a final snapshot.
    let mut want3 = want2.clone();
    want3.insert("deletion_protection".into(), Value::Bool(false));
    update(p, &cx, address, &live, &want3).await;
    p.delete_applied(&cx, "carebow-main", None).await.unwrap();
    assert!(observe_one(p, &cx, "carebow-main").await.is_none());
    let snaps = snapshots_of(&rds, "carebow-main").await;
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert!(snaps[0].starts_with("carebow-main-final-"), "{snaps:?}");
    assert!(
        seen.lock()
            .unwrap()
            .contains(&format!("{address}: deleted")),
        "{:?}",
        seen.lock().unwrap()
    );
    p.delete(&cx, "carebow-main").await.unwrap();

    // Applied with skip_final_snapshot = true: no snapshot.
    let mut quick = postgres("carebow-scratch", "carebow-db", &secret);
    quick.insert("skip_final_snapshot".into(), Value::Bool(true));
    create(p, &cx, "db_instance.scratch", &quick).await.unwrap();
    p.delete_applied(&cx, "carebow-scratch", Some(&quick))
        .await
        .unwrap();
    assert!(observe_one(p, &cx, "carebow-scratch").await.is_none());
    assert_eq!(
        snapshots_of(&rds, "carebow-scratch").await,
        Vec::<String>::new()
    );

    // A named final snapshot.
    let mut named = postgres("carebow-named", "carebow-db", &secret);
    named.insert(
        "final_snapshot_identifier".into(),
        Value::str("carebow-named-last"),
    );
    create(p, &cx, "db_instance.named", &named).await.unwrap();
    p.delete_applied(&cx, "carebow-named", Some(&named))
        .await
        .unwrap();
    assert_eq!(
        snapshots_of(&rds, "carebow-named").await,
        ["carebow-named-last"]
    );
}

#[tokio::test]
async fn aurora_serverless_cluster_with_writer_and_reader() {
    let moto = common::Moto::start();
    let mut cx = connect(&moto).await;
    let (sink, seen) = recorder();
    cx.status = sink;
    let rds = rds_client(&moto).await;
    let (_, subnets) = network(&cx).await;
    subnet_group(&cx, "mentalspace-db", &subnets).await;
    let scaling = |min: f64, max: f64| {
        let mut m = IndexMap::new();
        m.insert("min_capacity".to_string(), Value::Float(min));
        m.insert("max_capacity".to_string(), Value::Float(max));
        Value::Map(m)
    };
    let want = fields(&[
        ("cluster_identifier", Value::str("mentalspace")),
        ("engine", Value::str("aurora-postgresql")),
        ("engine_version", Value::str("16.4")),
        ("database_name", Value::str("ehr")),
        ("master_username", Value::str("ehr")),
        ("manage_master_user_password", Value::Bool(true)),
        ("serverlessv2_scaling", scaling(0.5, 8.0)),
        ("storage_encrypted", Value::Bool(true)),
        ("backup_retention_period", Value::Int(14)),
        ("db_subnet_group_name", Value::str("mentalspace-db")),
        ("copy_tags_to_snapshot", Value::Bool(true)),
    ]);
    let c = &DbCluster;
    let address = "db_cluster.ehr";
    let made = create(c, &cx, address, &want).await.unwrap();
    assert_eq!(made.id, "mentalspace");
    // moto's CreateDBCluster answer itself reads "creating" (its one status read),
    // so the wait sees "available" at once.
    assert_eq!(
        seen.lock().unwrap().last(),
        Some(&format!("{address}: available"))
    );
    for a in [
        "endpoint",
        "reader_endpoint",
        "resource_id",
        "master_user_secret_arn",
    ] {
        assert!(
            !made.attributes[a].as_str().unwrap_or_default().is_empty(),
            "{a}: {:?}",
            made.attributes
        );
    }
    let live = assert_live(c, &cx, address, "mentalspace", &want).await;
    assert_found_by_tag(c, &cx, address, "mentalspace").await;

    // Writer and reader: members with no storage or credentials of their own.
    let member = |id: &str, tier: i64| {
        fields(&[
            ("identifier", Value::str(id)),
            ("engine", Value::str("aurora-postgresql")),
            ("instance_class", Value::str("db.serverless")),
            ("db_cluster_identifier", Value::str("mentalspace")),
            ("promotion_tier", Value::Int(tier)),
            ("publicly_accessible", Value::Bool(false)),
        ])
    };
    let i = &DbInstance;
    for (id, tier) in [("mentalspace-writer", 0), ("mentalspace-reader", 1)] {
        let addr = format!("db_instance.{id}");
        create(i, &cx, &addr, &member(id, tier)).await.unwrap();
        assert_live(i, &cx, &addr, id, &member(id, tier)).await;
    }
    let raw = rds
        .describe_db_clusters()
        .db_cluster_identifier("mentalspace")
        .send()
        .await
        .unwrap();
    let raw = &raw.db_clusters()[0];
    let writers: Vec<(&str, bool)> = raw
        .db_cluster_members()
        .iter()
        .map(|m| {
            (
                m.db_instance_identifier().unwrap(),
                m.is_cluster_writer().unwrap(),
            )
        })
        .collect();
    assert_eq!(writers.len(), 2, "{writers:?}");
    assert!(
        writers.contains(&("mentalspace-writer", true)),
        "{writers:?}"
    );
    let sc = raw.serverless_v2_scaling_configuration().unwrap();
    assert_eq!(
        (sc.min_capacity(), sc.max_capacity()),
        (Some(0.5), Some(8.0))
    );

    // In place: scaling and backups.
    let mut want2 = want.clone();
    want2.insert("serverlessv2_scaling".into(), scaling(1.0, 4.0));
    want2.insert("backup_retention_period".into(), Value::Int(21));
    update(c, &cx, address, &live, &want2).await;
    assert_live(c, &cx, address, "mentalspace", &want2).await;

    // Members go first (the graph deletes dependents first), without snapshots of
    // their own; the cluster takes the final snapshot.
    for id in ["mentalspace-reader", "mentalspace-writer"] {
        i.delete_applied(&cx, id, Some(&member(id, 0)))
            .await
            .unwrap();
        assert!(observe_one(i, &cx, id).await.is_none());
        assert!(snapshots_of(&rds, id).await.is_empty());
    }
    c.delete_applied(&cx, "mentalspace", Some(&want2))
        .await
        .unwrap();
    assert!(observe_one(c, &cx, "mentalspace").await.is_none());
    let snaps: Vec<String> = rds
        .describe_db_cluster_snapshots()
        .db_cluster_identifier("mentalspace")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_cluster_snapshots()
        .iter()
        .filter_map(|s| s.db_cluster_snapshot_identifier().map(str::to_string))
        .collect();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert!(snaps[0].starts_with("mentalspace-final-"), "{snaps:?}");
}

#[tokio::test]
async fn observing_many_databases_costs_one_call_per_kind() {
    let moto = common::Moto::start();
    let cx = connect(&moto).await;
    let (_, subnets) = network(&cx).await;
    subnet_group(&cx, "bench-db", &subnets).await;
    let p = &DbInstance;
    let mut ids = Vec::new();
    for n in 0..6 {
        let id = format!("bench-{n}");
        let f = fields(&[
            ("identifier", Value::str(&id)),
            ("engine", Value::str("postgres")),
            ("instance_class", Value::str("db.t4g.micro")),
            ("allocated_storage", Value::Int(20)),
            ("master_username", Value::str("app")),
            ("manage_master_user_password", Value::Bool(true)),
            ("db_subnet_group_name", Value::str("bench-db")),
        ]);
        create(p, &cx, &format!("db_instance.b{n}"), &f)
            .await
            .unwrap();
        ids.push(id);
    }
    ids.push("bench-gone".to_string());

    let before = cx.calls.total();
    let before_op = count(&cx, "DescribeDBInstances");
    let found = p.observe(&cx, &ids).await.unwrap();
    assert_eq!(found.len(), 6, "{:?}", found.keys());
    assert!(!found.contains_key("bench-gone"));
    assert_eq!(count(&cx, "DescribeDBInstances") - before_op, 1);
    assert_eq!(cx.calls.total() - before, 1, "{:?}", cx.calls.snapshot());

    let before = cx.calls.total();
    assert_eq!(
        DbCluster
            .observe(&cx, &["none-1".into(), "none-2".into()])
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(cx.calls.total() - before, 1, "{:?}", cx.calls.snapshot());

    // Subnet groups: one list, plus one tag read per group (AWS's describe has no tags).
    let before = cx.calls.total();
    let g = DbSubnetGroup
        .observe(&cx, &["bench-db".into()])
        .await
        .unwrap();
    assert_eq!(
        g["bench-db"].tags["reconcile:address"],
        "db_subnet_group.main"
    );
    assert_eq!(count(&cx, "DescribeDBSubnetGroups"), 1);
    assert_eq!(cx.calls.total() - before, 2, "{:?}", cx.calls.snapshot());

    // Nothing to observe costs nothing.
    let before = cx.calls.total();
    p.observe(&cx, &[]).await.unwrap();
    assert_eq!(cx.calls.total(), before);
}
