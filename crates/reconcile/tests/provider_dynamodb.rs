//! DynamoDB tables against moto, checked with an independent DynamoDB client:
//! global secondary indexes added, removed and re-projected in one apply, a
//! protected table's replacement and a deletion-protected table's destroy
//! refused, bad declarations refused before any call, and the table settings
//! (point-in-time recovery, time to live, stream, encryption) really applied.

mod common;
use aws_sdk_dynamodb::types::TableDescription;
use common::{plan_clean, Moto, Project, Sentinel};

const HEADER: &str = "[stack]\nname = \"tables\"\nregion = \"us-east-1\"\n\n";

async fn dynamodb(moto: &Moto) -> aws_sdk_dynamodb::Client {
    let conf = moto.sdk().await;
    aws_sdk_dynamodb::Client::new(&conf)
}

fn write(p: &Project, body: &str) {
    p.write("tables.toml", &format!("{HEADER}{body}"));
}

fn apply(p: &Project, moto: &Moto) -> common::Run {
    let r = p.run(Some(moto), &["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    r
}

async fn table(db: &aws_sdk_dynamodb::Client, name: &str) -> TableDescription {
    let out = db.describe_table().table_name(name).send().await.unwrap();
    out.table().unwrap().clone()
}

/// Every index as `name: keys projection [included]`, sorted.
fn indexes(t: &TableDescription) -> Vec<String> {
    let mut out: Vec<String> = t
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            let keys: Vec<&str> = g.key_schema().iter().map(|k| k.attribute_name()).collect();
            let p = g.projection().unwrap();
            format!(
                "{}: {} {} {:?}",
                g.index_name().unwrap(),
                keys.join(","),
                p.projection_type().unwrap().as_str(),
                p.non_key_attributes()
            )
        })
        .collect();
    out.sort();
    out
}

const EVENTS: &str = r#"[dynamodb_table.events]
name     = "events"
hash_key = "pk"
attributes = [
  { name = "pk", type = "S" },
  { name = "a", type = "S" },
  { name = "b", type = "S" },
]
global_secondary_indexes = [
  { name = "by-a", hash_key = "a" },
  { name = "by-b", hash_key = "b", projection_type = "KEYS_ONLY" },
]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_index_added_another_removed_and_a_third_reprojected_converge_in_one_apply() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, EVENTS);
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let db = dynamodb(&moto).await;
    assert_eq!(
        indexes(&table(&db, "events").await),
        ["by-a: a ALL []", "by-b: b KEYS_ONLY []"]
    );

    // by-a goes, by-b's projection changes (a delete and a create for AWS),
    // by-c comes: one apply, waiting between the steps.
    write(
        &p,
        r#"[dynamodb_table.events]
name     = "events"
hash_key = "pk"
attributes = [
  { name = "pk", type = "S" },
  { name = "b", type = "S" },
  { name = "c", type = "N" },
]
global_secondary_indexes = [
  { name = "by-b", hash_key = "b", projection_type = "INCLUDE", non_key_attributes = ["total", "when"] },
  { name = "by-c", hash_key = "c", range_key = "b" },
]
"#,
    );
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("update in place"), "{}", r.stdout);
    assert!(
        r.stdout.contains("global_secondary_indexes"),
        "{}",
        r.stdout
    );
    apply(&p, &moto);
    let t = table(&db, "events").await;
    assert_eq!(
        indexes(&t),
        [r#"by-b: b INCLUDE ["total", "when"]"#, "by-c: c,b ALL []"]
    );
    // The table's own key is still defined: the emulator replaces the
    // definitions with those an index create sends, so all are sent.
    assert!(t
        .attribute_definitions()
        .iter()
        .any(|a| a.attribute_name() == "pk"));
    plan_clean(&p, &moto);
    assert_eq!(
        p.state_json("tables")["resources"]["dynamodb_table.events"]["id"],
        "events"
    );
}

const ORDERS: &str = r#"[dynamodb_table.orders]
name       = "orders"
hash_key   = "pk"
range_key  = "sk"
attributes = [{ name = "pk", type = "S" }, { name = "sk", type = "S" }]
protect    = true
"#;

#[tokio::test(flavor = "multi_thread")]
async fn protected_tables_are_neither_replaced_nor_destroyed() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, ORDERS);
    apply(&p, &moto);
    let db = dynamodb(&moto).await;
    let created = table(&db, "orders").await.creation_date_time().cloned();

    // A new sort key replaces a table: refused, saying why, before any change.
    write(
        &p,
        &ORDERS.replace(
            "range_key  = \"sk\"\nattributes = [{ name = \"pk\", type = \"S\" }, { name = \"sk\", type = \"S\" }]",
            "range_key  = \"at\"\nattributes = [{ name = \"pk\", type = \"S\" }, { name = \"at\", type = \"N\" }]",
        ),
    );
    let r = p.run(Some(&moto), &["plan"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("dynamodb_table.orders")
            && r.stderr.contains("is protected (protect = true)")
            && r.stderr.contains("range_key"),
        "{}",
        r.stderr
    );
    let r = p.run(Some(&moto), &["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let t = table(&db, "orders").await;
    assert_eq!(
        t.creation_date_time().cloned(),
        created,
        "the table was replaced"
    );
    assert_eq!(t.key_schema()[1].attribute_name(), "sk");

    // Deletion protection on, protect off: destroy is refused by the plan
    // with the setting to change, and the table stays.
    write(
        &p,
        &ORDERS.replace("protect    = true", "deletion_protection_enabled = true"),
    );
    apply(&p, &moto);
    assert_eq!(
        table(&db, "orders").await.deletion_protection_enabled(),
        Some(true)
    );
    let r = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("has deletion_protection_enabled on in AWS, so destroy would fail"),
        "{}",
        r.stderr
    );
    assert_eq!(table(&db, "orders").await.table_name(), Some("orders"));

    // Switched off and applied first, the destroy goes through.
    write(
        &p,
        &ORDERS.replace("protect    = true", "deletion_protection_enabled = false"),
    );
    apply(&p, &moto);
    let r = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let gone = db.describe_table().table_name("orders").send().await;
    assert!(gone.is_err(), "the table survived destroy");
}

#[test]
fn bad_tables_are_refused_before_any_call() {
    let p = Project::new();
    p.write(
        "tables.toml",
        &format!(
            "{HEADER}[dynamodb_table.a]\nname = \"tbl-a\"\nhash_key = \"pk\"\n\
             attributes = [{{ name = \"pk\", type = \"S\" }}]\n\
             global_secondary_indexes = [{{ name = \"by-x\", hash_key = \"x\" }}]\n\n\
             [dynamodb_table.b]\nname = \"tbl-b\"\nhash_key = \"pk\"\n\
             attributes = [{{ name = \"pk\", type = \"S\" }}]\n\
             billing_mode = \"PROVISIONED\"\n"
        ),
    );
    let sentinel = Sentinel::new();
    let r = p.run_at(&sentinel.url, &["plan"]);
    r.expect_code(1);
    sentinel.assert_no_call();
    assert!(!p.state_dir().exists());
    for needle in [
        "desired-state/tables.toml:9:1",
        "a key of index `by-x` `x` is not a declared attribute",
        "desired-state/tables.toml:15:1",
        "a PROVISIONED table needs `read_capacity`",
        "a PROVISIONED table needs `write_capacity`",
    ] {
        assert!(r.stderr.contains(needle), "no `{needle}` in:\n{}", r.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_expiry_stream_and_encryption_are_applied_as_declared() {
    let moto = Moto::start();
    let p = Project::new();
    write(
        &p,
        r#"[dynamodb_table.sessions]
name                   = "sessions"
hash_key               = "id"
attributes             = [{ name = "id", type = "S" }]
point_in_time_recovery = true
ttl_attribute          = "expires_at"
stream_view_type       = "NEW_AND_OLD_IMAGES"
encryption             = "AWS_MANAGED"
"#,
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let db = dynamodb(&moto).await;
    let t = table(&db, "sessions").await;
    let stream = t.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type().unwrap().as_str(),
        "NEW_AND_OLD_IMAGES"
    );
    let stream_arn = t.latest_stream_arn().unwrap().to_string();
    let state = p.state_json("tables");
    assert_eq!(
        state["resources"]["dynamodb_table.sessions"]["attributes"]["stream_arn"],
        stream_arn.as_str()
    );
    let sse = t.sse_description().unwrap();
    assert_eq!(sse.status().unwrap().as_str(), "ENABLED");
    assert_eq!(sse.sse_type().unwrap().as_str(), "KMS");
    // AWS_MANAGED: the account's aws/dynamodb key, no key of the user's.
    let conf = moto.sdk().await;
    let kms = aws_sdk_kms::Client::new(&conf);
    let managed = kms
        .describe_key()
        .key_id("alias/aws/dynamodb")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sse.kms_master_key_arn(),
        managed.key_metadata().unwrap().arn()
    );
    let backups = db
        .describe_continuous_backups()
        .table_name("sessions")
        .send()
        .await
        .unwrap();
    let pitr = backups
        .continuous_backups_description()
        .unwrap()
        .point_in_time_recovery_description()
        .unwrap();
    assert_eq!(
        pitr.point_in_time_recovery_status().unwrap().as_str(),
        "ENABLED"
    );
    let ttl = db
        .describe_time_to_live()
        .table_name("sessions")
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status().unwrap().as_str(), "ENABLED");
    assert_eq!(ttl.attribute_name(), Some("expires_at"));

    // Out of band: recovery and expiry switched off are drift, and repaired.
    db.update_continuous_backups()
        .table_name("sessions")
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(false)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    db.update_time_to_live()
        .table_name("sessions")
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .enabled(false)
                .attribute_name("expires_at")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("point_in_time_recovery") && r.stdout.contains("ttl_attribute"),
        "{}",
        r.stdout
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);

    // The stream left out: switched off.
    write(
        &p,
        r#"[dynamodb_table.sessions]
name                   = "sessions"
hash_key               = "id"
attributes             = [{ name = "id", type = "S" }]
point_in_time_recovery = true
ttl_attribute          = "expires_at"
encryption             = "AWS_MANAGED"
"#,
    );
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("stream_view_type"), "{}", r.stdout);
    apply(&p, &moto);
    let t = table(&db, "sessions").await;
    assert!(t.stream_specification().is_none_or(|s| !s.stream_enabled()));
    plan_clean(&p, &moto);
    assert_eq!(
        p.state_json("tables")["resources"]["dynamodb_table.sessions"]["attributes"]["stream_arn"],
        ""
    );
}

/// Table and index capacities as `table r/w; index r/w`.
fn capacities(t: &TableDescription) -> String {
    let p = t.provisioned_throughput().unwrap();
    let g = t.global_secondary_indexes()[0]
        .provisioned_throughput()
        .unwrap();
    format!(
        "{}/{}; {}/{}",
        p.read_capacity_units().unwrap(),
        p.write_capacity_units().unwrap(),
        g.read_capacity_units().unwrap(),
        g.write_capacity_units().unwrap()
    )
}

const METRICS: &str = r#"[dynamodb_table.metrics]
name           = "metrics"
hash_key       = "pk"
attributes     = [{ name = "pk", type = "S" }, { name = "day", type = "S" }]
billing_mode   = "PROVISIONED"
read_capacity  = 2
write_capacity = 3
global_secondary_indexes = [
  { name = "by-day", hash_key = "day", read_capacity = 1, write_capacity = 1 },
]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn capacities_change_in_place_and_a_switch_to_on_demand_drops_them() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, METRICS);
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let db = dynamodb(&moto).await;
    let t = table(&db, "metrics").await;
    assert_eq!(capacities(&t), "2/3; 1/1");

    // The table's and the index's capacities, in place (one UpdateTable: AWS takes
    // the index's with the table's).
    write(
        &p,
        &METRICS
            .replace("read_capacity  = 2", "read_capacity  = 4")
            .replace(
                "read_capacity = 1, write_capacity = 1",
                "read_capacity = 5, write_capacity = 6",
            ),
    );
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("update in place"), "{}", r.stdout);
    apply(&p, &moto);
    assert_eq!(capacities(&table(&db, "metrics").await), "4/3; 5/6");
    plan_clean(&p, &moto);

    // On demand: no capacities declared, none compared.
    write(
        &p,
        r#"[dynamodb_table.metrics]
name       = "metrics"
hash_key   = "pk"
attributes = [{ name = "pk", type = "S" }, { name = "day", type = "S" }]
global_secondary_indexes = [{ name = "by-day", hash_key = "day" }]
"#,
    );
    apply(&p, &moto);
    let t = table(&db, "metrics").await;
    assert_eq!(
        t.billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str()),
        Some("PAY_PER_REQUEST")
    );
    plan_clean(&p, &moto);
}
