//! S3 buckets against moto, checked with an independent S3 client: a bucket
//! holding objects is deleted only once `force_destroy = true` was applied, and
//! then with every version and delete marker; settings changed by hand are
//! reported by field and repaired; SSE-KMS takes a key by reference; bad
//! declarations are refused before any AWS call.

mod common;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, PublicAccessBlockConfiguration, VersioningConfiguration,
};
use common::{apply, plan_clean, s3, versioning, Moto, Project, Sentinel};

const HEADER: &str = "[stack]\nname = \"buckets\"\nregion = \"us-east-1\"\n\n";

fn write(p: &Project, body: &str) {
    p.write("buckets.toml", &format!("{HEADER}{body}"));
}

/// Plans, expecting changes, and returns the plan's text.
#[track_caller]
fn plan_changes(p: &Project, moto: &Moto) -> String {
    let r = p.run(Some(moto), &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "expected changes:\n{}", r.all());
    r.stdout
}

async fn exists(s3: &aws_sdk_s3::Client, bucket: &str) -> bool {
    let out = s3.list_buckets().send().await.unwrap();
    out.buckets().iter().any(|b| b.name() == Some(bucket))
}

/// Object versions and delete markers in the bucket.
async fn versions(s3: &aws_sdk_s3::Client, bucket: &str) -> usize {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    out.versions().len() + out.delete_markers().len()
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
}

const DOCS: &str = r#"[s3_bucket.docs]
name       = "buckets-phi-docs"
versioning = "Enabled"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_with_objects_is_deleted_only_once_force_destroy_is_applied() {
    let moto = Moto::start();
    let p = Project::new();
    write(&p, DOCS);
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let s3 = s3(&moto).await;
    let b = "buckets-phi-docs";
    put(&s3, b, "a.txt", "one").await;
    put(&s3, b, "a.txt", "two").await;
    put(&s3, b, "b.txt", "three").await;
    s3.delete_object()
        .bucket(b)
        .key("b.txt")
        .send()
        .await
        .unwrap();
    // Two versions of a.txt, one of b.txt and its delete marker.
    assert_eq!(versions(&s3, b).await, 4);

    // A new name would replace it: refused the same way, as is a destroy.
    write(&p, &DOCS.replace("buckets-phi-docs", "buckets-phi-docs2"));
    let r = p.run(Some(&moto), &["plan"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("still holds objects"), "{}", r.stderr);
    write(&p, DOCS);
    let r = p.run(Some(&moto), &["destroy", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("still holds objects"), "{}", r.stderr);

    // Removed from the stack: the plan refuses, saying why and what to do.
    write(&p, "");
    let r = p.run(Some(&moto), &["plan"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("s3_bucket.docs") && r.stderr.contains("still holds objects"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("force_destroy = true"), "{}", r.stderr);
    let r = p.run(Some(&moto), &["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(exists(&s3, b).await);
    assert_eq!(versions(&s3, b).await, 4);

    // Allowed first, then removed: the plan says what goes with it.
    write(&p, &format!("{DOCS}force_destroy = true\n"));
    let out = plan_changes(&p, &moto);
    assert!(out.contains("s3_bucket.docs"), "{out}");
    apply(&p, &moto);
    plan_clean(&p, &moto);
    assert_eq!(
        versions(&s3, b).await,
        4,
        "applying the setting deletes nothing"
    );

    write(&p, "");
    let out = plan_changes(&p, &moto);
    assert!(
        out.contains("deletes every object and version in the bucket (force_destroy)"),
        "{out}"
    );
    apply(&p, &moto);
    assert!(!exists(&s3, b).await, "the bucket survived");
    plan_clean(&p, &moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_changed_by_hand_are_reported_and_repaired() {
    let moto = Moto::start();
    let p = Project::new();
    write(
        &p,
        r#"[s3_bucket.logs]
name            = "buckets-audit-logs"
versioning      = "Enabled"
lifecycle_rules = [
  { id = "archive", transitions = [{ days = 30, storage_class = "STANDARD_IA" }, { days = 90, storage_class = "GLACIER" }], expiration_days = 365 },
  { id = "uploads", abort_incomplete_multipart_upload_days = 7 },
]
"#,
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let s3 = s3(&moto).await;
    let b = "buckets-audit-logs";

    #[track_caller]
    fn reported_and_repaired(p: &Project, moto: &Moto, field: &str) {
        let out = plan_changes(p, moto);
        assert!(
            out.contains("s3_bucket.logs") && out.contains("drift"),
            "{field}: {out}"
        );
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(field)),
            "{field} not named:\n{out}"
        );
        apply(p, moto);
        plan_clean(p, moto);
    }

    s3.put_public_access_block()
        .bucket(b)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(false)
                .ignore_public_acls(false)
                .block_public_policy(false)
                .restrict_public_buckets(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    reported_and_repaired(&p, &moto, "block_public_acls");
    let pab = s3.get_public_access_block().bucket(b).send().await.unwrap();
    let c = pab.public_access_block_configuration().unwrap();
    assert_eq!(c.block_public_acls(), Some(true));
    assert_eq!(c.restrict_public_buckets(), Some(true));

    s3.put_bucket_versioning()
        .bucket(b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    reported_and_repaired(&p, &moto, "versioning");
    assert_eq!(versioning(&s3, b).await, "Enabled");

    s3.delete_bucket_encryption()
        .bucket(b)
        .send()
        .await
        .unwrap();
    reported_and_repaired(&p, &moto, "sse_algorithm");
    let e = s3.get_bucket_encryption().bucket(b).send().await.unwrap();
    let rule = &e.server_side_encryption_configuration().unwrap().rules()[0];
    let sse = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(sse.sse_algorithm().as_str(), "AES256");

    s3.delete_bucket_lifecycle().bucket(b).send().await.unwrap();
    reported_and_repaired(&p, &moto, "lifecycle_rules");
    let l = s3
        .get_bucket_lifecycle_configuration()
        .bucket(b)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<&str> = l.rules().iter().filter_map(|r| r.id()).collect();
    ids.sort();
    assert_eq!(ids, ["archive", "uploads"]);

    // `[]` means no rules at all.
    write(
        &p,
        "[s3_bucket.logs]\nname = \"buckets-audit-logs\"\nversioning = \"Enabled\"\nlifecycle_rules = []\n",
    );
    let out = plan_changes(&p, &moto);
    assert!(out.contains("lifecycle_rules"), "{out}");
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let gone = s3
        .get_bucket_lifecycle_configuration()
        .bucket(b)
        .send()
        .await;
    assert!(gone.is_err(), "rules left: {gone:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_kms_takes_the_key_by_reference_with_a_bucket_key() {
    let moto = Moto::start();
    let p = Project::new();
    write(
        &p,
        r#"[kms_key.k]
description             = "bucket key"
deletion_window_in_days = 7

[s3_bucket.phi]
name               = "buckets-phi-kms"
sse_algorithm      = "aws:kms"
kms_master_key_id  = "${kms_key.k.arn}"
bucket_key_enabled = true
"#,
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let key = p.state_json("buckets")["resources"]["kms_key.k"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let s3 = s3(&moto).await;
    let e = s3
        .get_bucket_encryption()
        .bucket("buckets-phi-kms")
        .send()
        .await
        .unwrap();
    let rule = &e.server_side_encryption_configuration().unwrap().rules()[0];
    let sse = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(sse.sse_algorithm().as_str(), "aws:kms");
    assert!(
        sse.kms_master_key_id().unwrap().ends_with(&key),
        "{:?}",
        sse.kms_master_key_id()
    );
    assert_eq!(rule.bucket_key_enabled(), Some(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_with_a_reference_inside_applies_and_replans_clean() {
    let moto = Moto::start();
    let p = Project::new();
    write(
        &p,
        r#"[iam_role.reader]
name             = "buckets-reader"
trusted_services = ["ecs-tasks.amazonaws.com"]

[s3_bucket.shared]
name                = "buckets-shared"
block_public_policy = false
policy = '''
{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "read",
    "Effect": "Allow",
    "Principal": { "AWS": "${iam_role.reader.arn}" },
    "Action": ["s3:GetObject"],
    "Resource": "arn:aws:s3:::buckets-shared/*"
  }]
}
'''
"#,
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let s3 = s3(&moto).await;
    let got = s3
        .get_bucket_policy()
        .bucket("buckets-shared")
        .send()
        .await
        .unwrap();
    let policy = got.policy().unwrap();
    assert!(
        policy.contains("arn:aws:iam::123456789012:role/buckets-reader"),
        "{policy}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_bucket_is_taken_over_only_when_untagged_or_ours() {
    let moto = Moto::start();
    let p = Project::new();
    let s3 = s3(&moto).await;
    for b in ["buckets-made-by-hand", "buckets-someone-elses"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let tag = aws_sdk_s3::types::Tag::builder()
        .key("team")
        .value("other")
        .build()
        .unwrap();
    s3.put_bucket_tagging()
        .bucket("buckets-someone-elses")
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(tag)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    write(&p, "[s3_bucket.taken]\nname = \"buckets-someone-elses\"\n");
    let r = p.run(Some(&moto), &["apply", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all()
            .contains("already exists in this account with other tags")
            && r.all()
                .contains("reconcile import s3_bucket.taken buckets-someone-elses"),
        "{}",
        r.all()
    );

    write(&p, "[s3_bucket.mine]\nname = \"buckets-made-by-hand\"\n");
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let t = s3
        .get_bucket_tagging()
        .bucket("buckets-made-by-hand")
        .send()
        .await
        .unwrap();
    assert!(
        t.tag_set()
            .iter()
            .any(|t| t.key() == "reconcile:address" && t.value() == "s3_bucket.mine"),
        "{:?}",
        t.tag_set()
    );
}

#[test]
fn bad_buckets_are_refused_before_any_call() {
    let p = Project::new();
    p.write(
        "buckets.toml",
        &format!(
            "{HEADER}[s3_bucket.a]\nname = \"Bad_Bucket\"\n\n\
             [s3_bucket.b]\nname = \"buckets-b\"\n\
             lifecycle_rules = [{{ id = \"cold\", transitions = [{{ days = 30, storage_class = \"STANDARD_IA\" }}, {{ days = 40, storage_class = \"GLACIER\" }}] }}]\n\n\
             [s3_bucket.c]\nname = \"buckets-c\"\n\
             lifecycle_rules = [{{ id = \"soon\", transitions = [{{ days = 10, storage_class = \"STANDARD_IA\" }}] }}]\n"
        ),
    );
    let sentinel = Sentinel::new();
    for cmd in ["validate", "plan"] {
        let r = p.run_at(&sentinel.url, &[cmd]);
        r.expect_code(1);
        sentinel.assert_no_call();
        for needle in [
            "desired-state/buckets.toml:6:1",
            "not a valid bucket name",
            "lowercase letters",
            "desired-state/buckets.toml:10:1",
            "before STANDARD_IA's minimum",
            "day 60",
            "desired-state/buckets.toml:14:1",
            "at least 30 days",
        ] {
            assert!(
                r.stderr.contains(needle),
                "{cmd}: no `{needle}` in:\n{}",
                r.stderr
            );
        }
    }
    assert!(!p.state_dir().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn access_logging_is_applied_and_switched_back_on_when_turned_off_by_hand() {
    let moto = Moto::start();
    let s3 = s3(&moto).await;
    let p = Project::new();
    write(
        &p,
        r#"# The logging target lets the logging service write into it, as S3 asks.
[s3_bucket.logs]
name   = "buckets-log-archive"
policy = '{"Version":"2012-10-17","Statement":[{"Sid":"S3ServerAccessLogs","Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::buckets-log-archive/*"}]}'

[s3_bucket.app]
name                  = "buckets-app"
logging_target_bucket = "${s3_bucket.logs.name}"
logging_target_prefix = "app/"
"#,
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    let logging = |s3: aws_sdk_s3::Client| async move {
        let out = s3
            .get_bucket_logging()
            .bucket("buckets-app")
            .send()
            .await
            .unwrap();
        out.logging_enabled()
            .map(|l| (l.target_bucket().to_string(), l.target_prefix().to_string()))
    };
    assert_eq!(
        logging(s3.clone()).await,
        Some(("buckets-log-archive".into(), "app/".into()))
    );

    s3.put_bucket_logging()
        .bucket("buckets-app")
        .bucket_logging_status(aws_sdk_s3::types::BucketLoggingStatus::builder().build())
        .send()
        .await
        .unwrap();
    let out = plan_changes(&p, &moto);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().next() == Some("logging_target_bucket")),
        "{out}"
    );
    apply(&p, &moto);
    plan_clean(&p, &moto);
    assert_eq!(
        logging(s3.clone()).await,
        Some(("buckets-log-archive".into(), "app/".into()))
    );
}
