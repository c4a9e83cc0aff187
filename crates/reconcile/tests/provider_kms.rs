//! KMS keys and aliases against moto, checked with an independent KMS client:
//! a key is only ever scheduled for deletion (the plan says after how long), is
//! never deleted or replaced while a declared resource uses it, comes back as
//! itself when scheduled for deletion by hand, and other kinds take its ARN.

mod common;
use common::{apply, plan_clean, Moto, Project, Sentinel, REGION};

const HEADER: &str = "[stack]\nname = \"keys\"\nregion = \"us-east-1\"\n\n";

const KEY: &str = r#"[kms_key.data]
description             = "patient data"
enable_key_rotation     = true
deletion_window_in_days = 7
"#;

async fn kms(moto: &Moto) -> aws_sdk_kms::Client {
    let conf = moto.sdk().await;
    aws_sdk_kms::Client::new(&conf)
}

fn write(p: &Project, body: &str) {
    p.write("keys.toml", &format!("{HEADER}{body}"));
}

fn key_id(p: &Project) -> String {
    p.state_json("keys")["resources"]["kms_key.data"]["id"]
        .as_str()
        .expect("key in state")
        .to_string()
}

async fn state_of(kms: &aws_sdk_kms::Client, id: &str) -> String {
    let d = kms.describe_key().key_id(id).send().await.unwrap();
    d.key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .as_str()
        .to_string()
}

async fn rotating(kms: &aws_sdk_kms::Client, id: &str) -> bool {
    let rot = kms.get_key_rotation_status().key_id(id).send().await;
    rot.unwrap().key_rotation_enabled()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_key_is_scheduled_for_deletion_after_the_waiting_period_the_plan_shows() {
    let moto = Moto::start();
    let p = Project::new();
    write(
        &p,
        &format!("{KEY}\n[kms_alias.data]\nname = \"alias/keys-data\"\ntarget_key_id = \"${{kms_key.data.arn}}\"\n"),
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let kms = kms(&moto).await;
    let id = key_id(&p);
    assert_eq!(state_of(&kms, &id).await, "Enabled");
    assert!(rotating(&kms, &id).await);
    let aliases = kms.list_aliases().key_id(&id).send().await.unwrap();
    assert_eq!(aliases.aliases()[0].alias_name(), Some("alias/keys-data"));

    write(&p, "");
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("schedules the key's deletion in 7 days"),
        "{}",
        r.stdout
    );
    apply(&p, &moto);
    let d = kms.describe_key().key_id(&id).send().await.unwrap();
    let m = d.key_metadata().unwrap();
    assert_eq!(m.key_state().unwrap().as_str(), "PendingDeletion");
    let days =
        (m.deletion_date().unwrap().secs() - chrono::Utc::now().timestamp()) as f64 / 86400.0;
    assert!((6.9..=7.1).contains(&days), "deletion in {days} days");
    assert!(kms
        .list_aliases()
        .key_id(&id)
        .send()
        .await
        .unwrap()
        .aliases()
        .is_empty());
    plan_clean(&p, &moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_in_use_is_neither_deleted_nor_replaced() {
    let moto = Moto::start();
    let p = Project::new();
    let group = "[log_group.audit]\nname = \"/keys/audit\"\nkms_key_id = \"${kms_key.data.arn}\"\n";
    write(&p, &format!("{KEY}\n{group}"));
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let id = key_id(&p);
    let arn = format!("arn:aws:kms:{REGION}:123456789012:key/{id}");

    // The reference still there: the stack does not even load.
    write(&p, group);
    let r = p.run(Some(&moto), &["plan"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("kms_key.data"), "{}", r.stderr);

    // The key's ARN written out: the plan refuses the delete, naming the user.
    write(&p, &group.replace("${kms_key.data.arn}", &arn));
    let r = p.run(Some(&moto), &["plan"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("log_group.audit still use it"),
        "{}",
        r.stderr
    );

    // A change that replaces the key is refused the same way.
    write(
        &p,
        &format!(
            "{}\n{group}",
            KEY.replace("enable_key_rotation     = true\n", "multi_region = true\n")
        ),
    );
    let r = p.run(Some(&moto), &["plan"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("multi_region would force its replacement")
            && r.stderr.contains("log_group.audit still use it"),
        "{}",
        r.stderr
    );
    assert_eq!(state_of(&kms(&moto).await, &id).await, "Enabled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_scheduled_for_deletion_by_hand_is_restored_not_replaced() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, KEY);
    apply(&p, &moto);
    let kms = kms(&moto).await;
    let id = key_id(&p);
    kms.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let r = p.run(Some(&moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("deleted outside reconcile"),
        "{}",
        r.stdout
    );
    apply(&p, &moto);
    assert_eq!(key_id(&p), id, "a new key was made");
    assert_eq!(state_of(&kms, &id).await, "Enabled");
    assert!(rotating(&kms, &id).await);
    plan_clean(&p, &moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_log_groups_clusters_and_tables_take_the_key_by_reference() {
    let moto = Moto::start();
    let p = Project::new();
    write(
        &p,
        &format!(
            "{KEY}\n[secret.api]\nname = \"keys/api\"\nkms_key_id = \"${{kms_key.data.arn}}\"\n\n\
             [log_group.app]\nname = \"/keys/app\"\nkms_key_id = \"${{kms_key.data.arn}}\"\n\n\
             [db_cluster.app]\ncluster_identifier = \"keys-app\"\nengine = \"aurora-postgresql\"\n\
             master_username = \"app\"\nmanage_master_user_password = true\n\
             storage_encrypted = true\nkms_key_id = \"${{kms_key.data.arn}}\"\n\
             skip_final_snapshot = true\n\n\
             [dynamodb_table.app]\nname = \"keys-app\"\nhash_key = \"id\"\n\
             attributes = [{{ name = \"id\", type = \"S\" }}]\n\
             encryption = \"CUSTOMER_MANAGED\"\nkms_key_arn = \"${{kms_key.data.arn}}\"\n"
        ),
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let id = key_id(&p);
    let conf = moto.sdk().await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let s = sm
        .describe_secret()
        .secret_id("keys/api")
        .send()
        .await
        .unwrap();
    assert!(
        s.kms_key_id().unwrap().ends_with(&id),
        "{:?}",
        s.kms_key_id()
    );
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let g = logs
        .describe_log_groups()
        .log_group_name_prefix("/keys/app")
        .send()
        .await
        .unwrap();
    assert!(g.log_groups()[0].kms_key_id().unwrap().ends_with(&id));
    let rds = aws_sdk_rds::Client::new(&conf);
    let c = rds
        .describe_db_clusters()
        .db_cluster_identifier("keys-app")
        .send()
        .await
        .unwrap();
    let c = &c.db_clusters()[0];
    assert_eq!(c.storage_encrypted(), Some(true));
    assert!(
        c.kms_key_id().unwrap().ends_with(&id),
        "{:?}",
        c.kms_key_id()
    );
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let t = ddb
        .describe_table()
        .table_name("keys-app")
        .send()
        .await
        .unwrap();
    let sse = t.table().unwrap().sse_description().unwrap();
    assert!(
        sse.kms_master_key_arn().unwrap().ends_with(&id),
        "{:?}",
        sse.kms_master_key_arn()
    );
}

#[test]
fn bad_keys_are_refused_before_any_call() {
    let p = Project::new();
    p.write(
        "keys.toml",
        &format!(
            "{HEADER}[kms_key.a]\ndeletion_window_in_days = 45\n\n\
             [kms_key.b]\nkey_spec = \"HMAC_256\"\n\n\
             [kms_alias.c]\nname = \"alias/aws/mine\"\ntarget_key_id = \"${{kms_key.a.arn}}\"\n"
        ),
    );
    let sentinel = Sentinel::new();
    let r = p.run_at(&sentinel.url, &["plan"]);
    r.expect_code(1);
    sentinel.assert_no_call();
    assert!(!p.state_dir().exists());
    for needle in [
        "desired-state/keys.toml:6:27",
        "deletion_window_in_days",
        "desired-state/keys.toml:9:1",
        "cannot be used for ENCRYPT_DECRYPT",
        "desired-state/keys.toml:12:8",
        "alias/aws/ are AWS's own",
    ] {
        assert!(r.stderr.contains(needle), "no `{needle}` in:\n{}", r.stderr);
    }
}
